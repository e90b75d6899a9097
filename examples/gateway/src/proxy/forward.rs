//! Steps 11 and 12: the upstream call (one retry after a `401`, nothing else retried) and
//! the answer, streamed back (SSE event by event, JSON as it comes, `tools/list` answers
//! filtered under any media type, or refused when they cannot be read).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use crate::config::SseExpiry;
use crate::inbound::Identity;
use crate::policy::caps::StoreCaps;
use crate::policy::fairness::Admission;
use crate::protocol::headers::{MCP_SESSION_ID, REQUEST_ID, downstream_headers, own_value};
use crate::protocol::jsonrpc::{code, filter_tool_list_answer};
use crate::proxy::context::RequestContext;
use crate::proxy::refusal::{
    Refusal, credential_refusal, error_kind, jsonrpc_error, rate_limited, state_unavailable,
    transport_refusal,
};
use crate::proxy::session::StoreError;
use crate::proxy::stream::{SseOptions, Visibility, forward};
use crate::upstream::{Credential, Endpoint};

/// What a request holds until its answer ends: its gateway-wide concurrency permit and its
/// per-principal places.
#[derive(Debug)]
pub(crate) struct Permits {
    _global: OwnedSemaphorePermit,
    _fair: Admission,
}

impl Permits {
    pub(crate) fn new(global: OwnedSemaphorePermit, fair: Admission) -> Self {
        Self {
            _global: global,
            _fair: fair,
        }
    }
}

