//! One strict reader for the JSON-RPC 2.0 messages of MCP: one message, one meaning.
//!
//! A gateway or a tool-scope check decides on a message (its kind, method, tool and
//! arguments) and then forwards the bytes it read. If the upstream parses those bytes with
//! another JSON parser, that parser must see the same message, or the upstream runs something
//! that was never authorized. Reasonable parsers disagree on:
//!
//! - **repeated member names**: serde_json and most parsers keep the last one, others the
//!   first (RFC 8259 §4 leaves it open);
//! - **names that differ only in case**: Go's `encoding/json` (v1) binds a struct field to a
//!   member whose name matches case-insensitively under Unicode simple case folding, so
//!   `"Name"` fills `name`, `"ARGUMENTS"` or `"argument\u{17f}"` (with the long s `ſ`, U+017F)
//!   fill `arguments`, and `"\u{212a}ind"` (with the Kelvin sign, U+212A) fills `kind` (the MCP
//!   Go SDKs' advisories CVE-2026-27896, GHSA-wvj2-96wp-fq3f and GHSA-q382-vc8q-7jhj);
//! - **NUL and control characters**: C-string based parsers stop at NUL, others strip control
//!   characters;
//! - **what the message is**: a message with both `result` and `error`, or `method` and
//!   `result`, is a request to one reader and a response to another; a batch is many messages;
//! - **text and numbers**: invalid UTF-8 and lone surrogates are replaced by some parsers and
//!   refused by others; integers beyond ±(2^53 − 1) are exact in some parsers and rounded in
//!   others (I-JSON, RFC 7493 §2.2).
//!
//! [`read_message`] refuses every such message. What it accepts, every one of those parsers
//! reads the same way: the property test `g27_reference_parsers_agree_on_every_accepted_message`
//! checks it against a first-member-wins, a last-member-wins, a case-insensitive and a
//! NUL-truncating reference parser, and the fuzz target `jsonrpc` against serde_json.
//!
//! # The rules
//!
//! Text: UTF-8 without lone surrogate escapes; one JSON value, nesting at most 128 deep
//! (serde_json's limit); every number within ±(2^53 − 1).
//!
//! Member names, in every object at every depth:
//! - no name repeats;
//! - no two names are equal once folded: control characters (Unicode `Cc`, NUL included)
//!   removed, then Unicode case folding ([`fold_member_name`]; this covers ASCII case and
//!   Unicode simple case folding, and errs on the side of collisions);
//! - no name holds NUL.
//!
//! In the envelope objects (the message, its `params`, `result`, `error` and their `_meta`),
//! a name that folds to one of [`ENVELOPE_MEMBERS`] must be that member, spelled exactly: a
//! lone `"Arguments"` would be no arguments here and the arguments to a case-insensitive
//! reader. Inside free-form values (tool arguments, results' content) only the sibling rules
//! apply: a tool's own argument names are the tool's business.
//!
//! Shape: `jsonrpc` is exactly `"2.0"`, and the message is exactly one of
//! - a request: `method` and `id`, no `result` or `error`;
//! - a notification: `method`, no `id`, `result` or `error`;
//! - a response: `id` and exactly one of `result` and `error`, no `method` or `params`.
//!
//! `method` is a non-empty string without control characters; `id` a string or an integer
//! (MCP forbids `null`, except in an error response); `params` an object; `result` an object;
//! `error` an object with an integer `code` and a string `message`. A `tools/call` has a
//! `params.name` (a non-empty string without control characters) and, if any,
//! `params.arguments` as an object. Other top-level members are kept as extensions.
//!
//! # Why here
//!
//! The reader lives in idjag-core, beside the duplicate-rejecting JSON of [`crate::jose`],
//! because both of its users need it without what they do not use: the gateway must not pull
//! rmcp into its production build, and idjag-mcp's server pieces already build on core. It is
//! pure parsing, free of I/O, like the rest of the crate.
//!
//! # Cost
//!
//! One pass of serde_json over the text, building the same `serde_json::Value` tree a lenient
//! `serde_json::from_slice::<Value>` builds, plus a check per object of its member names
//! (no allocation for names that are lower-case ASCII). The repository's `BENCHMARKS.md`
//! for idjag-core has the instruction counts.
//!
//! ```
//! use idjag_core::jsonrpc::{MessageError, MessageKind, read_message};
//! let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"hi"}}}"#;
//! let message = read_message(call)?;
//! assert_eq!(message.kind(), MessageKind::Request);
//! assert_eq!(message.tool(), Some("add_note"));
//! assert_eq!(message.arguments().unwrap()["text"], "hi");
//!
//! // `arguments` spelled with the long s: Go's encoding/json would pass these arguments, which
//! // nobody checked, to the tool.
//! let smuggled = "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\
//!     \"params\":{\"name\":\"list_notes\",\"argument\u{17f}\":{\"all\":true}}}";
//! assert_eq!(
//!     read_message(smuggled.as_bytes()).unwrap_err(),
//!     MessageError::LookalikeMember { imitates: "arguments" }
//! );
//! # Ok::<(), MessageError>(())
//! ```

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// JSON-RPC error codes of the reader's refusals (JSON-RPC 2.0 §5.1).
pub mod code {
    /// `-32700`: the text is not one unambiguous JSON value.
    pub const PARSE_ERROR: i64 = -32700;
    /// `-32600`: the value is not one unambiguous JSON-RPC message.
    pub const INVALID_REQUEST: i64 = -32600;
    /// `-32602`: the parameters of the method are not acceptable.
    pub const INVALID_PARAMS: i64 = -32602;
}

