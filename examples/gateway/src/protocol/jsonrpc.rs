//! Reading the client's JSON-RPC message, and the JSON-RPC errors the gateway answers with.
//!
//! The gateway reads each POST body whole (it is bounded) to learn the method and, for
//! `tools/call`, the tool and its arguments, before anything goes upstream. It reads it with
//! one strict reader, [`idjag_core::jsonrpc::read_message`], and nothing else: a body that is
//! not exactly one unambiguous JSON-RPC 2.0 message (a repeated or case-folded member name at
//! any depth, NUL or control characters in names, methods or tool names, a message that is
//! two kinds at once, a batch) is refused with 400 and the reader's JSON-RPC error, without
//! `id` (threats G27 to G30 in `docs/threat-model.md`). What the reader accepts, a
//! first-member-wins, a last-member-wins and a case-insensitive parser all read as the same
//! method, tool and arguments, so the upstream runs what was checked.
//!
//! [`CheckedBody`] ties the bytes to that reading: it is built only by [`CheckedBody::read`],
//! and the proxy forwards [`CheckedBody::bytes`], the very bytes the reader accepted.

use bytes::Bytes;
use idjag_core::jsonrpc as strict;
pub use idjag_core::jsonrpc::{MessageError, MessageKind};
use serde_json::{Map, Value, json};

/// Gateway error codes (JSON-RPC server-error range; MCP itself uses -32002 and -32042).
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = idjag_core::jsonrpc::code::PARSE_ERROR;
    /// Not a JSON-RPC 2.0 message.
    pub const INVALID_REQUEST: i64 = idjag_core::jsonrpc::code::INVALID_REQUEST;
    /// `tools/call` without a tool name.
    pub const INVALID_PARAMS: i64 = idjag_core::jsonrpc::code::INVALID_PARAMS;
    /// A request the transport refuses (the MCP SDKs' servers answer an unsupported
    /// `MCP-Protocol-Version` with it).
    pub const BAD_REQUEST: i64 = -32000;
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
    /// A caller is over one of its per-principal limits (HTTP 429, `Retry-After`).
    pub const RATE_LIMITED: i64 = -32037;
    /// MCP 2025-11-25 `URLElicitationRequiredError`: the user must visit a URL first
    /// (`data.elicitations`, URL-mode elicitation parameters).
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// MCP 2026-07-28 `HeaderMismatch` (basic/transports, server validation; SEP-2243): an
    /// `Mcp-Method` or `Mcp-Name` header disagrees with the body (HTTP 400).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// MCP 2026-07-28 `UnsupportedProtocolVersionError` (SEP-2575): `data.supported` lists
    /// the versions served, `data.requested` echoes the one asked for (HTTP 400).
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// The `_meta` member of a request's `params` that carries its protocol version from MCP
/// 2026-07-28 on (per-request metadata instead of an `initialize` handshake).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// The parts of a client message the gateway decides on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// Its kind.
    pub kind: MessageKind,
    /// `id`, when present (never `null`).
    pub id: Option<Value>,
    /// `method`, when present.
    pub method: Option<String>,
    /// The tool of a `tools/call`.
    pub tool: Option<String>,
    /// The arguments of a `tools/call` (an object), when present.
    pub arguments: Option<Value>,
    /// The protocol version a request declares in its own metadata
    /// (`params._meta["io.modelcontextprotocol/protocolVersion"]`, MCP 2026-07-28 on), when
    /// it is a string.
    pub protocol_version: Option<String>,
}

/// Reads a client message with the strict reader (see the [module docs](self)).
pub fn read_message(body: &[u8]) -> Result<Message, MessageError> {
    let message = strict::read_message(body)?;
    let kind = message.kind();
    let id = message.id().map(strict::RequestId::to_value);
    let method = message.method().map(str::to_owned);
    let tool = message.tool().map(str::to_owned);
    let protocol_version = message
        .params()
        .and_then(|params| params.get("_meta"))
        .and_then(|meta| meta.get(META_PROTOCOL_VERSION))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let arguments = message.into_arguments().map(Value::Object);
    Ok(Message {
        kind,
        id,
        method,
        tool,
        arguments,
        protocol_version,
    })
}

/// A POST body and the one message the strict reader read from it. The only way to make one
/// is [`Self::read`], so the bytes it forwards are the bytes that were checked.
#[derive(Debug, Clone)]
pub struct CheckedBody {
    bytes: Bytes,
    message: Message,
}

impl CheckedBody {
    /// Reads `bytes` with [`read_message`].
    pub fn read(bytes: Bytes) -> Result<Self, MessageError> {
        let message = read_message(&bytes)?;
        Ok(Self { bytes, message })
    }

    /// The bytes as received (and as forwarded).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The message they hold.
    pub fn message(&self) -> &Message {
        &self.message
    }
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

/// Why an upstream answer to be filtered cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnfilterableAnswer {
    /// Not one unambiguous JSON-RPC message (the strict reader's reason).
    #[error("the answer is not one unambiguous JSON-RPC message: {0}")]
    Message(MessageError),
}

