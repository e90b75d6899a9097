//! Operating the gateway: TLS with certificate reload, the admin listener, configuration
//! reload, environment overrides, every audit sink, OpenTelemetry spans, pinned metric names
//! and the group claim refusals. Real sockets on loopback, exact outcomes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post as route_post;
use futures::StreamExt;
use http::StatusCode;
use idjag_gateway::config::{ConfigDuration, ENV_PREFIX};
use idjag_gateway::demo::{GATEWAY_CLIENT, Topology, TopologyOptions, UpstreamKind};
use idjag_gateway::{Config, LoadError};
use idjag_ops::env::{EnvError, Overrides};
use idjag_ops::listener::{TlsConfig, TlsSetting};
use idjag_ops::reload::ReloadOutcome;
use serde_json::{Value, json};

use crate::support::{
    Recorder, captured_logs, client, initialize, logs, messages, post, random, recording_echo,
    send, start_with, tools_call,
};

fn token(t: &Topology, user: &str) -> String {
    t.id_token(user).unwrap().secret().to_owned()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A self-signed certificate for 127.0.0.1: (cert PEM, key PEM, cert DER).
fn certificate() -> (String, String, Vec<u8>) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    (
        generated.cert.pem(),
        generated.signing_key.serialize_pem(),
        generated.cert.der().to_vec(),
    )
}

