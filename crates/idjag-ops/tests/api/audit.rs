//! Audit sinks: each receives the exact lines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use idjag_ops::audit::{
    Audit, AuditConfig, AuditError, FileSink, JournaldSink, OnFull, OtlpSink, SinkConfig,
    SyslogSink, SyslogTransport, WebhookSink,
};
use idjag_ops::metrics::Metrics;
use idjag_ops::telemetry::OtlpConfig;
use prost::Message;
use tokio::net::{TcpListener, UdpSocket, UnixDatagram};

use crate::support;

fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{{\"decision\":\"allow\",\"seq\":{i}}}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_sink_appends_and_reopens_on_sighup_after_a_rename() {
    support::init();
    let dir = support::temp_dir("audit-file");
    let path = dir.join("audit.jsonl");
    let audit = Audit::start(&AuditConfig::with_sinks(vec![SinkConfig::File(
        FileSink::new(&path),
    )]))
    .await
    .unwrap();
    audit.record("{\"n\":1}\n").unwrap();
    audit.record("{\"n\":2}").unwrap();
    support::eventually("two lines", async || {
        std::fs::read_to_string(&path).unwrap_or_default() == "{\"n\":1}\n{\"n\":2}\n"
    })
    .await;
    // logrotate: rename, then signal.
    let rotated = dir.join("audit.jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    support::sighup();
    support::eventually("the new file", async || path.exists()).await;
    audit.record("{\"n\":3}").unwrap();
    support::eventually("the third line in the new file", async || {
        std::fs::read_to_string(&path).unwrap_or_default() == "{\"n\":3}\n"
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap(),
        "{\"n\":1}\n{\"n\":2}\n"
    );
    // The programmatic reopen does the same.
    std::fs::rename(&path, dir.join("audit.jsonl.2")).unwrap();
    audit.reopen();
    support::eventually("the reopened file", async || path.exists()).await;
    assert!(audit.is_healthy());
    assert!(audit.shutdown(Duration::from_secs(5)).await.is_empty());
}

#[tokio::test]
async fn syslog_over_udp_gets_exact_rfc5424_frames() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut sink = SyslogSink::new(
        SyslogTransport::Udp,
        receiver.local_addr().unwrap().to_string(),
    );
    sink.app_name = "idjag-test".to_owned();
    sink.hostname = Some("gw-1".to_owned());
    let clock: idjag_ops::audit::SinkClock =
        Arc::new(|| UNIX_EPOCH + Duration::from_millis(1_785_000_000_123));
    let audit = Audit::start_with_clock(
        &AuditConfig::with_sinks(vec![SinkConfig::Syslog(sink)]),
        clock,
    )
    .await
    .unwrap();
    let sent = lines(3);
    for line in &sent {
        audit.record(line.clone()).unwrap();
    }
    let pid = std::process::id();
    for line in &sent {
        let mut buffer = vec![0; 65536];
        let n = tokio::time::timeout(Duration::from_secs(5), receiver.recv(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buffer[..n]),
            format!("<86>1 2026-07-25T17:20:00.123Z gw-1 idjag-test {pid} audit - {line}")
        );
    }
    audit.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn syslog_over_tcp_uses_octet_counting_and_journald_the_native_protocol() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut syslog = SyslogSink::new(
        SyslogTransport::Tcp,
        listener.local_addr().unwrap().to_string(),
    );
    syslog.hostname = Some("gw-1".to_owned());
    syslog.facility = "local0".to_owned();
    let dir = support::temp_dir("journald");
    let journal_path = dir.join("journal.socket");
    let journal = UnixDatagram::bind(&journal_path).unwrap();
    let mut journald = JournaldSink::new(&journal_path);
    journald.identifier = "idjag-gateway".to_owned();
    let clock: idjag_ops::audit::SinkClock = Arc::new(|| UNIX_EPOCH);
    let audit = Audit::start_with_clock(
        &AuditConfig::with_sinks(vec![
            SinkConfig::Syslog(syslog),
            SinkConfig::Journald(journald),
        ]),
        clock,
    )
    .await
    .unwrap();
    audit.record("{\"a\":1}").unwrap();
    let (mut stream, _) = listener.accept().await.unwrap();
    let frame = format!(
        "<134>1 1970-01-01T00:00:00.000Z gw-1 idjag {} audit - {{\"a\":1}}",
        std::process::id()
    );
    let expected = format!("{} {frame}", frame.len());
    let mut received = vec![0; expected.len()];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut received)
        .await
        .unwrap();
    assert_eq!(String::from_utf8(received).unwrap(), expected);

    let mut buffer = vec![0; 65536];
    let n = journal.recv(&mut buffer).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buffer[..n]),
        "MESSAGE={\"a\":1}\nPRIORITY=6\nSYSLOG_FACILITY=10\nSYSLOG_IDENTIFIER=idjag-gateway\nIDJAG_AUDIT=1\n"
    );
    audit.shutdown(Duration::from_secs(5)).await;
}

