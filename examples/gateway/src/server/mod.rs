//! The HTTP server side, on `idjag-ops`'s listeners (threats G08 to G12, G25): TLS with
//! certificate reload, plain HTTP only with `tls = "off"` and a reason, connection and
//! per-client-address caps, the header-read timeout, idle (HTTP/2 too) connections closed,
//! graceful drain (see `idjag_ops::listener`). This module adds what every request of the
//! gateway gets on either listener, as axum middleware:
//!
//! | middleware | job |
//! |---|---|
//! | [`client_context`] | the client address (through `[server] trusted_proxies`) and the trace id, for the request's audit line |
//! | [`audit_other_requests`] | one audit line for each request no handler audited itself: discovery, the admin API's listings and refusals, unknown paths, refused bodies |
//! | [`buffer_body`] | a body read within a size limit and a deadline (413, 408, 400) before the handler sees it (the admin API; the MCP route reads its own) |
//!
//! hyper (through hyper-util's HTTP/1 + HTTP/2 builder in `idjag-ops`) parses requests. Its
//! HTTP/1 parser refuses differing `Content-Length`s and a CR/LF inside a header value with
//! 400 (G08). A request with both `Content-Length` and `Transfer-Encoding: chunked` is framed
//! by the chunked encoding, its `Content-Length` removed, and the connection closed after the
//! answer (RFC 9112 §6.3), so no byte after it can be read as another request; the gateway
//! never sees the dropped header and cannot answer 400 instead (the tests pin this). A head
//! larger than `max_header_bytes` gets 431 (G09); a connection that has not sent a complete
//! head within `header_read_timeout` is closed (G10).

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http::StatusCode;
use http_body_util::BodyExt;
use idjag_core::SharedClock;
use idjag_ops::audit::{AuditContext, TrustedProxies};

use crate::observe::audit::{
    AUDITED, AuditEntry, AuditSink, CLIENT_CONTEXT, ClientContext, Outcome,
};
use crate::protocol::request_id::request_id;

/// What the request middleware needs.
#[derive(Clone)]
pub struct AuditState {
    /// Where lines go.
    pub audit: Arc<dyn AuditSink>,
    /// The clock of their `time`.
    pub clock: SharedClock,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
}

impl std::fmt::Debug for AuditState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditState")
            .field("audit", &self.audit)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// The audit reason a response carries when a middleware (not a handler) refused the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReason(pub &'static str);

/// Sets the request's [`ClientContext`] for its audit line (inside the request's span, so the
/// trace id is the request's).
pub async fn client_context(
    State(state): State<AuditState>,
    request: Request,
    next: Next,
) -> Response {
    let context = AuditContext::of(&request, &state.trusted_proxies);
    let context = ClientContext {
        client_address: context.client_address,
        trace_id: context.trace_id,
    };
    CLIENT_CONTEXT
        .scope(context, AUDITED.scope(Cell::new(false), next.run(request)))
        .await
}

/// Health probes and answered scrapes decide nothing and carry no identity: not audited.
fn quiet(path: &str, status: StatusCode) -> bool {
    matches!(path, "/healthz" | "/readyz") || (path == "/metrics" && status.is_success())
}

/// One audit line for a request no handler audited (see the [module docs](self)).
pub async fn audit_other_requests(
    State(state): State<AuditState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let id = request_id(request.headers());
    let time = state.clock.now();
    let response = next.run(request).await;
    let audited = AUDITED.try_with(Cell::get).unwrap_or(false);
    let status = response.status();
    if audited || quiet(&path, status) {
        return response;
    }
    let mut entry = AuditEntry::new(state.audit.clone(), time, &id, method.as_str());
    entry.path(&path);
    if path.starts_with("/admin/") {
        entry.method("admin");
    }
    let reason = match response.extensions().get::<AuditReason>() {
        Some(reason) => reason.0,
        None => match status.as_u16() {
            200..=399 => "served",
            401 => "unauthenticated",
            403 => "forbidden",
            404 => "unknown_path",
            405 => "method_not_allowed",
            413 => "body_too_large",
            400..=499 => "bad_request",
            _ => "failed",
        },
    };
    let decision = match status.as_u16() {
        200..=399 => Outcome::Allow,
        400..=499 => Outcome::Deny,
        _ => Outcome::Error,
    };
    entry.finish(decision, reason, status.as_u16());
    response
}

fn refused(status: StatusCode, reason: &'static str) -> Response {
    let mut response = status.into_response();
    response.extensions_mut().insert(AuditReason(reason));
    response
}

/// Reads the body within `limit` bytes and `timeout` before the handler runs: 413
/// (`body_too_large`), 408 (`body_timeout`) or 400 (`body_aborted`) otherwise, so no request
/// holds a connection by sending its body slowly.
pub async fn buffer_body(
    State((limit, timeout)): State<(usize, Duration)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = async {
        let mut body = body;
        let mut buffer = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| "body_aborted")?;
            if let Ok(data) = frame.into_data() {
                if buffer.len() + data.len() > limit {
                    return Err("body_too_large");
                }
                buffer.extend_from_slice(&data);
            }
        }
        Ok(buffer.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => refused(StatusCode::REQUEST_TIMEOUT, "body_timeout"),
        Ok(Err("body_too_large")) => refused(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        Ok(Err(reason)) => refused(StatusCode::BAD_REQUEST, reason),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}
