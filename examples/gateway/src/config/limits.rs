//! `[limits]`: fairness between callers.

use serde::Deserialize;

use super::ConfigDuration;

/// `[limits]`: per-principal limits, so that one user, one agent or the traffic to one
/// upstream cannot take the gateway's whole capacity. Every limit is optional; absent, only
/// the gateway-wide `server.max_in_flight` applies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// `[limits.user]`: per user (issuer and `sub`).
    #[serde(default)]
    pub user: PrincipalLimitsConfig,
    /// `[limits.agent]`: per agent (the token's `azp` or `client_id`).
    #[serde(default)]
    pub agent: PrincipalLimitsConfig,
    /// `[limits.upstream]`: per route, whoever calls it.
    #[serde(default)]
    pub upstream: PrincipalLimitsConfig,
}

/// The limits of one kind of principal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PrincipalLimitsConfig {
    /// Most requests in flight at once, streamed answers counted until they end.
    #[serde(default)]
    pub in_flight: Option<u32>,
    /// Most open GET streams (standalone SSE streams).
    #[serde(default)]
    pub streams: Option<u32>,
    /// A request rate.
    #[serde(default)]
    pub rate: Option<RateConfig>,
    /// Most calls waiting for an administrator's approval at once, in the shared store
    /// (every instance's). A call over it is refused, nothing held.
    #[serde(default)]
    pub pending_approvals: Option<u32>,
    /// Most MCP sessions at once, in the shared store (every instance's). An `initialize`
    /// over it is refused.
    #[serde(default)]
    pub sessions: Option<u32>,
}

/// A request rate: `requests` per `per`, with bursts of up to `burst` (default `requests`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateConfig {
    /// Requests per period.
    pub requests: u32,
    /// The period, e.g. `"1s"` or `"1m"`.
    pub per: ConfigDuration,
    /// Most requests at once after a quiet time. Default: `requests`.
    #[serde(default)]
    pub burst: Option<u32>,
}