/// Reads an upstream answer that may carry a tool list with the strict reader, filters it
/// with [`filter_tools`] and gives it back as JSON; `Ok(None)` when it carries no tool list
/// (its bytes can then go on as they came: the strict reader found them unambiguous).
pub fn filter_tool_list_answer(
    body: &[u8],
    visible: &dyn Fn(&str) -> bool,
) -> Result<Option<Vec<u8>>, UnfilterableAnswer> {
    let message = strict::read_message(body).map_err(UnfilterableAnswer::Message)?;
    let mut value = message.into_value();
    if !filter_tools(&mut value, visible) && !is_tool_list(&value) {
        return Ok(None);
    }
    Ok(Some(serde_json::to_vec(&value).unwrap_or_default()))
}

/// Keeps only the tools `visible` accepts in a `tools/list` result (`result.tools`), failing
/// closed: entries without a string `name` are removed, a `tools` that is not an array
/// becomes an empty one, and a member of `result` that folds to `tools` without being it (a
/// case-insensitive client would read it as the list) is removed. Returns whether anything
/// was removed.
pub fn filter_tools(message: &mut Value, visible: &dyn Fn(&str) -> bool) -> bool {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return false;
    };
    let before = result.len();
    result.retain(|name, _| name == "tools" || strict::fold_member_name(name) != "tools");
    let mut removed = result.len() != before;
    let Some(tools) = result.get_mut("tools") else {
        return removed;
    };
    let Some(list) = tools.as_array_mut() else {
        *tools = Value::Array(Vec::new());
        return true;
    };
    let before = list.len();
    list.retain(|tool| {
        tool.get("name")
            .and_then(Value::as_str)
            .is_some_and(visible)
    });
    removed |= list.len() != before;
    removed
}

/// Whether a server message carries a tool list (`result.tools`).
pub fn is_tool_list(message: &Value) -> bool {
    message.get("result").and_then(|r| r.get("tools")).is_some()
}

/// Whether `text` may hold a member named `tools` under some spelling: literally (in any
/// ASCII case), through an escape, or through a non-ASCII character that folds to ASCII
/// (the long s). When it is `false`, no JSON parser, case-insensitive or not, finds a tool
/// list in it; the SSE filter skips such events without parsing them.
pub fn may_hold_tools(text: &[u8]) -> bool {
    text.iter().any(|&b| b == b'\\' || b >= 0x80)
        || text.windows(5).any(|w| w.eq_ignore_ascii_case(b"tools"))
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
    fn bad_messages_are_refused_with_the_strict_readers_reason() {
        let cases: [(&[u8], MessageError); 9] = [
            (b"{", MessageError::InvalidJson),
            (b"[]", MessageError::Batch),
            (b"\"x\"", MessageError::NotAnObject),
            (br#"{"id":1,"method":"ping"}"#, MessageError::Version),
            (
                br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                MessageError::InvalidId,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                MessageError::InvalidMethod,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
                MessageError::NoToolName,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#,
                MessageError::InvalidToolName,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}"#,
                MessageError::DuplicateMember,
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
    fn a_checked_body_forwards_the_bytes_it_read() {
        let bytes = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo"}}"#,
        );
        let checked = CheckedBody::read(bytes.clone()).unwrap();
        assert_eq!(checked.bytes(), &bytes);
        assert_eq!(checked.message().tool.as_deref(), Some("echo"));
        assert_eq!(checked.message().id, Some(json!("a")));
        assert_eq!(checked.message().arguments, None);
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
    fn tool_lists_fail_closed() {
        // A lone lookalike of `tools` is the list to a case-insensitive client: removed.
        let mut lookalike =
            json!({"jsonrpc":"2.0","id":2,"result":{"TOOLS":[{"name":"x"}],"toolſ":[]}});
        assert!(filter_tools(&mut lookalike, &|_| true));
        assert_eq!(lookalike["result"], json!({}));
        let mut not_a_list = json!({"jsonrpc":"2.0","id":2,"result":{"tools":{"name":"x"}}});
        assert!(filter_tools(&mut not_a_list, &|_| true));
        assert_eq!(not_a_list["result"]["tools"], json!([]));
        let answer = "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"\\u0074ools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}";
        assert!(may_hold_tools(answer.as_bytes()));
        let filtered = filter_tool_list_answer(answer.as_bytes(), &|n| n == "a")
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&filtered).unwrap(),
            json!({"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a"}]}})
        );
        let twice = br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[],"tools":[{"name":"b"}]}}"#;
        assert_eq!(
            filter_tool_list_answer(twice, &|_| false),
            Err(UnfilterableAnswer::Message(MessageError::DuplicateMember))
        );
        assert_eq!(
            filter_tool_list_answer(br#"{"jsonrpc":"2.0","id":2,"result":{}}"#, &|_| false),
            Ok(None)
        );
        assert!(!may_hold_tools(br#"{"jsonrpc":"2.0","id":2,"result":{}}"#));
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
