//! The sink side of the audit log: one JSON line per decision, delivered to every configured
//! sink without ever blocking a runtime worker.
//!
//! The servers own the line format; to the sinks a line is an opaque string (a trailing
//! newline is removed and added back where the sink's framing wants one). Every line should
//! carry the fields of [`AuditContext`]: the client's address (through [`TrustedProxies`])
//! and the trace id.
//!
//! ```toml
//! [audit]
//! queue_capacity = 10000      # lines waiting, per sink
//! on_full = "drop"            # or "fail_closed"
//!
//! [[audit.sinks]]
//! kind = "file"
//! path = "/var/log/idjag/audit.jsonl"
//!
//! [[audit.sinks]]
//! kind = "syslog"
//! transport = "udp"           # "unix" (default, /dev/log), "udp" or "tcp"
//! address = "127.0.0.1:514"
//!
//! [[audit.sinks]]
//! kind = "webhook"
//! url = "https://siem.example/ingest"
//! ```
//!
//! ## Queues, back-pressure and health
//!
//! [`Audit::record`] puts the line in a bounded queue in front of each sink (`try_send`:
//! it never waits). A sink task drains its queue in batches: it gathers lines for 5 ms after
//! the first of a batch, so that under load one write carries many lines. When a queue is
//! full the line is not queued for that sink: it is counted (`idjag_audit_lines_total{sink,
//! outcome="dropped"}`), the sink is unhealthy until its queue is half empty again, and
//! `on_full` decides what the caller hears:
//!
//! - `"drop"` (default): `record` returns `Ok`; the loss is in the metric and the health.
//! - `"fail_closed"`: `record` returns [`AuditError::QueueFull`], and the caller refuses the
//!   request it could not audit.
//!
//! [`Audit::is_healthy`] (for `/readyz`) and `idjag_audit_sink_healthy{sink}` report a sink
//! unhealthy while its queue is full or its last write failed.
//!
//! ## Sinks
//!
//! | `kind` | delivery |
//! |---|---|
//! | `stdout`, `stderr` | one line each, flushed per batch |
//! | `file` | appended; reopened on SIGHUP (and [`Audit::reopen`]) so logrotate can rename it and signal, without `copytruncate` |
//! | `syslog` | RFC 5424 frames over the local socket (`/dev/log`), UDP (one datagram per line) or TCP (octet-counted, RFC 6587); facility `authpriv` by default, severity informational, MSGID `audit` |
//! | `journald` | the native protocol over `/run/systemd/journal/socket`: `MESSAGE` (the line), `PRIORITY=6`, `SYSLOG_IDENTIFIER`, `SYSLOG_FACILITY`, `IDJAG_AUDIT=1` |
//! | `otlp` | OpenTelemetry log records (body = the line, severity INFO, event name `idjag.audit`) through the OTLP logs exporter (feature `otlp`) |
//! | `webhook` | `POST` of batches as NDJSON (`application/x-ndjson`), in order; a failed batch (network error or any non-2xx answer) is retried with exponential backoff, and later lines wait behind it in a bounded pending queue, so nothing is lost while that queue has room |
//!
//! A line that a sink failed to write (a file that cannot be written, a syslog server that
//! refuses) is counted as `failed`; the webhook sink retries instead. The OTLP sink hands
//! lines to the SDK's batch exporter, which reports export failures in its own logs only.

mod client;
pub mod events;
mod sinks;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::config::{ConfigDuration, ConfigError, join};
use crate::telemetry::OtlpConfig;

pub use client::{AuditContext, InvalidProxy, TrustedProxies};
pub use sinks::rfc3339;

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Lines waiting per sink before `on_full` applies. Default 10000.
    #[serde(default = "default_capacity")]
    pub queue_capacity: usize,
    /// `"drop"` (default) or `"fail_closed"`.
    #[serde(default)]
    pub on_full: OnFull,
    /// `[[audit.sinks]]`; default: one `stdout` sink.
    #[serde(default = "default_sinks")]
    pub sinks: Vec<SinkConfig>,
}

