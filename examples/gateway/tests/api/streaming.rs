//! Streaming: SSE event by event, G19, G20, G21.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::any;
use bytes::Bytes;
use futures::StreamExt;
use http::Method;
use idjag_core::{ClientId, NumericDate};
use idjag_gateway::config::ConfigDuration;
use idjag_gateway::demo::GATEWAY_CLIENT;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::*;

fn open(url: &str, token: &str) -> reqwest::RequestBuilder {
    client()
        .get(url)
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {token}"))
}

/// Has the upstream send `event` and checks that the client receives exactly it.
async fn relays(
    tx: &mpsc::UnboundedSender<&'static [u8]>,
    stream: &mut reqwest::Response,
    event: &'static [u8],
) {
    tx.send(event).unwrap();
    let received = next_chunk(stream, Duration::from_secs(5)).await.unwrap();
    assert_eq!(received, event);
}

async fn next_chunk(response: &mut reqwest::Response, within: Duration) -> Option<Bytes> {
    tokio::time::timeout(within, response.chunk())
        .await
        .ok()?
        .ok()?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_are_forwarded_one_by_one_as_they_complete() {
    let (tx, rx) = mpsc::unbounded_channel::<&'static [u8]>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let upstream = UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(move || {
            let rx = rx.lock().unwrap().take().expect("one stream");
            async move {
                let events = futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|b| (Ok(Bytes::from_static(b)), rx))
                });
                sse(events)
            }
        }),
    ));
    let (t, _) = start(upstream).await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let mut stream = open(&t.route_url, &token).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    relays(&tx, &mut stream, b"id: 1\ndata: {\"n\":1}\n\n").await;
    // Half an event: nothing is delivered until its end arrives.
    tx.send(b"id: 2\ndata: {\"n\":").unwrap();
    assert_eq!(
        next_chunk(&mut stream, Duration::from_millis(300)).await,
        None
    );
    tx.send(b"2}\n\n").unwrap();
    assert_eq!(
        next_chunk(&mut stream, Duration::from_secs(5))
            .await
            .unwrap(),
        "id: 2\ndata: {\"n\":2}\n\n"
    );
    relays(&tx, &mut stream, b"id: 3\ndata: {\"n\":3}\n\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g19_a_stream_cut_mid_event_drops_the_partial_event_and_resumes_without_gap_or_duplicate() {
    let last_event_ids = Arc::new(Mutex::new(Vec::new()));
    let seen = last_event_ids.clone();
    let upstream = UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(move |request: Request| {
            let seen = seen.clone();
            async move {
                let last = request
                    .headers()
                    .get("last-event-id")
                    .map(|v| v.to_str().unwrap().to_owned());
                seen.lock().unwrap().push(last.clone());
                let chunks: Vec<Result<Bytes, std::io::Error>> = match last.as_deref() {
                    None => vec![
                        Ok(Bytes::from_static(
                            b"id: 1\ndata: {\"n\":1}\n\nid: 2\ndata: {\"n\":2}\n\n",
                        )),
                        Ok(Bytes::from_static(b"id: 3\ndata: {\"n\"")),
                        Err(std::io::Error::other("connection cut")),
                    ],
                    Some("2") => vec![Ok(Bytes::from_static(
                        b"id: 3\ndata: {\"n\":3}\n\nid: 4\ndata: {\"n\":4}\n\n",
                    ))],
                    Some(_) => vec![],
                };
                // Paced, so the head and the first events leave before the cut.
                sse(futures::stream::iter(chunks).then(|chunk| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    chunk
                }))
            }
        }),
    ));
    let (t, _) = start(upstream).await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let first = open(&t.route_url, &token).send().await.unwrap();
    let mut received = Vec::new();
    let mut body = first.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => break,
        }
    }
    let text = String::from_utf8(received).unwrap();
    assert_eq!(
        text, "id: 1\ndata: {\"n\":1}\n\nid: 2\ndata: {\"n\":2}\n\n",
        "no partial event"
    );

    let resumed = open(&t.route_url, &token)
        .header("last-event-id", "2")
        .send()
        .await
        .unwrap();
    let text = resumed.text().await.unwrap();
    assert_eq!(text, "id: 3\ndata: {\"n\":3}\n\nid: 4\ndata: {\"n\":4}\n\n");
    assert_eq!(
        *last_event_ids.lock().unwrap(),
        [None, Some("2".to_owned())]
    );
}

