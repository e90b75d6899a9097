//! `[idp]`: the enterprise IdP whose tokens come in and where ID-JAGs are asked for.

use serde::Deserialize;

use super::client::ClientRegistration;
use idjag_ops::config::ConfigDuration;

/// `[idp]`: the enterprise IdP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IdpConfig {
    /// The IdP's issuer (`iss` of its tokens).
    pub issuer: String,
    /// Its JWKS URL; default: the `jwks_uri` of its RFC 8414 / OIDC metadata.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Its token endpoint (for the ID-JAG token exchange); default: from its metadata.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Algorithms accepted on inbound tokens. Default ES256, RS256, PS256, EdDSA.
    #[serde(default = "algorithms")]
    pub algorithms: Vec<String>,
    /// Clock-skew leeway on inbound tokens. Default 30 s, at most 5 min.
    #[serde(default = "leeway")]
    pub leeway: ConfigDuration,
    /// How long fetched IdP keys are used before a refresh. Default 10 min.
    #[serde(default = "jwks_max_age")]
    pub jwks_max_age: ConfigDuration,
    /// How long past `jwks_max_age` the last good keys stay usable while the IdP is
    /// unreachable. Default 1 h.
    #[serde(default = "jwks_stale_if_error")]
    pub jwks_stale_if_error: ConfigDuration,
    /// Least time between two key fetches (an unknown `kid` triggers one). Default 30 s.
    #[serde(default = "jwks_cooldown")]
    pub jwks_cooldown: ConfigDuration,
    /// The gateway's own registration at the IdP (it is the requesting app of the
    /// ID-JAG flow; inbound ID tokens must be issued to this client id).
    pub client: ClientRegistration,
}

fn algorithms() -> Vec<String> {
    ["ES256", "RS256", "PS256", "EdDSA"]
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
}

fn leeway() -> ConfigDuration {
    ConfigDuration::secs(30)
}

fn jwks_max_age() -> ConfigDuration {
    ConfigDuration::secs(600)
}

fn jwks_stale_if_error() -> ConfigDuration {
    ConfigDuration::secs(3600)
}

fn jwks_cooldown() -> ConfigDuration {
    ConfigDuration::secs(30)
}
