//! The answers the gateway itself gives: JSON-RPC errors and bearer challenges, and how
//! each refusal or failure maps to one.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use idjag_core::challenge::BearerChallenge;
use idjag_core::server::no_store_headers;
use idjag_core::{OAuthErrorCode, OAuthErrorResponse};
use serde_json::{Value, json};

use crate::inbound::InboundError;
use crate::policy::fairness::Limited;
use crate::protocol::jsonrpc::{Message, MessageKind, code, error_body};
use crate::upstream::{CredentialError, Upstream};

/// A refusal or failure the gateway answers itself, with what the audit log records.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// The response (boxed: refusals travel in `Result`s).
    pub(crate) response: Box<Response>,
    /// `true` for a failure after the request was accepted (audit `error`), `false` for a
    /// refusal (audit `deny`).
    pub(crate) failure: bool,
    /// The audit reason code.
    pub(crate) reason: &'static str,
}

impl Refusal {
    /// A refusal.
    pub(crate) fn deny(reason: &'static str, response: Response) -> Self {
        Self {
            response: Box::new(response),
            failure: false,
            reason,
        }
    }

    /// A failure.
    pub(crate) fn error(reason: &'static str, response: Response) -> Self {
        Self {
            response: Box::new(response),
            failure: true,
            reason,
        }
    }
}

/// A JSON-RPC error response.
pub(crate) fn jsonrpc_error(
    status: StatusCode,
    id: Option<&Value>,
    code: i64,
    message: &str,
    data: Value,
) -> Response {
    json(status, error_body(id, code, message, data))
}

fn json(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store_headers(response.headers_mut());
    response
}

/// 503 with `Retry-After: 1`.
pub(crate) fn overloaded() -> Response {
    let mut response = jsonrpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        code::OVERLOADED,
        "The gateway is at capacity; retry shortly",
        Value::Null,
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 429 with `Retry-After`: a per-principal limit was reached (nothing was forwarded, or,
/// for a session cap, the new session was not handed out), under the request's `id` when
/// it is known. Counted in `idjag_gateway_limit_refusals_total`.
pub(crate) fn rate_limited(limited: &Limited, id: Option<&Value>) -> Refusal {
    crate::observe::metrics::limit_refused(limited.principal.name(), limited.kind.name());
    let mut response = jsonrpc_error(
        StatusCode::TOO_MANY_REQUESTS,
        id,
        code::RATE_LIMITED,
        "Too many requests; retry later",
        json!({ "reason": limited.reason() }),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(limited.retry_after));
    Refusal::deny(limited.reason(), response)
}

/// 503 with `Retry-After: 5`: the audit sinks cannot take lines and the configuration says
/// to fail closed (`[audit] on_full = "fail_closed"`).
pub(crate) fn audit_unavailable() -> Response {
    let mut response = jsonrpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        code::OVERLOADED,
        "The gateway cannot record requests right now; retry shortly",
        Value::Null,
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// 503 with `Retry-After: 1`: the gateway's shared state cannot be checked (the store is
/// unreachable, or the local copy of the revocations is past its staleness bound). Nothing
/// was forwarded; `reason` is `revocation_state_stale` or `store_unavailable`.
pub(crate) fn state_unavailable(reason: &'static str, id: Option<&Value>) -> Refusal {
    let mut response = jsonrpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        id,
        code::STATE_UNAVAILABLE,
        "The gateway cannot check its shared state right now; retry shortly",
        json!({ "reason": reason }),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    Refusal::error(reason, response)
}

/// A bearer challenge (401 or 403) with an optional OAuth error body.
pub(crate) fn challenge(
    status: StatusCode,
    challenge: &BearerChallenge,
    error: Option<OAuthErrorResponse>,
) -> Response {
    let body = error.map_or_else(Bytes::new, |e| {
        Bytes::from(serde_json::to_vec(&e).unwrap_or_default())
    });
    let mut response = json(status, body);
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, challenge.to_header_value());
    response
}

/// A plain status with a short JSON-RPC error (no id).
pub(crate) fn status(status: StatusCode, code: i64, message: &str) -> Response {
    jsonrpc_error(status, None, code, message, Value::Null)
}

pub(crate) fn unauthenticated(upstream: &Upstream, error: &InboundError) -> Refusal {
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
pub(crate) fn policy_error(message: Option<&Message>, text: &str, data: Value) -> Response {
    match message {
        Some(m) if m.kind == MessageKind::Request => {
            jsonrpc_error(StatusCode::OK, m.id.as_ref(), code::FORBIDDEN, text, data)
        }
        _ => jsonrpc_error(StatusCode::FORBIDDEN, None, code::FORBIDDEN, text, data),
    }
}

pub(crate) fn credential_refusal(
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
        CredentialError::NoIdpSignIn => Refusal::deny(
            reason,
            policy_error(
                message,
                "This MCP server needs a browser sign-in through the gateway",
                json!({ "reason": reason }),
            ),
        ),
        CredentialError::StepUpRequired
        | CredentialError::ReauthenticationRequired
        | CredentialError::NotForThisRoute => {
            let (code, description) = match error {
                CredentialError::StepUpRequired => (
                    OAuthErrorCode::InsufficientUserAuthentication,
                    Some("The identity provider asks for a stronger sign-in"),
                ),
                CredentialError::ReauthenticationRequired => (
                    OAuthErrorCode::InvalidToken,
                    Some("The identity provider session has ended: sign in again"),
                ),
                _ => (OAuthErrorCode::InvalidToken, None),
            };
            let c = BearerChallenge::new()
                .with_error(code)
                .with_resource_metadata(upstream.metadata_url.as_str());
            Refusal::deny(
                reason,
                challenge(
                    StatusCode::UNAUTHORIZED,
                    &c,
                    Some(match description {
                        Some(description) => {
                            OAuthErrorResponse::new(code).with_description(description)
                        }
                        None => OAuthErrorResponse::new(code),
                    }),
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

pub(crate) fn transport_refusal(id: Option<&Value>, error: &reqwest::Error) -> Refusal {
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

/// A transport error's kind, for logs (never its message, which may hold a URL).
pub(crate) fn error_kind(error: &reqwest::Error) -> &'static str {
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
