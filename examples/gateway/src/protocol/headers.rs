//! Which headers cross the gateway, in each direction (threats G06, G07; requirement MCP-04).
//!
//! Upstream, the gateway forwards an allow-list: the MCP headers (`Accept`, `Content-Type`,
//! `Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID`, and the `Mcp-Method`/`Mcp-Name`
//! standard headers of 2026-07-28), `User-Agent`, W3C trace context and whatever the
//! operator adds (`server.forward_headers`), minus any header the client named in
//! `Connection` (RFC 9110 §7.6.1). Everything else (hop-by-hop headers, `Authorization`,
//! cookies, `Host`, `Forwarded`, identity headers such as `X-Forwarded-User`) stays behind.
//! The gateway then sets its own `Authorization` (the upstream credential) and
//! `X-Request-Id`, after the filtering, so nothing a client sends can remove or replace them.
//!
//! Downstream, the upstream's hop-by-hop headers, `Content-Length` when the body is
//! rewritten, `Set-Cookie` and `WWW-Authenticate` (it would point the client at the
//! upstream's authorization server, which is the gateway's business) are dropped.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The request id header the gateway sets upstream and downstream.
pub const REQUEST_ID: &str = "x-request-id";
/// `Mcp-Session-Id`.
pub const MCP_SESSION_ID: &str = "mcp-session-id";
/// `MCP-Protocol-Version`.
pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// `Mcp-Method` (MCP 2026-07-28 standard header, SEP-2243).
pub const MCP_METHOD: &str = "mcp-method";
/// `Mcp-Name` (MCP 2026-07-28 standard header, SEP-2243).
pub const MCP_NAME: &str = "mcp-name";

const FORWARDED_BY_DEFAULT: &[&str] = &[
    "accept",
    "content-type",
    MCP_SESSION_ID,
    MCP_PROTOCOL_VERSION,
    LAST_EVENT_ID,
    MCP_METHOD,
    MCP_NAME,
    "user-agent",
    "traceparent",
    "tracestate",
];

/// `Last-Event-ID`.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// The MCP headers that carry one value, which the gateway checks and forwards: sent twice,
/// the gateway would check one value and the upstream might read the other (or both joined
/// with a comma, as Node's HTTP parser does), so a request repeating one is refused.
pub const SINGLE_VALUED: [&str; 5] = [
    MCP_PROTOCOL_VERSION,
    MCP_SESSION_ID,
    LAST_EVENT_ID,
    MCP_METHOD,
    MCP_NAME,
];

/// The first of the [`SINGLE_VALUED`] headers that `headers` repeats, if any.
pub fn repeated_single_valued(headers: &HeaderMap) -> Option<&'static str> {
    SINGLE_VALUED.into_iter().find(|name| {
        let mut values = headers.get_all(*name).iter();
        values.next().is_some() && values.next().is_some()
    })
}

/// Hop-by-hop headers (RFC 9110 §7.6.1, RFC 9112) and their historical relatives.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Headers a client must never be able to pass upstream: credentials, routing and the
/// identity headers gateways and auth proxies conventionally own.
const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "content-length",
    "origin",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-authenticated-sub",
    "x-authenticated-user",
    "x-authenticated-userid",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-remote-user",
    "remote-user",
    "x-user",
    "x-user-id",
    "x-email",
    "x-groups",
    REQUEST_ID,
];

/// Whether `name` (lower case) is a hop-by-hop header.
pub(crate) fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

fn is_owned_prefix(name: &str) -> bool {
    name.starts_with("x-idjag-")
        || name.starts_with("x-auth-request-")
        || name.starts_with("x-forwarded-")
}

/// Whether `name` may never be forwarded, even when an operator lists it.
pub fn is_forbidden_forward(name: &HeaderName) -> bool {
    let name = name.as_str();
    HOP_BY_HOP.contains(&name) || NEVER_FORWARDED.contains(&name) || is_owned_prefix(name)
}

/// The headers to forward upstream.
#[derive(Debug, Clone)]
pub struct ForwardPolicy {
    allowed: Vec<HeaderName>,
}

impl ForwardPolicy {
    /// The default allow-list plus `extra`; a name [`is_forbidden_forward`] refuses is left
    /// out (the plan refuses it with the key first).
    pub fn new(extra: impl IntoIterator<Item = HeaderName>) -> Self {
        let mut allowed: Vec<HeaderName> = FORWARDED_BY_DEFAULT
            .iter()
            .map(|h| HeaderName::from_static(h))
            .collect();
        for name in extra {
            if !is_forbidden_forward(&name) && !allowed.contains(&name) {
                allowed.push(name);
            }
        }
        Self { allowed }
    }