/// A client trusting `roots`, on a fresh connection pool.
fn tls_client(roots: &[&str]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().tls_info(true);
    for root in roots {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .unwrap()
        .to_vec()
}

/// Opens the route's SSE stream (GET) and reads its first event.
async fn open_stream(client: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    let response = client
        .get(url)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", crate::support::PROTOCOL)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Whether the stream is still open: no end and no error within `wait`.
async fn still_open(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<Bytes>> + Unpin),
) -> bool {
    tokio::time::timeout(Duration::from_millis(300), stream.next())
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_and_a_new_certificate_is_taken_without_dropping_an_open_stream() {
    let dir = std::env::temp_dir().join(random("idjag-gateway-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_a, key_a, der_a) = certificate();
    let (cert_b, key_b, der_b) = certificate();
    let (cert_path, key_path) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &cert_a).unwrap();
    std::fs::write(&key_path, &key_a).unwrap();
    let recorder = Recorder::default();
    let paths = (cert_path.clone(), key_path.clone());
    let (t, _) = start_with(recording_echo(recorder), move |c| {
        let mut tls = TlsConfig::new(&paths.0, &paths.1);
        tls.reload_interval = ConfigDuration::millis(100);
        c.server.listener.tls = TlsSetting::On(tls);
        c.server.listener.plain_http_reason = None;
    })
    .await;
    let route = t.route_url.replace("http://", "https://");
    let alice = token(&t, "alice");
    // A TLS handshake with the first certificate, and an SSE stream held open over it.
    let first = tls_client(&[&cert_a, &cert_b]);
    let stream = open_stream(&first, &route, &alice).await;
    assert_eq!(peer_certificate(&stream), der_a);
    let mut body = stream.bytes_stream();
    assert_eq!(body.next().await.unwrap().unwrap(), "data: {}\n\n");
    // Plain HTTP on the TLS port gets no answer.
    assert!(client().get(&t.route_url).send().await.is_err());
    // A new pair: new handshakes use it, the open stream keeps going.
    std::fs::write(&cert_path, &cert_b).unwrap();
    std::fs::write(&key_path, &key_b).unwrap();
    eventually("the new certificate", async || {
        let probe = tls_client(&[&cert_a, &cert_b]);
        match probe.post(&route).body("{}").send().await {
            Ok(response) => peer_certificate(&response) == der_b,
            Err(_) => false,
        }
    })
    .await;
    assert!(still_open(&mut body).await, "the stream was dropped");
    assert_eq!(t.gateway.live_streams(), 1);
    // A client trusting only the old certificate no longer connects.
    assert!(
        tls_client(&[&cert_a])
            .post(&route)
            .body("{}")
            .send()
            .await
            .is_err()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_metrics_live_only_on_the_admin_listener() {
    let (t, audit) = start_with(UpstreamKind::Echo, |_| {}).await;
    // As `serve` does: the registry first, then the build info (a gauge set before the
    // registry exists goes nowhere).
    idjag_ops::metrics::Metrics::global();
    idjag_ops::metrics::build_info("idjag_gateway", env!("CARGO_PKG_VERSION"), &[]);
    let public = client();
    for path in [
        "/admin/approvals",
        "/admin/",
        "/admin",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        let response = public
            .get(format!("{}{path}", t.gateway_url))
            .bearer_auth(t.admin_token.secret())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path} on the public listener");
    }
    let admin = |path: &str| public.get(format!("{}{path}", t.admin_url));
    assert_eq!(
        admin("/healthz")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok\n"
    );
    let metrics = admin("/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("idjag_gateway_build_info{version=\"")
    );
    let listing = admin("/admin/approvals")
        .bearer_auth(t.admin_token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 200);
    // Every request has its one audit line: the unknown paths, the listing, a refused call.
    let refused = admin("/admin/revocations").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let records = audit.records();
    let line = |path: &str| {
        records
            .iter()
            .filter(|r| r.path.as_deref() == Some(path))
            .map(|r| (r.reason.clone(), r.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(line("/metrics"), [("unknown_path".to_owned(), 404)]);
    assert_eq!(
        line("/admin/approvals"),
        [("unknown_path".to_owned(), 404), ("served".to_owned(), 200)]
    );
    assert_eq!(
        line("/admin/revocations"),
        [("unauthenticated".to_owned(), 401)]
    );
    assert!(
        records
            .iter()
            .all(|r| r.client_address == Some("127.0.0.1".parse().unwrap()))
    );
    // Health probes and answered scrapes are not audited.
    assert!(line("/healthz").iter().all(|(_, status)| *status == 404));
    // The public router itself answers 404 for every admin path (a start-up check too).
    idjag_ops::listener::admin::assert_absent(
        &t.gateway.router(),
        idjag_ops::listener::admin::ADMIN_PATHS,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_body_sent_too_slowly_gets_408_and_its_audit_line() {
    let (t, audit) = start_with(UpstreamKind::Echo, |c| {
        c.server.proxy.body_timeout = ConfigDuration::millis(300);
    })
    .await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tx.send(Ok(Bytes::from_static(b"{\"user\""))).await.unwrap();
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let response = client()
        .post(format!("{}/admin/revocations", t.admin_url))
        .bearer_auth(t.admin_token.secret())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 408);
    drop(tx);
    let record = audit
        .records()
        .into_iter()
        .find(|r| r.path.as_deref() == Some("/admin/revocations"))
        .unwrap();
    assert_eq!(
        (record.reason.as_str(), record.status),
        ("body_timeout", 408)
    );
    assert_eq!(record.method.as_deref(), Some("admin"));
}

fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Replaces `from` by `to` in the topology's configuration file.
fn edit_config(t: &Topology, from: &str, to: &str) {
    let text = std::fs::read_to_string(&t.config_path).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(&t.config_path, text.replace(from, to)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_a_tool_rule_for_the_next_request_while_an_open_stream_stays_open() {
    let recorder = Recorder::default();
    let (t, audit) = start_with(recording_echo(recorder.clone()), |_| {}).await;
    let alice = token(&t, "alice");
    let allowed = messages(
        send(
            &t.route_url,
            Some(&alice),
            &tools_call(1, "echo", json!({"text": "a"})),
        )
        .await,
    )
    .await;
    assert!(allowed[0]["result"].is_object(), "{allowed:?}");
    let stream = open_stream(&client(), &t.route_url, &alice).await;
    let mut body = stream.bytes_stream();
    assert_eq!(body.next().await.unwrap().unwrap(), "data: {}\n\n");
    assert_eq!(t.gateway.generation(), 1);

    edit_config(
        &t,
        "deny = [\"delete_*\"]",
        "deny = [\"delete_*\", \"echo\"]",
    );
    assert_eq!(
        t.gateway.reload().await,
        ReloadOutcome::Applied { generation: 2 }
    );
    assert_eq!(t.gateway.generation(), 2);
    let denied = messages(
        send(
            &t.route_url,
            Some(&alice),
            &tools_call(2, "echo", json!({"text": "b"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        denied[0]["error"]["data"]["reason"], "tool_denied",
        "{denied:?}"
    );
    assert_eq!(audit.records().last().unwrap().reason, "tool_denied");
    // The stream opened under generation 1 is still open, and only the first call went up.
    assert!(still_open(&mut body).await, "the stream was cut");
    assert_eq!(t.gateway.live_streams(), 1);
    let posts = recorder
        .all()
        .iter()
        .filter(|r| r.method == http::Method::POST)
        .count();
    assert_eq!(posts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_is_refused_with_its_reason_logged_and_the_running_configuration_kept() {
    logs();
    let (t, _) = start_with(UpstreamKind::Echo, |_| {}).await;
    let alice = token(&t, "alice");
    std::fs::write(
        &t.config_path,
        format!("{}\n[bogus]\nkey = 1\n", t.config_toml),
    )
    .unwrap();
    let outcome = t.gateway.reload().await;
    let ReloadOutcome::Refused { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        reason.starts_with("bogus: unknown field `bogus`"),
        "{reason}"
    );
    assert_eq!(t.gateway.generation(), 1);
    let logged = captured_logs();
    assert!(
        logged.contains("configuration reload refused; keeping the running configuration")
            && logged.contains("unknown field `bogus`"),
        "{logged}"
    );
    let answer = messages(send(&t.route_url, Some(&alice), &initialize()).await).await;
    assert!(answer[0]["result"].is_object(), "{answer:?}");
    // A secret that cannot be read refuses the reload too, naming its key.
    std::fs::write(
        &t.config_path,
        t.config_toml
            .replace("token_file = \"", "token_file = \"/nonexistent"),
    )
    .unwrap();
    let ReloadOutcome::Refused { reason } = t.gateway.reload().await else {
        panic!("applied")
    };
    assert!(
        reason.starts_with("admin.token_file: cannot read /nonexistent"),
        "{reason}"
    );
    assert!(!reason.contains("demo-secret-"), "{reason}");
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml");

#[test]
fn every_setting_can_come_from_the_environment_and_a_wrong_name_is_named() {
    let vars = |pairs: &[(&str, &str)]| {
        Overrides::from_vars(
            ENV_PREFIX,
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .unwrap()
    };
    let overrides = vars(&[
        ("IDJAG_GATEWAY__SERVER__LISTEN", "0.0.0.0:9443"),
        ("IDJAG_GATEWAY__SERVER__MAX_IN_FLIGHT", "7"),
        ("IDJAG_GATEWAY__SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
        (
            "IDJAG_GATEWAY__UPSTREAM__1__URL",
            "https://wiki.internal/mcp",
        ),
        ("IDJAG_GATEWAY__AUDIT__SINKS__0__KIND", "stderr"),
        ("IDJAG_GATEWAY__INBOUND__MAX_GROUPS", "12"),
        ("IDJAG_GATEWAY__TELEMETRY__LOG_FORMAT", "text"),
        ("IDJAG_GATEWAY__IDP__CLIENT__ID", "12345"),
        ("IDJAG_GATEWAY_IDP_SECRET", "not an override"),
    ]);
    let config = Config::from_path_with(EXAMPLE, &overrides).unwrap();
    assert_eq!(config.server.listener.listen.to_string(), "0.0.0.0:9443");
    assert_eq!(config.server.proxy.max_in_flight, 7);
    assert_eq!(
        format!("{:?}", config.server.proxy.trusted_proxies),
        "[\"10.0.0.0/8\"]"
    );
    assert_eq!(
        config.upstreams[1].url.as_deref(),
        Some("https://wiki.internal/mcp")
    );
    assert!(matches!(
        config.audit.sinks.sinks[0],
        idjag_ops::audit::SinkConfig::Stderr(_)
    ));
    assert_eq!(config.inbound.max_groups, 12);
    assert_eq!(config.idp.client.id, "12345");
    assert_eq!(
        Config::from_path_with(EXAMPLE, &vars(&[("IDJAG_GATEWAY__SERVER__LISTN", "x")]))
            .unwrap_err(),
        LoadError::Env(EnvError::UnknownKey {
            variable: "IDJAG_GATEWAY__SERVER__LISTN".to_owned(),
            key: "server.listn".to_owned(),
        })
    );
    let LoadError::Env(EnvError::Invalid { variable, key, .. }) = Config::from_path_with(
        EXAMPLE,
        &vars(&[("IDJAG_GATEWAY__INBOUND__MAX_GROUPS", "many")]),
    )
    .unwrap_err() else {
        panic!()
    };
    assert_eq!(
        (variable.as_str(), key.as_str()),
        ("IDJAG_GATEWAY__INBOUND__MAX_GROUPS", "inbound.max_groups")
    );
}

#[test]
fn check_config_print_shows_the_effective_configuration_with_secrets_redacted() {
    // check-config opens the example's embedded store, a path relative to the working directory.
    let workdir = std::env::temp_dir().join(format!("idjag-gateway-print-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_idjag-gateway"))
        .current_dir(&workdir)
        .args(["check-config", "--print", "--config", EXAMPLE])
        .env("IDJAG_GATEWAY_IDP_SECRET", "s1")
        .env("IDJAG_GATEWAY_NOTES_SECRET", "s2")
        .env("IDJAG_GATEWAY_WIKI_KEY", "s3")
        .env("IDJAG_GATEWAY_GITHUB_SECRET", "s5")
        .env("IDJAG_GATEWAY_ADMIN_TOKEN", "s4")
        .env("IDJAG_GATEWAY__SERVER__MAX_IN_FLIGHT", "77")
        .env("IDJAG_GATEWAY__AUDIT__SINKS__1__KIND", "webhook")
        .env(
            "IDJAG_GATEWAY__AUDIT__SINKS__1__URL",
            "https://siem.example.com/in",
        )
        .env(
            "IDJAG_GATEWAY__AUDIT__SINKS__1__HEADERS__X-SIEM-TENANT",
            "print-secret-tenant",
        )
        .env(
            "IDJAG_GATEWAY__AUDIT__SINKS__1__HEADERS__AUTHORIZATION",
            "Bearer print-secret-bearer",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("max_in_flight = 77"), "{stdout}");
    assert!(
        stdout.contains("url = \"https://siem.example.com/in\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("token_env = \"IDJAG_GATEWAY_ADMIN_TOKEN\""),
        "{stdout}"
    );
    assert!(!stdout.contains("print-secret-"), "{stdout}");
    assert!(stdout.contains("\"[redacted]\""), "{stdout}");
    assert!(stdout.ends_with("gateway.toml: OK\n"), "{stdout}");
    let _ = std::fs::remove_dir_all(workdir);
}

/// A topology whose audit lines go to the configured sinks (not to memory).
async fn start_with_sinks(
    upstream: UpstreamKind,
    configure: impl Fn(&mut Config) + Send + Sync + 'static,
) -> Topology {
    let mut options = TopologyOptions::with_upstream(upstream);
    options.configure = Some(Arc::new(configure));
    Topology::start(options).await.unwrap()
}

type Lines = Arc<Mutex<Vec<String>>>;

/// A webhook that refuses its first `failures` batches (503), then records each line.
async fn webhook(failures: usize) -> (String, Lines, Arc<Mutex<usize>>) {
    let lines: Lines = Arc::default();
    let attempts = Arc::new(Mutex::new(0));
    let (seen, tries) = (lines.clone(), attempts.clone());
    let router = Router::new().route(
        "/ingest",
        route_post(move |body: String| {
            let (seen, tries) = (seen.clone(), tries.clone());
            async move {
                let mut n = tries.lock().unwrap();
                *n += 1;
                if *n <= failures {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                seen.lock().unwrap().extend(body.lines().map(str::to_owned));
                StatusCode::OK
            }
        }),
    );
    let url = crate::support::spawn_router(router).await;
    (format!("{url}/ingest"), lines, attempts)
}

/// Audit lines as received by a loopback OTLP logs collector.
async fn otlp_logs_collector() -> (String, Lines) {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message;
    let lines: Lines = Arc::default();
    let seen = lines.clone();
    let router = Router::new().route(
        "/v1/logs",
        route_post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                let request = ExportLogsServiceRequest::decode(body).unwrap();
                for resource in request.resource_logs {
                    for scope in resource.scope_logs {
                        for record in scope.log_records {
                            if let Some(Any::StringValue(line)) = record.body.and_then(|b| b.value)
                            {
                                seen.lock().unwrap().push(line);
                            }
                        }
                    }
                }
                StatusCode::OK
            }
        }),
    );
    (crate::support::spawn_router(router).await, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audit_sink_receives_the_exact_lines_in_order_and_the_webhook_loses_none() {
    let dir = std::env::temp_dir().join(random("idjag-gateway-sinks"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("audit.jsonl");
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let syslog_address = syslog.local_addr().unwrap();
    let journal_path = dir.join("journal.socket");
    let journal = tokio::net::UnixDatagram::bind(&journal_path).unwrap();
    let (hook_url, hooked, attempts) = webhook(2).await;
    let (otlp_url, exported) = otlp_logs_collector().await;
    let sinks = format!(
        r#"
[audit]
[[audit.sinks]]
kind = "file"
path = "{file}"
[[audit.sinks]]
kind = "syslog"
transport = "udp"
address = "{syslog_address}"
app_name = "idjag-gateway"
[[audit.sinks]]
kind = "journald"
socket = "{journal}"
identifier = "idjag-gateway"
[[audit.sinks]]
kind = "webhook"
url = "{hook_url}"
batch_max_lines = 2
retry_initial = "50ms"
retry_max = "100ms"
headers = {{ authorization = "Bearer sink-secret-webhook" }}
[[audit.sinks]]
kind = "otlp"
endpoint = "{otlp_url}"
"#,
        file = file.display(),
        journal = journal_path.display(),
    );
    let blocks = crate::support::config_blocks(&sinks);
    let t = start_with_sinks(UpstreamKind::Echo, move |c| c.audit = blocks.audit.clone()).await;
    let alice = token(&t, "alice");
    let ids: Vec<String> = (0..5).map(|i| format!("sinks-request-{i}")).collect();
    for id in &ids {
        let reply = post(&t.route_url, Some(&alice), &initialize())
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    let expected = ids.len();
    // The file.
    eventually("the file lines", async || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count()
            >= expected
    })
    .await;
    let from_file: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let request_ids: Vec<String> = from_file
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(request_ids, ids);
    for line in &from_file {
        let line: Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["client_address"], "127.0.0.1");
        assert!(line.get("trace_id").is_some());
    }
    // Syslog: one RFC 5424 frame per line, the line after the header.
    let mut from_syslog = Vec::new();
    let mut buffer = vec![0u8; 65536];
    while from_syslog.len() < expected {
        let n = tokio::time::timeout(Duration::from_secs(10), syslog.recv(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        let frame = String::from_utf8_lossy(&buffer[..n]).into_owned();
        assert!(frame.starts_with("<86>1 "), "{frame}");
        let (_, line) = frame.split_once(" audit - ").unwrap();
        from_syslog.push(line.to_owned());
    }
    assert_eq!(from_syslog, from_file);
    // journald: MESSAGE fields.
    let mut from_journal = Vec::new();
    while from_journal.len() < expected {
        let n = tokio::time::timeout(Duration::from_secs(10), journal.recv(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        let entry = String::from_utf8_lossy(&buffer[..n]).into_owned();
        assert!(
            entry.contains("\nIDJAG_AUDIT=1\n")
                && entry.contains("SYSLOG_IDENTIFIER=idjag-gateway\n"),
            "{entry}"
        );
        let message = entry
            .lines()
            .find_map(|l| l.strip_prefix("MESSAGE="))
            .unwrap();
        from_journal.push(message.to_owned());
    }
    assert_eq!(from_journal, from_file);
    // The webhook failed twice, then took every line, in order.
    eventually("the webhook lines", async || {
        hooked.lock().unwrap().len() >= expected
    })
    .await;
    assert_eq!(*hooked.lock().unwrap(), from_file);
    assert!(*attempts.lock().unwrap() >= 3);
    // OTLP logs (batched by the SDK: flushed at the latest when the gateway stops).
    t.gateway.flush_audit(Duration::from_secs(5)).await;
    eventually("the OTLP log records", async || {
        exported.lock().unwrap().len() >= expected
    })
    .await;
    assert_eq!(*exported.lock().unwrap(), from_file);
    // The webhook's header is a secret: in no line, no log.
    assert!(!from_file.iter().any(|l| l.contains("sink-secret-")));
    assert!(!captured_logs().contains("sink-secret-"));
    let _ = std::fs::remove_dir_all(dir);
}

fn ops_metric_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("idjag_gateway_"))
        .map(|l| {
            let series = l.rsplit_once(' ').map_or(l, |(s, _)| s);
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let name = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            let mut keys: Vec<&str> = labels
                .trim_end_matches('}')
                .split(',')
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
                .filter(|k| *k != "le")
                .collect();
            keys.sort_unstable();
            format!("{name}{{{}}}", keys.join(","))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_names_and_labels_are_pinned() {
    let (t, _) = start_with(UpstreamKind::Echo, |_| {}).await;
    idjag_ops::metrics::build_info("idjag_gateway", env!("CARGO_PKG_VERSION"), &[]);
    let alice = token(&t, "alice");
    send(
        &t.route_url,
        Some(&alice),
        &tools_call(1, "echo", json!({"text": "x"})),
    )
    .await;
    send(&t.route_url, None, &initialize()).await;
    let text = client()
        .get(format!("{}/metrics", t.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names = ops_metric_names(&text);
    let pinned: BTreeSet<String> = [
        "idjag_gateway_build_info{version}",
        "idjag_gateway_requests_total{decision,method,upstream}",
        "idjag_gateway_request_duration_seconds{decision,upstream}",
        "idjag_gateway_upstream_duration_seconds{upstream}",
        "idjag_gateway_token_exchanges_total{outcome}",
        "idjag_gateway_redemptions_total{outcome}",
        "idjag_gateway_jwks_fetches_total{outcome}",
        "idjag_gateway_credential_cache_total{result,upstream}",
        "idjag_gateway_identity_cache_total{result}",
        "idjag_gateway_requests_in_flight{}",
        "idjag_gateway_streams_open{}",
        "idjag_gateway_approvals_pending{}",
        "idjag_gateway_store_healthy{}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Series that exist once another test in this process used a client-credentials
    // upstream: the same names and labels, when present.
    // Likewise for stdio upstreams (tests `api::stdio`) and refusals by `[limits]` (tests
    // `api::limits`, `api::caps`).
    let optional: BTreeSet<String> = [
        "idjag_gateway_client_credentials_fetches_total{outcome,upstream}",
        "idjag_gateway_stdio_processes{upstream}",
        "idjag_gateway_stdio_starts_total{upstream}",
        "idjag_gateway_stdio_restarts_total{upstream}",
        "idjag_gateway_stdio_exits_total{reason,upstream}",
        "idjag_gateway_limit_refusals_total{limit,principal}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert!(
        pinned.is_subset(&names),
        "missing: {:?}",
        pinned.difference(&names).collect::<Vec<_>>()
    );
    let unknown: Vec<_> = names
        .difference(&pinned)
        .filter(|n| !optional.contains(*n))
        .collect();
    assert!(unknown.is_empty(), "unpinned: {unknown:?}");
    assert!(
        text.contains("idjag_gateway_token_exchanges_total{outcome=\"success\"}"),
        "{text}"
    );
    assert!(
        text.contains("idjag_gateway_redemptions_total{outcome=\"success\"}"),
        "{text}"
    );
    // The runtime's own, from idjag-ops.
    for runtime in [
        "idjag_http_connections_open{listener=\"public\"}",
        "idjag_http_requests_in_flight{listener=\"admin\"}",
        "idjag_config_generation",
    ] {
        assert!(text.contains(runtime), "{runtime}: {text}");
    }
    assert!(!text.contains("alice") && !text.contains(&alice));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_overage_marker_and_a_group_claim_over_the_cap_are_refused_with_their_reason() {
    let recorder = Recorder::default();
    let (t, audit) = start_with(recording_echo(recorder.clone()), |c| {
        c.inbound.max_groups = 40
    })
    .await;
    let client_id = idjag_core::ClientId::new(GATEWAY_CLIENT).unwrap();
    let mut overage = t.users.claims("alice", &client_id).unwrap();
    overage.groups = None;
    overage
        .extra
        .insert("_claim_names".into(), json!({"groups": "src1"}));
    overage.extra.insert(
        "_claim_sources".into(),
        json!({"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/alice/getMemberObjects"}}),
    );
    let mut over_cap = t.users.claims("alice", &client_id).unwrap();
    let mut groups: Vec<String> = (0..40).map(|i| format!("g{i}")).collect();
    groups.push("eng".into());
    over_cap.groups = Some(groups);
    for (claims, reason) in [(overage, "groups_overage"), (over_cap, "groups_over_cap")] {
        let token = t.users.sign(&claims).unwrap();
        let response = send(&t.route_url, Some(token.secret()), &initialize()).await;
        assert_eq!(response.status(), 403, "{reason}");
        let record = audit.records().pop().unwrap();
        assert_eq!((record.reason.as_str(), record.status), (reason, 403));
    }
    assert_eq!(recorder.count(), 0);
}

type Exported = Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>;

/// Spans as received by a loopback OTLP traces collector.
async fn otlp_traces_collector() -> (String, Exported) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let spans: Exported = Arc::default();
    let seen = spans.clone();
    let router = Router::new().route(
        "/v1/traces",
        route_post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        seen.lock().unwrap().extend(scope.spans);
                    }
                }
                StatusCode::OK
            }
        }),
    );
    (crate::support::spawn_router(router).await, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

#[test]
fn one_request_exports_its_spans_under_the_callers_trace_and_sends_it_on() {
    use idjag_ops::telemetry::{OtlpConfig, ServiceInfo, Telemetry, TelemetryConfig, TracesConfig};
    // One thread: the test's dispatcher sees every task of the topology.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (collector, exported) = otlp_traces_collector().await;
        let mut config = TelemetryConfig::default();
        config.log_filter = "warn".to_owned();
        config.traces = TracesConfig::otlp(OtlpConfig::http(collector), 0.0);
        let (telemetry, dispatch) =
            Telemetry::build(&config, &ServiceInfo::new("idjag-gateway", "test")).unwrap();
        let _guard = tracing::dispatcher::set_default(&dispatch);
        let recorder = Recorder::default();
        let (t, audit) = start_with(recording_echo(recorder.clone()), |_| {}).await;
        let alice = token(&t, "alice");
        let reply = post(
            &t.route_url,
            Some(&alice),
            &tools_call(1, "echo", json!({"text": "x"})),
        )
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .send()
        .await
        .unwrap();
        assert_eq!(reply.status(), 200);
        let _ = reply.bytes().await;
        drop(t);
        telemetry.shutdown().await;

        let spans = exported.lock().unwrap().clone();
        let by_name = |name: &str| {
            spans
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| {
                    panic!(
                        "no span {name}: {:?}",
                        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                    )
                })
                .clone()
        };
        for span in &spans {
            assert_eq!(hex(&span.trace_id), TRACE_ID, "{}", span.name);
        }
        let server = by_name("POST /mcp/{name}");
        assert_eq!(hex(&server.parent_span_id), PARENT_SPAN_ID);
        for child in [
            "inbound authentication",
            "policy",
            "upstream credential",
            "POST notes",
            "stream",
        ] {
            assert_eq!(by_name(child).parent_span_id, server.span_id, "{child}");
        }
        let credential = by_name("upstream credential");
        for child in ["token_exchange", "redemption"] {
            assert_eq!(by_name(child).parent_span_id, credential.span_id, "{child}");
        }
        // The upstream continues the trace under the upstream call's span.
        let call = by_name("POST notes");
        let sent = recorder.all()[0].headers["traceparent"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(sent, format!("00-{TRACE_ID}-{}-01", hex(&call.span_id)));
        // The audit line carries the trace id.
        assert_eq!(audit.records()[0].trace_id.as_deref(), Some(TRACE_ID));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_address_cap_are_closed_at_accept() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (t, _) = start_with(UpstreamKind::Echo, |c| {
        c.server.listener.max_connections_per_ip = 2;
    })
    .await;
    let address = crate::support::authority(&t.gateway_url);
    let mut first = tokio::net::TcpStream::connect(&address).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Let the gateway accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), third.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    // The first connection is served.
    first
        .write_all(b"GET /.well-known/oauth-protected-resource/mcp/notes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
