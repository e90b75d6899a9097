//! Server-sent events, framed: an event ends at a blank line (`\n`, `\r\n` or `\r` line
//! ends, split anywhere across chunks), its fields are read as the HTML standard reads them,
//! and a `tools/list` answer carried in one can be re-encoded with some tools removed. The
//! gateway's forwarding of whole streams is [`crate::proxy::stream`]; the demo's agent reads
//! answers with the same splitter.

use crate::protocol::jsonrpc::{filter_tool_list_answer, may_hold_tools};
use bytes::{Bytes, BytesMut};

/// An event longer than the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SSE event larger than {0} bytes")]
pub struct EventTooLarge(pub usize);

/// Cuts a byte stream into SSE events.
#[derive(Debug)]
pub struct EventSplitter {
    buf: BytesMut,
    scanned: usize,
    line_empty: bool,
    ended: bool,
    max: usize,
}

impl EventSplitter {
    /// A splitter refusing events longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            line_empty: true,
            ended: false,
            max,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Marks the end of the input: a final `\r` is then a line end.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Bytes held that do not yet form a complete event.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete event (with its terminating blank line), if one is buffered.
    pub fn next_event(&mut self) -> Result<Option<Bytes>, EventTooLarge> {
        let mut i = self.scanned;
        while i < self.buf.len() {
            let line_end = match self.buf[i] {
                b'\n' => i + 1,
                b'\r' if i + 1 == self.buf.len() && !self.ended => break, // `\r` or `\r\n`?
                b'\r' if i + 1 == self.buf.len() => i + 1,
                b'\r' if self.buf[i + 1] == b'\n' => i + 2,
                b'\r' => i + 1,
                _ => {
                    self.line_empty = false;
                    i += 1;
                    continue;
                }
            };
            if self.line_empty {
                self.scanned = 0;
                return Ok(Some(self.buf.split_to(line_end).freeze()));
            }
            self.line_empty = true;
            i = line_end;
        }
        self.scanned = i;
        if self.buf.len() > self.max {
            return Err(EventTooLarge(self.max));
        }
        Ok(None)
    }
}

/// The fields of one event.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields<'a> {
    event: Option<&'a str>,
    id: Option<&'a str>,
    retry: Option<&'a str>,
    data: Option<String>,
}

fn fields(event: &str) -> Fields<'_> {
    let mut out = Fields::default();
    for line in event
        .split(['\n', '\r'])
        .filter(|l| !l.is_empty() && !l.starts_with(':'))
    {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "event" => out.event = Some(value),
            "id" => out.id = Some(value),
            "retry" => out.retry = Some(value),
            "data" => match &mut out.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => out.data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    out
}

/// The data of a message event (no `event` field, or `message`), if it has any.
pub fn message_data(event: &[u8]) -> Option<String> {
    let f = fields(std::str::from_utf8(event).ok()?);
    if matches!(f.event, None | Some("") | Some("message")) {
        f.data
    } else {
        None
    }
}

/// What the `tools/list` filter does with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilteredEvent {
    /// Not a tool list: forwarded as it came.
    Unchanged,
    /// A tool list, re-encoded with the tools the caller may not use removed.
    Filtered(Bytes),
    /// A message event that may hold a tool list but cannot be read unambiguously (not
    /// UTF-8, not one strict JSON-RPC message): dropped, since forwarding it unfiltered
    /// could show a client tools it may not use.
    Refused,
}

/// The `tools/list` filter on one event (see [`FilteredEvent`]). Message events (no `event`
/// field, or `message`) that [`may_hold_tools`] are read with the strict reader; a tool list
/// among them is filtered with [`crate::protocol::jsonrpc::filter_tools`].
pub fn filter_tool_list_event(event: &[u8], visible: &dyn Fn(&str) -> bool) -> FilteredEvent {
    // Cheap test first: most events cannot hold a tool list under any spelling.
    if !may_hold_tools(event) {
        return FilteredEvent::Unchanged;
    }
    let Ok(text) = std::str::from_utf8(event) else {
        return FilteredEvent::Refused;
    };
    let f = fields(text);
    if !matches!(f.event, None | Some("") | Some("message")) {
        return FilteredEvent::Unchanged;
    }
    let Some(data) = f.data.as_deref() else {
        return FilteredEvent::Unchanged;
    };
    let filtered = match filter_tool_list_answer(data.as_bytes(), visible) {
        Ok(None) => return FilteredEvent::Unchanged,
        Ok(Some(filtered)) => filtered,
        Err(_) => return FilteredEvent::Refused,
    };
    let mut out = Vec::with_capacity(event.len());
    for (name, value) in [("event", f.event), ("id", f.id), ("retry", f.retry)] {
        if let Some(value) = value {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&filtered);
    out.extend_from_slice(b"\n\n");
    FilteredEvent::Filtered(Bytes::from(out))
}

/// Why a stream was closed by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The gateway is shutting down.
    Shutdown,
    /// The caller's inbound token expired.
    TokenExpired,
    /// The caller was revoked by an administrator.
    Revoked,
    /// The gateway's copy of the revocations is older than its bound (the store cannot be
    /// reached): it cannot tell whether the caller was revoked meanwhile.
    RevocationStateStale,
}

