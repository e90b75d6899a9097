//! `[inbound]`: which IdP tokens are accepted, and their limits.

use serde::Deserialize;

/// The kinds of inbound IdP token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InboundKind {
    /// An OIDC ID token issued to the gateway's client id at the IdP (`typ` absent or `JWT`).
    IdToken,
    /// An RFC 9068 access token of the IdP for the route's resource (`typ` `at+jwt`).
    AccessToken,
    /// An access token of the gateway's own authorization server (`[authorization_server]`;
    /// `typ` `at+jwt`, `iss` the gateway), for exactly the route's resource.
    GatewayToken,
}

/// `[inbound]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InboundConfig {
    /// Accepted token kinds. Default all three (`gateway_token` only counts with
    /// `[authorization_server]`).
    #[serde(default = "accept")]
    pub accept: Vec<InboundKind>,
    /// The claim holding the user's groups. Default `groups`.
    #[serde(default = "groups_claim")]
    pub groups_claim: String,
    /// Most groups a token may carry. A token with more is refused (reason
    /// `groups_over_cap`), never cut short: a dropped group could be the one a deny rule
    /// names. Default 256.
    #[serde(default = "max_groups")]
    pub max_groups: usize,
    /// Longest token accepted; longer ones get 401 without being decoded. Default 8 KiB.
    #[serde(default = "max_token_bytes")]
    pub max_token_bytes: usize,
    /// Most validated tokens cached. Default 10 000.
    #[serde(default = "cache_capacity")]
    pub cache_capacity: u64,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            accept: accept(),
            groups_claim: groups_claim(),
            max_groups: max_groups(),
            max_token_bytes: max_token_bytes(),
            cache_capacity: cache_capacity(),
        }
    }
}

fn accept() -> Vec<InboundKind> {
    vec![
        InboundKind::IdToken,
        InboundKind::AccessToken,
        InboundKind::GatewayToken,
    ]
}

fn groups_claim() -> String {
    "groups".to_owned()
}

fn max_groups() -> usize {
    256
}

fn max_token_bytes() -> usize {
    8 * 1024
}

fn cache_capacity() -> u64 {
    10_000
}
