//! Connection-level limits and the connection builder that enforces them (threats G08, G09,
//! G10).

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use serde::Serialize;

/// Connection-level limits.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Most open connections.
    pub max_connections: usize,
    /// Largest request head (hyper's HTTP/1 read buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Time to receive a request head.
    #[serde(serialize_with = "crate::config::duration::serialize")]
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    #[serde(serialize_with = "crate::config::duration::serialize")]
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The connection builder: HTTP/1 and HTTP/2, the header-read timeout with its timer, and
/// the head size limits.
pub fn connection_builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Duration::from_secs(20));
    builder
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use axum::Router;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    use super::*;

    async fn answer(limits: ServerLimits, request: &[u8]) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let builder = connection_builder(&limits);
        let app = Router::new().route("/", axum::routing::any(|| async { "ok" }));
        let task = tokio::spawn(async move {
            let _ = builder
                .serve_connection(TokioIo::new(server), TowerToHyperService::new(app))
                .await;
        });
        // The server may answer and close before reading everything (431).
        let _ = client.write_all(request).await;
        let mut out = Vec::new();
        let _ = client.read_to_end(&mut out).await;
        task.await.unwrap();
        out
    }

    #[tokio::test(start_paused = true)]
    async fn g10_the_header_read_timer_is_installed_and_closes_a_silent_connection() {
        let limits = ServerLimits {
            header_read_timeout: Duration::from_secs(3),
            ..ServerLimits::default()
        };
        let started = tokio::time::Instant::now();
        let out = answer(limits, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
        assert!(
            started.elapsed() >= Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    }

    #[tokio::test]
    async fn g08_hyper_refuses_two_lengths_and_bare_cr_and_closes_after_cl_with_te() {
        let limits = ServerLimits::default();
        let refused: [&[u8]; 2] = [
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        ];
        for request in refused {
            let out = answer(limits, request).await;
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.starts_with("HTTP/1.1 400"),
                "{:?} -> {text:?}",
                String::from_utf8_lossy(request)
            );
        }
        // Both framings: hyper follows RFC 9112 §6.3 (chunked wins, the connection is closed
        // after the answer; tests/api/http_layer.rs proves nothing is smuggled through the
        // gateway).
        let both = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let text = String::from_utf8_lossy(&answer(limits, both).await).to_ascii_lowercase();
        assert!(text.contains("connection: close"), "{text:?}");
    }

    #[tokio::test]
    async fn g09_a_head_over_the_limit_gets_431() {
        let limits = ServerLimits {
            max_header_bytes: 8192,
            ..ServerLimits::default()
        };
        let request = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        let out = answer(limits, request.as_bytes()).await;
        assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 431"));
    }
}