impl CloseReason {
    /// The final event sent before closing.
    pub fn event(self) -> Bytes {
        match self {
            Self::Shutdown => {
                Bytes::from_static(b"event: close\ndata: {\"reason\":\"shutdown\"}\n\n")
            }
            Self::TokenExpired => {
                Bytes::from_static(b"event: close\ndata: {\"reason\":\"token_expired\"}\n\n")
            }
            Self::Revoked => {
                Bytes::from_static(b"event: close\ndata: {\"reason\":\"revoked\"}\n\n")
            }
            Self::RevocationStateStale => Bytes::from_static(
                b"event: close\ndata: {\"reason\":\"revocation_state_stale\"}\n\n",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = EventSplitter::new(1024);
        let mut out = Vec::new();
        for chunk in chunks {
            s.push(chunk);
            while let Some(e) = s.next_event().unwrap() {
                out.push(String::from_utf8(e.to_vec()).unwrap());
            }
        }
        s.end();
        while let Some(e) = s.next_event().unwrap() {
            out.push(String::from_utf8(e.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn events_end_at_blank_lines_with_any_line_ending() {
        assert_eq!(
            events(&[b"data: a\n\ndata: b\n\n"]),
            ["data: a\n\n", "data: b\n\n"]
        );
        assert_eq!(
            events(&[b"data: a\r\n\r\nid: 1\r\r"]),
            ["data: a\r\n\r\n", "id: 1\r\r"]
        );
        assert_eq!(
            events(&[b"data: a\n", b"data: b\n", b"\n"]),
            ["data: a\ndata: b\n\n"]
        );
    }

    #[test]
    fn a_crlf_split_across_chunks_is_one_line_end() {
        assert_eq!(events(&[b"data: a\r", b"\n\r", b"\n"]), ["data: a\r\n\r\n"]);
        assert_eq!(events(&[b"data: a\r", b"\r"]), ["data: a\r\r"]);
    }

    #[test]
    fn g19_a_partial_event_is_never_complete() {
        assert!(events(&[b"id: 1\ndata: {\"jsonrpc\":", b"\"2.0\""]).is_empty());
        let mut s = EventSplitter::new(1024);
        s.push(b"data: x\n\ndata: half");
        assert_eq!(s.next_event().unwrap().unwrap(), "data: x\n\n");
        assert_eq!(s.next_event().unwrap(), None);
        assert_eq!(s.pending(), 10);
    }

    #[test]
    fn an_event_over_the_limit_is_an_error() {
        let mut s = EventSplitter::new(8);
        s.push(b"data: 0123456789");
        assert_eq!(s.next_event(), Err(EventTooLarge(8)));
    }

    /// A filtered event is the expected one: the same fields, and a `data` line holding the
    /// same JSON (member order follows serde_json's build features, which the workspace unifies).
    fn assert_same_event(got: &FilteredEvent, expected: &str) {
        let FilteredEvent::Filtered(got) = got else {
            panic!("not filtered: {got:?}");
        };
        let got = std::str::from_utf8(got).unwrap();
        assert!(
            got.ends_with("\n\n") && expected.ends_with("\n\n"),
            "{got:?}"
        );
        let split = |text: &str| -> (Vec<String>, serde_json::Value) {
            let mut others = Vec::new();
            let mut data = serde_json::Value::Null;
            for line in text.trim_end_matches('\n').split('\n') {
                match line.strip_prefix("data: ") {
                    Some(json) => data = serde_json::from_str(json).unwrap(),
                    None => others.push(line.to_owned()),
                }
            }
            (others, data)
        };
        assert_eq!(split(got), split(expected));
    }

    #[test]
    fn tool_list_events_are_filtered_and_keep_their_id() {
        let event = b"id: 42\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}\n\n";
        let FilteredEvent::Filtered(out) = filter_tool_list_event(event, &|name| name == "a")
        else {
            panic!("not filtered");
        };
        assert_same_event(
            &FilteredEvent::Filtered(out),
            "id: 42\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\"}]}}\n\n",
        );
        let other = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"text\":\"\\\"tools\\\"\"}]}}\n\n";
        assert_eq!(
            filter_tool_list_event(other, &|_| false),
            FilteredEvent::Unchanged
        );
        let ping = b"event: ping\ndata: {\"tools\":[]}\n\n";
        assert_eq!(
            filter_tool_list_event(ping, &|_| false),
            FilteredEvent::Unchanged
        );
    }

    #[test]
    fn tool_list_events_under_any_spelling_are_filtered_or_dropped() {
        let escaped = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"\\u0074ools\":[{\"name\":\"b\"}]}}\n\n";
        assert_same_event(
            &filter_tool_list_event(escaped, &|_| false),
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[]}}\n\n",
        );
        let folded = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"Tool\u{17f}\":[{\"name\":\"b\"}]}}\n\n";
        assert_same_event(
            &filter_tool_list_event(folded.as_bytes(), &|_| false),
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
        );
        let twice = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[],\"Tools\":[{\"name\":\"b\"}]}}\n\n";
        assert_eq!(
            filter_tool_list_event(twice, &|_| false),
            FilteredEvent::Refused
        );
        let not_json = b"data: {\"tools\": [\n\n";
        assert_eq!(
            filter_tool_list_event(not_json, &|_| false),
            FilteredEvent::Refused
        );
    }

    #[test]
    fn multi_line_data_is_joined() {
        let f = fields("event: message\ndata: {\"a\":\ndata: 1}\n: comment\n\n");
        assert_eq!(f.event, Some("message"));
        assert_eq!(f.data.as_deref(), Some("{\"a\":\n1}"));
    }
}
