//! The Streamable HTTP reverse proxy: one route per upstream, `/mcp/{name}`.
//!
//! Each request goes through these steps, in this order; the first that fails answers, and
//! nothing is sent upstream before step 11:
//!
//! 1. a concurrency permit (503 `Retry-After: 1` when none is left; SSE streams hold theirs
//!    until they end, so memory stays bounded);
//! 2. `Origin`, when present, must be an allowed origin (403; DNS-rebinding protection);
//! 3. the route must name a configured upstream (404) and the method be POST, GET or
//!    DELETE (405);
//! 4. `MCP-Protocol-Version`, when present, must be a supported version (400);
//! 5. inbound authentication (401 with `WWW-Authenticate` and the route's RFC 9728
//!    metadata, or 400 for a malformed header) — see [`crate::inbound`];
//!    A revoked user or client gets 403 (reason `revoked`) — see [`crate::revocation`];
//! 6. `Mcp-Session-Id`, when present, must be bound to this user (404) — see
//!    [`crate::session`];
//! 7. the POST body, within the size limit (413) and the body timeout (408);
//! 8. one JSON-RPC 2.0 message (400), consistent with the 2026-07-28 `Mcp-Method` and
//!    `Mcp-Name` headers when they are present (400);
//! 9. authorization — see [`crate::authz`]: a refused request gets a JSON-RPC error (HTTP 200
//!    for a request with an `id`, so the client's session survives; 403 otherwise; 403 with
//!    `insufficient_scope` for a missing scope); then, for a `tools/call`, the tool's
//!    argument rules ([`crate::guardrails`]: a JSON-RPC error naming the rule) and, for an
//!    approval-required tool, the approval gate ([`crate::approval`]: held calls get a
//!    JSON-RPC error with the approval id; an approved call runs once);
//! 10. the upstream credential — see [`crate::upstream`] and [`crate::bridge`];
//! 11. the upstream call: allow-listed headers, the mode's credential headers and
//!     `X-Request-Id` (the client's when it is a valid id, else a new one); a `401` refreshes the credential and retries once (the upstream's
//!     bearer check refused it, so the request was not processed); nothing else is retried
//!     (a `tools/call` never runs twice); a connection failure or a 5xx is a 502 JSON-RPC
//!     error, a timeout a 504;
//! 12. the answer, streamed: SSE event by event ([`crate::sse`]), JSON as it comes, except
//!     `tools/list` answers, filtered to the tools the caller may use.
//!
//! Every request writes one audit line ([`crate::audit`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, ORIGIN};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use idjag_core::challenge::BearerChallenge;
use idjag_core::{Audience, OAuthErrorCode, OAuthErrorResponse, SharedClock};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use url::Url;

use crate::approval::{Approvals, CallToGate, Gate};
use crate::audit::{ArgumentRule, AuditEntry, AuditSink, Outcome};
use crate::authz::{Authorizer, AuthzRequest, Decision, DenyReason};
use crate::config::SseExpiry;
use crate::guardrails::ToolGuard;
use crate::headers::{
    ForwardPolicy, MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION, MCP_SESSION_ID, REQUEST_ID,
    downstream_headers, own_value,
};
use crate::identity::Identity;
use crate::inbound::{Caller, InboundAuth, InboundError};
use crate::jsonrpc::{Message, MessageKind, code, filter_tools, read_message};
use crate::metrics::Metrics;
use crate::reply::{Refusal, challenge, jsonrpc_error, overloaded, status};
use crate::revocation::Revocations;
use crate::session::{SessionCheck, Sessions};
use crate::sse::{SseOptions, StreamGauge, Visibility, forward};
use crate::upstream::IdJagOutbound;
use crate::upstream::{Credential, CredentialError, UpstreamCredential};

