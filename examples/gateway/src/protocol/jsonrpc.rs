//! Reading the client's JSON-RPC message, and the JSON-RPC errors the gateway answers with.
//!
//! The gateway reads each POST body whole (it is bounded) to learn the method and, for
//! `tools/call`, the tool and its arguments, before anything goes upstream. A body that is
//! not one JSON-RPC 2.0 object is refused with 400 and a JSON-RPC error without `id`
//! (batches, allowed only by the 2025-03-26 revision, are refused too: each element would
//! need its own decision and its own audit line).

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// Gateway error codes (JSON-RPC server-error range; MCP itself uses -32002 and -32042).
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a JSON-RPC 2.0 message.
    pub const INVALID_REQUEST: i64 = -32600;
    /// `tools/call` without a tool name.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Refused by the gateway's policy or the IdP's.
    pub const FORBIDDEN: i64 = -32030;
    /// The upstream could not be reached or failed (HTTP 502).
    pub const UPSTREAM_UNAVAILABLE: i64 = -32031;
    /// The upstream did not answer in time (HTTP 504).
    pub const UPSTREAM_TIMEOUT: i64 = -32032;
    /// No upstream credential could be had (IdP or resource AS failure).
    pub const CREDENTIAL_UNAVAILABLE: i64 = -32033;
    /// The gateway is at capacity (HTTP 503).
    pub const OVERLOADED: i64 = -32034;
    /// The call is held for an administrator's approval (or was rejected).
    pub const APPROVAL_REQUIRED: i64 = -32035;
    /// The gateway's shared state (revocations, approvals, sessions) cannot be checked now:
    /// the store is unreachable or the local copy of the revocations is past its staleness
    /// bound (HTTP 503, `Retry-After`).
    pub const STATE_UNAVAILABLE: i64 = -32036;
}

/// What kind of message the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageKind {
    /// A request (has `method` and `id`).
    Request,
    /// A notification (has `method`, no `id`).
    Notification,
    /// A response to a server request (has `id`, no `method`).
    Response,
}

/// The parts of a client message the gateway decides on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// Its kind.
    pub kind: MessageKind,
    /// `id`, when present.
    pub id: Option<Value>,
    /// `method`, when present.
    pub method: Option<String>,
    /// The tool of a `tools/call`.
    pub tool: Option<String>,
    /// The arguments of a `tools/call`.
    pub arguments: Option<Value>,
}

/// Why a body is not an acceptable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Not JSON.
    #[error("parse error")]
    Parse,
    /// A JSON array (batch).
    #[error("batches are not supported")]
    Batch,
    /// Not a JSON-RPC 2.0 object.
    #[error("invalid request")]
    Invalid,
    /// `tools/call` without a string `params.name`.
    #[error("tools/call needs params.name")]
    NoToolName,
}

impl MessageError {
    /// The JSON-RPC error code.
    pub fn code(self) -> i64 {
        match self {
            Self::Parse => code::PARSE_ERROR,
            Self::Batch | Self::Invalid => code::INVALID_REQUEST,
            Self::NoToolName => code::INVALID_PARAMS,
        }
    }
}

/// Reads a client message.
pub fn read_message(body: &[u8]) -> Result<Message, MessageError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| MessageError::Parse)?;
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(MessageError::Batch),
        _ => return Err(MessageError::Invalid),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(MessageError::Invalid);
    }
    let id = object.remove("id");
    if id
        .as_ref()
        .is_some_and(|id| !(id.is_string() || id.is_number() || id.is_null()))
    {
        return Err(MessageError::Invalid);
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => Some(method),
        Some(_) => return Err(MessageError::Invalid),
        None => None,
    };
    let kind = match (&method, &id) {
        (Some(_), Some(_)) => MessageKind::Request,
        (Some(_), None) => MessageKind::Notification,
        (None, Some(_)) if object.contains_key("result") || object.contains_key("error") => {
            MessageKind::Response
        }
        _ => return Err(MessageError::Invalid),
    };
    let (mut tool, mut arguments) = (None, None);
    if method.as_deref() == Some("tools/call") {
        let mut params = match object.remove("params") {
            Some(Value::Object(params)) => params,
            _ => return Err(MessageError::NoToolName),
        };
        match params.remove("name") {
            Some(Value::String(name)) => tool = Some(name),
            _ => return Err(MessageError::NoToolName),
        }
        arguments = params.remove("arguments");
    }
    Ok(Message {
        kind,
        id,
        method,
        tool,
        arguments,
    })
}