/// The method of a tool call.
pub const TOOLS_CALL: &str = "tools/call";

/// The largest integer magnitude every JSON parser reads exactly: 2^53 − 1 (I-JSON,
/// RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The member names of the JSON-RPC envelope and of the MCP parameters and results that
/// decisions are made on. In the envelope objects, a name that folds to one of these must be
/// that name exactly.
pub const ENVELOPE_MEMBERS: [&str; 15] = [
    "jsonrpc",
    "id",
    "method",
    "params",
    "result",
    "error",
    "code",
    "message",
    "data",
    "name",
    "arguments",
    "_meta",
    "uri",
    "cursor",
    "progressToken",
];

/// [`ENVELOPE_MEMBERS`], folded (same order).
const ENVELOPE_FOLDED: [&str; 15] = [
    "jsonrpc",
    "id",
    "method",
    "params",
    "result",
    "error",
    "code",
    "message",
    "data",
    "name",
    "arguments",
    "_meta",
    "uri",
    "cursor",
    "progresstoken",
];

/// Members whose object value is an envelope object too.
const ENVELOPE_CHILDREN: [&str; 4] = ["params", "result", "error", "_meta"];

/// Objects with more members than this are checked through a hash map instead of pairwise.
const LINEAR_MEMBERS: usize = 16;

/// Why a body is not one unambiguous JSON-RPC message. Carries nothing from the body.
///
/// [`Self::code`] gives the JSON-RPC error code to answer with, [`Self::reason_code`] a
/// stable string for audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The body is not UTF-8 (threat G30).
    #[error("the message is not UTF-8")]
    NotUtf8,
    /// Not one JSON value: a syntax error, a lone surrogate escape, trailing data, or nesting
    /// deeper than 128 (threat G30).
    #[error("the message is not valid JSON")]
    InvalidJson,
    /// A number beyond ±(2^53 − 1), which parsers round differently (threat G30).
    #[error("a number is outside the range every parser reads exactly")]
    NumberOutOfRange,
    /// A member name repeats in one object (threat G27).
    #[error("a member name is repeated")]
    DuplicateMember,
    /// Two member names of one object are equal once control characters are removed and case
    /// is folded (threat G27).
    #[error("two member names collide after case folding or control-character removal")]
    CollidingMembers,
    /// A member name holds NUL, where C-string parsers stop reading (threat G28).
    #[error("a member name contains NUL")]
    NulInMemberName,
    /// A JSON array: a batch. Each message needs its own decision (threat G29).
    #[error("batches are not accepted")]
    Batch,
    /// Not a JSON object.
    #[error("the message is not a JSON object")]
    NotAnObject,
    /// `jsonrpc` is missing or is not `"2.0"`.
    #[error("jsonrpc is not \"2.0\"")]
    Version,
    /// In an envelope object, a name that folds to an envelope member without being it, such
    /// as `"Method"` or `"argument\u{17f}"` (threat G27).
    #[error("a member name imitates the member {imitates}")]
    LookalikeMember {
        /// The envelope member imitated.
        imitates: &'static str,
    },
    /// Members of two kinds: `method` with `result` or `error`, `params` in a response, or
    /// both `result` and `error` (threat G29).
    #[error("the message is more than one kind of message")]
    MixedKind,
    /// Neither `method`, `result` nor `error` (threat G29).
    #[error("the message is neither a request, a notification nor a response")]
    UnknownKind,
    /// `id` is not a string or a safe integer, is `null` outside an error response, or is
    /// missing from a response.
    #[error("the id is not acceptable")]
    InvalidId,
    /// `method` is not a non-empty string free of control characters (threat G28).
    #[error("the method is not acceptable")]
    InvalidMethod,
    /// `error` is not an object with an integer `code` and a string `message`.
    #[error("the error object is not acceptable")]
    InvalidError,
    /// `result` is not an object.
    #[error("the result is not an object")]
    InvalidResult,
    /// `params` is not an object.
    #[error("params is not an object")]
    ParamsNotObject,
    /// A `tools/call` without `params.name`.
    #[error("tools/call has no tool name")]
    NoToolName,
    /// `params.name` of a `tools/call` is not a non-empty string free of control characters
    /// (threat G28).
    #[error("the tool name is not acceptable")]
    InvalidToolName,
    /// `params.arguments` of a `tools/call` is not an object.
    #[error("the tool arguments are not an object")]
    ArgumentsNotObject,
}

impl MessageError {
    /// The JSON-RPC error code: [`code::PARSE_ERROR`] when the text itself cannot be read
    /// unambiguously, [`code::INVALID_PARAMS`] for the parameters of a method, and
    /// [`code::INVALID_REQUEST`] otherwise.
    pub const fn code(self) -> i64 {
        match self {
            Self::NotUtf8
            | Self::InvalidJson
            | Self::NumberOutOfRange
            | Self::DuplicateMember
            | Self::CollidingMembers
            | Self::NulInMemberName => code::PARSE_ERROR,
            Self::ParamsNotObject
            | Self::NoToolName
            | Self::InvalidToolName
            | Self::ArgumentsNotObject => code::INVALID_PARAMS,
            Self::Batch
            | Self::NotAnObject
            | Self::Version
            | Self::LookalikeMember { .. }
            | Self::MixedKind
            | Self::UnknownKind
            | Self::InvalidId
            | Self::InvalidMethod
            | Self::InvalidError
            | Self::InvalidResult => code::INVALID_REQUEST,
        }
    }

