//! The axum handler of `/mcp/{name}`: a concurrency permit, the request id and one audit
//! line around the steps of the [module docs](super), and those steps up to the per-request
//! context (origin, route, method, protocol version, authentication, revocation, session,
//! body).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::header::{ALLOW, ORIGIN};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use crate::inbound::Authenticated;
use crate::observe::audit::{AuditEntry, Outcome};
use crate::plan::ProxySettings;
use crate::protocol::headers::{
    MCP_PROTOCOL_VERSION, MCP_SESSION_ID, REQUEST_ID, own_value, repeated_single_valued,
};
use crate::protocol::jsonrpc::{CheckedBody, Message, code};
use crate::protocol::request_id::request_id;
use crate::proxy::body::read_post;
use crate::proxy::context::RequestContext;
use crate::proxy::forward::Permits;
use crate::proxy::refusal::{
    Refusal, audit_unavailable, jsonrpc_error, overloaded, rate_limited, state_unavailable, status,
    unauthenticated,
};
use crate::proxy::session::SessionCheck;
use crate::proxy::state::GatewayState;
use crate::upstream::Upstream;

/// The axum handler of `/mcp/{name}`.
pub async fn handle(
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.headers());
    let mut audit = AuditEntry::new(
        state.audit.clone(),
        state.clock.now(),
        &request_id,
        request.method().as_str(),
    );
    let mut response = match state.in_flight.clone().try_acquire_owned() {
        Err(_) => {
            let response = overloaded();
            audit.finish(Outcome::Deny, "overloaded", response.status().as_u16());
            response
        }
        // The audit sinks cannot take lines and `on_full = "fail_closed"`: nothing is done
        // that could not be recorded.
        Ok(_) if !state.audit.accepting() => {
            let response = audit_unavailable();
            audit.finish(
                Outcome::Error,
                "audit_unavailable",
                response.status().as_u16(),
            );
            response
        }
        Ok(permit) => match run(&state, &request_id, &name, request, &mut audit, permit).await {
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
        },
    };
    response
        .headers_mut()
        .insert(REQUEST_ID, own_value(&request_id));
    response
}