/// A JSON-RPC error response body.
pub fn error_body(id: Option<&Value>, code: i64, message: &str, data: Value) -> Bytes {
    let mut error = Map::new();
    error.insert("code".into(), code.into());
    error.insert("message".into(), message.into());
    if !data.is_null() {
        error.insert("data".into(), data);
    }
    let body = json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": error,
    });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// Keeps only the tools `visible` accepts in a `tools/list` result (`result.tools`). Returns
/// whether anything was removed. Entries without a string `name` are removed.
pub fn filter_tools(message: &mut Value, visible: &dyn Fn(&str) -> bool) -> bool {
    let Some(tools) = message
        .get_mut("result")
        .and_then(|r| r.get_mut("tools"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = tools.len();
    tools.retain(|tool| {
        tool.get("name")
            .and_then(Value::as_str)
            .is_some_and(visible)
    });
    tools.len() != before
}

/// Whether a server message is a response carrying a tool list.
pub fn is_tool_list(message: &Value) -> bool {
    message.get("id").is_some()
        && message
            .get("result")
            .and_then(|r| r.get("tools"))
            .is_some_and(Value::is_array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tools_call_gives_its_tool_and_arguments() {
        let m = read_message(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"hi"}}}"#,
        )
        .unwrap();
        assert_eq!(m.kind, MessageKind::Request);
        assert_eq!(m.id, Some(json!(7)));
        assert_eq!(m.method.as_deref(), Some("tools/call"));
        assert_eq!(m.tool.as_deref(), Some("add_note"));
        assert_eq!(m.arguments, Some(json!({"text": "hi"})));
    }

    #[test]
    fn notifications_and_responses_are_told_apart() {
        let n = read_message(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind, MessageKind::Notification);
        let r = read_message(br#"{"jsonrpc":"2.0","id":"s1","result":{}}"#).unwrap();
        assert_eq!(r.kind, MessageKind::Response);
        assert_eq!(r.method, None);
    }

    #[test]
    fn bad_messages_are_refused_with_their_code() {
        let cases: [(&[u8], MessageError); 8] = [
            (b"{", MessageError::Parse),
            (b"[]", MessageError::Batch),
            (b"\"x\"", MessageError::Invalid),
            (br#"{"id":1,"method":"ping"}"#, MessageError::Invalid),
            (
                br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                MessageError::Invalid,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                MessageError::Invalid,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
                MessageError::NoToolName,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#,
                MessageError::NoToolName,
            ),
        ];
        for (body, error) in cases {
            assert_eq!(
                read_message(body),
                Err(error),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(MessageError::NoToolName.code(), -32602);
    }

    #[test]
    fn tool_lists_are_filtered_by_name() {
        let mut list = json!({"jsonrpc":"2.0","id":2,"result":{"tools":[
            {"name":"list_notes"},{"name":"add_note"},{"title":"nameless"}
        ],"nextCursor":"c"}});
        assert!(is_tool_list(&list));
        assert!(filter_tools(&mut list, &|name| name == "list_notes"));
        assert_eq!(list["result"]["tools"], json!([{"name":"list_notes"}]));
        assert_eq!(list["result"]["nextCursor"], "c");
        let mut other = json!({"jsonrpc":"2.0","id":2,"result":{"content":[]}});
        assert!(!is_tool_list(&other));
        assert!(!filter_tools(&mut other, &|_| false));
    }

    #[test]
    fn error_bodies_carry_the_id_and_data() {
        let body = error_body(
            Some(&json!(3)),
            code::FORBIDDEN,
            "denied",
            json!({"reason":"tool_denied"}),
        );
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            json!({"jsonrpc":"2.0","id":3,"error":{"code":-32030,"message":"denied","data":{"reason":"tool_denied"}}})
        );
    }
}