fn default_capacity() -> usize {
    10_000
}

fn default_sinks() -> Vec<SinkConfig> {
    vec![SinkConfig::Stdout(StreamSink::default())]
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            queue_capacity: default_capacity(),
            on_full: OnFull::default(),
            sinks: default_sinks(),
        }
    }
}

impl AuditConfig {
    /// Every key of the table, for servers that keep their own keys in `[audit]` (see
    /// [`ListenerConfig::KEYS`](crate::listener::ListenerConfig::KEYS)).
    pub const KEYS: &'static [&'static str] = &["queue_capacity", "on_full", "sinks"];

    /// `sinks` with the default queue and policy.
    pub fn with_sinks(sinks: Vec<SinkConfig>) -> Self {
        Self {
            sinks,
            ..Self::default()
        }
    }

    /// Checks what serde cannot; `at` is the key of this table (`audit`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.queue_capacity == 0 {
            return Err(ConfigError::new(
                join(at, "queue_capacity"),
                "must be at least 1",
            ));
        }
        if self.sinks.is_empty() {
            return Err(ConfigError::new(
                join(at, "sinks"),
                "no sink: audit lines would go nowhere",
            ));
        }
        let mut names = Vec::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            let key = format!("{}[{i}]", join(at, "sinks"));
            sink.validate(&key)?;
            let name = sink.name(i);
            if names.contains(&name) {
                return Err(ConfigError::new(
                    join(&key, "name"),
                    format!("another sink is named {name:?}"),
                ));
            }
            names.push(name);
        }
        Ok(())
    }
}

/// What a full queue means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnFull {
    /// The line is dropped for that sink and counted.
    #[default]
    Drop,
    /// [`Audit::record`] fails, so the caller can refuse the request.
    FailClosed,
}

/// One `[[audit.sinks]]` entry, by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum SinkConfig {
    /// Standard output.
    Stdout(StreamSink),
    /// Standard error.
    Stderr(StreamSink),
    /// A file, reopened on SIGHUP.
    File(FileSink),
    /// Syslog (RFC 5424).
    Syslog(SyslogSink),
    /// The systemd journal.
    Journald(JournaldSink),
    /// OpenTelemetry logs over OTLP (feature `otlp`).
    Otlp(OtlpSink),
    /// An HTTP endpoint.
    Webhook(WebhookSink),
}

impl SinkConfig {
    /// The sink's name in metrics and health: `name`, or the kind. Two sinks of one kind need
    /// names ([`AuditConfig::validate`] says so). `index` is the sink's position.
    pub fn name(&self, index: usize) -> String {
        let (name, kind) = match self {
            Self::Stdout(s) => (&s.name, "stdout"),
            Self::Stderr(s) => (&s.name, "stderr"),
            Self::File(s) => (&s.name, "file"),
            Self::Syslog(s) => (&s.name, "syslog"),
            Self::Journald(s) => (&s.name, "journald"),
            Self::Otlp(s) => (&s.name, "otlp"),
            Self::Webhook(s) => (&s.name, "webhook"),
        };
        let _ = index;
        name.clone().unwrap_or_else(|| kind.to_owned())
    }

    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        match self {
            Self::Stdout(_) | Self::Stderr(_) | Self::Journald(_) => Ok(()),
            Self::File(file) => {
                if file.path.as_os_str().is_empty() {
                    Err(ConfigError::new(join(at, "path"), "empty path"))
                } else {
                    Ok(())
                }
            }
            Self::Syslog(syslog) => syslog.validate(at),
            Self::Otlp(otlp) => otlp.otlp().validate(at),
            Self::Webhook(webhook) => webhook.validate(at),
        }
    }
}

/// `kind = "stdout"` or `"stderr"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StreamSink {
    /// The sink's name in metrics and health. Default: the kind.
    #[serde(default)]
    pub name: Option<String>,
}

/// `kind = "file"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FileSink {
    /// See [`StreamSink::name`].
    #[serde(default)]
    pub name: Option<String>,
    /// The file, created (mode 0640) if missing, appended to.
    pub path: PathBuf,
    /// Reopen the file on SIGHUP. Default `true`.
    #[serde(default = "yes")]
    pub reopen_on_sighup: bool,
}

