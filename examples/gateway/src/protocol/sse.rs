//! Server-sent events, framed: an event ends at a blank line (`\n`, `\r\n` or `\r` line
//! ends, split anywhere across chunks), its fields are read as the HTML standard reads them,
//! and a `tools/list` answer carried in one can be re-encoded with some tools removed. The
//! gateway's forwarding of whole streams is [`crate::proxy::stream`]; the demo's agent reads
//! answers with the same splitter.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::protocol::jsonrpc::{filter_tools, is_tool_list};

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

/// The event with the tools `visible` refuses removed from a `tools/list` answer; `None`
/// when the event is not one (it is then forwarded as it came).
pub fn filter_tool_list_event(event: &[u8], visible: &dyn Fn(&str) -> bool) -> Option<Bytes> {
    // Cheap test first: most events are not tool lists.
    if !event.windows(7).any(|w| w == b"\"tools\"") {
        return None;
    }
    let text = std::str::from_utf8(event).ok()?;
    let f = fields(text);
    if !matches!(f.event, None | Some("") | Some("message")) {
        return None;
    }
    let mut message: Value = serde_json::from_str(f.data.as_deref()?).ok()?;
    if !is_tool_list(&message) {
        return None;
    }
    filter_tools(&mut message, visible);
    let mut out = String::with_capacity(event.len());
    if let Some(event) = f.event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    if let Some(id) = f.id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(retry) = f.retry {
        out.push_str("retry: ");
        out.push_str(retry);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&serde_json::to_string(&message).ok()?);
    out.push_str("\n\n");
    Some(Bytes::from(out))
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

    #[test]
    fn tool_list_events_are_filtered_and_keep_their_id() {
        let event = b"id: 42\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}\n\n";
        let out = filter_tool_list_event(event, &|name| name == "a").unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        let data = text
            .strip_prefix("id: 42\ndata: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(data).unwrap(),
            serde_json::json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"}]}})
        );
        let other = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"text\":\"\\\"tools\\\"\"}]}}\n\n";
        assert_eq!(filter_tool_list_event(other, &|_| false), None);
        let ping = b"event: ping\ndata: {\"tools\":[]}\n\n";
        assert_eq!(filter_tool_list_event(ping, &|_| false), None);
    }

    #[test]
    fn multi_line_data_is_joined() {
        let f = fields("event: message\ndata: {\"a\":\ndata: 1}\n: comment\n\n");
        assert_eq!(f.event, Some("message"));
        assert_eq!(f.data.as_deref(), Some("{\"a\":\n1}"));
    }
}
