//! The HTTP server: accept loop, connection limits, header-read timeout and graceful
//! shutdown (threats G08, G09, G10, G12, G25).
//!
//! hyper (through hyper-util's HTTP/1 + HTTP/2 builder) parses requests. Its HTTP/1 parser
//! refuses differing `Content-Length`s and a CR/LF inside a header value with 400 (G08). A
//! request with both `Content-Length` and `Transfer-Encoding: chunked` is framed by the
//! chunked encoding, its `Content-Length` removed, and the connection closed after the
//! answer (RFC 9112 §6.3), so no byte after it can be read as another request; the gateway
//! never sees the dropped header and cannot answer 400 instead (the tests pin this). A head larger than
//! `max_header_bytes` gets 431 (G09); a connection that has not sent a complete head within
//! `header_read_timeout` is closed (G10: the timer is installed by
//! [`connection_builder`]).
//! More than `max_connections` open connections: the new ones are closed at once.
//!
//! Shutdown: the listener is dropped (new connections are refused), the gateway's SSE
//! streams get a final event and end, every connection finishes its in-flight requests and
//! closes, bounded by the grace period.
//!
//! | module | job |
//! |---|---|
//! | [`limits`] | [`ServerLimits`] and the connection builder: head size and read time |
//! | [`accept`] | the accept loop, the connection limit, graceful shutdown |

pub mod accept;
pub mod limits;

pub use accept::serve;
pub use limits::{ServerLimits, connection_builder};