fn yes() -> bool {
    true
}

impl FileSink {
    /// Appends to `path`, reopened on SIGHUP.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            name: None,
            path: path.into(),
            reopen_on_sighup: true,
        }
    }
}

/// How syslog frames travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SyslogTransport {
    /// A local datagram socket (`/dev/log`).
    #[default]
    Unix,
    /// UDP, one frame per datagram (RFC 5426).
    Udp,
    /// TCP with octet counting (RFC 6587).
    Tcp,
}

/// `kind = "syslog"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SyslogSink {
    /// See [`StreamSink::name`].
    #[serde(default)]
    pub name: Option<String>,
    /// `"unix"` (default), `"udp"` or `"tcp"`.
    #[serde(default)]
    pub transport: SyslogTransport,
    /// The socket path (unix; default `/dev/log`) or `host:port` (udp, tcp; required).
    #[serde(default)]
    pub address: Option<String>,
    /// `kern`, `user`, …, `auth`, `authpriv` (default), `local0`–`local7`.
    #[serde(default = "default_facility")]
    pub facility: String,
    /// APP-NAME. Default `idjag`.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME. Default: the machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
}

fn default_facility() -> String {
    "authpriv".to_owned()
}

fn default_app_name() -> String {
    "idjag".to_owned()
}

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

impl SyslogSink {
    /// Frames to `address` over `transport`, every other setting at its default.
    pub fn new(transport: SyslogTransport, address: impl Into<String>) -> Self {
        Self {
            name: None,
            transport,
            address: Some(address.into()),
            facility: default_facility(),
            app_name: default_app_name(),
            hostname: None,
        }
    }

    fn facility_code(&self) -> u8 {
        FACILITIES
            .iter()
            .position(|f| *f == self.facility)
            .and_then(|p| u8::try_from(p).ok())
            .unwrap_or(10)
    }

    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if !FACILITIES.contains(&self.facility.as_str()) {
            return Err(ConfigError::new(
                join(at, "facility"),
                format!("unknown facility {:?}", self.facility),
            ));
        }
        if self.transport != SyslogTransport::Unix
            && self.address.as_deref().is_none_or(|a| {
                a.rsplit_once(':')
                    .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            })
        {
            return Err(ConfigError::new(
                join(at, "address"),
                "udp and tcp need host:port",
            ));
        }
        let printable =
            |s: &str| !s.is_empty() && s.len() <= 48 && s.bytes().all(|b| (33..=126).contains(&b));
        if !printable(&self.app_name) {
            return Err(ConfigError::new(
                join(at, "app_name"),
                "1 to 48 printable ASCII characters without spaces",
            ));
        }
        if self.hostname.as_deref().is_some_and(|h| !printable(h)) {
            return Err(ConfigError::new(
                join(at, "hostname"),
                "1 to 48 printable ASCII characters without spaces",
            ));
        }
        Ok(())
    }
}

/// `kind = "journald"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JournaldSink {
    /// See [`StreamSink::name`].
    #[serde(default)]
    pub name: Option<String>,
    /// The journal's socket. Default `/run/systemd/journal/socket`.
    #[serde(default = "default_journal")]
    pub socket: PathBuf,
    /// `SYSLOG_IDENTIFIER`. Default `idjag`.
    #[serde(default = "default_app_name")]
    pub identifier: String,
}

fn default_journal() -> PathBuf {
    PathBuf::from("/run/systemd/journal/socket")
}

impl Default for JournaldSink {
    fn default() -> Self {
        Self {
            name: None,
            socket: default_journal(),
            identifier: default_app_name(),
        }
    }
}

impl JournaldSink {
    /// Entries to the journal socket at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            ..Self::default()
        }
    }
}

