//! Shared helpers: the demo topology with a chosen upstream, MCP requests, raw HTTP, a
//! recording upstream and a global log capture.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes as _;
use http::{HeaderMap, Method};
use idjag_core::{AccessTokenClaims, Audience, ClientId, Jti, NumericDate, Subject, wire};
use idjag_gateway::Config;
pub(crate) use idjag_gateway::demo::{Topology, TopologyOptions, UpstreamKind};
use idjag_gateway::observe::sinks::MemorySink;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) const PROTOCOL: &str = "2025-11-25";

/// The topology with `upstream`, its gateway configuration edited by `configure`, audit
/// records kept in memory.
pub(crate) async fn start_with(
    upstream: UpstreamKind,
    configure: impl Fn(&mut Config) + Send + Sync + 'static,
) -> (Topology, MemorySink) {
    let audit = MemorySink::default();
    let mut options = TopologyOptions::with_upstream(upstream);
    options.audit = Some(Arc::new(audit.clone()));
    options.configure = Some(Arc::new(configure));
    let topology = Topology::start(options).await.expect("topology starts");
    (topology, audit)
}

/// The topology with `upstream` and the demo configuration.
pub(crate) async fn start(upstream: UpstreamKind) -> (Topology, MemorySink) {
    start_with(upstream, |_| {}).await
}

/// `host:port` of a URL.
pub(crate) fn authority(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    rest.split('/').next().unwrap_or(rest).to_owned()
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub(crate) fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name":"test","version":"1"}}})
}

pub(crate) fn tools_list(id: i64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/list","params":{}})
}

pub(crate) fn tools_call(id: i64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":arguments}})
}

/// A POST with the MCP headers and, when given, `Authorization: Bearer <token>`.
pub(crate) fn post(url: &str, token: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
    let mut request = client()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", PROTOCOL)
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request
}

/// The JSON-RPC messages of a response (JSON or SSE).
pub(crate) async fn messages(response: reqwest::Response) -> Vec<Value> {
    let sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let bytes = response.bytes().await.unwrap();
    if !sse {
        return serde_json::from_slice(&bytes)
            .map(|v| vec![v])
            .unwrap_or_default();
    }
    let mut splitter = idjag_gateway::protocol::sse::EventSplitter::new(bytes.len() + 1);
    splitter.push(&bytes);
    splitter.end();
    let mut out = Vec::new();
    while let Ok(Some(event)) = splitter.next_event() {
        // Priming events (rmcp) carry no data.
        if let Some(message) = idjag_gateway::protocol::sse::message_data(&event)
            .and_then(|d| serde_json::from_str(&d).ok())
        {
            out.push(message);
        }
    }
    out
}

/// Sends raw bytes and reads until the server closes (or 10 s pass).
pub(crate) async fn raw(authority: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(authority).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// One request an upstream received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// What an upstream received.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    pub(crate) async fn record(&self, request: Request) -> Recorded {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let recorded = Recorded {
            method: parts.method,
            headers: parts.headers,
            body,
        };
        self.0.lock().unwrap().push(recorded.clone());
        recorded
    }

    pub(crate) fn all(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// An SSE response of `events`.
pub(crate) fn sse(
    events: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    let mut response = Response::new(axum::body::Body::from_stream(events));
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    response
}

/// One event, then a stream that stays open.
pub(crate) fn one_event_then_silence()
-> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    use futures::StreamExt;
    futures::stream::iter([Ok(Bytes::from_static(b"data: {}\n\n"))])
        .chain(futures::stream::pending())
}

/// An MCP upstream that records every request: a GET gets a stream of one event that stays
/// open; a POST is answered like the echo server, after `delay`.
pub(crate) fn recording_upstream(recorder: Recorder, delay: Duration) -> UpstreamKind {
    UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(move |request: Request| {
            let recorder = recorder.clone();
            async move {
                let recorded = recorder.record(request).await;
                match recorded.method {
                    Method::GET => sse(one_event_then_silence()),
                    Method::POST => {
                        tokio::time::sleep(delay).await;
                        let message: Value =
                            serde_json::from_slice(&recorded.body).unwrap_or_default();
                        idjag_gateway::demo::echo(axum::Json(message)).await
                    }
                    _ => http::StatusCode::METHOD_NOT_ALLOWED.into_response(),
                }
            }
        }),
    ))
}

/// [`recording_upstream`] without delay.
pub(crate) fn recording_echo(recorder: Recorder) -> UpstreamKind {
    recording_upstream(recorder, Duration::ZERO)
}

/// Sends [`post`] and unwraps the response.
pub(crate) async fn send(url: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    post(url, token, body).send().await.unwrap()
}

/// A JSON answer with a body.
pub(crate) fn json_response(value: Value) -> Response {
    axum::Json(value).into_response()
}

/// A global log capture (every test in this binary shares it): idjag crates at TRACE,
/// the rest at WARN.
pub(crate) fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("idjag=trace,warn"))
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
}

pub(crate) fn captured_logs() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An IdP access token (`typ` `at+jwt`) of alice, signed with the IdP's key.
pub(crate) fn idp_access_token(
    t: &Topology,
    aud: &str,
    scope: Option<&str>,
    groups: &[&str],
) -> String {
    let now = t.idp_server.clock().now_unix();
    let mut claims = AccessTokenClaims::new(
        t.idp.clone(),
        Subject::new("alice").unwrap(),
        Audience::new(aud).unwrap(),
        ClientId::new("chat-agent").unwrap(),
        Jti::new(format!("at-{now}-{aud}-{}", groups.len())).unwrap(),
        NumericDate::from_unix(now).unwrap(),
        NumericDate::from_unix(now + 300).unwrap(),
    );
    claims.scope = scope.map(|s| idjag_core::ScopeSet::parse(s).unwrap());
    claims.extra.insert("groups".into(), json!(groups));
    t.idp_server
        .current_signing_key()
        .sign_jwt(Some(wire::TYP_ACCESS_TOKEN), &claims)
        .unwrap()
        .secret()
        .to_owned()
}

/// Serves `router` on a fresh loopback port until the test ends; its base URL.
pub(crate) async fn spawn_router(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

/// Parses configuration blocks (`[[upstream]]`, `[admin]`, ...) on their own, to copy into
/// a topology's configuration from its `configure` hook.
pub(crate) fn config_blocks(blocks: &str) -> Config {
    Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"\nplain_http_reason = \"tests\"\n\
         public_url = \"http://127.0.0.1:1\"\n\
         [idp]\nissuer = \"http://127.0.0.1:1\"\nclient = {{ id = \"x\", secret = \"y\" }}\n{blocks}"
    ))
    .expect("valid blocks")
}

/// A random value recognisable in tests.
pub(crate) fn random(prefix: &str) -> String {
    use sha2::Digest;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = format!(
        "{prefix}{:?}{}{}",
        std::time::Instant::now(),
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// Writes `secret` to a fresh file (with a trailing newline, as editors do); its path.
pub(crate) fn secret_file(secret: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.secret", random("idjag-test")));
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

/// Whether any header value or the body of `request` contains `needle`.
pub(crate) fn carries(request: &Recorded, needle: &str) -> bool {
    request
        .headers
        .values()
        .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(needle))
        || String::from_utf8_lossy(&request.body).contains(needle)
}

/// A plain recording MCP upstream router at `/mcp` (POST: the echo server).
pub(crate) fn recording_router(recorder: Recorder) -> Router {
    match recording_echo(recorder) {
        UpstreamKind::Custom(router) => router,
        _ => unreachable!(),
    }
}