    /// The JSON-RPC 2.0 message for [`Self::code`]: `Parse error`, `Invalid Request` or
    /// `Invalid params`.
    pub const fn code_message(self) -> &'static str {
        match self.code() {
            code::PARSE_ERROR => "Parse error",
            code::INVALID_PARAMS => "Invalid params",
            _ => "Invalid Request",
        }
    }

    /// A stable reason code for audit logs.
    pub const fn reason_code(self) -> &'static str {
        match self {
            Self::NotUtf8 => "jsonrpc_not_utf8",
            Self::InvalidJson => "jsonrpc_invalid_json",
            Self::NumberOutOfRange => "jsonrpc_number_out_of_range",
            Self::DuplicateMember => "jsonrpc_duplicate_member",
            Self::CollidingMembers => "jsonrpc_colliding_members",
            Self::NulInMemberName => "jsonrpc_nul_in_member_name",
            Self::Batch => "jsonrpc_batch",
            Self::NotAnObject => "jsonrpc_not_an_object",
            Self::Version => "jsonrpc_version",
            Self::LookalikeMember { .. } => "jsonrpc_lookalike_member",
            Self::MixedKind => "jsonrpc_mixed_kind",
            Self::UnknownKind => "jsonrpc_unknown_kind",
            Self::InvalidId => "jsonrpc_invalid_id",
            Self::InvalidMethod => "jsonrpc_invalid_method",
            Self::InvalidError => "jsonrpc_invalid_error",
            Self::InvalidResult => "jsonrpc_invalid_result",
            Self::ParamsNotObject => "jsonrpc_params_not_object",
            Self::NoToolName => "jsonrpc_no_tool_name",
            Self::InvalidToolName => "jsonrpc_invalid_tool_name",
            Self::ArgumentsNotObject => "jsonrpc_arguments_not_object",
        }
    }

    /// The JSON-RPC error response to send back: `id` `null` (the message could not be read),
    /// [`Self::code`] and [`Self::code_message`]; nothing from the body.
    ///
    /// ```
    /// use idjag_core::jsonrpc::MessageError;
    /// assert_eq!(
    ///     MessageError::DuplicateMember.response_body(),
    ///     serde_json::json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})
    /// );
    /// ```
    pub fn response_body(self) -> Value {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": self.code(), "message": self.code_message() },
        })
    }
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// `method` and `id`: answered with a response.
    Request,
    /// `method` without `id`: never answered.
    Notification,
    /// `id` and `result` or `error`: the answer to a request of the other side.
    Response,
}

/// A request id: a string or an integer within ±(2^53 − 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestId {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(String),
}

impl RequestId {
    /// The id as JSON, to echo in a response.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Number(n) => Value::from(*n),
            Self::String(s) => Value::String(s.clone()),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

/// The error object of an error response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ErrorObject {
    /// `code`.
    pub code: i64,
    /// `message`.
    pub message: String,
    /// `data`, if present.
    pub data: Option<Value>,
}

/// A message [`read_message`] accepted: its kind and its decided parts.
///
/// Any other JSON parser reads the same kind, method, tool and arguments from the same bytes,
/// so the bytes can be forwarded as they are; [`Self::into_value`] rebuilds the message for
/// those who re-serialize instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    kind: MessageKind,
    id: Option<RequestId>,
    method: Option<String>,
    params: Option<Map<String, Value>>,
    result: Option<Map<String, Value>>,
    error: Option<ErrorObject>,
    extensions: Map<String, Value>,
}

impl Message {
    /// Request, notification or response.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The id: present in requests and responses, absent in notifications and in an error
    /// response whose `id` is `null`.
    pub fn id(&self) -> Option<&RequestId> {
        self.id.as_ref()
    }

    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Whether this is a `tools/call` (request or notification).
    pub fn is_tool_call(&self) -> bool {
        self.method.as_deref() == Some(TOOLS_CALL)
    }

    /// `params`, if present.
    pub fn params(&self) -> Option<&Map<String, Value>> {
        self.params.as_ref()
    }

    /// The tool of a `tools/call` (`params.name`); `None` for every other method.
    pub fn tool(&self) -> Option<&str> {
        if !self.is_tool_call() {
            return None;
        }
        self.params.as_ref()?.get("name")?.as_str()
    }

    /// The arguments of a `tools/call` (`params.arguments`), if it has any; `None` for every
    /// other method.
    pub fn arguments(&self) -> Option<&Map<String, Value>> {
        if !self.is_tool_call() {
            return None;
        }
        self.params.as_ref()?.get("arguments")?.as_object()
    }

    /// The arguments of a `tools/call`, taken out of the message (what
    /// [`Message::arguments`] borrows), without copying them.
    pub fn into_arguments(self) -> Option<Map<String, Value>> {
        if !self.is_tool_call() {
            return None;
        }
        match self.params?.remove("arguments")? {
            Value::Object(arguments) => Some(arguments),
            _ => None,
        }
    }