/// `kind = "otlp"`: the fields of [`OtlpConfig`] and a name.
#[derive(Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpSink {
    /// See [`StreamSink::name`].
    #[serde(default)]
    pub name: Option<String>,
    /// See [`OtlpConfig::protocol`].
    #[serde(default)]
    pub protocol: crate::telemetry::OtlpProtocol,
    /// See [`OtlpConfig::endpoint`].
    #[serde(default)]
    pub endpoint: Option<String>,
    /// See [`OtlpConfig::headers`] (secret).
    #[serde(default)]
    #[serde(serialize_with = "crate::config::serialize_redacted")]
    pub headers: BTreeMap<String, String>,
    /// Export timeout. Default `"10s"`.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
}

impl fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSink")
            .field("name", &self.name)
            .field("otlp", &self.otlp())
            .finish()
    }
}

impl OtlpSink {
    /// Log records to `otlp`.
    pub fn new(otlp: OtlpConfig) -> Self {
        Self {
            name: None,
            protocol: otlp.protocol,
            endpoint: otlp.endpoint,
            headers: otlp.headers,
            timeout: otlp.timeout,
        }
    }

    /// The OTLP destination.
    pub fn otlp(&self) -> OtlpConfig {
        OtlpConfig {
            protocol: self.protocol,
            endpoint: self.endpoint.clone(),
            headers: self.headers.clone(),
            timeout: self.timeout,
        }
    }
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration::secs(10)
}

/// `kind = "webhook"`.
#[derive(Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookSink {
    /// See [`StreamSink::name`].
    #[serde(default)]
    pub name: Option<String>,
    /// Where batches are `POST`ed. https, or http for loopback and tests.
    pub url: String,
    /// Headers sent with every batch (e.g. `authorization`). Secret: never logged.
    #[serde(default)]
    #[serde(serialize_with = "crate::config::serialize_redacted")]
    pub headers: BTreeMap<String, String>,
    /// Most lines per request. Default 100.
    #[serde(default = "default_batch")]
    pub batch_max_lines: usize,
    /// Lines held for delivery (in order) while the endpoint fails; beyond it the queue in
    /// front fills and `on_full` applies. Default 100000.
    #[serde(default = "default_pending")]
    pub max_pending_lines: usize,
    /// First retry delay, doubled per failure. Default `"500ms"`.
    #[serde(default = "default_retry_initial")]
    pub retry_initial: ConfigDuration,
    /// Longest retry delay. Default `"30s"`.
    #[serde(default = "default_retry_max")]
    pub retry_max: ConfigDuration,
    /// Time for one request. Default `"10s"`.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
}

fn default_batch() -> usize {
    100
}
fn default_pending() -> usize {
    100_000
}
fn default_retry_initial() -> ConfigDuration {
    ConfigDuration::millis(500)
}
fn default_retry_max() -> ConfigDuration {
    ConfigDuration::secs(30)
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("batch_max_lines", &self.batch_max_lines)
            .field("max_pending_lines", &self.max_pending_lines)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookSink {
    /// Batches to `url`, every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            name: None,
            url: url.into(),
            headers: BTreeMap::new(),
            batch_max_lines: default_batch(),
            max_pending_lines: default_pending(),
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            timeout: default_timeout(),
        }
    }

    /// With these retry delays.
    pub fn retry(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = ConfigDuration(initial);
        self.retry_max = ConfigDuration(max);
        self
    }

    /// With at most `lines` per request.
    pub fn batch(mut self, lines: usize) -> Self {
        self.batch_max_lines = lines;
        self
    }

    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let ok = self.url.parse::<http::Uri>().ok().is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
        });
        if !ok {
            return Err(ConfigError::new(
                join(at, "url"),
                "expected an http:// or https:// URL",
            ));
        }
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                return Err(ConfigError::new(
                    format!("{}.{name}", join(at, "headers")),
                    "not a valid HTTP header",
                ));
            }
        }
        if self.batch_max_lines == 0 {
            return Err(ConfigError::new(
                join(at, "batch_max_lines"),
                "must be at least 1",
            ));
        }
        if self.max_pending_lines < self.batch_max_lines {
            return Err(ConfigError::new(
                join(at, "max_pending_lines"),
                "must be at least batch_max_lines",
            ));
        }
        if self.retry_initial.0.is_zero() || self.retry_initial > self.retry_max {
            return Err(ConfigError::new(
                join(at, "retry_initial"),
                "must be more than 0 and at most retry_max",
            ));
        }
        Ok(())
    }
}

