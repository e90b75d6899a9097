//! Steps 7 and 8: the POST body, within its size limit and time, and the one JSON-RPC
//! message it holds, consistent with the 2026-07-28 standard headers.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::plan::ProxySettings;
use crate::protocol::headers::{MCP_METHOD, MCP_NAME};
use crate::protocol::jsonrpc::{CheckedBody, Message, code};
use crate::proxy::refusal::{Refusal, jsonrpc_error, status};

/// Reads the POST body (413 over the limit, 408 after the body timeout, 400 when cut) and
/// its message (400 unless the strict reader reads one JSON-RPC 2.0 message, matching the
/// standard headers: the reader's code and message, `id` `null`, the reader's reason in
/// the audit line).
pub(crate) async fn read_post(
    settings: &ProxySettings,
    headers: &HeaderMap,
    body: Body,
) -> Result<CheckedBody, Refusal> {
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
    let checked = CheckedBody::read(bytes).map_err(|e| {
        Refusal::deny(
            e.reason_code(),
            jsonrpc_error(
                StatusCode::BAD_REQUEST,
                None,
                e.code(),
                e.code_message(),
                Value::Null,
            ),
        )
    })?;
    check_standard_headers(headers, checked.message())?;
    Ok(checked)
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
                code::HEADER_MISMATCH,
                "Mcp-Method or Mcp-Name does not match the body",
                Value::Null,
            ),
        ));
    }
    Ok(())
}
