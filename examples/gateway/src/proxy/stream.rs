//! Server-sent events through the gateway, one complete event at a time
//! (threats G19 to G21, G25).
//!
//! The upstream's `text/event-stream` body is cut into events at blank lines (`\n`, `\r\n`
//! or `\r` line ends, split anywhere across chunks) and each complete event is sent on as
//! soon as its last byte arrives; nothing waits for the stream to end. Events are forwarded
//! byte for byte, except `tools/list` answers, which are re-encoded with the tools the
//! caller may not use removed; a message event that may hold a tool list (under any
//! spelling of `tools`) and that the strict reader refuses is dropped, not forwarded
//! unfiltered. When the upstream cuts the stream mid-event, the partial
//! event is dropped and the downstream stream ends cleanly, so the client can resume with
//! `Last-Event-ID` (passed through upstream) without ever seeing half an event.
//!
//! The stream also ends, after a final `event: close` whose data names the reason, when the
//! gateway shuts down, (by default) when the caller's inbound token expires, when the caller
//! is revoked on any instance, or when the revocations cannot be checked any more
//! ([`crate::policy::revocation`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::policy::revocation::RevocationWatch;
use crate::protocol::sse::{CloseReason, EventSplitter, FilteredEvent, filter_tool_list_event};

async fn revoked(watch: &mut Option<RevocationWatch>) -> CloseReason {
    match watch {
        Some(watch) => watch.ended().await,
        None => std::future::pending().await,
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
    /// Resolves when the caller is revoked on any instance ([`CloseReason::Revoked`]) or the
    /// revocations cannot be checked any more ([`CloseReason::RevocationStateStale`]).
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
                        Some(visible) => match filter_tool_list_event(&event, visible.as_ref()) {
                            FilteredEvent::Filtered(filtered) => filtered,
                            FilteredEvent::Refused => {
                                tracing::warn!(
                                    "dropping an SSE event that may hold a tool list and cannot be read unambiguously"
                                );
                                continue;
                            }
                            _ => event,
                        },
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
                reason = revoked(&mut state.options.revoked) => Step::Close(reason),
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
