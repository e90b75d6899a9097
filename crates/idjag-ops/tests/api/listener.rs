//! The accept loop: admin and public listeners, connection caps, idle close, drain.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use idjag_ops::config::ConfigDuration;
use idjag_ops::listener::{Listener, ListenerConfig, Shutdown, admin};
use idjag_ops::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

fn plain() -> ListenerConfig {
    ListenerConfig::plain("127.0.0.1:0".parse().unwrap(), "tests on loopback")
}

#[tokio::test]
async fn metrics_answer_on_the_admin_listener_and_404_on_the_public_one() {
    let metrics = Metrics::global();
    let public_app = Router::new().route("/hello", get(|| async { "hi" }));
    admin::assert_absent(&public_app, admin::ADMIN_PATHS)
        .await
        .unwrap();
    // A router that does serve /metrics is caught.
    let leaky = public_app.clone().merge(metrics.router());
    let error = admin::assert_absent(&leaky, admin::ADMIN_PATHS)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "/metrics answers 200 OK on a router that must not serve it"
    );
    // The defence-in-depth wrapper hides them even then.
    admin::assert_absent(&admin::without_admin_paths(leaky), admin::ADMIN_PATHS)
        .await
        .unwrap();

    let public = Listener::bind("split-public", &plain()).await.unwrap();
    let admin_listener = Listener::bind("split-admin", &plain()).await.unwrap();
    let (public_addr, admin_addr) = (
        public.local_addr().unwrap(),
        admin_listener.local_addr().unwrap(),
    );
    let shutdown = Shutdown::new();
    let health = admin::Health::new()
        .until(&shutdown)
        .check("always", || true);
    let server = tokio::spawn(idjag_ops::listener::serve_pair(
        (public, public_app),
        Some((admin_listener, admin::router(metrics, health))),
        shutdown.clone(),
    ));
    let client = reqwest::Client::new();
    let get = |addr: std::net::SocketAddr, path: &'static str| {
        let client = client.clone();
        async move {
            client
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap()
        }
    };
    let hello = get(public_addr, "/hello").await;
    assert_eq!(hello.status(), 200);
    let scraped = get(admin_addr, "/metrics").await;
    assert_eq!(scraped.status(), 200);
    assert_eq!(
        scraped.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains("idjag_http_connections_open{listener=\"split-public\"}"),
        "{text}"
    );
    assert!(
        text.contains("idjag_http_requests_in_flight{listener=\"split-admin\"} 1"),
        "{text}"
    );
    for path in ["/metrics", "/healthz", "/readyz", "/admin"] {
        assert_eq!(get(public_addr, path).await.status(), 404, "{path}");
    }
    assert_eq!(
        get(admin_addr, "/healthz").await.text().await.unwrap(),
        "ok\n"
    );
    assert_eq!(get(admin_addr, "/readyz").await.status(), 200);
    assert_eq!(get(admin_addr, "/hello").await.status(), 404);
    shutdown.trigger();
    let (public_summary, admin_summary) = server.await.unwrap();
    assert_eq!(public_summary.connections_forced, 0);
    assert_eq!(admin_summary.unwrap().connections_forced, 0);
}

async fn http1_get(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out).await;
    out
}

