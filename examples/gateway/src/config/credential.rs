//! `[upstream.credential]`: how the gateway authenticates to one upstream, per mode.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::client::ClientRegistration;

/// How the gateway gets a credential for an upstream: the ID-JAG flow, or one of the modes
/// that bridge to servers without ID-JAG. Every mode runs after the same inbound
/// authentication and tool-level authorization.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum CredentialConfig {
    /// The ID-JAG flow: the user's inbound ID token is exchanged at the IdP for an ID-JAG
    /// for `authorization_server`, redeemed there for an access token for `resource`.
    IdJag {
        /// The upstream's resource authorization server (its issuer).
        authorization_server: String,
        /// Its token endpoint; default: from its RFC 8414 metadata (exact issuer match).
        #[serde(default)]
        token_endpoint: Option<String>,
        /// The resource to ask for; default: the upstream URL.
        #[serde(default)]
        resource: Option<String>,
        /// Scopes to ask for. Default none (the IdP and the AS decide).
        #[serde(default)]
        scopes: Vec<String>,
        /// The gateway's registration at that authorization server.
        client: ClientRegistration,
        /// Whether that server redeems one ID-JAG more than once. Default false.
        #[serde(default)]
        id_jag_reuse: bool,
    },
    /// OAuth client credentials (RFC 6749 §4.4): the gateway's own token at the upstream's
    /// authorization server, cached until it nears expiry. The upstream sees the gateway,
    /// not the user (the audit log keeps who called).
    ClientCredentials {
        /// The authorization server's issuer (the `aud` of `private_key_jwt` assertions).
        authorization_server: String,
        /// Its token endpoint.
        token_endpoint: String,
        /// Scopes to ask for. Default none.
        #[serde(default)]
        scopes: Vec<String>,
        /// An RFC 8707 `resource` to ask for. Default none.
        #[serde(default)]
        resource: Option<String>,
        /// The gateway's registration there.
        client: ClientRegistration,
    },
    /// A static API key or bearer token, read from the environment or a file at start-up
    /// (never from this file), sent as `header: {scheme} {secret}`.
    Static {
        /// The header. Default `authorization`.
        #[serde(default = "static_header")]
        header: String,
        /// The scheme before the secret. Default `Bearer` for `authorization`, none for
        /// any other header.
        #[serde(default)]
        scheme: Option<String>,
        /// An environment variable holding the secret.
        #[serde(default)]
        secret_env: Option<String>,
        /// A file holding the secret (trailing newline ignored).
        #[serde(default)]
        secret_file: Option<PathBuf>,
    },
    /// Headers built from a template over the caller's identity and, optionally, a secret:
    /// `{user}`, `{issuer}`, `{agent}`, `{teams}` (comma-separated), `{secret}`; `{{` and
    /// `}}` are literal braces. Any other placeholder is an error; nothing is evaluated.
    HeaderTemplate {
        /// Header name → template.
        headers: BTreeMap<String, String>,
        /// An environment variable holding `{secret}` (one source is required when a
        /// template uses it).
        #[serde(default)]
        secret_env: Option<String>,
        /// A file holding `{secret}`.
        #[serde(default)]
        secret_file: Option<PathBuf>,
    },
    /// The caller's inbound IdP token, sent to the upstream as is. Only for upstreams that
    /// validate the IdP's tokens themselves: the token leaves the gateway (threat
    /// G03 does not hold), so the gateway warns at start-up.
    Passthrough {},
    /// No credential: only for `[upstream.stdio]` servers that need none (the process runs
    /// with the environment its configuration gives it).
    None {},
}

fn static_header() -> String {
    "authorization".to_owned()
}