/// One upstream MCP server as the proxy sees it.
#[derive(Debug)]
pub struct Upstream {
    /// The route name.
    pub name: String,
    /// Its MCP endpoint.
    pub url: Url,
    /// The gateway route's resource identifier (`{public_url}/mcp/{name}`).
    pub resource: Audience,
    /// The route's RFC 9728 metadata URL.
    pub metadata_url: String,
    /// How the gateway authenticates there.
    pub credential: Arc<dyn UpstreamCredential>,
    /// The HTTP client: connect and read timeouts, no total timeout.
    pub http: reqwest::Client,
}

/// Limits and settings of the proxy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxySettings {
    /// Allowed `Origin` values.
    pub allowed_origins: Vec<String>,
    /// Supported `MCP-Protocol-Version` values.
    pub protocol_versions: Vec<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time to receive a body.
    pub body_timeout: Duration,
    /// Largest `tools/list` JSON answer filtered.
    pub max_filtered_response_bytes: usize,
    /// Largest SSE event.
    pub max_sse_event_bytes: usize,
    /// SSE streams at token expiry.
    pub sse_on_token_expiry: SseExpiry,
}

/// Everything the proxy shares across requests.
#[derive(Debug)]
pub struct Shared {
    pub(crate) settings: ProxySettings,
    pub(crate) inbound: InboundAuth,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) upstreams: HashMap<String, Arc<Upstream>>,
    pub(crate) sessions: Sessions,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) arguments: ArgumentRule,
    pub(crate) forward: ForwardPolicy,
    pub(crate) clock: SharedClock,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) streams: Arc<StreamGauge>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) guards: HashMap<String, HashMap<String, ToolGuard>>,
    pub(crate) approvals: Arc<Approvals>,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) admin: Option<crate::admin::AdminSettings>,
    pub(crate) metrics: Option<Arc<Metrics>>,
    pub(crate) metrics_require_admin: bool,
    pub(crate) outbound: Arc<IdJagOutbound>,
}

/// A random 128-bit request id, hex.
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return "unavailable".to_owned();
    }
    let mut id = String::with_capacity(32);
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 15)]));
    }
    id
}

/// The client's `X-Request-Id` when it is one acceptable id (1 to 128 characters of
/// `A-Za-z0-9._:-`), else a new one: ids reach the upstream and the audit log, so nothing
/// else gets through.
pub fn request_id(headers: &HeaderMap) -> String {
    let mut values = headers.get_all(REQUEST_ID).iter();
    match (values.next(), values.next()) {
        (Some(value), None)
            if (1..=128).contains(&value.len())
                && value
                    .as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b)) =>
        {
            value
                .to_str()
                .map_or_else(|_| new_request_id(), str::to_owned)
        }
        _ => new_request_id(),
    }
}

/// The axum handler of `/mcp/{name}`.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.headers());
    let mut audit = AuditEntry::new(
        shared.audit.clone(),
        shared.clock.now(),
        &request_id,
        request.method().as_str(),
    );
    let mut response = match shared.in_flight.clone().try_acquire_owned() {
        Err(_) => {
            let response = overloaded();
            audit.finish(Outcome::Deny, "overloaded", response.status().as_u16());
            response
        }
        Ok(permit) => {
            let exchange = Exchange {
                shared: &shared,
                request_id: &request_id,
            };
            match exchange.run(&name, request, &mut audit, permit).await {
                Ok(response) => {
                    audit.finish(Outcome::Allow, "forwarded", response.status().as_u16());
                    response
                }
                Err(refusal) => {
                    let outcome = if refusal.failure {
                        Outcome::Error
                    } else {
                        Outcome::Deny
                    };
                    audit.finish(outcome, refusal.reason, refusal.response.status().as_u16());
                    *refusal.response
                }
            }
        }
    };
    response
        .headers_mut()
        .insert(REQUEST_ID, own_value(&request_id));
    response
}

struct Exchange<'a> {
    shared: &'a Shared,
    request_id: &'a str,
}

/// The parsed POST body.
struct PostBody {
    bytes: Bytes,
    message: Option<Message>,
}