/// Sets its flag when dropped (the upstream's side of a stream or request went away).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn wait_for(flag: &AtomicBool, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if flag.load(Ordering::SeqCst) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g20_a_client_disconnect_cancels_the_upstream_request_and_nothing_leaks() {
    let stream_dropped = Arc::new(AtomicBool::new(false));
    let call_dropped = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let (s, c, n) = (stream_dropped.clone(), call_dropped.clone(), calls.clone());
    let upstream = UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(move |request: Request| {
            let (s, c, n) = (s.clone(), c.clone(), n.clone());
            async move {
                if request.method() == Method::GET {
                    let guard = DropFlag(s);
                    let events = futures::stream::iter([Ok::<_, std::io::Error>(
                        Bytes::from_static(b"data: {}\n\n"),
                    )])
                    .chain(futures::stream::pending())
                    .map(move |e| {
                        let _held = &guard;
                        e
                    });
                    return sse(events);
                }
                // A slow tool call: the response head is minutes away.
                n.fetch_add(1, Ordering::SeqCst);
                let _guard = DropFlag(c);
                tokio::time::sleep(Duration::from_secs(120)).await;
                axum::http::StatusCode::OK.into_response()
            }
        }),
    ));
    let (t, _) = start(upstream).await;
    let token = t.id_token("alice").unwrap().secret().to_owned();

    // An SSE stream, dropped by the client after its first event.
    let mut stream = open(&t.route_url, &token).send().await.unwrap();
    assert_eq!(
        next_chunk(&mut stream, Duration::from_secs(5))
            .await
            .unwrap(),
        "data: {}\n\n"
    );
    assert_eq!((t.gateway.live_streams(), t.gateway.in_flight()), (1, 1));
    drop(stream);
    let took = wait_for(&stream_dropped, Duration::from_secs(5)).await;
    assert!(took.is_some(), "the upstream stream is still open");

    // A tool call waiting for its answer, abandoned by the client.
    let call = tokio::spawn(
        post(
            &t.route_url,
            Some(&token),
            &tools_call(1, "slow", json!({})),
        )
        .send(),
    );
    let started = Instant::now();
    while calls.load(Ordering::SeqCst) == 0 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(t.gateway.in_flight(), 1);
    call.abort();
    let took = wait_for(&call_dropped, Duration::from_secs(5)).await;
    assert!(took.is_some(), "the upstream request was not cancelled");

    let started = Instant::now();
    while (t.gateway.live_streams(), t.gateway.in_flight()) != (0, 0)
        && started.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        (t.gateway.live_streams(), t.gateway.in_flight()),
        (0, 0),
        "back to the baseline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g21_a_stream_outliving_the_token_gets_a_final_event_and_the_expired_token_then_gets_401() {
    let upstream = UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(|| async {
            sse(
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
                    b"data: {}\n\n",
                ))])
                .chain(futures::stream::pending()),
            )
        }),
    ));
    let (t, audit) = start_with(upstream, |c| c.idp.leeway = ConfigDuration(Duration::ZERO)).await;
    let mut claims = t
        .users
        .claims("alice", &ClientId::new(GATEWAY_CLIENT).unwrap())
        .unwrap();
    claims.exp = NumericDate::from_unix(claims.iat.unix() + 2).unwrap();
    let token = t.users.sign(&claims).unwrap().secret().to_owned();

    let mut stream = open(&t.route_url, &token).send().await.unwrap();
    assert_eq!(
        next_chunk(&mut stream, Duration::from_secs(5))
            .await
            .unwrap(),
        "data: {}\n\n"
    );
    let last = next_chunk(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        last,
        "event: close\ndata: {\"reason\":\"token_expired\"}\n\n"
    );
    assert_eq!(
        next_chunk(&mut stream, Duration::from_secs(5)).await,
        None,
        "the stream ended"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = send(&t.route_url, Some(&token), &tools_list(1)).await;
    assert_eq!(again.status(), 401);
    assert_eq!(audit.records().pop().unwrap().reason, "expired");
    let _: Value = json!(null);
}
