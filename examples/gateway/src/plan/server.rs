//! `[server]`, planned: the listener, the public URL, connection limits and the proxy's
//! settings.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;
use idjag_ops::audit::TrustedProxies;
use idjag_ops::listener::{ListenerConfig, TlsSetting};
use serde::Serialize;
use url::Url;

use crate::config::{ConfigError, ServerConfig, SseExpiry, invalid};
use crate::plan::{Planner, check_url};
use crate::protocol::headers::{ForwardPolicy, is_forbidden_forward};

/// The public listener and what applies to every request.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServerPlan {
    /// The public listener: address, TLS, connection limits (checked by `idjag-ops`).
    pub listener: ListenerConfig,
    /// The URL clients use, without a trailing `/`: each route is `{public_url}/mcp/{name}`.
    pub public_url: String,
    /// Proxies whose forwarding headers are believed for the client address.
    pub trusted_proxies: TrustedProxies,
    /// Most requests in flight, SSE streams included.
    pub max_in_flight: usize,
    /// The proxy's per-request settings.
    pub proxy: ProxySettings,
    /// The headers forwarded upstream.
    pub forward_headers: ForwardPolicy,
}

impl ServerPlan {
    /// The address the public listener binds.
    pub fn listen(&self) -> SocketAddr {
        self.listener.listen
    }
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
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub body_timeout: Duration,
    /// Largest `tools/list` JSON answer filtered.
    pub max_filtered_response_bytes: usize,
    /// Largest SSE event.
    pub max_sse_event_bytes: usize,
    /// SSE streams at token expiry.
    pub sse_on_token_expiry: SseExpiry,
}

/// Whether `address` only accepts connections from this machine.
fn is_loopback(address: SocketAddr) -> bool {
    address.ip().is_loopback()
}

impl Planner<'_> {
    /// A listener's keys (`[server]`, `[admin]`): `idjag-ops`'s checks, and a warning for
    /// plain HTTP beyond loopback.
    pub(crate) fn listener(
        &mut self,
        at: &str,
        listener: &ListenerConfig,
    ) -> Result<ListenerConfig, ConfigError> {
        listener.validate(at)?;
        if listener.tls == TlsSetting::Off && !is_loopback(listener.listen) {
            self.warn(
                &format!("{at}.tls"),
                "plain HTTP on a non-loopback address: only behind a TLS-terminating proxy \
                 that is the sole way in (plain_http_reason says which)",
            );
        }
        Ok(listener.clone())
    }

    /// `[server]`.
    pub(crate) fn server(&mut self, server: &ServerConfig) -> Result<ServerPlan, ConfigError> {
        let listener = self.listener("server", &server.listener)?;
        let s = &server.proxy;
        let public_url = check_url("server.public_url", &s.public_url)?;
        if let TlsSetting::On(_) = listener.tls
            && public_url.scheme() != "https"
        {
            self.warn(
                "server.public_url",
                "the listener speaks TLS but the public URL is http",
            );
        }
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
            ("server.max_in_flight", s.max_in_flight),
            ("server.max_body_bytes", s.max_body_bytes),
            (
                "server.max_filtered_response_bytes",
                s.max_filtered_response_bytes,
            ),
            ("server.max_sse_event_bytes", s.max_sse_event_bytes),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be positive"));
            }
        }
        if s.body_timeout.0.is_zero() {
            return Err(invalid("server.body_timeout", "must be positive"));
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
            listener,
            public_url: s.public_url.trim_end_matches('/').to_owned(),
            trusted_proxies: s.trusted_proxies.clone(),
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
        })
    }
}