    /// `params._meta`, if present and an object.
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        self.params.as_ref()?.get("_meta")?.as_object()
    }

    /// The `result` of a success response.
    pub fn result(&self) -> Option<&Map<String, Value>> {
        self.result.as_ref()
    }

    /// The `result` of a success response, to edit before re-serializing (for example to
    /// filter a tool list).
    pub fn result_mut(&mut self) -> Option<&mut Map<String, Value>> {
        self.result.as_mut()
    }

    /// The `error` of an error response.
    pub fn error(&self) -> Option<&ErrorObject> {
        self.error.as_ref()
    }

    /// Top-level members other than the JSON-RPC ones (none of them looks like one).
    pub fn extensions(&self) -> &Map<String, Value> {
        &self.extensions
    }

    /// The message as a JSON object again: `jsonrpc`, then `id`, `method`, `params`,
    /// `result`, `error` as present, then the extensions.
    pub fn into_value(self) -> Value {
        let mut object = Map::new();
        object.insert("jsonrpc".into(), Value::from("2.0"));
        match (&self.id, self.kind) {
            (Some(id), _) => {
                object.insert("id".into(), id.to_value());
            }
            (None, MessageKind::Response) => {
                object.insert("id".into(), Value::Null);
            }
            (None, _) => {}
        }
        if let Some(method) = self.method {
            object.insert("method".into(), Value::String(method));
        }
        if let Some(params) = self.params {
            object.insert("params".into(), Value::Object(params));
        }
        if let Some(result) = self.result {
            object.insert("result".into(), Value::Object(result));
        }
        if let Some(error) = self.error {
            let mut e = Map::new();
            e.insert("code".into(), Value::from(error.code));
            e.insert("message".into(), Value::String(error.message));
            if let Some(data) = error.data {
                e.insert("data".into(), data);
            }
            object.insert("error".into(), Value::Object(e));
        }
        object.extend(self.extensions);
        Value::Object(object)
    }
}

/// Reads one JSON-RPC 2.0 message strictly (see the [module documentation](self) for every
/// rule), returning its decided parts or why it is refused.
///
/// ```
/// use idjag_core::jsonrpc::{MessageError, read_message};
/// // A repeated `method` is `tools/list` to some parsers and `tools/call` to others.
/// let twice = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#;
/// assert_eq!(read_message(twice), Err(MessageError::DuplicateMember));
/// assert_eq!(MessageError::DuplicateMember.code(), -32700);
/// ```
pub fn read_message(body: &[u8]) -> Result<Message, MessageError> {
    let text = std::str::from_utf8(body).map_err(|_| MessageError::NotUtf8)?;
    let refusal = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let top = de::Deserializer::deserialize_any(&mut de, Top { refusal: &refusal })
        .and_then(|top| de.end().map(|()| top));
    match top {
        Ok(Some(members)) => classify(members),
        Ok(None) => Err(MessageError::NotAnObject),
        Err(_) => Err(refusal.get().unwrap_or(MessageError::InvalidJson)),
    }
}

/// Folds a member name the way [`read_message`] compares names: control characters (Unicode
/// `Cc`, NUL included) removed, then each character replaced by the lower case of its upper
/// case until nothing changes. Two names that Unicode simple case folding (Go's
/// `strings.EqualFold`) or ASCII case-insensitivity equate fold to the same string; a few more
/// pairs do too (`ß` and `ss`), which only makes the reader refuse more.
///
/// ```
/// use idjag_core::jsonrpc::fold_member_name;
/// assert_eq!(fold_member_name("Arguments"), "arguments");
/// assert_eq!(fold_member_name("argument\u{17f}"), "arguments"); // long s
/// assert_eq!(fold_member_name("na\u{212a}e"), "nake"); // Kelvin sign
/// assert_eq!(fold_member_name("me\u{0}thod\u{7}"), "method");
/// ```
pub fn fold_member_name(name: &str) -> Cow<'_, str> {
    let bytes = name.as_bytes();
    if bytes
        .iter()
        .all(|&b| b.is_ascii() && !b.is_ascii_uppercase() && !b.is_ascii_control())
    {
        return Cow::Borrowed(name);
    }
    if name.is_ascii() {
        return Cow::Owned(
            bytes
                .iter()
                .filter(|b| !b.is_ascii_control())
                .map(|b| char::from(b.to_ascii_lowercase()))
                .collect(),
        );
    }
    let mut folded: String = name.chars().filter(|c| !c.is_control()).collect();
    // Lower of upper reaches the fold in one step for all but a few characters (U+1E9E to
    // U+00DF to "ss"); four rounds are more than any needs.
    for _ in 0..4 {
        let next: String = folded
            .chars()
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
            .collect();
        if next == folded {
            break;
        }
        folded = next;
    }
    Cow::Owned(folded)
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The fields of the top-level object, by name.
#[derive(Default)]
struct Envelope {
    jsonrpc: Option<Value>,
    id: Option<Value>,
    method: Option<Value>,
    params: Option<Value>,
    result: Option<Value>,
    error: Option<Value>,
    extensions: Map<String, Value>,
}

