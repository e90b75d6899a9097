//! `[server]`, planned: the listener, the public URL, connection limits and the proxy's
//! settings.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;
use serde::Serialize;
use url::Url;

use crate::config::{ConfigError, ServerConfig, SseExpiry, invalid};
use crate::plan::{Planner, check_url};
use crate::protocol::headers::{ForwardPolicy, is_forbidden_forward};
use crate::server::ServerLimits;

/// Smallest `max_header_bytes`: hyper's HTTP/1 read buffer cannot be smaller.
pub const MIN_HEADER_BYTES: usize = 8192;

/// The listener and what applies to every request.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServerPlan {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The URL clients use, without a trailing `/`: each route is `{public_url}/mcp/{name}`.
    pub public_url: String,
    /// Connection-level limits.
    pub limits: ServerLimits,
    /// Most requests in flight, SSE streams included.
    pub max_in_flight: usize,
    /// The proxy's per-request settings.
    pub proxy: ProxySettings,
    /// The headers forwarded upstream.
    pub forward_headers: ForwardPolicy,
    /// Most stdio upstream processes per user, across upstreams.
    pub max_stdio_processes_per_user: usize,
}

/// The proxy's per-request limits and settings.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ProxySettings {
    /// Allowed `Origin` values.
    pub allowed_origins: Vec<String>,
    /// Supported `MCP-Protocol-Version` values.
    pub protocol_versions: Vec<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time to receive a body.
    #[serde(serialize_with = "crate::config::duration::serialize")]
    pub body_timeout: Duration,
    /// Largest `tools/list` JSON answer filtered.
    pub max_filtered_response_bytes: usize,
    /// Largest SSE event.
    pub max_sse_event_bytes: usize,
    /// SSE streams at token expiry.
    pub sse_on_token_expiry: SseExpiry,
}

impl Planner<'_> {
    /// `[server]`.
    pub(crate) fn server(&mut self, s: &ServerConfig) -> Result<ServerPlan, ConfigError> {
        let listen = s
            .listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("server.listen", "expected an address like 127.0.0.1:8080"))?;
        check_url("server.public_url", &s.public_url)?;
        for origin in &s.allowed_origins {
            let url = Url::parse(origin).map_err(|_| {
                invalid(
                    "server.allowed_origins",
                    format!("{origin:?} is not an origin"),
                )
            })?;
            if url.origin().ascii_serialization() != *origin {
                return Err(invalid(
                    "server.allowed_origins",
                    format!("{origin:?} is not an origin (scheme://host[:port], no path)"),
                ));
            }
        }
        if s.allowed_origins.is_empty() {
            self.warn(
                "server.allowed_origins",
                "empty: every request carrying an Origin header (browsers) gets 403",
            );
        }
        for (key, value) in [
            ("server.max_connections", s.max_connections),
            ("server.max_in_flight", s.max_in_flight),
            ("server.max_body_bytes", s.max_body_bytes),
            (
                "server.max_filtered_response_bytes",
                s.max_filtered_response_bytes,
            ),
            ("server.max_sse_event_bytes", s.max_sse_event_bytes),
            (
                "server.max_stdio_processes_per_user",
                s.max_stdio_processes_per_user,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be positive"));
            }
        }
        if s.max_header_bytes < MIN_HEADER_BYTES {
            return Err(invalid("server.max_header_bytes", "must be at least 8192"));
        }
        for (key, value) in [
            ("server.header_read_timeout", s.header_read_timeout),
            ("server.body_timeout", s.body_timeout),
        ] {
            if value.0.is_zero() {
                return Err(invalid(key, "must be positive"));
            }
        }
        if s.protocol_versions.is_empty() {
            return Err(invalid("server.protocol_versions", "must not be empty"));
        }
        let mut forward = Vec::with_capacity(s.forward_headers.len());
        for header in &s.forward_headers {
            let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                invalid(
                    "server.forward_headers",
                    format!("{header:?} is not a header name"),
                )
            })?;
            if is_forbidden_forward(&name) {
                return Err(invalid(
                    "server.forward_headers",
                    format!("{header} is a hop-by-hop, credential or identity header"),
                ));
            }
            forward.push(name);
        }
        Ok(ServerPlan {
            listen,
            public_url: s.public_url.trim_end_matches('/').to_owned(),
            limits: ServerLimits {
                max_connections: s.max_connections,
                max_header_bytes: s.max_header_bytes,
                header_read_timeout: s.header_read_timeout.0,
                shutdown_grace: s.shutdown_grace.0,
            },
            max_in_flight: s.max_in_flight,
            proxy: ProxySettings {
                allowed_origins: s.allowed_origins.clone(),
                protocol_versions: s.protocol_versions.clone(),
                max_body_bytes: s.max_body_bytes,
                body_timeout: s.body_timeout.0,
                max_filtered_response_bytes: s.max_filtered_response_bytes,
                max_sse_event_bytes: s.max_sse_event_bytes,
                sse_on_token_expiry: s.sse_on_token_expiry,
            },
            forward_headers: ForwardPolicy::new(forward),
            max_stdio_processes_per_user: s.max_stdio_processes_per_user,
        })
    }
}
