//! Server-sent events through the gateway, one complete event at a time
//! (SECURITY-CASES G19 to G21, G25).
//!
//! The upstream's `text/event-stream` body is cut into events at blank lines (`\n`, `\r\n`
//! or `\r` line ends, split anywhere across chunks) and each complete event is sent on as
//! soon as its last byte arrives; nothing waits for the stream to end. Events are forwarded
//! byte for byte, except `tools/list` answers, which are re-encoded with the tools the
//! caller may not use removed. When the upstream cuts the stream mid-event, the partial
//! event is dropped and the downstream stream ends cleanly, so the client can resume with
//! `Last-Event-ID` (passed through upstream) without ever seeing half an event.
//!
//! The stream also ends, after a final `event: close` whose data names the reason, when the
//! gateway shuts down or (by default) when the caller's inbound token expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::jsonrpc::{filter_tools, is_tool_list};
use crate::revocation::RevocationWatch;

async fn revoked(watch: &mut Option<RevocationWatch>) {
    match watch {
        Some(watch) => watch.revoked().await,
        None => std::future::pending().await,
    }
}

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
        }
    }
}

/// Counts live streams (SSE and streamed JSON bodies); a guard per stream.
#[derive(Debug, Default)]
pub struct StreamGauge(AtomicUsize);

impl StreamGauge {
    /// Streams alive now.
    pub fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts one stream until the guard drops.
    pub fn enter(self: &Arc<Self>) -> StreamGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        StreamGuard(self.clone())
    }
}

/// Decrements its [`StreamGauge`] on drop.
#[derive(Debug)]
pub struct StreamGuard(Arc<StreamGauge>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A tool-visibility check for `tools/list` answers.
pub type Visibility = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What an SSE forwarder needs besides the upstream body.
pub struct SseOptions {
    /// Largest event.
    pub max_event_bytes: usize,
    /// Filter `tools/list` answers with this.
    pub filter: Option<Visibility>,
    /// Close with [`CloseReason::TokenExpired`] at this instant.
    pub expires: Option<Instant>,
    /// Flips to `true` at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Resolves when the caller is revoked ([`CloseReason::Revoked`]).
    pub revoked: Option<RevocationWatch>,
    /// Held until the stream ends (concurrency permit, gauge guard, ...).
    pub guards: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for SseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseOptions")
            .field("max_event_bytes", &self.max_event_bytes)
            .field("filters", &self.filter.is_some())
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

struct State<E> {
    upstream: BoxStream<'static, Result<Bytes, E>>,
    splitter: EventSplitter,
    options: SseOptions,
    upstream_done: bool,
    done: bool,
}

enum Step {
    Chunk(Option<Bytes>),
    Close(CloseReason),
}

/// The downstream body of an upstream SSE response. See the [module docs](self).
pub fn forward<E>(
    upstream: impl Stream<Item = Result<Bytes, E>> + Send + 'static,
    options: SseOptions,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    E: std::fmt::Display + Send + 'static,
{
    let state = State {
        upstream: upstream.boxed(),
        splitter: EventSplitter::new(options.max_event_bytes),
        options,
        upstream_done: false,
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            match state.splitter.next_event() {
                Ok(Some(event)) => {
                    let event = match &state.options.filter {
                        Some(visible) => {
                            filter_tool_list_event(&event, visible.as_ref()).unwrap_or(event)
                        }
                        None => event,
                    };
                    return Some((Ok(event), state));
                }
                Ok(None) if state.upstream_done => {
                    if state.splitter.pending() > 0 {
                        tracing::debug!(
                            bytes = state.splitter.pending(),
                            "dropping a partial SSE event"
                        );
                    }
                    return None;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "closing an SSE stream");
                    return None;
                }
            }
            let expires = state.options.expires;
            let step = tokio::select! {
                chunk = state.upstream.next() => match chunk {
                    Some(Ok(bytes)) => Step::Chunk(Some(bytes)),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "upstream SSE stream failed");
                        Step::Chunk(None)
                    }
                    None => Step::Chunk(None),
                },
                _ = state.options.shutdown.wait_for(|down| *down) => Step::Close(CloseReason::Shutdown),
                _ = sleep_until(expires) => Step::Close(CloseReason::TokenExpired),
                _ = revoked(&mut state.options.revoked) => Step::Close(CloseReason::Revoked),
            };
            match step {
                Step::Chunk(Some(bytes)) => state.splitter.push(&bytes),
                Step::Chunk(None) => {
                    state.splitter.end();
                    state.upstream_done = true;
                }
                Step::Close(reason) => {
                    state.done = true;
                    return Some((Ok(reason.event()), state));
                }
            }
        }
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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

    #[tokio::test]
    async fn the_stream_closes_with_a_final_event_at_shutdown() {
        let (tx, rx) = watch::channel(false);
        let upstream =
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"data: 1\n\n"))])
                .chain(futures::stream::pending());
        let options = SseOptions {
            max_event_bytes: 1024,
            filter: None,
            expires: None,
            shutdown: rx,
            revoked: None,
            guards: Box::new(()),
        };
        let mut stream = Box::pin(forward(upstream, options));
        assert_eq!(stream.next().await.unwrap().unwrap(), "data: 1\n\n");
        tx.send(true).unwrap();
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            CloseReason::Shutdown.event()
        );
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn g21_the_stream_closes_when_the_token_expires() {
        let (_tx, rx) = watch::channel(false);
        let options = SseOptions {
            max_event_bytes: 1024,
            filter: None,
            expires: Some(Instant::now() + std::time::Duration::from_secs(5)),
            shutdown: rx,
            revoked: None,
            guards: Box::new(()),
        };
        let upstream = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let mut stream = Box::pin(forward(upstream, options));
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            CloseReason::TokenExpired.event()
        );
        assert!(stream.next().await.is_none());
    }
}
