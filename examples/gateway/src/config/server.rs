//! `[server]`: listener, public URL, limits and timeouts.

use serde::Deserialize;

use super::duration::{ConfigDuration, secs};

/// Every MCP protocol version the gateway passes through by default.
pub const KNOWN_PROTOCOL_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on, e.g. `"127.0.0.1:8080"`.
    pub listen: String,
    /// The URL clients use to reach the gateway (the base of every route's resource
    /// identifier and of its RFC 9728 metadata). `https`, or `http` on loopback.
    pub public_url: String,
    /// `Origin` values allowed (exact, e.g. `"https://app.example"`); requests without
    /// `Origin` pass. Default: none, so any request carrying `Origin` gets 403.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Most open client connections; more are closed at accept. Default 10 000.
    #[serde(default = "max_connections")]
    pub max_connections: usize,
    /// Most requests in flight, SSE streams included; more get 503. Default 1 024.
    #[serde(default = "max_in_flight")]
    pub max_in_flight: usize,
    /// Largest request body. Default 1 MiB.
    #[serde(default = "max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers); more gets 431. Default 16 KiB,
    /// at least 8 KiB.
    #[serde(default = "max_header_bytes")]
    pub max_header_bytes: usize,
    /// Time to receive a request head; slower connections are closed. Default 10 s.
    #[serde(default = "header_read_timeout")]
    pub header_read_timeout: ConfigDuration,
    /// Time to receive a request body; slower requests get 408. Default 10 s.
    #[serde(default = "body_timeout")]
    pub body_timeout: ConfigDuration,
    /// How long shutdown waits for in-flight requests. Default 30 s.
    #[serde(default = "shutdown_grace")]
    pub shutdown_grace: ConfigDuration,
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
    /// Most stdio upstream processes one user may have at once, across every
    /// `[upstream.stdio]` with `isolation = "per_user"`. Default 8.
    #[serde(default = "max_stdio_processes_per_user")]
    pub max_stdio_processes_per_user: usize,
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

fn max_connections() -> usize {
    10_000
}

fn max_in_flight() -> usize {
    1024
}

fn max_body_bytes() -> usize {
    1024 * 1024
}

fn max_header_bytes() -> usize {
    16 * 1024
}

fn header_read_timeout() -> ConfigDuration {
    secs(10)
}

fn body_timeout() -> ConfigDuration {
    secs(10)
}

fn shutdown_grace() -> ConfigDuration {
    secs(30)
}

fn protocol_versions() -> Vec<String> {
    KNOWN_PROTOCOL_VERSIONS
        .iter()
        .map(|v| (*v).to_owned())
        .collect()
}

fn max_stdio_processes_per_user() -> usize {
    8
}

fn four_mib() -> usize {
    4 * 1024 * 1024
}
