//! What the demo shows of the flow: each token-endpoint answer of the IdP and the resource
//! AS, and each call the MCP server receives, observed by small axum middlewares. Tokens are
//! decoded (without verification, for display only) to show their claims; a token itself is
//! never printed, only the SHA-256 of what the MCP server received, so the demo can prove
//! the server never saw the user's IdP token.

use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::AUTHORIZATION;
use idjag_core::jose::UnverifiedJws;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Where an event was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Place {
    /// The IdP's token endpoint (token exchange, RFC 8693).
    Idp,
    /// The resource AS's token endpoint (JWT-bearer grant, RFC 7523).
    ResourceAs,
    /// The MCP server.
    McpServer,
}

/// One observed exchange.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlowEvent {
    /// Where.
    pub place: Place,
    /// The HTTP status answered.
    pub status: u16,
    /// A one-line description (claims, error code).
    pub summary: String,
    /// The SHA-256 of the `Authorization` value the MCP server received.
    pub authorization_sha256: Option<[u8; 32]>,
}

#[derive(Debug, Default)]
struct Seen {
    events: Vec<FlowEvent>,
    authorizations: Vec<[u8; 32]>,
}

/// The observed events, in order.
#[derive(Debug, Clone, Default)]
pub struct FlowLog(Arc<Mutex<Seen>>);

impl FlowLog {
    fn push(&self, event: FlowEvent) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(digest) = event.authorization_sha256 {
            seen.authorizations.push(digest);
        }
        seen.events.push(event);
    }

    /// Takes the events seen since the last call.
    pub fn drain(&self) -> Vec<FlowEvent> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()).events)
    }

    /// Every `Authorization` digest the MCP server received, drained or not.
    pub fn upstream_authorizations(&self) -> Vec<[u8; 32]> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .authorizations
            .clone()
    }
}

/// The claims of a JWT, read without verification, for display only.
pub fn claims_for_display(token: &str) -> Option<Map<String, Value>> {
    UnverifiedJws::parse(token, 64 * 1024)
        .ok()?
        .unverified_claims()
        .ok()
}

fn text(claims: &Map<String, Value>, name: &str) -> String {
    match claims.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().unwrap_or("?").to_owned())
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
        None => "-".to_owned(),
    }
}

fn lifetime(claims: &Map<String, Value>) -> i64 {
    let get = |n| claims.get(n).and_then(Value::as_i64).unwrap_or(0);
    get("exp") - get("iat")
}

fn token_summary(place: Place, answer: &Map<String, Value>) -> String {
    let token = answer
        .get("access_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(c) = claims_for_display(token) else {
        return "no readable token".to_owned();
    };
    match place {
        Place::Idp => format!(
            "ID-JAG (typ oauth-id-jag+jwt) for sub={} aud={} client_id={} resource={} scope=\"{}\", valid {} s",
            text(&c, "sub"),
            text(&c, "aud"),
            text(&c, "client_id"),
            text(&c, "resource"),
            text(&c, "scope"),
            lifetime(&c)
        ),
        _ => format!(
            "access token (typ at+jwt) for sub={} aud={} client_id={} scope=\"{}\", valid {} s",
            text(&c, "sub"),
            text(&c, "aud"),
            text(&c, "client_id"),
            text(&c, "scope"),
            lifetime(&c)
        ),
    }
}

/// Observes a token endpoint (`state` = its place and the log).
pub(super) async fn observe_token_endpoint(
    State((place, log)): State<(Place, FlowLog)>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != "/token" {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let answer: Map<String, Value> = serde_json::from_slice(&bytes).unwrap_or_default();
    if answer.contains_key("id_token") {
        // The IdP's code and refresh grants (the gateway signing a user in, or renewing the
        // ID token): the sign-in itself, not a step of the token path shown here.
        return Response::from_parts(parts, Body::from(bytes));
    }
    let summary = if parts.status.is_success() {
        token_summary(place, &answer)
    } else {
        format!("refused: {}", text(&answer, "error"))
    };
    log.push(FlowEvent {
        place,
        status: parts.status.as_u16(),
        summary,
        authorization_sha256: None,
    });
    Response::from_parts(parts, Body::from(bytes))
}

/// Observes the MCP server: the caller its token names and the digest of that token.
pub(super) async fn observe_mcp_server(
    State(log): State<FlowLog>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request.headers().get(AUTHORIZATION).cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let (digest, who) = match &authorization {
        Some(value) => {
            let digest: [u8; 32] = Sha256::digest(value.as_bytes()).into();
            let token = value
                .to_str()
                .unwrap_or_default()
                .split_once(' ')
                .map_or("", |(_, t)| t);
            let who = claims_for_display(token).map_or_else(
                || "an unreadable token".to_owned(),
                |c| {
                    format!(
                        "a token of {} for sub={} aud={}",
                        text(&c, "iss"),
                        text(&c, "sub"),
                        text(&c, "aud")
                    )
                },
            );
            (Some(digest), who)
        }
        None => (None, "no token".to_owned()),
    };
    log.push(FlowEvent {
        place: Place::McpServer,
        status: response.status().as_u16(),
        summary: format!("{method} with {who}"),
        authorization_sha256: digest,
    });
    response
}