/// Steps 2 to 12 of the [module docs](super).
async fn run(
    state: &GatewayState,
    request_id: &str,
    name: &str,
    request: Request,
    audit: &mut AuditEntry,
    permit: OwnedSemaphorePermit,
) -> Result<Response, Refusal> {
    let (parts, body) = request.into_parts();
    check_origin(&state.settings, &parts.headers)?;
    let upstream = state.upstreams.get(name).ok_or_else(|| {
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
    check_method(&parts.method)?;
    check_single_valued(&parts.headers)?;
    let caller = authenticate(state, upstream, &parts.headers, audit)
        .instrument(tracing::info_span!(
            target: "idjag::gateway",
            "inbound authentication",
            otel.name = "inbound authentication"
        ))
        .await?;
    let admission = state
        .fairness
        .admit(&caller.identity, name, parts.method == Method::GET)
        .map_err(|limited| {
            tracing::info!(
                upstream = name,
                reason = limited.reason(),
                "over a per-principal limit"
            );
            rate_limited(&limited, None)
        })?;
    let session = parts.headers.get(MCP_SESSION_ID).cloned();
    if let Some(id) = &session {
        check_session(state, name, id, &caller).await?;
    }
    let checked = match parts.method {
        Method::POST => Some(read_post(&state.settings, &parts.headers, body).await?),
        _ => None,
    };
    let message = checked.as_ref().map(CheckedBody::message);
    check_protocol_version(&state.settings, &parts.headers, message)?;
    let recorded = message
        .and_then(|m| m.arguments.as_ref())
        .and_then(|a| state.arguments.apply(a));
    if let Some(message) = message {
        audit.message(
            message.method.as_deref(),
            message.tool.as_deref(),
            recorded.clone(),
        );
    }
    let request = RequestContext {
        state,
        request_id,
        upstream,
        method: parts.method,
        headers: parts.headers,
        session,
        caller,
        checked,
        recorded,
    };
    async {
        request.authorize()?;
        request.guard(audit).await
    }
    .instrument(tracing::info_span!(
        target: "idjag::gateway",
        "policy",
        otel.name = "policy"
    ))
    .await?;
    let credential = request
        .credential()
        .instrument(tracing::info_span!(
            target: "idjag::gateway",
            "upstream credential",
            otel.name = "upstream credential",
            upstream = %upstream.name,
        ))
        .await?;
    let response = request.call(credential).await?;
    audit.upstream_status(response.status().as_u16());
    request
        .answer(response, Permits::new(permit, admission))
        .await
}

/// Step 2: an `Origin`, when present, must be allowed.
fn check_origin(settings: &ProxySettings, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let allowed = origin
        .to_str()
        .is_ok_and(|o| settings.allowed_origins.iter().any(|a| a == o));
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

/// Step 3: POST, GET or DELETE.
fn check_method(method: &Method) -> Result<(), Refusal> {
    if matches!(*method, Method::POST | Method::GET | Method::DELETE) {
        return Ok(());
    }
    let mut response = status(
        StatusCode::METHOD_NOT_ALLOWED,
        code::INVALID_REQUEST,
        "Method not allowed",
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    Err(Refusal::deny("method_not_allowed", response))
}

/// Step 4: no single-valued MCP header repeated (`Mcp-Session-Id`, `Last-Event-ID`,
/// `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`): what is checked is what is forwarded.
fn check_single_valued(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(name) = repeated_single_valued(headers) else {
        return Ok(());
    };
    tracing::debug!(header = name, "a single-valued header sent more than once");
    Err(Refusal::deny(
        "repeated_header",
        status(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "A single-valued MCP header was sent more than once",
        ),
    ))
}

/// Step 8: an `MCP-Protocol-Version`, when present, must be a supported version, else 400
/// under the request's `id` with the error of the revision the request speaks:
///
/// - a request declaring its version in its own metadata (`params._meta`, MCP 2026-07-28 on)
///   gets MCP 2026-07-28's `UnsupportedProtocolVersionError` (SEP-2575): `-32022`,
///   `data.supported` the versions served, `data.requested` the header's value;
/// - any other message (revisions up to 2025-11-25, which define no JSON-RPC code for this)
///   gets the answer the MCP SDKs' servers give: `-32000`, the supported versions listed.
fn check_protocol_version(
    settings: &ProxySettings,
    headers: &HeaderMap,
    message: Option<&Message>,
) -> Result<(), Refusal> {
    let Some(version) = headers.get(MCP_PROTOCOL_VERSION) else {
        return Ok(());
    };
    let supported = version
        .to_str()
        .is_ok_and(|v| settings.protocol_versions.iter().any(|s| s == v));
    if supported {
        return Ok(());
    }
    let id = message.and_then(|m| m.id.as_ref());
    let response = if message.is_some_and(|m| m.protocol_version.is_some()) {
        jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            code::UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            serde_json::json!({
                "supported": settings.protocol_versions,
                "requested": String::from_utf8_lossy(version.as_bytes()),
            }),
        )
    } else {
        let text = format!(
            "Bad Request: Unsupported protocol version (supported versions: {})",
            settings.protocol_versions.join(", ")
        );
        jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            code::BAD_REQUEST,
            &text,
            Value::Null,
        )
    };
    Err(Refusal::deny("unsupported_protocol_version", response))
}

/// Step 5: inbound authentication, then revocation.
async fn authenticate(
    state: &GatewayState,
    upstream: &Upstream,
    headers: &HeaderMap,
    audit: &mut AuditEntry,
) -> Result<Authenticated, Refusal> {
    let caller = state
        .inbound
        .authenticate(headers, &upstream.resource)
        .await
        .map_err(|e| unauthenticated(upstream, &e))?;
    let identity = &caller.identity;
    audit.caller(
        identity.user.as_str(),
        identity.issuer.as_str(),
        &identity.teams,
        identity.agent.as_deref(),
    );
    match state.revocations.check(identity) {
        Ok(false) => Ok(caller),
        Ok(true) => Err(Refusal::deny(
            "revoked",
            jsonrpc_error(
                StatusCode::FORBIDDEN,
                None,
                code::FORBIDDEN,
                "Access revoked by an administrator",
                serde_json::json!({ "reason": "revoked" }),
            ),
        )),
        Err(error) => {
            tracing::warn!(%error, "revocations cannot be checked: refusing");
            Err(state_unavailable("revocation_state_stale", None))
        }
    }
}

/// Step 6: a presented session must be bound to this caller.
async fn check_session(
    state: &GatewayState,
    upstream: &str,
    id: &HeaderValue,
    caller: &Authenticated,
) -> Result<(), Refusal> {
    let principal = caller.identity.principal_key();
    match state
        .sessions
        .check(upstream, id.as_bytes(), &principal)
        .await
    {
        Ok(SessionCheck::Owned) => return Ok(()),
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "sessions cannot be checked: refusing");
            return Err(state_unavailable("store_unavailable", None));
        }
    }
    Err(Refusal::deny(
        "unknown_session",
        status(
            StatusCode::NOT_FOUND,
            code::INVALID_REQUEST,
            "Session not found",
        ),
    ))
}
