//! Inbound authentication: the IdP token on each MCP request, and who it proves is calling
//! (requirements MCP-03, MCP-04; threats G01 to G05, G09, G22 to G24).
//!
//! The token is read from the `Authorization` header only ([`bearer_token`](idjag_core::server::bearer_token): exactly one
//! header, scheme `Bearer` in any case, a token68 value; never the query string or the
//! body). Tokens longer than the configured maximum are refused before any decoding. The
//! header `typ` picks the validator: `at+jwt` is an IdP access token (RFC 9068) whose `aud`
//! must be the route's resource identifier or the gateway's public URL; anything else is an
//! OIDC ID token whose `aud` must be the gateway's client id at the IdP (the IdP checks the
//! same when the gateway presents it as the token-exchange subject, requirement TX-08). Both are
//! checked by the core validators: the one trusted issuer, its keys from the shared
//! [`RemoteJwks`](idjag_core::remote::RemoteJwks) (cached, refreshed once per unknown `kid` with a cool-down, stale within
//! its window), the configured algorithms and leeway.
//!
//! Verified identities are cached under the SHA-256 of the whole token until its `exp`; a
//! cached entry is used only while the injected clock is before `exp`, after which the token
//! goes through full validation again (so the leeway is applied by the validator alone).
//!
//! | module | job |
//! |---|---|
//! | [`auth`] | [`InboundAuth`]: bearer rules, validation, the identity cache |
//! | [`token`] | [`Authenticated`] (who, and the token that proved it) and [`InboundError`] |
//! | [`identity`] | [`Identity`]: user, teams, agent, from verified claims only |
//! | [`teams`] | [`TeamMap`]: IdP groups to gateway teams; overage markers and over-cap group claims refused ([`GroupsError`]) |

pub mod auth;
pub mod identity;
pub mod teams;
pub mod token;

pub use auth::{InboundAuth, InboundSettings};
pub use identity::Identity;
pub use teams::{GroupsError, TeamMap};
pub use token::{Authenticated, InboundError, InboundToken};
