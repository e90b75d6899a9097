//! Integration tests of idjag-core: one binary, one module per area (STYLE: `tests/api` with
//! submodules). Shared fixtures are in `support` and in idjag-test-support.

#![allow(unreachable_pub, dead_code)] // fixtures are shared between the submodules

mod support;

mod client_auth;
mod jsonrpc;
mod keys;
mod properties;
mod redaction;
#[cfg(feature = "http")]
mod remote_jwks;
mod validator;
mod wycheproof;