#[tokio::test]
async fn a_client_address_gets_at_most_its_connection_share() {
    let metrics = Metrics::global();
    let mut config = plain();
    config.max_connections_per_ip = 2;
    let listener = Listener::bind("per-ip", &config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let app = Router::new().route("/", get(|| async { "ok" }));
    let server = tokio::spawn(listener.serve(app, shutdown.clone()));

    // Two idle connections take the share of 127.0.0.1 ...
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ... so a third is closed at accept without an answer.
    let refused = http1_get(addr).await;
    assert_eq!(refused, "");
    let text = metrics.render();
    assert!(
        text.contains("idjag_http_connections_refused_total{listener=\"per-ip\",reason=\"max_connections_per_ip\"} 1\n"),
        "{text}"
    );
    // One closes: there is room again.
    drop(first);
    support::eventually("a free slot", async || {
        http1_get(addr).await.starts_with("HTTP/1.1 200 OK")
    })
    .await;

    shutdown.trigger();
    server.await.unwrap();
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_and_a_busy_one_is_not() {
    let mut config = plain();
    config.idle_timeout = ConfigDuration::millis(300);
    let listener = Listener::bind("idle", &config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let (tx, body) = support::stream_body();
    let body = std::sync::Arc::new(std::sync::Mutex::new(Some(body)));
    let app = Router::new().route("/", get(|| async { "ok" })).route(
        "/stream",
        get(move || {
            let body = body.lock().unwrap().take().unwrap();
            async move { body }
        }),
    );
    let server = tokio::spawn(listener.serve(app, shutdown.clone()));

    // HTTP/2 with prior knowledge: one request, then nothing.
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let connection = tokio::spawn(connection);
    let request = http::Request::get("http://localhost/")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(
        &response.into_body().collect().await.unwrap().to_bytes()[..],
        b"ok"
    );
    // The server sends GOAWAY after the idle timeout and the connection ends.
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the idle connection is closed")
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");

    // A connection with an open stream stays open past the idle timeout.
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get("http://localhost/stream")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let mut body = sender.send_request(request).await.unwrap().into_body();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!connection.is_finished());
    tx.send("late").await.unwrap();
    drop(tx);
    let mut received = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            received.extend_from_slice(&data);
        }
    }
    assert_eq!(received, b"late");
    // Then it is idle, and closed.
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    shutdown.trigger();
    server.await.unwrap();
}

#[tokio::test]
async fn shutdown_refuses_new_connections_lets_streams_finish_then_forces_at_the_deadline() {
    let mut config = plain();
    config.drain_timeout = ConfigDuration::millis(500);
    let listener = Listener::bind("drain", &config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let senders = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..2 {
        let (tx, body) = support::stream_body();
        bodies.lock().unwrap().push(body);
        senders.lock().unwrap().push(tx);
    }
    let app = Router::new().route(
        "/stream",
        get(move || {
            let body = bodies.lock().unwrap().pop().unwrap();
            async move { body }
        }),
    );
    let server = tokio::spawn(listener.serve(app, shutdown.clone()));
    let client = reqwest::Client::new();
    let finishing = client
        .get(format!("http://{addr}/stream"))
        .send()
        .await
        .unwrap();
    let hanging = client
        .get(format!("http://{addr}/stream"))
        .send()
        .await
        .unwrap();
    let (hanging_tx, finishing_tx) = {
        let mut senders = senders.lock().unwrap();
        (senders.remove(0), senders.remove(0))
    };

    shutdown.trigger();
    support::eventually("the socket closed", async || {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    // An open stream finishes during the drain ...
    finishing_tx.send("done").await.unwrap();
    drop(finishing_tx);
    // (the streams were taken in reverse: whichever got which body, one ends now)
    let (first, second) = tokio::join!(
        async { finishing.bytes().await.map(|b| b.to_vec()) },
        async { hanging.bytes().await.map(|b| b.to_vec()) },
    );
    let summary = server.await.unwrap();
    // ... the other is cut at the deadline.
    assert_eq!(summary.connections_forced, 1);
    let outcomes = [first.ok(), second.ok()];
    assert!(outcomes.contains(&Some(b"done".to_vec())), "{outcomes:?}");
    assert!(outcomes.contains(&None), "{outcomes:?}");
    drop(hanging_tx);
}

/// Reads one HTTP/1.1 response head from `stream` (test input: small heads only).
async fn response_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "the connection closed"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap().to_ascii_lowercase()
}

#[tokio::test]
async fn an_answer_given_before_the_request_body_was_read_closes_the_connection() {
    use axum::routing::post;
    let listener = Listener::bind("unread", &plain()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let app = Router::new()
        .route(
            "/refuse",
            post(|| async { (http::StatusCode::UNAUTHORIZED, "no") }),
        )
        .route("/read", post(|body: String| async move { body }));
    let server = tokio::spawn(listener.serve(app, shutdown.clone()));

    // The head first; the body only after the answer, as a client writing them apart may.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        .await
        .unwrap();
    let head = response_head(&mut stream).await;
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");

    // A handler that reads the body keeps the connection for the next request.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .unwrap();
        let head = response_head(&mut stream).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        let mut body = [0u8; 5];
        stream.read_exact(&mut body).await.unwrap();
        assert_eq!(&body, b"hello");
    }

    shutdown.trigger();
    server.await.unwrap();
}
