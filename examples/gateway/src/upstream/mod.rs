//! The upstream side: how the gateway authenticates to each MCP server behind it, the
//! HTTP clients it calls them with, and the child processes of stdio upstreams.
//!
//! | module | job |
//! |---|---|
//! | [`credential`] | the seam: [`UpstreamCredential`], [`Credential`], [`CredentialError`] |
//! | [`id_jag`] | the ID-JAG mode: token exchange at the IdP, redemption at the upstream's authorization server |
//! | [`bridge`] | bridging modes for servers without ID-JAG: client credentials, static key, header templates, passthrough |
//! | [`pool`] | one HTTP client per distinct transport setting |
//! | [`route`] | [`Upstream`]: one route as the proxy sees it, its [`Endpoint`] |
//! | [`stdio`] | stdio upstreams: child processes spoken to over MCP's stdio transport |

pub mod bridge;
pub mod credential;
pub mod id_jag;
pub mod pool;
pub mod route;
pub mod stdio;

pub use credential::{Credential, CredentialError, IdentityMatch, UpstreamCredential};
pub use id_jag::{IdJagCredential, IdJagOutbound, IdJagTarget, IdpTokenVault};
pub use pool::{HttpClients, SharedClient, Transport};
pub use route::{Endpoint, Upstream};
pub use stdio::StdioUpstream;