    /// The forwarded header names, in order.
    pub fn allowed(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(HeaderName::as_str)
    }

    /// The inbound headers that go upstream: allowed, and not named in `Connection`.
    pub fn upstream_headers(&self, inbound: &HeaderMap) -> HeaderMap {
        let named_in_connection = connection_tokens(inbound);
        let mut out = HeaderMap::with_capacity(self.allowed.len() + 2);
        for name in &self.allowed {
            if named_in_connection
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_str()))
            {
                continue;
            }
            for value in inbound.get_all(name) {
                out.append(name.clone(), value.clone());
            }
        }
        out
    }
}

impl serde::Serialize for ForwardPolicy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.allowed())
    }
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The upstream response headers the client gets. `body_rewritten` drops `Content-Length`.
pub fn downstream_headers(upstream: &HeaderMap, body_rewritten: bool) -> HeaderMap {
    let named_in_connection = connection_tokens(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let n = name.as_str();
        let dropped = HOP_BY_HOP.contains(&n)
            || named_in_connection.iter().any(|c| c == n)
            || n == "set-cookie"
            || n == "www-authenticate"
            || n == REQUEST_ID
            || (body_rewritten && n == "content-length");
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// A header value the gateway sets, from a string it made itself.
pub fn own_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn g06_identity_headers_never_go_upstream() {
        let inbound = headers(&[
            ("x-forwarded-user", "admin"),
            ("x-authenticated-sub", "admin"),
            ("x-idjag-user", "admin"),
            ("x-auth-request-email", "admin@example.com"),
            ("authorization", "Bearer inbound"),
            ("cookie", "session=1"),
            ("x-request-id", "forged"),
            ("accept", "application/json, text/event-stream"),
        ]);
        let out = ForwardPolicy::new([]).upstream_headers(&inbound);
        assert_eq!(out.len(), 1);
        assert_eq!(out["accept"], "application/json, text/event-stream");
    }

    #[test]
    fn g07_hop_by_hop_headers_and_those_named_in_connection_are_not_forwarded() {
        let inbound = headers(&[
            (
                "connection",
                "keep-alive, Mcp-Session-Id, X-Authenticated-Sub",
            ),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("transfer-encoding", "chunked"),
            ("mcp-session-id", "abc"),
            ("mcp-protocol-version", "2025-06-18"),
        ]);
        let out = ForwardPolicy::new([]).upstream_headers(&inbound);
        assert_eq!(out.len(), 1);
        assert_eq!(out[MCP_PROTOCOL_VERSION], "2025-06-18");
    }

    #[test]
    fn a_repeated_single_valued_header_is_named() {
        assert_eq!(
            repeated_single_valued(&headers(&[
                ("mcp-session-id", "a"),
                ("last-event-id", "1"),
                ("accept", "a"),
                ("accept", "b"),
            ])),
            None
        );
        for name in SINGLE_VALUED {
            let mut map = HeaderMap::new();
            map.append(name, HeaderValue::from_static("a"));
            map.append(name, HeaderValue::from_static("a"));
            assert_eq!(repeated_single_valued(&map), Some(name));
        }
    }

    #[test]
    fn operator_headers_are_added_but_never_forbidden_ones() {
        let policy =
            ForwardPolicy::new([HeaderName::from_static("x-tenant"), header::AUTHORIZATION]);
        let out =
            policy.upstream_headers(&headers(&[("x-tenant", "acme"), ("authorization", "x")]));
        assert_eq!(out.len(), 1);
        assert_eq!(out["x-tenant"], "acme");
    }

    #[test]
    fn downstream_drops_hop_by_hop_cookies_and_upstream_challenges() {
        let upstream = headers(&[
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("set-cookie", "a=b"),
            (
                "www-authenticate",
                "Bearer resource_metadata=\"https://upstream\"",
            ),
            ("content-length", "10"),
            ("content-type", "application/json"),
            ("mcp-session-id", "s1"),
        ]);
        let kept = downstream_headers(&upstream, false);
        assert_eq!(kept.len(), 3);
        assert!(kept.contains_key("content-length"));
        let rewritten = downstream_headers(&upstream, true);
        assert_eq!(rewritten.len(), 2);
        assert_eq!(rewritten["mcp-session-id"], "s1");
    }
}