#[derive(Clone, Default)]
struct Receiver {
    failures_left: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
    lines: Arc<Mutex<Vec<String>>>,
    authorization: Arc<Mutex<Vec<String>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: http::HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver.calls.fetch_add(1, Ordering::SeqCst);
    if receiver
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    assert_eq!(headers["content-type"], "application/x-ndjson");
    if let Some(value) = headers.get("authorization") {
        receiver
            .authorization
            .lock()
            .unwrap()
            .push(value.to_str().unwrap().to_owned());
    }
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.ends_with('\n'));
    receiver
        .lines
        .lock()
        .unwrap()
        .extend(text.lines().map(str::to_owned));
    StatusCode::NO_CONTENT
}

async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::test]
async fn the_webhook_retries_in_order_and_loses_nothing_while_the_queue_has_room() {
    support::init();
    let metrics = Metrics::global();
    let receiver = Receiver::default();
    receiver.failures_left.store(4, Ordering::SeqCst);
    let addr = serve(
        Router::new()
            .route("/ingest", post(receive))
            .with_state(receiver.clone()),
    )
    .await;
    let mut sink = WebhookSink::new(format!("http://{addr}/ingest"))
        .retry(Duration::from_millis(20), Duration::from_millis(100))
        .batch(50);
    sink.name = Some("siem".to_owned());
    sink.headers
        .insert("authorization".to_owned(), "Bearer hook-secret".to_owned());
    let audit = Audit::start(&AuditConfig::with_sinks(vec![SinkConfig::Webhook(sink)]))
        .await
        .unwrap();
    let sent = lines(230);
    for (i, line) in sent.iter().enumerate() {
        audit.record(line.clone()).unwrap();
        if i % 40 == 0 {
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
    support::eventually("every line delivered", async || {
        receiver.lines.lock().unwrap().len() >= sent.len()
    })
    .await;
    assert_eq!(
        *receiver.lines.lock().unwrap(),
        sent,
        "no line lost, none repeated, order kept"
    );
    assert!(receiver.calls.load(Ordering::SeqCst) >= 4 + 230 / 50);
    assert!(
        receiver
            .authorization
            .lock()
            .unwrap()
            .iter()
            .all(|a| a == "Bearer hook-secret")
    );
    assert!(audit.is_healthy());
    let text = metrics.render();
    assert!(
        text.contains("idjag_audit_lines_total{sink=\"siem\",outcome=\"written\"} 230\n"),
        "{text}"
    );
    let logs = support::all_logs();
    assert!(logs.contains("audit webhook failed; retrying the batch"));
    assert!(!logs.contains("hook-secret"));
    assert!(audit.shutdown(Duration::from_secs(5)).await.is_empty());
}

#[tokio::test]
async fn a_full_queue_fails_closed_and_reports_the_sink_unhealthy() {
    let metrics = Metrics::global();
    let receiver = Receiver::default();
    receiver.failures_left.store(usize::MAX, Ordering::SeqCst);
    let addr = serve(
        Router::new()
            .route("/ingest", post(receive))
            .with_state(receiver.clone()),
    )
    .await;
    let mut sink = WebhookSink::new(format!("http://{addr}/ingest"))
        .retry(Duration::from_millis(50), Duration::from_millis(50))
        .batch(1);
    sink.max_pending_lines = 1;
    sink.name = Some("down".to_owned());
    let mut config = AuditConfig::with_sinks(vec![SinkConfig::Webhook(sink)]);
    config.queue_capacity = 1;
    config.on_full = OnFull::FailClosed;
    let audit = Audit::start(&config).await.unwrap();
    audit.record("first").unwrap();
    // The sink holds the first line (retrying it) ...
    support::eventually("a delivery attempt", async || {
        receiver.calls.load(Ordering::SeqCst) > 0
    })
    .await;
    // ... the queue takes one more ...
    audit.record("second").unwrap();
    // ... and then it is full.
    assert_eq!(
        audit.record("third"),
        Err(AuditError::QueueFull {
            sink: "down".to_owned()
        })
    );
    assert!(!audit.is_healthy());
    assert_eq!(audit.unhealthy_sinks(), ["down"]);
    let text = metrics.render();
    assert!(
        text.contains("idjag_audit_lines_total{sink=\"down\",outcome=\"dropped\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("idjag_audit_sink_healthy{sink=\"down\"} 0\n"),
        "{text}"
    );
    // The endpoint never recovers: shutdown gives up at its deadline.
    assert_eq!(audit.shutdown(Duration::from_millis(200)).await, ["down"]);

    // With on_full = "drop" the caller is not refused; the loss is counted.
    let mut sink = WebhookSink::new(format!("http://{addr}/ingest")).batch(1);
    sink.max_pending_lines = 1;
    sink.name = Some("dropping".to_owned());
    let mut config = AuditConfig::with_sinks(vec![SinkConfig::Webhook(sink)]);
    config.queue_capacity = 1;
    let audit = Audit::start(&config).await.unwrap();
    for line in lines(20) {
        assert_eq!(audit.record(line), Ok(()));
    }
    assert!(!audit.is_healthy());
    audit.shutdown(Duration::from_millis(100)).await;
}

#[cfg(feature = "otlp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_logs_reach_a_collector_as_log_records() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let collected = bodies.clone();
    let addr = serve(Router::new().route(
        "/v1/logs",
        post(move |headers: http::HeaderMap, body: Bytes| {
            let collected = collected.clone();
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                let request = ExportLogsServiceRequest::decode(body).unwrap();
                for resource in request.resource_logs {
                    for scope in resource.scope_logs {
                        assert_eq!(scope.scope.unwrap().name, "idjag.audit");
                        for record in scope.log_records {
                            assert_eq!(record.severity_text, "INFO");
                            assert_eq!(record.event_name, "idjag.audit");
                            if let Some(Value::StringValue(line)) =
                                record.body.and_then(|b| b.value)
                            {
                                collected.lock().unwrap().push(line);
                            }
                        }
                    }
                }
                StatusCode::OK
            }
        }),
    ))
    .await;
    let metrics = Metrics::global();
    let sink = OtlpSink::new(OtlpConfig::http(format!("http://{addr}")));
    let audit = Audit::start(&AuditConfig::with_sinks(vec![SinkConfig::Otlp(sink)]))
        .await
        .unwrap();
    let sent = lines(5);
    for line in &sent {
        audit.record(line.clone()).unwrap();
    }
    // Shutdown flushes the exporter.
    support::eventually("the sink took the lines", async || {
        metrics
            .render()
            .contains("idjag_audit_lines_total{sink=\"otlp\",outcome=\"written\"} 5\n")
    })
    .await;
    assert!(audit.shutdown(Duration::from_secs(10)).await.is_empty());
    assert_eq!(*bodies.lock().unwrap(), sent);
}
