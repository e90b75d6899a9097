//! `[server]`: the public listener (address, TLS, connection limits: `idjag-ops`'s
//! [`ListenerConfig`]), the public URL and the proxy's limits.

use idjag_ops::config::ConfigDuration;
use idjag_ops::listener::ListenerConfig;
use serde::{Deserialize, Deserializer};

/// Every MCP protocol version the gateway passes through by default.
pub const KNOWN_PROTOCOL_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// `[server]`: the listener's keys ([`ListenerConfig`]: `listen`, `tls`,
/// `plain_http_reason`, `max_connections`, `max_connections_per_ip`, `max_header_bytes`,
/// `header_read_timeout`, `idle_timeout`, `http2_keep_alive_interval`, `drain_timeout`) and
/// the gateway's own ([`ProxyConfig`]), in one table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The public listener.
    pub listener: ListenerConfig,
    /// The gateway's own keys.
    pub proxy: ProxyConfig,
}

impl<'de> Deserialize<'de> for ServerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (listener, proxy) = super::split::split(deserializer, ListenerConfig::KEYS)?;
        Ok(Self { listener, proxy })
    }
}

/// The gateway's own keys of `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The URL clients use to reach the gateway (the base of every route's resource
    /// identifier and of its RFC 9728 metadata). `https`, or `http` on loopback.
    pub public_url: String,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers are believed for the client
    /// address of audit lines (CIDRs or addresses). Default: none.
    #[serde(default)]
    pub trusted_proxies: idjag_ops::audit::TrustedProxies,
    /// `Origin` values allowed (exact, e.g. `"https://app.example"`); requests without
    /// `Origin` pass. Default: none, so any request carrying `Origin` gets 403.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Most requests in flight, SSE streams included; more get 503. Default 1 024.
    #[serde(default = "max_in_flight")]
    pub max_in_flight: usize,
    /// Largest request body. Default 1 MiB.
    #[serde(default = "max_body_bytes")]
    pub max_body_bytes: usize,
    /// Time to receive a request body; slower requests get 408. Default 10 s.
    #[serde(default = "body_timeout")]
    pub body_timeout: ConfigDuration,
    /// `MCP-Protocol-Version` values passed through; others get 400. Default: every
    /// version in [`KNOWN_PROTOCOL_VERSIONS`].
    #[serde(default = "protocol_versions")]
    pub protocol_versions: Vec<String>,
    /// Largest `tools/list` JSON response the gateway filters (it must hold it whole).
    /// Default 4 MiB.
    #[serde(default = "four_mib")]
    pub max_filtered_response_bytes: usize,
    /// Largest single SSE event. Default 4 MiB.
    #[serde(default = "four_mib")]
    pub max_sse_event_bytes: usize,
    /// What happens to an SSE stream when the inbound token expires. Default `close`.
    #[serde(default)]
    pub sse_on_token_expiry: SseExpiry,
    /// Extra request headers forwarded upstream, beyond the MCP ones. Hop-by-hop,
    /// credential and identity headers cannot be listed.
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

/// What happens to an SSE stream when the inbound token expires (threat G21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SseExpiry {
    /// Send a final `event: close` (`{"reason":"token_expired"}`) and end the stream.
    #[default]
    Close,
    /// Let the stream run until the upstream ends it.
    Allow,
}

fn max_in_flight() -> usize {
    1024
}

fn max_body_bytes() -> usize {
    1024 * 1024
}

fn body_timeout() -> ConfigDuration {
    ConfigDuration::secs(10)
}

fn protocol_versions() -> Vec<String> {
    KNOWN_PROTOCOL_VERSIONS
        .iter()
        .map(|v| (*v).to_owned())
        .collect()
}

fn four_mib() -> usize {
    4 * 1024 * 1024
}