/// Why a line was not accepted, or the sinks could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The sink's queue is full and `on_full = "fail_closed"`.
    #[error("audit sink {sink}: queue full")]
    QueueFull {
        /// The sink.
        sink: String,
    },
    /// The sink has stopped.
    #[error("audit sink {sink}: stopped")]
    Stopped {
        /// The sink.
        sink: String,
    },
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A sink could not start.
    #[error("audit sink {sink}: {reason}")]
    Start {
        /// The sink.
        sink: String,
        /// Why.
        reason: String,
    },
}

/// The time source for sink timestamps (syslog).
pub type SinkClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> SinkClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "the default clock of the sinks; tests inject theirs"
    )]
    Arc::new(SystemTime::now)
}

type Line = Arc<str>;

/// A sink's health and counters, shared by its queue and its task.
struct SinkState {
    name: String,
    capacity: usize,
    queue_full: AtomicBool,
    write_failed: AtomicBool,
    written: metrics::Counter,
    dropped: metrics::Counter,
    failed: metrics::Counter,
    depth: metrics::Gauge,
    healthy: metrics::Gauge,
}

impl SinkState {
    fn new(name: &str, capacity: usize) -> Self {
        let counter = |outcome: &'static str| metrics::counter!("idjag_audit_lines_total", "sink" => name.to_owned(), "outcome" => outcome);
        let state = Self {
            name: name.to_owned(),
            capacity,
            queue_full: AtomicBool::new(false),
            write_failed: AtomicBool::new(false),
            written: counter("written"),
            dropped: counter("dropped"),
            failed: counter("failed"),
            depth: metrics::gauge!("idjag_audit_queue_lines", "sink" => name.to_owned()),
            healthy: metrics::gauge!("idjag_audit_sink_healthy", "sink" => name.to_owned()),
        };
        state.healthy.set(1.0);
        state
    }

    fn is_healthy(&self) -> bool {
        !self.queue_full.load(Ordering::Acquire) && !self.write_failed.load(Ordering::Acquire)
    }

    fn update_health(&self) {
        self.healthy.set(if self.is_healthy() { 1.0 } else { 0.0 });
    }

    /// After a write: success clears the failure, failure sets it.
    pub(crate) fn wrote(&self, lines: usize, ok: bool) {
        if ok {
            self.written.increment(lines as u64);
        } else {
            self.failed.increment(lines as u64);
        }
        if self.write_failed.swap(!ok, Ordering::AcqRel) == ok {
            self.update_health();
        }
    }

    /// After the task took lines: the queue has room again below half.
    pub(crate) fn queue_depth(&self, depth: usize) {
        self.depth.set(depth as f64);
        if depth <= self.capacity / 2 && self.queue_full.swap(false, Ordering::AcqRel) {
            self.update_health();
        }
    }
}

struct Sink {
    state: Arc<SinkState>,
    queue: mpsc::Sender<Line>,
    task: tokio::task::JoinHandle<()>,
}

/// The audit sinks of a server: fan-out, queues and health. Cheap to share (`Arc`).
pub struct Audit {
    sinks: Vec<Sink>,
    on_full: OnFull,
    reopen: Arc<watch::Sender<u64>>,
    sighup: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field(
                "sinks",
                &self.sinks.iter().map(|s| &s.state.name).collect::<Vec<_>>(),
            )
            .field("on_full", &self.on_full)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Validates `config` and starts a task per sink on the current Tokio runtime.
    pub async fn start(config: &AuditConfig) -> Result<Self, AuditError> {
        Self::start_with_clock(config, system_clock()).await
    }