impl Exchange<'_> {
    async fn run(
        &self,
        name: &str,
        request: Request,
        audit: &mut AuditEntry,
        permit: OwnedSemaphorePermit,
    ) -> Result<Response, Refusal> {
        let (parts, body) = request.into_parts();
        self.check_origin(&parts.headers)?;
        let upstream = self.shared.upstreams.get(name).ok_or_else(|| {
            Refusal::deny(
                "unknown_upstream",
                status(
                    StatusCode::NOT_FOUND,
                    code::INVALID_REQUEST,
                    "No such MCP server",
                ),
            )
        })?;
        audit.upstream(name);
        if !matches!(parts.method, Method::POST | Method::GET | Method::DELETE) {
            let mut response = status(
                StatusCode::METHOD_NOT_ALLOWED,
                code::INVALID_REQUEST,
                "Method not allowed",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            return Err(Refusal::deny("method_not_allowed", response));
        }
        self.check_protocol_version(&parts.headers)?;
        let caller = self
            .shared
            .inbound
            .authenticate(&parts.headers, &upstream.resource)
            .await
            .map_err(|e| unauthenticated(upstream, &e))?;
        audit.identity(&caller.identity);
        if self.shared.revocations.is_revoked(&caller.identity) {
            return Err(Refusal::deny(
                "revoked",
                status(
                    StatusCode::FORBIDDEN,
                    code::FORBIDDEN,
                    "Access revoked by an administrator",
                ),
            ));
        }
        let session = parts.headers.get(MCP_SESSION_ID).cloned();
        if let Some(id) = &session {
            let principal = caller.identity.principal_key();
            if self
                .shared
                .sessions
                .check(name, id.as_bytes(), &principal)
                .await
                != SessionCheck::Owned
            {
                return Err(Refusal::deny(
                    "unknown_session",
                    status(
                        StatusCode::NOT_FOUND,
                        code::INVALID_REQUEST,
                        "Session not found",
                    ),
                ));
            }
        }
        let body = match parts.method {
            Method::POST => self.read_post(&parts.headers, body).await?,
            _ => PostBody {
                bytes: Bytes::new(),
                message: None,
            },
        };
        let mut recorded = None;
        if let Some(message) = &body.message {
            recorded = message
                .arguments
                .as_ref()
                .and_then(|a| self.shared.arguments.apply(a));
            audit.message(
                message.method.as_deref(),
                message.tool.as_deref(),
                recorded.clone(),
            );
        }
        self.authorize(upstream, &caller, body.message.as_ref())?;
        if let Some(message) = &body.message
            && let Some(tool) = &message.tool
            && let Some(guard) = self.shared.guards.get(name).and_then(|g| g.get(tool))
        {
            self.guard(
                upstream,
                &caller,
                message,
                tool,
                guard,
                recorded.as_ref(),
                audit,
            )?;
        }
        let credential = upstream
            .credential
            .credential(&caller)
            .await
            .map_err(|e| credential_refusal(upstream, body.message.as_ref(), &e))?;
        let response = self
            .call(
                upstream,
                &parts.method,
                &parts.headers,
                &body.bytes,
                &caller,
                credential,
                body.message.as_ref(),
            )
            .await?;
        audit.upstream_status(response.status().as_u16());
        self.answer(
            upstream,
            &parts.method,
            session,
            &caller,
            body.message.as_ref(),
            response,
            permit,
        )
        .await
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(origin) = headers.get(ORIGIN) else {
            return Ok(());
        };
        let allowed = origin
            .to_str()
            .is_ok_and(|o| self.shared.settings.allowed_origins.iter().any(|a| a == o));
        if allowed {
            Ok(())
        } else {
            Err(Refusal::deny(
                "origin_not_allowed",
                status(
                    StatusCode::FORBIDDEN,
                    code::INVALID_REQUEST,
                    "Origin not allowed",
                ),
            ))
        }
    }

    fn check_protocol_version(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut values = headers.get_all(MCP_PROTOCOL_VERSION).iter();
        let Some(version) = values.next() else {
            return Ok(());
        };
        let supported = values.next().is_none()
            && version.to_str().is_ok_and(|v| {
                self.shared
                    .settings
                    .protocol_versions
                    .iter()
                    .any(|s| s == v)
            });
        if supported {
            Ok(())
        } else {
            Err(Refusal::deny(
                "unsupported_protocol_version",
                status(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_REQUEST,
                    "Unsupported MCP-Protocol-Version",
                ),
            ))
        }
    }

    async fn read_post(&self, headers: &HeaderMap, body: Body) -> Result<PostBody, Refusal> {
        let settings = &self.shared.settings;
        let too_large = || {
            Refusal::deny(
                "body_too_large",
                status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::INVALID_REQUEST,
                    "Request body too large",
                ),
            )
        };
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > settings.max_body_bytes as u64) {
            return Err(too_large());
        }
        let bytes = match tokio::time::timeout(
            settings.body_timeout,
            collect(body, settings.max_body_bytes),
        )
        .await
        {
            Err(_) => {
                return Err(Refusal::deny(
                    "body_timeout",
                    status(
                        StatusCode::REQUEST_TIMEOUT,
                        code::INVALID_REQUEST,
                        "Request body timed out",
                    ),
                ));
            }
            Ok(Err(CollectError::TooLarge)) => return Err(too_large()),
            Ok(Err(CollectError::Aborted)) => {
                return Err(Refusal::deny(
                    "body_aborted",
                    status(
                        StatusCode::BAD_REQUEST,
                        code::INVALID_REQUEST,
                        "Request body incomplete",
                    ),
                ));
            }
            Ok(Ok(bytes)) => bytes,
        };
        let message = read_message(&bytes).map_err(|e| {
            Refusal::deny(
                "invalid_message",
                jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    e.code(),
                    &e.to_string(),
                    Value::Null,
                ),
            )
        })?;
        check_standard_headers(headers, &message)?;
        Ok(PostBody {
            bytes,
            message: Some(message),
        })
    }

    fn authorize(
        &self,
        upstream: &Upstream,
        caller: &Caller,
        message: Option<&Message>,
    ) -> Result<(), Refusal> {
        let request = AuthzRequest {
            identity: &caller.identity,
            upstream: &upstream.name,
            method: message.and_then(|m| m.method.as_deref()),
            tool: message.and_then(|m| m.tool.as_deref()),
            arguments: message.and_then(|m| m.arguments.as_ref()),
        };
        match self.shared.authorizer.decide(&request) {
            Decision::Allow => Ok(()),
            Decision::Deny(DenyReason::InsufficientScope(scope)) => {
                let c = BearerChallenge::new()
                    .with_error(OAuthErrorCode::InsufficientScope)
                    .with_scope(scope.clone())
                    .with_resource_metadata(upstream.metadata_url.as_str());
                let body = OAuthErrorResponse::new(OAuthErrorCode::InsufficientScope)
                    .with_description("The token lacks a scope this tool needs");
                Err(Refusal::deny(
                    "insufficient_scope",
                    challenge(StatusCode::FORBIDDEN, &c, Some(body)),
                ))
            }
            Decision::Deny(reason) => Err(Refusal::deny(
                reason.code(),
                policy_error(
                    message,
                    "Blocked by the gateway's policy",
                    json!({ "reason": reason.code() }),
                ),
            )),
        }
    }

    /// Argument rules, then the approval gate, of one `tools/call`.
    #[allow(clippy::too_many_arguments)]
    fn guard(
        &self,
        upstream: &Upstream,
        caller: &Caller,
        message: &Message,
        tool: &str,
        guard: &ToolGuard,
        recorded: Option<&Value>,
        audit: &mut AuditEntry,
    ) -> Result<(), Refusal> {
        if let Err(blocked) = guard.check(message.arguments.as_ref()) {
            tracing::info!(upstream = %upstream.name, tool, rule = %blocked.rule, "call blocked by an argument rule");
            return Err(Refusal::deny(
                "argument_blocked",
                policy_error(
                    Some(message),
                    &format!("Blocked by the gateway's argument rule {:?}", blocked.rule),
                    json!({
                        "reason": "argument_blocked",
                        "rule": blocked.rule,
                        "violation": blocked.kind.code(),
                    }),
                ),
            ));
        }
        if !guard.needs_approval() {
            return Ok(());
        }
        let gate = self.shared.approvals.gate(&CallToGate {
            identity: &caller.identity,
            upstream: &upstream.name,
            tool,
            arguments: message.arguments.as_ref(),
            recorded,
        });
        let held = |reason: &'static str, text: &str, id: Option<String>| {
            let mut data = json!({ "reason": reason });
            if let Some(id) = &id {
                data["approval_id"] = json!(id);
            }
            let response = match message.kind {
                MessageKind::Request => jsonrpc_error(
                    StatusCode::OK,
                    message.id.as_ref(),
                    code::APPROVAL_REQUIRED,
                    text,
                    data,
                ),
                _ => jsonrpc_error(
                    StatusCode::FORBIDDEN,
                    None,
                    code::APPROVAL_REQUIRED,
                    text,
                    data,
                ),
            };
            Refusal::deny(reason, response)
        };
        match gate {
            Gate::Proceed { id } => {
                audit.approval(&id);
                Ok(())
            }
            Gate::Held { id, new } => {
                audit.approval(&id);
                let reason = if new {
                    "approval_held"
                } else {
                    "approval_pending"
                };
                Err(held(
                    reason,
                    "This call needs an administrator's approval; retry it once approved",
                    Some(id),
                ))
            }
            Gate::Rejected { id } => {
                audit.approval(&id);
                Err(held(
                    "approval_rejected",
                    "An administrator rejected this call",
                    Some(id),
                ))
            }
            _ => Err(held(
                "approval_queue_full",
                "Too many calls are waiting for approval",
                None,
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        upstream: &Upstream,
        method: &Method,
        headers: &HeaderMap,
        body: &Bytes,
        caller: &Caller,
        credential: Credential,
        message: Option<&Message>,
    ) -> Result<reqwest::Response, Refusal> {
        let forwarded = self.shared.forward.upstream_headers(headers);
        let send = |credential: &Credential| {
            let mut headers = forwarded.clone();
            for (name, value) in credential.headers() {
                headers.insert(name.clone(), value.clone());
            }
            headers.insert(REQUEST_ID, own_value(self.request_id));
            upstream
                .http
                .request(method.clone(), upstream.url.clone())
                .headers(headers)
                .body(body.clone())
                .send()
        };
        let id = message.and_then(|m| m.id.as_ref());
        let mut response = send(&credential)
            .await
            .map_err(|e| transport_refusal(id, &e))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            tracing::debug!(upstream = %upstream.name, "upstream refused the credential; refreshing once");
            let fresh = upstream
                .credential
                .after_unauthorized(caller, &credential)
                .await
                .map_err(|e| credential_refusal(upstream, message, &e))?;
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

    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &self,
        upstream: &Upstream,
        method: &Method,
        session: Option<HeaderValue>,
        caller: &Caller,
        message: Option<&Message>,
        response: reqwest::Response,
        permit: OwnedSemaphorePermit,
    ) -> Result<Response, Refusal> {
        let status = response.status();
        let principal = caller.identity.principal_key();
        let sessions = &self.shared.sessions;
        if status.is_success()
            && let Some(created) = response.headers().get(MCP_SESSION_ID)
            && session.as_ref() != Some(created)
            && !sessions
                .bind(&upstream.name, created.as_bytes(), principal)
                .await
        {
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
        if let Some(id) = &session
            && ((*method == Method::DELETE && status.is_success())
                || status == StatusCode::NOT_FOUND)
        {
            sessions.remove(&upstream.name, id.as_bytes()).await;
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
        let lists_tools = message.and_then(|m| m.method.as_deref()) == Some("tools/list");
        let filter = (lists_tools || *method == Method::GET)
            .then(|| self.visibility(upstream, &caller.identity));
        let guards = (permit, self.shared.streams.enter());
        if content_type == "text/event-stream" {
            let headers = downstream_headers(response.headers(), true);
            let options = SseOptions {
                max_event_bytes: self.shared.settings.max_sse_event_bytes,
                filter,
                expires: self.expiry(&caller.identity),
                shutdown: self.shared.shutdown.clone(),
                revoked: Some(self.shared.revocations.watch(caller.identity.clone())),
                guards: Box::new(guards),
            };
            return Ok(build(
                status,
                headers,
                Body::from_stream(forward(response.bytes_stream(), options)),
            ));
        }
        if let Some(visible) =
            filter.filter(|_| content_type == "application/json" && status.is_success())
        {
            let headers = downstream_headers(response.headers(), true);
            let body = self
                .filtered_json(response, message, visible.as_ref())
                .await?;
            return Ok(build(status, headers, Body::from(body)));
        }
        let headers = downstream_headers(response.headers(), false);
        let mut revoked = self.shared.revocations.watch(caller.identity.clone());
        let stream = response
            .bytes_stream()
            .map(move |chunk| {
                let _held = &guards;
                chunk.map_err(std::io::Error::other)
            })
            .take_until(Box::pin(async move { revoked.revoked().await }));
        Ok(build(status, headers, Body::from_stream(stream)))
    }

    fn visibility(&self, upstream: &Upstream, identity: &Arc<Identity>) -> Visibility {
        let authorizer = self.shared.authorizer.clone();
        let identity = identity.clone();
        let name = upstream.name.clone();
        Arc::new(move |tool: &str| authorizer.tool_visible(&identity, &name, tool))
    }

    fn expiry(&self, identity: &Identity) -> Option<tokio::time::Instant> {
        if self.shared.settings.sse_on_token_expiry != SseExpiry::Close {
            return None;
        }
        let left = (identity.expires_at - self.shared.clock.now_unix())
            .max(0)
            .unsigned_abs();
        Some(tokio::time::Instant::now() + Duration::from_secs(left))
    }

    async fn filtered_json(
        &self,
        mut response: reqwest::Response,
        message: Option<&Message>,
        visible: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<Bytes, Refusal> {
        let id = message.and_then(|m| m.id.as_ref());
        let max = self.shared.settings.max_filtered_response_bytes;
        let failed = |reason| {
            Refusal::error(
                reason,
                jsonrpc_error(
                    StatusCode::BAD_GATEWAY,
                    id,
                    code::UPSTREAM_UNAVAILABLE,
                    "The MCP server's answer could not be read",
                    Value::Null,
                ),
            )
        };
        let mut buffer = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if buffer.len() + chunk.len() <= max => {
                    buffer.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => return Err(failed("upstream_answer_too_large")),
                Ok(None) => break,
                Err(error) => return Err(transport_refusal(id, &error)),
            }
        }
        let mut value: Value =
            serde_json::from_slice(&buffer).map_err(|_| failed("upstream_answer_invalid"))?;
        filter_tools(&mut value, visible);
        serde_json::to_vec(&value)
            .map(Bytes::from)
            .map_err(|_| failed("upstream_answer_invalid"))
    }
}

fn build(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

enum CollectError {
    TooLarge,
    Aborted,
}

async fn collect(mut body: Body, limit: usize) -> Result<Bytes, CollectError> {
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| CollectError::Aborted)?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > limit {
                return Err(CollectError::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// `Mcp-Method` and `Mcp-Name` (MCP 2026-07-28) must agree with the body the gateway decided
/// on: an upstream routing on the header must not run another tool than the one authorized.
fn check_standard_headers(headers: &HeaderMap, message: &Message) -> Result<(), Refusal> {
    let mismatch = |header: &str, expected: Option<&str>| {
        let mut values = headers.get_all(header).iter();
        match values.next() {
            None => false,
            Some(value) => values.next().is_some() || value.to_str().ok() != expected,
        }
    };
    let method_mismatch = mismatch(MCP_METHOD, message.method.as_deref());
    let name_mismatch = message.tool.is_some() && mismatch(MCP_NAME, message.tool.as_deref());
    if method_mismatch || name_mismatch {
        return Err(Refusal::deny(
            "header_body_mismatch",
            jsonrpc_error(
                StatusCode::BAD_REQUEST,
                message.id.as_ref(),
                code::INVALID_REQUEST,
                "Mcp-Method or Mcp-Name does not match the body",
                Value::Null,
            ),
        ));
    }
    Ok(())
}

fn unauthenticated(upstream: &Upstream, error: &InboundError) -> Refusal {
    let mut c = BearerChallenge::new().with_resource_metadata(upstream.metadata_url.as_str());
    let body = error.oauth_error().map(|code| {
        c = c.clone().with_error(code);
        OAuthErrorResponse::new(code).with_description(match code {
            OAuthErrorCode::InvalidToken => "The access token is invalid",
            _ => "The request is malformed",
        })
    });
    tracing::debug!(upstream = %upstream.name, reason = error.reason_code(), "inbound token refused");
    Refusal::deny(error.reason_code(), challenge(error.status(), &c, body))
}

/// A policy refusal: a JSON-RPC error at 200 for a request (the session survives), 403 for
/// anything else (notifications, responses, GET, DELETE).
fn policy_error(message: Option<&Message>, text: &str, data: Value) -> Response {
    match message {
        Some(m) if m.kind == MessageKind::Request => {
            jsonrpc_error(StatusCode::OK, m.id.as_ref(), code::FORBIDDEN, text, data)
        }
        _ => jsonrpc_error(StatusCode::FORBIDDEN, None, code::FORBIDDEN, text, data),
    }
}

fn credential_refusal(
    upstream: &Upstream,
    message: Option<&Message>,
    error: &CredentialError,
) -> Refusal {
    let id = message.and_then(|m| m.id.as_ref());
    let reason = error.reason_code();
    tracing::info!(upstream = %upstream.name, reason, "no upstream credential");
    match error {
        CredentialError::PolicyDenied { code: oauth }
        | CredentialError::Refused { code: oauth, .. } => Refusal::deny(
            reason,
            policy_error(
                message,
                "Blocked by your organization's policy",
                json!({ "reason": reason, "oauth_error": oauth }),
            ),
        ),
        CredentialError::IdTokenRequired => Refusal::deny(
            reason,
            policy_error(
                message,
                "This MCP server needs the user's ID token",
                json!({ "reason": reason }),
            ),
        ),
        CredentialError::StepUpRequired | CredentialError::ReauthenticationRequired => {
            let code = if *error == CredentialError::StepUpRequired {
                OAuthErrorCode::InsufficientUserAuthentication
            } else {
                OAuthErrorCode::InvalidToken
            };
            let c = BearerChallenge::new()
                .with_error(code)
                .with_resource_metadata(upstream.metadata_url.as_str());
            Refusal::deny(
                reason,
                challenge(
                    StatusCode::UNAUTHORIZED,
                    &c,
                    Some(OAuthErrorResponse::new(code)),
                ),
            )
        }
        _ => Refusal::error(
            reason,
            jsonrpc_error(
                StatusCode::BAD_GATEWAY,
                id,
                code::CREDENTIAL_UNAVAILABLE,
                "No credential for the MCP server could be obtained",
                json!({ "reason": reason }),
            ),
        ),
    }
}

fn transport_refusal(id: Option<&Value>, error: &reqwest::Error) -> Refusal {
    tracing::warn!(error = error_kind(error), "upstream call failed");
    if error.is_timeout() {
        Refusal::error(
            "upstream_timeout",
            jsonrpc_error(
                StatusCode::GATEWAY_TIMEOUT,
                id,
                code::UPSTREAM_TIMEOUT,
                "The MCP server did not answer in time",
                Value::Null,
            ),
        )
    } else {
        Refusal::error(
            "upstream_unreachable",
            jsonrpc_error(
                StatusCode::BAD_GATEWAY,
                id,
                code::UPSTREAM_UNAVAILABLE,
                "The MCP server could not be reached",
                Value::Null,
            ),
        )
    }
}

fn error_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    }
}
