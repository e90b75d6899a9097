//! The answers the gateway itself gives: JSON-RPC errors and bearer challenges.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use idjag_core::OAuthErrorResponse;
use idjag_core::challenge::BearerChallenge;
use idjag_core::server::no_store_headers;
use serde_json::Value;

use crate::jsonrpc::error_body;

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
        crate::jsonrpc::code::OVERLOADED,
        "The gateway is at capacity; retry shortly",
        Value::Null,
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
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