    /// Like [`Audit::start`] with another clock for the sinks' timestamps.
    pub async fn start_with_clock(
        config: &AuditConfig,
        clock: SinkClock,
    ) -> Result<Self, AuditError> {
        config.validate("audit")?;
        let reopen = Arc::new(watch::Sender::new(0u64));
        let mut sinks = Vec::with_capacity(config.sinks.len());
        let mut reopen_on_sighup = false;
        for (i, sink_config) in config.sinks.iter().enumerate() {
            let name = sink_config.name(i);
            let state = Arc::new(SinkState::new(&name, config.queue_capacity));
            let (queue, receiver) = mpsc::channel(config.queue_capacity);
            if let SinkConfig::File(file) = sink_config {
                reopen_on_sighup |= file.reopen_on_sighup;
            }
            let task = sinks::spawn(
                sink_config,
                state.clone(),
                receiver,
                reopen.subscribe(),
                clock.clone(),
            )
            .await
            .map_err(|reason| AuditError::Start {
                sink: name.clone(),
                reason,
            })?;
            sinks.push(Sink { state, queue, task });
        }
        let sighup = reopen_on_sighup.then(|| {
            let reopen = reopen.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hangup) = signal(SignalKind::hangup()) else {
                    tracing::error!("cannot listen for SIGHUP; audit files are not reopened");
                    return;
                };
                while hangup.recv().await.is_some() {
                    reopen.send_modify(|generation| *generation += 1);
                }
            })
        });
        Ok(Self {
            sinks,
            on_full: config.on_full,
            reopen,
            sighup,
        })
    }

    /// Queues `line` for every sink; never waits. See the module docs for a full queue.
    pub fn record(&self, line: impl Into<String>) -> Result<(), AuditError> {
        let mut line: String = line.into();
        while line.ends_with('\n') || line.ends_with('\r') {
            line.pop();
        }
        let line: Line = Arc::from(line);
        let mut refused = None;
        for sink in &self.sinks {
            match sink.queue.try_send(line.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    sink.state.dropped.increment(1);
                    if !sink.state.queue_full.swap(true, Ordering::AcqRel) {
                        tracing::warn!(sink = %sink.state.name, "audit queue full; lines are not queued for this sink");
                        sink.state.update_health();
                    }
                    if self.on_full == OnFull::FailClosed && refused.is_none() {
                        refused = Some(AuditError::QueueFull {
                            sink: sink.state.name.clone(),
                        });
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    sink.state.dropped.increment(1);
                    if self.on_full == OnFull::FailClosed && refused.is_none() {
                        refused = Some(AuditError::Stopped {
                            sink: sink.state.name.clone(),
                        });
                    }
                }
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// Whether every sink is healthy (queue not full, last write succeeded).
    pub fn is_healthy(&self) -> bool {
        self.sinks.iter().all(|s| s.state.is_healthy())
    }

    /// The sinks that are not healthy.
    pub fn unhealthy_sinks(&self) -> Vec<String> {
        self.sinks
            .iter()
            .filter(|s| !s.state.is_healthy())
            .map(|s| s.state.name.clone())
            .collect()
    }

    /// Reopens the file sinks now (what SIGHUP does).
    pub fn reopen(&self) {
        self.reopen.send_modify(|generation| *generation += 1);
    }

    /// Waits, up to `deadline`, until every sink has taken the lines queued for it (a
    /// server that shares the sinks and cannot give them up calls this before it exits).
    pub async fn flush(&self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < until {
            if self
                .sinks
                .iter()
                .all(|s| s.queue.capacity() == s.queue.max_capacity())
            {
                // Give the tasks a moment to write the batch they took.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops accepting lines and lets each sink deliver what it holds, up to `deadline`.
    /// Returns the sinks that did not finish in time.
    pub async fn shutdown(self, deadline: Duration) -> Vec<String> {
        if let Some(sighup) = &self.sighup {
            sighup.abort();
        }
        let mut late = Vec::new();
        let until = tokio::time::Instant::now() + deadline;
        for sink in self.sinks {
            drop(sink.queue);
            let mut task = sink.task;
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                task.abort();
                late.push(sink.state.name.clone());
            }
        }
        late
    }
}