impl RequestContext<'_> {
    /// Step 11: sends the request upstream with `credential`; after a `401`, once more with
    /// a fresh credential.
    pub(crate) async fn call(&self, credential: Credential) -> Result<reqwest::Response, Refusal> {
        let upstream = self.upstream;
        let url = match &upstream.endpoint {
            Endpoint::Http(url) => url,
            Endpoint::Stdio(processes) => return self.call_stdio(processes, &credential).await,
        };
        let forwarded = self.state.forward.upstream_headers(&self.headers);
        let latency = crate::observe::metrics::upstream_latency(&upstream.name);
        let send = |credential: &Credential| {
            let span = tracing::info_span!(
                target: "idjag::gateway",
                "upstream call",
                otel.name = %format!("{} {}", self.method, upstream.name),
                otel.kind = "client",
                upstream = %upstream.name,
                http.request.method = %self.method,
                http.response.status_code = tracing::field::Empty,
            );
            let mut headers = forwarded.clone();
            for (name, value) in credential.headers() {
                headers.insert(name.clone(), value.clone());
            }
            headers.insert(REQUEST_ID, own_value(self.request_id));
            // The upstream continues this trace, under the upstream call's span.
            span.in_scope(|| idjag_ops::telemetry::inject_context(&mut headers));
            let request = upstream
                .http
                .request(self.method.clone(), url.clone())
                .headers(headers)
                .body(self.body());
            let latency = latency.clone();
            async move {
                let started = std::time::Instant::now();
                let result = request.send().await;
                latency.record(started.elapsed().as_secs_f64());
                if let Ok(response) = &result {
                    tracing::Span::current()
                        .record("http.response.status_code", response.status().as_u16());
                }
                result
            }
            .instrument(span)
        };
        let id = self.id();
        let mut response = send(&credential)
            .await
            .map_err(|e| transport_refusal(id, &e))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            tracing::debug!(upstream = %upstream.name, "upstream refused the credential; refreshing once");
            let fresh = upstream
                .credential
                .after_unauthorized(&self.caller, &credential)
                .await
                .map_err(|e| credential_refusal(upstream, self.message(), &e))?;
            response = send(&fresh).await.map_err(|e| transport_refusal(id, &e))?;
            if response.status() == StatusCode::UNAUTHORIZED {
                return Err(Refusal::error(
                    "upstream_unauthorized",
                    jsonrpc_error(
                        StatusCode::BAD_GATEWAY,
                        id,
                        code::CREDENTIAL_UNAVAILABLE,
                        "The MCP server refused the gateway's credential",
                        Value::Null,
                    ),
                ));
            }
        }
        if response.status().is_server_error() {
            tracing::warn!(upstream = %upstream.name, status = response.status().as_u16(), "upstream error");
            return Err(Refusal::error(
                "upstream_error",
                jsonrpc_error(
                    StatusCode::BAD_GATEWAY,
                    id,
                    code::UPSTREAM_UNAVAILABLE,
                    "The MCP server failed",
                    json!({ "upstream_status": response.status().as_u16() }),
                ),
            ));
        }
        Ok(response)
    }

    /// Step 12: binds a new session to the caller, forgets an ended one, and streams the
    /// answer back; `permit` is held until the answer ends.
    pub(crate) async fn answer(
        &self,
        response: reqwest::Response,
        permit: Permits,
    ) -> Result<Response, Refusal> {
        let upstream = self.upstream;
        let status = response.status();
        let identity = &self.caller.identity;
        let principal = identity.principal_key();
        let sessions = &self.state.sessions;
        if status.is_success()
            && let Some(created) = response.headers().get(MCP_SESSION_ID)
            && self.session.as_ref() != Some(created)
        {
            let caps = StoreCaps::sessions(self.state.fairness.plan(), identity, &upstream.name);
            match sessions
                .bind(&upstream.name, created.as_bytes(), principal, &caps)
                .await
            {
                Ok(true) => {
                    if self.declares_url_elicitation() {
                        self.state
                            .review
                            .remember_elicitation(&upstream.name, created.as_bytes())
                            .await;
                    }
                }
                Ok(false) => {
                    tracing::warn!(upstream = %upstream.name, "upstream reused a session id of another user");
                    return Err(Refusal::error(
                        "session_conflict",
                        jsonrpc_error(
                            StatusCode::BAD_GATEWAY,
                            None,
                            code::UPSTREAM_UNAVAILABLE,
                            "The MCP server failed",
                            Value::Null,
                        ),
                    ));
                }
                // Over a cap on sessions: not handed out, and ended at the upstream; the
                // request's id kept so the client can tell which call failed.
                Err(StoreError::CapReached { index, .. }) => {
                    let limited = caps.limited(index);
                    tracing::info!(upstream = %upstream.name, reason = limited.reason(), "over a cap on sessions");
                    let id = created.clone();
                    drop(response);
                    self.end_upstream_session(id).await;
                    return Err(rate_limited(&limited, self.id()));
                }
                // A session no instance could honour: not handed out (the upstream's own
                // session ends idle).
                Err(error) => {
                    tracing::warn!(%error, upstream = %upstream.name, "a new session cannot be bound: refusing");
                    return Err(state_unavailable("store_unavailable", self.id()));
                }
            }
        }
        if let Some(id) = &self.session
            && ((self.method == Method::DELETE && status.is_success())
                || status == StatusCode::NOT_FOUND)
            && let Err(error) = sessions.remove(&upstream.name, id.as_bytes()).await
        {
            // The binding ends by itself after its idle time.
            tracing::warn!(%error, upstream = %upstream.name, "an ended session was not forgotten");
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let lists_tools = self.message().and_then(|m| m.method.as_deref()) == Some("tools/list");
        // Every 2xx answer that may carry a tool list is read and filtered, whatever its
        // media type, or refused: an encoded body cannot be read, so it is refused.
        let filter = (status.is_success() && (lists_tools || self.method == Method::GET))
            .then(|| self.visibility(identity));
        if filter.is_some() && encoded(response.headers()) {
            tracing::warn!(upstream = %upstream.name, "a tool list answer with a content coding: refusing");
            return Err(self.unreadable_answer("upstream_answer_encoded"));
        }
        // The stream's span lasts as long as the answer is being streamed.
        let streaming = tracing::info_span!(
            target: "idjag::gateway",
            "stream",
            otel.name = "stream",
            upstream = %upstream.name,
        );
        let guards = (permit, self.state.streams.enter(), streaming);
        if content_type == "text/event-stream" {
            let headers = downstream_headers(response.headers(), true);
            let options = SseOptions {
                max_event_bytes: self.state.settings.max_sse_event_bytes,
                filter,
                expires: self.expiry(identity),
                shutdown: self.state.shutdown.clone(),
                revoked: Some(self.state.revocations.watch(identity)),
                guards: Box::new(guards),
            };
            return Ok(build(
                status,
                headers,
                Body::from_stream(forward(response.bytes_stream(), options)),
            ));
        }
        if let Some(visible) = filter {
            let headers = downstream_headers(response.headers(), true);
            let body = self.filtered_json(response, visible.as_ref()).await?;
            return Ok(build(status, headers, Body::from(body)));
        }
        let headers = downstream_headers(response.headers(), false);
        let mut revoked = self.state.revocations.watch(identity);
        let stream = response
            .bytes_stream()
            .map(move |chunk| {
                let _held = &guards;
                chunk.map_err(std::io::Error::other)
            })
            .take_until(Box::pin(async move { revoked.ended().await }));
        Ok(build(status, headers, Body::from_stream(stream)))
    }

    /// Ends a session the upstream just created and the gateway does not hand out (over a
    /// cap on sessions): one `DELETE` with it, as the client would send, at most once and
    /// best effort (a failure is logged; the upstream's session then ends idle). A stdio
    /// upstream's sessions end with its process.
    async fn end_upstream_session(&self, id: http::HeaderValue) {
        let Endpoint::Http(url) = &self.upstream.endpoint else {
            return;
        };
        let credential = match self.upstream.credential.credential(&self.caller).await {
            Ok(credential) => credential,
            Err(error) => {
                tracing::warn!(upstream = %self.upstream.name, reason = error.reason_code(), "a refused session cannot be ended upstream");
                return;
            }
        };
        let mut headers = self.state.forward.upstream_headers(&self.headers);
        headers.remove(CONTENT_TYPE);
        for (name, value) in credential.headers() {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(MCP_SESSION_ID, id);
        headers.insert(REQUEST_ID, own_value(self.request_id));
        let ended = self
            .upstream
            .http
            .request(Method::DELETE, url.clone())
            .headers(headers)
            .send()
            .await;
        if let Err(error) = ended {
            tracing::warn!(upstream = %self.upstream.name, error = error_kind(&error), "a refused session was not ended upstream");
        }
    }

    /// Whether the caller may see a tool in a `tools/list` answer.
    fn visibility(&self, identity: &Arc<Identity>) -> Visibility {
        let authorizer = self.state.authorizer.clone();
        let identity = identity.clone();
        let name = self.upstream.name.clone();
        Arc::new(move |tool: &str| authorizer.tool_visible(&identity, &name, tool))
    }

    /// When an SSE stream ends for the caller's token expiry, if it does.
    fn expiry(&self, identity: &Identity) -> Option<tokio::time::Instant> {
        if self.state.settings.sse_on_token_expiry != SseExpiry::Close {
            return None;
        }
        let left = (identity.expires_at - self.state.clock.now_unix())
            .max(0)
            .unsigned_abs();
        Some(tokio::time::Instant::now() + Duration::from_secs(left))
    }

    /// A 502 for an upstream answer the gateway must read and cannot.
    fn unreadable_answer(&self, reason: &'static str) -> Refusal {
        Refusal::error(
            reason,
            jsonrpc_error(
                StatusCode::BAD_GATEWAY,
                self.id(),
                code::UPSTREAM_UNAVAILABLE,
                "The MCP server's answer could not be read",
                Value::Null,
            ),
        )
    }

    /// A non-SSE answer that may carry a tool list, under any media type: read whole
    /// (within its limit) with the strict reader and filtered, or refused.
    async fn filtered_json(
        &self,
        mut response: reqwest::Response,
        visible: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<Bytes, Refusal> {
        let max = self.state.settings.max_filtered_response_bytes;
        let mut buffer = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if buffer.len() + chunk.len() <= max => {
                    buffer.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => return Err(self.unreadable_answer("upstream_answer_too_large")),
                Ok(None) => break,
                Err(error) => return Err(transport_refusal(self.id(), &error)),
            }
        }
        match filter_tool_list_answer(&buffer, visible) {
            Ok(Some(filtered)) => Ok(Bytes::from(filtered)),
            Ok(None) => Ok(buffer.freeze()),
            Err(error) => {
                tracing::warn!(upstream = %self.upstream.name, %error, "an answer that may carry a tool list cannot be read: refusing");
                Err(self.unreadable_answer("upstream_answer_invalid"))
            }
        }
    }
}

/// Whether a response body has a content coding other than `identity` (the gateway asks for
/// none and decodes none).
fn encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

fn build(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
