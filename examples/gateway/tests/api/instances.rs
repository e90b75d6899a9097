//! Gateways as real processes (`idjag-gateway serve`), each from a configuration file the
//! test writes, in front of the in-process demo topology (IdP, resource AS, MCP servers);
//! an MCP upstream with sessions; a TCP relay that can cut one instance off its store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::any;
use http::Method;
use idjag_gateway::demo::MEMORY_STORE;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_idjag-gateway");

/// A scratch directory for one test, removed on drop.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(random(name));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `[store]` of a Redis at `url`, with a staleness bound of `max_staleness_secs`.
pub(crate) fn redis_store(url: &str, max_staleness_secs: u64) -> String {
    format!(
        "[store]\nmax_staleness_secs = {max_staleness_secs}\n\n[store.backend]\nkind = \"redis\"\n\
         url = \"{url}\"\nconnect_timeout_ms = 300\ncommand_timeout_ms = 300\n"
    )
}

/// The `[store]` of an embedded file.
pub(crate) fn embedded_store(path: &Path) -> String {
    format!(
        "[store]\n\n[store.backend]\nkind = \"embedded\"\npath = \"{}\"\n",
        path.display()
    )
}

/// One `idjag-gateway serve` process.
pub(crate) struct GatewayProcess {
    child: Option<Child>,
    pub(crate) name: &'static str,
    pub(crate) url: String,
    /// The admin listener: health, metrics, the admin API.
    pub(crate) admin_url: String,
    pub(crate) config: PathBuf,
    pub(crate) audit: PathBuf,
    log: PathBuf,
    dir: PathBuf,
}

impl GatewayProcess {
    /// The topology's gateway configuration, listening on ports of its own (public and
    /// admin), with `store` as its `[store]` and its audit log (a file sink) in `dir`; started
    /// and healthy.
    pub(crate) async fn start(
        name: &'static str,
        topology: &Topology,
        store: &str,
        dir: &Path,
    ) -> Self {
        let port = idjag_test_support::redis::free_port();
        let admin_port = idjag_test_support::redis::free_port();
        let url = format!("http://127.0.0.1:{port}");
        let audit = dir.join(format!("{name}-audit.jsonl"));
        let mut text = String::new();
        let mut section = "";
        for line in topology.config_toml.lines() {
            if line.starts_with('[') {
                section = line;
            }
            if line.starts_with("listen = ") {
                let port = if section == "[admin]" {
                    admin_port
                } else {
                    port
                };
                text.push_str(&format!("listen = \"127.0.0.1:{port}\"\n"));
            } else if line.starts_with("public_url = ") {
                text.push_str(&format!("public_url = \"{url}\"\n"));
            } else if line == "[audit]" {
                text.push_str(&format!(
                    "[audit]\nsinks = [{{ kind = \"file\", path = \"{}\" }}]\n",
                    audit.display()
                ));
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        assert!(text.ends_with(MEMORY_STORE), "the store comes last");
        let text = format!("{}{store}", &text[..text.len() - MEMORY_STORE.len()]);
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut process = Self {
            child: None,
            name,
            url,
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            config,
            audit,
            log: dir.join(format!("{name}.log")),
            dir: dir.to_path_buf(),
        };
        process.spawn().await;
        process
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .env("IDJAG_GATEWAY__TELEMETRY__LOG_FILTER", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client()
                .get(format!("{}/healthz", self.admin_url))
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start: {}",
                self.name,
                self.logs()
            );
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{} exited with {status}: {}", self.name, self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/readyz` answers 200.
    pub(crate) async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let ready = self.readyz().await;
            if ready.0 == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready: {ready:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/readyz`: status and body.
    pub(crate) async fn readyz(&self) -> (u16, String) {
        match client()
            .get(format!("{}/readyz", self.admin_url))
            .send()
            .await
        {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// The route to the notes upstream.
    pub(crate) fn notes(&self) -> String {
        format!("{}/mcp/notes", self.url)
    }

    /// The route to the wiki.
    pub(crate) fn wiki(&self) -> String {
        format!("{}/mcp/wiki", self.url)
    }

    /// Whether the process still runs (it was never restarted behind the test's back).
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// `kill -9`.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again from the same file, on the same port.
    pub(crate) async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// Rewrites its configuration file (takes effect at the next start).
    pub(crate) fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, edit(text)).unwrap();
    }

    /// Its audit lines so far.
    pub(crate) fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Its log (stderr) so far.
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An admin API request with the topology's admin token.
    pub(crate) fn admin(
        &self,
        topology: &Topology,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        client()
            .request(method, format!("{}{path}", self.admin_url))
            .bearer_auth(topology.admin_token.secret())
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An MCP upstream with sessions: `initialize` answers with a new `Mcp-Session-Id`, other
/// POSTs like the echo server, GET with a stream of one event that stays open, DELETE 200.
/// Every request is recorded.
pub(crate) fn session_upstream(recorder: Recorder) -> UpstreamKind {
    UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(move |request: Request| {
            let recorder = recorder.clone();
            async move {
                let recorded = recorder.record(request).await;
                match recorded.method {
                    Method::GET => sse(one_event_then_silence()),
                    Method::DELETE => http::StatusCode::OK.into_response(),
                    Method::POST => {
                        let message: Value =
                            serde_json::from_slice(&recorded.body).unwrap_or_default();
                        let initialize = message["method"] == "initialize";
                        let mut response = idjag_gateway::demo::echo(axum::Json(message)).await;
                        if initialize {
                            let id = random("upstream-session");
                            response
                                .headers_mut()
                                .insert("mcp-session-id", id.parse().unwrap());
                        }
                        response
                    }
                    _ => http::StatusCode::METHOD_NOT_ALLOWED.into_response(),
                }
            }
        }),
    ))
}

/// A TCP relay to `target` that can be cut (open connections reset, new ones closed at
/// once) and restored: one instance losing its network path to the store.
pub(crate) struct Relay {
    pub(crate) port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<JoinSet<()>>>,
    _accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub(crate) async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(JoinSet::new()));
        let accept = {
            let (cut, open) = (cut.clone(), open.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        return;
                    };
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    open.lock().await.spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            })
        };
        Self {
            port,
            cut,
            open,
            _accept: accept,
        }
    }

    /// `redis://` through the relay.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Cuts every connection and refuses new ones.
    pub(crate) async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.open.lock().await.abort_all();
    }

    /// Lets connections through again.
    pub(crate) fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The reason code of a gateway answer: `data.reason` of a JSON-RPC error, else `ok`.
pub(crate) fn reason(body: &Value) -> String {
    body["error"]["data"]["reason"]
        .as_str()
        .map_or_else(|| "ok".to_owned(), str::to_owned)
}
