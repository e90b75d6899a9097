//! A request body the handler may leave unread. An HTTP/1.1 connection can carry the next
//! request only once this one's body has been read to its end; a server that answers early (a
//! 401 before the body, a refusal) and keeps the connection may close it under the client's
//! next request, which the client sees as "disconnected without a response". So an answer given
//! before its request's body was read says `Connection: close` (RFC 9112 §9.6), and the client
//! opens a new connection for its next request.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::header::{CONNECTION, HeaderValue};
use http::{Response, Version};
use hyper::body::Incoming;

/// The request body, noting when it has been read to its end.
pub(super) struct WatchedBody {
    inner: Incoming,
    read: Arc<AtomicBool>,
}

impl WatchedBody {
    /// `body`, and the flag that turns true once it has been read to its end.
    pub(super) fn new(body: Incoming) -> (Self, Arc<AtomicBool>) {
        let read = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(&body)));
        let watched = Self {
            inner: body,
            read: read.clone(),
        };
        (watched, read)
    }
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Marks `response` `Connection: close` when it answers an HTTP/1.x request whose body was not
/// read to its end.
pub(super) fn close_if_unread<B>(version: Version, read: &AtomicBool, response: &mut Response<B>) {
    let http1 = matches!(version, Version::HTTP_10 | Version::HTTP_11);
    if http1 && !read.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
}