fn classify(members: Vec<(String, Value)>) -> Result<Message, MessageError> {
    let mut e = Envelope::default();
    for (name, value) in members {
        let slot = match name.as_str() {
            "jsonrpc" => &mut e.jsonrpc,
            "id" => &mut e.id,
            "method" => &mut e.method,
            "params" => &mut e.params,
            "result" => &mut e.result,
            "error" => &mut e.error,
            _ => {
                e.extensions.insert(name, value);
                continue;
            }
        };
        *slot = Some(value);
    }
    if !matches!(&e.jsonrpc, Some(Value::String(v)) if v == "2.0") {
        return Err(MessageError::Version);
    }
    let kind = match (e.method.is_some(), e.result.is_some(), e.error.is_some()) {
        (true, false, false) if e.id.is_some() => MessageKind::Request,
        (true, false, false) => MessageKind::Notification,
        (false, true, false) | (false, false, true) if e.params.is_none() => MessageKind::Response,
        (false, false, false) => return Err(MessageError::UnknownKind),
        _ => return Err(MessageError::MixedKind),
    };
    let params = match e.params {
        None => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) => return Err(MessageError::ParamsNotObject),
    };
    let id = match e.id {
        None if kind == MessageKind::Response => return Err(MessageError::InvalidId),
        None => None,
        Some(Value::Null) if kind == MessageKind::Response && e.error.is_some() => None,
        Some(Value::String(s)) => Some(RequestId::String(s)),
        Some(Value::Number(n)) => Some(RequestId::Number(
            n.as_i64().ok_or(MessageError::InvalidId)?,
        )),
        Some(_) => return Err(MessageError::InvalidId),
    };
    let method = match e.method {
        None => None,
        Some(Value::String(m)) if !m.is_empty() && !has_control(&m) => Some(m),
        Some(_) => return Err(MessageError::InvalidMethod),
    };
    if method.as_deref() == Some(TOOLS_CALL) {
        check_tool_call(params.as_ref())?;
    }
    let result = match e.result {
        None => None,
        Some(Value::Object(result)) => Some(result),
        Some(_) => return Err(MessageError::InvalidResult),
    };
    let error = e.error.map(error_object).transpose()?;
    Ok(Message {
        kind,
        id,
        method,
        params,
        result,
        error,
        extensions: e.extensions,
    })
}

fn check_tool_call(params: Option<&Map<String, Value>>) -> Result<(), MessageError> {
    let params = params.ok_or(MessageError::NoToolName)?;
    match params.get("name") {
        None => return Err(MessageError::NoToolName),
        Some(Value::String(name)) if !name.is_empty() && !has_control(name) => {}
        Some(_) => return Err(MessageError::InvalidToolName),
    }
    match params.get("arguments") {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(MessageError::ArgumentsNotObject),
    }
}

fn error_object(value: Value) -> Result<ErrorObject, MessageError> {
    let Value::Object(mut object) = value else {
        return Err(MessageError::InvalidError);
    };
    let code = object
        .get("code")
        .and_then(Value::as_i64)
        .ok_or(MessageError::InvalidError)?;
    let Some(Value::String(message)) = object.remove("message") else {
        return Err(MessageError::InvalidError);
    };
    Ok(ErrorObject {
        code,
        message,
        data: object.remove("data"),
    })
}

/// Checks the member names of one object (see the module docs).
fn check_members(members: &[(String, Value)], envelope: bool) -> Result<(), MessageError> {
    if members.iter().any(|(name, _)| name.contains('\0')) {
        return Err(MessageError::NulInMemberName);
    }
    if members.len() < 2 && !envelope {
        return Ok(());
    }
    let folds: Vec<Cow<'_, str>> = members
        .iter()
        .map(|(name, _)| fold_member_name(name))
        .collect();
    let clash = |i: usize, j: usize| {
        if members[i].0 == members[j].0 {
            MessageError::DuplicateMember
        } else {
            MessageError::CollidingMembers
        }
    };
    if folds.len() <= LINEAR_MEMBERS {
        for i in 1..folds.len() {
            if let Some(j) = folds[..i].iter().position(|f| *f == folds[i]) {
                return Err(clash(i, j));
            }
        }
    } else {
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(folds.len());
        for (i, folded) in folds.iter().enumerate() {
            if let Some(&j) = seen.get(folded.as_ref()) {
                return Err(clash(i, j));
            }
            seen.insert(folded, i);
        }
    }
    if envelope {
        for ((name, _), folded) in members.iter().zip(&folds) {
            if let Some(i) = ENVELOPE_FOLDED.iter().position(|f| f == folded)
                && ENVELOPE_MEMBERS[i] != name
            {
                return Err(MessageError::LookalikeMember {
                    imitates: ENVELOPE_MEMBERS[i],
                });
            }
        }
    }
    Ok(())
}

/// Visits the top-level value: an object becomes its members, checked; an array is a batch;
/// anything else is `None`.
struct Top<'r> {
    refusal: &'r Cell<Option<MessageError>>,
}

fn refuse<E: de::Error>(refusal: &Cell<Option<MessageError>>, error: MessageError) -> E {
    refusal.set(Some(error));
    E::custom(error)
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Option<Vec<(String, Value)>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(refuse(self.refusal, MessageError::Batch))
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        let node = Node {
            refusal: self.refusal,
            envelope: true,
        };
        node.members(access).map(Some)
    }
}

