//! TLS: handshake with a generated certificate, reload on file change with an open stream
//! surviving it, a broken new pair refused with its reason logged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures::StreamExt;
use idjag_ops::config::ConfigDuration;
use idjag_ops::listener::{Listener, ListenerConfig, Shutdown, TlsConfig};
use tokio::sync::mpsc;

use crate::support;

fn client(trusted: &[&str]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(
            trusted
                .iter()
                .map(|pem| reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()),
        )
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS connection")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_on_change_and_open_streams_survive_the_swap() {
    support::init();
    let dir = support::temp_dir("tls-reload");
    let (cert1, key1, der1) = support::certificate();
    let (cert2, key2, der2) = support::certificate();
    let (_cert3, key3, _) = support::certificate();
    let (cert_path, key_path) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &cert1).unwrap();
    std::fs::write(&key_path, &key1).unwrap();

    let mut tls = TlsConfig::new(&cert_path, &key_path);
    tls.reload_interval = ConfigDuration::millis(50);
    let config = ListenerConfig::tls("127.0.0.1:0".parse().unwrap(), tls);
    let listener = Listener::bind("tls-reload", &config).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let certs = listener.certificates().unwrap().clone();

    // `/stream` hands its chunk sender to the test and stays open until the test ends it.
    let senders: Arc<Mutex<Vec<mpsc::Sender<&'static str>>>> = Arc::default();
    let shared = senders.clone();
    let app = Router::new().route("/", get(|| async { "hello" })).route(
        "/stream",
        get(move || {
            let (tx, body) = support::stream_body();
            shared.lock().unwrap().push(tx);
            async move { body }
        }),
    );
    let shutdown = Shutdown::new();
    let server = tokio::spawn(listener.serve(app, shutdown.clone()));

    let url = |path: &str| format!("https://localhost:{port}{path}");
    // A new client per handshake: reqwest keeps HTTP/2 connections.
    let fresh = || client(&[&cert1, &cert2]);
    let both = fresh();
    let response = both.get(url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(peer_certificate(&response), der1);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2 first"
    );
    assert_eq!(response.text().await.unwrap(), "hello");
    // A client that trusts only another certificate fails the handshake.
    let error = client(&[&cert2]).get(url("/")).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");

    // A stream opened before the swap.
    let stream_client = client(&[&cert1]);
    let stream = stream_client.get(url("/stream")).send().await.unwrap();
    assert_eq!(peer_certificate(&stream), der1);
    let mut chunks = stream.bytes_stream();
    let tx = senders.lock().unwrap().pop().unwrap();
    tx.send("before ").await.unwrap();
    assert_eq!(&chunks.next().await.unwrap().unwrap()[..], b"before ");

    // Replace the files: new handshakes see the new certificate.
    std::fs::write(&key_path, &key2).unwrap();
    std::fs::write(&cert_path, &cert2).unwrap();
    support::eventually("the new certificate", async || {
        let response = fresh().get(url("/")).send().await.unwrap();
        peer_certificate(&response) == der2
    })
    .await;
    assert_eq!(certs.current_chain()[0].as_ref(), der2.as_slice());

    // The stream opened before keeps running and completes.
    tx.send("after").await.unwrap();
    drop(tx);
    let mut rest = Vec::new();
    while let Some(chunk) = chunks.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"after");

    // A key that does not belong to the certificate: refused, logged, the old pair stays.
    // (The swap above may have logged the same refusal for the moment between the writes.)
    let reason = format!(
        "private key {} does not match the first certificate of {}",
        key_path.display(),
        cert_path.display()
    );
    let refusals = || {
        support::logs_matching(&[
            ("listener", "tls-reload"),
            (
                "message",
                "TLS certificate reload refused; keeping the certificate in use",
            ),
            ("reason", &reason),
        ])
        .len()
    };
    let before = refusals();
    std::fs::write(&key_path, &key3).unwrap();
    support::eventually("the refusal in the logs", async || refusals() == before + 1).await;
    let response = fresh().get(url("/")).send().await.unwrap();
    assert_eq!(peer_certificate(&response), der2);
    assert_eq!(response.text().await.unwrap(), "hello");
    // A key file that is not PEM: the same, with the parser's reason.
    std::fs::write(&key_path, "not a key").unwrap();
    let reason = format!("private key {}: no PRIVATE KEY block", key_path.display());
    support::eventually("the second refusal", async || {
        !support::logs_matching(&[("listener", "tls-reload"), ("reason", &reason)]).is_empty()
    })
    .await;
    assert_eq!(
        peer_certificate(&fresh().get(url("/")).send().await.unwrap()),
        der2
    );
    // No key material in any log line.
    let logs = support::all_logs();
    for key in [&key1, &key2, &key3] {
        let body = key.lines().nth(1).unwrap();
        assert!(!logs.contains(body));
    }

    shutdown.trigger();
    let summary = server.await.unwrap();
    assert_eq!(summary.connections_forced, 0);
}

#[tokio::test]
async fn a_missing_or_mismatched_pair_fails_at_start_with_the_reason() {
    let dir = support::temp_dir("tls-start");
    let (cert, _, _) = support::certificate();
    let (_, other_key, _) = support::certificate();
    std::fs::write(dir.join("c.pem"), &cert).unwrap();
    std::fs::write(dir.join("k.pem"), &other_key).unwrap();
    let config = ListenerConfig::tls(
        "127.0.0.1:0".parse().unwrap(),
        TlsConfig::new(dir.join("c.pem"), dir.join("missing.pem")),
    );
    let error = Listener::bind("start", &config).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot read private key {}: entity not found",
            dir.join("missing.pem").display()
        )
    );
    let config = ListenerConfig::tls(
        "127.0.0.1:0".parse().unwrap(),
        TlsConfig::new(dir.join("c.pem"), dir.join("k.pem")),
    );
    let error = Listener::bind("start", &config).await.unwrap_err();
    assert!(matches!(
        error,
        idjag_ops::listener::ListenerError::Tls(idjag_ops::listener::TlsError::KeyMismatch { .. })
    ));
    let _ = Duration::ZERO;
}
