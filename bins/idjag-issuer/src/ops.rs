//! Operations plumbing, kept in this one module so it can move onto a shared operations crate:
//! structured logs (JSON or text, on stderr), the audit sink (one JSON line per decision, on
//! stdout or a file) with its decision counters, the Prometheus recorder, the listener with
//! connection limits and a header-read timeout, and graceful shutdown on SIGTERM or Ctrl-C.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime as _;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{ConfigError, LogConfig, LogFormat};

/// The `tracing` target the libraries emit their audit events on.
pub(crate) const AUDIT_TARGET: &str = "idjag::audit";

/// Where audit lines go.
#[derive(Debug)]
pub(crate) enum AuditSink {
    Stdout,
    Stderr,
    File(Mutex<File>),
}

impl AuditSink {
    /// `"stdout"` (default), `"stderr"`, or a file path (created if missing, appended).
    pub(crate) fn open(output: Option<&str>, base: &std::path::Path) -> Result<Self, ConfigError> {
        Ok(match output {
            None | Some("stdout") => Self::Stdout,
            Some("stderr") => Self::Stderr,
            Some(path) => {
                let path: PathBuf = crate::material::resolve(base, std::path::Path::new(path));
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        ConfigError::new(
                            "audit.output",
                            format!("cannot open {}: {e}", path.display()),
                        )
                    })?;
                Self::File(Mutex::new(file))
            }
        })
    }

    fn write_line(&self, line: &str) {
        // An audit line is written whole, with one write call, or not at all.
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let _ = match self {
            Self::Stdout => std::io::stdout().lock().write_all(&bytes),
            Self::Stderr => std::io::stderr().lock().write_all(&bytes),
            Self::File(file) => file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_all(&bytes),
        };
    }
}

#[derive(Default)]
struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// Turns each audit event into one JSON line and counts it
/// (`<prefix>_decisions_total{decision, reason}`).
struct AuditLayer {
    sink: Arc<AuditSink>,
    counter: &'static str,
}

impl<S: tracing::Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != AUDIT_TARGET {
            return;
        }
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut line = Map::new();
        let mut time = String::new();
        let _ = tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut time));
        line.insert("timestamp".into(), Value::from(time));
        line.insert("type".into(), Value::from("audit"));
        let message = fields.0.remove("message");
        line.insert("event".into(), message.unwrap_or(Value::from("decision")));
        line.append(&mut fields.0);
        let label = |name: &str| {
            line.get(name)
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_owned()
        };
        metrics::counter!(self.counter, "decision" => label("decision"), "reason" => label("reason"))
            .increment(1);
        self.sink.write_line(&Value::Object(line).to_string());
    }
}

/// Installs the global subscriber: log lines on stderr (JSON or text, filtered by `level`,
/// never the audit events), and the audit layer writing to `sink`.
pub(crate) fn init_tracing(
    log: &LogConfig,
    sink: AuditSink,
    decisions_counter: &'static str,
) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&log.level).map_err(|e| {
        ConfigError::new("log.level", format!("{:?} is not a filter: {e}", log.level))
    })?;
    let not_audit = tracing_subscriber::filter::filter_fn(|m| m.target() != AUDIT_TARGET);
    let logs = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .with_filter(not_audit)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_filter(filter)
            .with_filter(not_audit)
            .boxed(),
    };
    let audit = AuditLayer {
        sink: Arc::new(sink),
        counter: decisions_counter,
    }
    .with_filter(tracing_subscriber::filter::filter_fn(|m| {
        m.target() == AUDIT_TARGET
    }));
    tracing_subscriber::registry()
        .with(logs)
        .with(audit)
        .try_init()
        .map_err(|e| ConfigError::new("log", format!("cannot install the logger: {e}")))
}

/// The process-wide Prometheus recorder; `/metrics` renders its handle.
pub(crate) fn install_metrics() -> Result<PrometheusHandle, ConfigError> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| ConfigError::new("metrics", e.to_string()))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Listener limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeLimits {
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
}

/// Binds `addr`.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `app` until `shutdown` resolves: HTTP/1.1 and HTTP/2, a header-read timeout (slow
/// clients are cut off), at most `max_connections` open connections (further ones are
/// closed at once). On shutdown the listener closes, in-flight requests finish within the
/// grace period.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let service = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing a new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service.clone())
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
    }
}
