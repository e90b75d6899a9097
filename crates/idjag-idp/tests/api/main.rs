//! Integration tests of idjag-idp over real HTTP on 127.0.0.1:0 through the axum router.

mod dev_oidc;
mod dev_support;
mod endpoints;
mod exchange;
mod secrets;
mod support;
mod x_cases;