/// Builds one value below the top, checking numbers and member names on the way.
#[derive(Clone, Copy)]
struct Node<'r> {
    refusal: &'r Cell<Option<MessageError>>,
    /// Whether an object here is an envelope object.
    envelope: bool,
}

impl<'r> Node<'r> {
    fn members<'de, A: MapAccess<'de>>(
        self,
        mut access: A,
    ) -> Result<Vec<(String, Value)>, A::Error> {
        let mut members: Vec<(String, Value)> =
            Vec::with_capacity(access.size_hint().unwrap_or(0).min(LINEAR_MEMBERS));
        while let Some(name) = access.next_key::<String>()? {
            let child = Node {
                refusal: self.refusal,
                envelope: self.envelope && ENVELOPE_CHILDREN.contains(&name.as_str()),
            };
            let value = access.next_value_seed(child)?;
            members.push((name, value));
        }
        check_members(&members, self.envelope).map_err(|e| refuse(self.refusal, e))?;
        Ok(members)
    }

    fn safe<E: de::Error>(self, magnitude: u64, value: Value) -> Result<Value, E> {
        if magnitude > MAX_SAFE_INTEGER {
            Err(refuse(self.refusal, MessageError::NumberOutOfRange))
        } else {
            Ok(value)
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.safe(v.unsigned_abs(), Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.safe(v, Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json refuses infinities itself; a float beyond the safe range is refused
        // like an integer there (it may have been written as one).
        match Number::from_f64(v) {
            Some(n) if v.abs() <= MAX_SAFE_INTEGER as f64 => Ok(Value::Number(n)),
            _ => Err(refuse(self.refusal, MessageError::NumberOutOfRange)),
        }
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let item = Node {
            refusal: self.refusal,
            envelope: false,
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(value) = seq.next_element_seed(item)? {
            items.push(value);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Value, A::Error> {
        let members = self.members(access)?;
        Ok(Value::Object(members.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(params: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#)
    }

    fn refused(body: &str) -> MessageError {
        read_message(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn a_tools_call_gives_its_kind_id_method_tool_and_arguments() {
        let m = read_message(
            call(r#"{"name":"add_note","arguments":{"text":"hi","n":[1,2.5,null,true]},"_meta":{"progressToken":"p"}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(m.kind(), MessageKind::Request);
        assert_eq!(m.id(), Some(&RequestId::Number(1)));
        assert_eq!(m.method(), Some("tools/call"));
        assert_eq!(m.tool(), Some("add_note"));
        assert_eq!(
            Value::Object(m.arguments().unwrap().clone()),
            json!({"text":"hi","n":[1,2.5,null,true]})
        );
        assert_eq!(m.meta().unwrap()["progressToken"], "p");
        assert_eq!(
            m.clone().into_arguments().map(Value::Object),
            Some(json!({"text":"hi","n":[1,2.5,null,true]}))
        );
        assert_eq!(
            m.into_value(),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
                "name":"add_note","arguments":{"text":"hi","n":[1,2.5,null,true]},"_meta":{"progressToken":"p"}}})
        );
    }

    #[test]
    fn notifications_responses_and_other_methods_are_told_apart() {
        let n = read_message(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind(), MessageKind::Notification);
        assert_eq!((n.id(), n.tool(), n.arguments()), (None, None, None));
        let r = read_message(br#"{"jsonrpc":"2.0","id":"s1","result":{"roots":[]}}"#).unwrap();
        assert_eq!(r.kind(), MessageKind::Response);
        assert_eq!(r.id(), Some(&RequestId::String("s1".into())));
        assert_eq!(r.result().unwrap()["roots"], json!([]));
        let e = read_message(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"no","data":{"x":1}}}"#,
        )
        .unwrap();
        assert_eq!(e.kind(), MessageKind::Response);
        assert_eq!(e.id(), None);
        assert_eq!(
            e.error(),
            Some(&ErrorObject {
                code: -32601,
                message: "no".into(),
                data: Some(json!({"x":1}))
            })
        );
        assert_eq!(
            e.into_value(),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"no","data":{"x":1}}})
        );
        // The tool and arguments belong to tools/call only.
        let list = read_message(
            br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"name":"x","uri":"file:///a"},"x-ext":1}"#,
        )
        .unwrap();
        assert_eq!((list.tool(), list.arguments()), (None, None));
        assert_eq!(list.params().unwrap()["uri"], "file:///a");
        assert_eq!(list.extensions()["x-ext"], 1);
        assert_eq!(list.into_arguments(), None);
    }

    #[test]
    fn g27_duplicate_member_names_are_refused_at_every_depth() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
            &call(r#"{"name":"read","name":"delete"}"#),
            &call(r#"{"name":"t","arguments":{"path":"/tmp","path":"/etc"}}"#),
            &call(r#"{"name":"t","arguments":{"a":[{"b":{"c":1,"c":2}}]}}"#),
            r#"{"jsonrpc":"2.0","id":1,"result":{"x":1,"x":1}}"#,
        ] {
            assert_eq!(refused(body), MessageError::DuplicateMember, "{body}");
        }
        // 17 members or more go through the hash map.
        let many: String = (0..40).map(|i| format!(r#""k{i}":{i},"#)).collect();
        let body = call(&format!(r#"{{"name":"t","arguments":{{{many}"k7":0}}}}"#));
        assert_eq!(refused(&body), MessageError::DuplicateMember);
        assert_eq!(MessageError::DuplicateMember.code(), code::PARSE_ERROR);
    }

    #[test]
    fn g27_names_colliding_after_case_folding_or_control_removal_are_refused() {
        for body in [
            // ASCII case, at the top, in params and deep in the arguments.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}"#,
            &call(r#"{"name":"read","Name":"delete"}"#),
            &call(r#"{"name":"t","arguments":{"path":"/tmp","PATH":"/etc"}}"#),
            &call(r#"{"name":"t","arguments":{"a":{"b":[{"Key":1,"kEY":2}]}}}"#),
            // Unicode simple case folding: Kelvin sign, long s, sharp s, final sigma.
            &call("{\"name\":\"t\",\"arguments\":{\"kind\":1,\"\u{212a}ind\":2}}"),
            &call("{\"name\":\"t\",\"arguments\":{\"pass\":1,\"pa\u{17f}s\":2}}"),
            &call("{\"name\":\"t\",\"arguments\":{\"stra\u{df}e\":1,\"STRA\u{1e9e}E\":2}}"),
            &call("{\"name\":\"t\",\"arguments\":{\"\u{3c3}\":1,\"\u{3c2}\":2}}"),
            // Control characters removed, escaped or raw.
            &call(r#"{"name":"t","arguments":{"path":1,"pa\u0007th":2}}"#),
            &call(r#"{"name":"t","arguments":{"path":1,"path\u007f":2}}"#),
            &call(r#"{"name":"t","arguments":{"path":1,"\u0085path":2}}"#),
        ] {
            assert_eq!(refused(body), MessageError::CollidingMembers, "{body}");
        }
    }

    #[test]
    fn g27_lookalikes_of_envelope_members_are_refused() {
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call"}"#.to_owned(),
                "method",
            ),
            (
                r#"{"JSONRPC":"2.0","id":1,"method":"ping"}"#.to_owned(),
                "jsonrpc",
            ),
            (
                r#"{"jsonrpc":"2.0","Id":1,"method":"ping"}"#.to_owned(),
                "id",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"x"}}"#
                    .to_owned(),
                "params",
            ),
            (
                call(r#"{"name":"read","Arguments":{"all":true}}"#),
                "arguments",
            ),
            (
                call("{\"name\":\"read\",\"argument\u{17f}\":{}}"),
                "arguments",
            ),
            (
                call("{\"name\":\"x\",\"_meta\":{\"progressTo\u{212a}en\":1}}"),
                "progressToken",
            ),
            (call(r#"{"name":"x","_META":{}}"#), "_meta"),
            (
                call(r#"{"name":"x","_meta":{"progresstoken":1}}"#),
                "progressToken",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","Data":1}}"#.to_owned(),
                "data",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{"Result":{}}}"#.to_owned(),
                "result",
            ),
        ];
        for (body, imitates) in cases {
            assert_eq!(
                refused(&body),
                MessageError::LookalikeMember { imitates },
                "{body}"
            );
        }
        assert_eq!(
            MessageError::LookalikeMember { imitates: "name" }.code(),
            code::INVALID_REQUEST
        );
        // Free-form values may use any name, the envelope's included.
        let free = call(r#"{"name":"x","arguments":{"Name":"Bob","METHOD":"GET","ID":7}}"#);
        assert_eq!(
            read_message(free.as_bytes()).unwrap().arguments().unwrap()["Name"],
            "Bob"
        );
    }

    #[test]
    fn g28_nul_in_member_names_and_control_characters_in_methods_and_tool_names_are_refused() {
        let cases = [
            (
                call(r#"{"name":"x","arguments":{"a\u0000b":1}}"#),
                MessageError::NulInMemberName,
            ),
            (
                call(r#"{"name":"x","arguments":{"\u0000":1}}"#),
                MessageError::NulInMemberName,
            ),
            // A C-string parser reads `name` here, twice.
            (
                call(r#"{"name":"x","name\u0000":"y"}"#),
                MessageError::NulInMemberName,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call\u0000x","params":{"name":"x"}}"#
                    .to_owned(),
                MessageError::InvalidMethod,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping\n"}"#.to_owned(),
                MessageError::InvalidMethod,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"\u009bping"}"#.to_owned(),
                MessageError::InvalidMethod,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":""}"#.to_owned(),
                MessageError::InvalidMethod,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":7}"#.to_owned(),
                MessageError::InvalidMethod,
            ),
            (
                call(r#"{"name":"delete\u0000read"}"#),
                MessageError::InvalidToolName,
            ),
            (call(r#"{"name":"read\t"}"#), MessageError::InvalidToolName),
            (call(r#"{"name":""}"#), MessageError::InvalidToolName),
            (call(r#"{"name":7}"#), MessageError::InvalidToolName),
        ];
        for (body, expected) in cases {
            assert_eq!(refused(&body), expected, "{body}");
        }
        assert_eq!(MessageError::InvalidToolName.code(), code::INVALID_PARAMS);
        assert_eq!(MessageError::NulInMemberName.code(), code::PARSE_ERROR);
        // Control characters in argument values are data.
        let data = call(r#"{"name":"x","arguments":{"text":"a\u0000b\n"}}"#);
        assert_eq!(
            read_message(data.as_bytes()).unwrap().arguments().unwrap()["text"],
            "a\u{0}b\n"
        );
    }

    #[test]
    fn g29_a_message_must_be_exactly_one_of_request_notification_or_response() {
        let cases: [(&str, MessageError); 19] = [
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                MessageError::Batch,
            ),
            ("[]", MessageError::Batch),
            (r#""ping""#, MessageError::NotAnObject),
            ("null", MessageError::NotAnObject),
            (r#"{"id":1,"method":"ping"}"#, MessageError::Version),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                MessageError::Version,
            ),
            (
                r#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#,
                MessageError::Version,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#,
                MessageError::MixedKind,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"ping","error":{"code":1,"message":"m"}}"#,
                MessageError::MixedKind,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#,
                MessageError::MixedKind,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{},"params":{}}"#,
                MessageError::MixedKind,
            ),
            (r#"{"jsonrpc":"2.0","id":1}"#, MessageError::UnknownKind),
            (r#"{"jsonrpc":"2.0","result":{}}"#, MessageError::InvalidId),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                MessageError::InvalidId,
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
                MessageError::InvalidId,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                MessageError::InvalidId,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                MessageError::InvalidId,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":[]}"#,
                MessageError::InvalidResult,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"error":{"code":"1","message":"m"}}"#,
                MessageError::InvalidError,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(refused(body), expected, "{body}");
        }
        let params: [(String, MessageError); 5] = [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#.into(),
                MessageError::ParamsNotObject,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#.into(),
                MessageError::NoToolName,
            ),
            (call("{}"), MessageError::NoToolName),
            (
                call(r#"{"name":"x","arguments":[1]}"#),
                MessageError::ArgumentsNotObject,
            ),
            (
                call(r#"{"name":"x","arguments":null}"#),
                MessageError::ArgumentsNotObject,
            ),
        ];
        for (body, expected) in params {
            assert_eq!(refused(&body), expected, "{body}");
        }
        assert_eq!(MessageError::Batch.code(), code::INVALID_REQUEST);
        assert_eq!(MessageError::MixedKind.code(), code::INVALID_REQUEST);
        assert_eq!(
            MessageError::ArgumentsNotObject.code(),
            code::INVALID_PARAMS
        );
    }

    #[test]
    fn g30_invalid_text_and_numbers_beyond_the_safe_range_are_refused() {
        let cases: [(&[u8], MessageError); 11] = [
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}",
                MessageError::NotUtf8,
            ),
            (b"\xef\xbb\xbf{}", MessageError::InvalidJson),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping\ud800"}"#,
                MessageError::InvalidJson,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"\udc00":1}}"#,
                MessageError::InvalidJson,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping"} {}"#,
                MessageError::InvalidJson,
            ),
            (b"", MessageError::InvalidJson),
            (b"{", MessageError::InvalidJson),
            (
                br#"{"jsonrpc":"2.0","id":9007199254740992,"method":"ping"}"#,
                MessageError::NumberOutOfRange,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":-9007199254740992}}"#,
                MessageError::NumberOutOfRange,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":1e300}}"#,
                MessageError::NumberOutOfRange,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":1e999}}"#,
                MessageError::InvalidJson,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                read_message(body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let mut deep = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"#);
        deep.push_str(&"[".repeat(200));
        deep.push_str(&"]".repeat(200));
        deep.push_str("}}");
        assert_eq!(refused(&deep), MessageError::InvalidJson);
        let edge = r#"{"jsonrpc":"2.0","id":9007199254740991,"method":"ping","params":{"n":-9007199254740991,"f":0.1,"s":"\ud83d\ude00"}}"#;
        let m = read_message(edge.as_bytes()).unwrap();
        assert_eq!(m.id(), Some(&RequestId::Number(9_007_199_254_740_991)));
        assert_eq!(m.params().unwrap()["s"], "\u{1f600}");
        assert_eq!(MessageError::NotUtf8.code(), code::PARSE_ERROR);
    }

    #[test]
    fn folding_covers_ascii_and_unicode_simple_case_folding() {
        for (a, b) in [
            ("name", "NAME"),
            ("kind", "\u{212a}IND"),
            ("s", "\u{17f}"),
            ("\u{df}", "\u{1e9e}"),
            ("\u{3c3}", "\u{3a3}"),
            ("\u{3c3}", "\u{3c2}"),
            ("\u{e5}", "\u{212b}"),
            ("ab", "a\u{0}b\u{1f}"),
        ] {
            assert_eq!(fold_member_name(a), fold_member_name(b), "{a:?} {b:?}");
        }
        assert!(matches!(fold_member_name("plain_name"), Cow::Borrowed(_)));
        assert_ne!(fold_member_name("name"), fold_member_name("names"));
    }

    #[test]
    fn errors_answer_with_their_code_and_nothing_from_the_body() {
        assert_eq!(
            MessageError::NoToolName.response_body(),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"Invalid params"}})
        );
        assert_eq!(
            MessageError::MixedKind.response_body()["error"]["message"],
            "Invalid Request"
        );
        assert_eq!(
            MessageError::LookalikeMember { imitates: "name" }.reason_code(),
            "jsonrpc_lookalike_member"
        );
    }
}
