//! The audit log: one JSON line per MCP request (SECURITY-CASES G26; INTEROP §6 "audit the
//! identity chain without logging tokens").
//!
//! Fields, in order: `time` (RFC 3339, UTC, milliseconds), `request_id` (also sent upstream
//! and to the client as `X-Request-Id`), `http_method`, `upstream`, `user` (`sub`),
//! `issuer`, `teams`, `agent`, `method` (JSON-RPC), `tool`, `arguments` (per
//! [`ArgumentMode`]), `decision` (`allow`, `deny` or `error`), `reason` (a stable code),
//! `status` (HTTP status to the client), `upstream_status`, `latency_ms` (until the
//! response head), `approval_id` (a call held for approval). Administrator actions are
//! audit lines too, with `method` `admin` and reason `approval_granted`,
//! `approval_rejected`, `revoked` or `revocation_lifted`. Absent values are `null`. No field ever holds a token, a secret or a
//! session id: identities come from verified claims, and tool arguments are recorded only
//! as the configured rule allows.
//!
//! Each request writes its line exactly once, also when the client goes away mid-request
//! (`reason` `client_closed`): [`AuditEntry`] writes on drop.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::identity::Identity;

/// How tool arguments are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ArgumentMode {
    /// Not at all.
    Omit,
    /// Object keys only, every value replaced by `"[redacted]"` (the default).
    #[default]
    Keys,
    /// Values too, except under keys matching `redact_keys` and strings that look like
    /// JWTs, which become `"[redacted]"`.
    Redact,
}

const REDACTED: &str = "[redacted]";

/// The argument rule: mode, sensitive key fragments and a size cap.
#[derive(Debug, Clone)]
pub struct ArgumentRule {
    mode: ArgumentMode,
    redact_keys: Vec<String>,
    max_bytes: usize,
}

impl ArgumentRule {
    /// A rule; `redact_keys` match case-insensitively as substrings.
    pub fn new(mode: ArgumentMode, redact_keys: &[String], max_bytes: usize) -> Self {
        Self {
            mode,
            redact_keys: redact_keys.iter().map(|k| k.to_ascii_lowercase()).collect(),
            max_bytes,
        }
    }

    /// What is recorded of `arguments`.
    pub fn apply(&self, arguments: &Value) -> Option<Value> {
        let recorded = match self.mode {
            ArgumentMode::Omit => return None,
            ArgumentMode::Keys => keys_only(arguments),
            ArgumentMode::Redact => self.redact(arguments),
        };
        let size = serde_json::to_vec(&recorded).map_or(usize::MAX, |v| v.len());
        if size > self.max_bytes {
            return Some(Value::String(format!(
                "[{size} bytes, over the audit limit]"
            )));
        }
        Some(recorded)
    }

    fn sensitive(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        self.redact_keys.iter().any(|k| key.contains(k.as_str()))
    }

    fn redact(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if self.sensitive(k) {
                            Value::from(REDACTED)
                        } else {
                            self.redact(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.redact(v)).collect()),
            Value::String(s) if looks_like_jwt(s) => Value::from(REDACTED),
            other => other.clone(),
        }
    }
}

fn keys_only(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), keys_only(v)))
                .collect::<Map<_, _>>(),
        ),
        _ => Value::from(REDACTED),
    }
}

fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.bytes().filter(|b| *b == b'.').count() >= 2
}

/// The decision recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Forwarded upstream.
    Allow,
    /// Refused by the gateway (authentication, policy, limits).
    Deny,
    /// Accepted but failed (upstream or credential failure).
    Error,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// When the request arrived (RFC 3339, UTC).
    pub time: String,
    /// The gateway's request id.
    pub request_id: String,
    /// `POST`, `GET` or `DELETE`.
    pub http_method: String,
    /// The upstream's name.
    pub upstream: Option<String>,
    /// The user (`sub`).
    pub user: Option<String>,
    /// The IdP.
    pub issuer: Option<String>,
    /// The user's teams.
    pub teams: Vec<String>,
    /// The agent.
    pub agent: Option<String>,
    /// The JSON-RPC method.
    pub method: Option<String>,
    /// The tool of a `tools/call`.
    pub tool: Option<String>,
    /// The recorded arguments.
    pub arguments: Option<Value>,
    /// The decision.
    pub decision: Outcome,
    /// Why.
    pub reason: String,
    /// The HTTP status sent to the client.
    pub status: u16,
    /// The upstream's HTTP status.
    pub upstream_status: Option<u16>,
    /// Milliseconds until the response head.
    pub latency_ms: f64,
    /// The approval a held, approved or rejected call is bound to.
    pub approval_id: Option<String>,
}

/// Where audit records go.
pub trait AuditSink: fmt::Debug + Send + Sync {
    /// Records one line.
    fn record(&self, record: &AuditRecord);
}

/// Bytes of lines waiting for the writer before requests wait for it: 8 MiB.
const MAX_PENDING: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    has_data: std::sync::Condvar,
    has_space: std::sync::Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// JSON lines to any writer (stdout, stderr, a file), written by a dedicated thread so no
/// request waits on the output.
///
/// With a batch interval (the default is 10 ms, `[audit] flush_interval`), requests append
/// to a buffer and the writer writes and flushes it once per interval: under load, one write
/// carries many lines and no request wakes a thread. With an interval of zero, each line
/// wakes the writer and is written and flushed on its own. Lines are never dropped: when
/// 8 MiB are waiting, requests wait for the writer. Dropping the sink writes what is queued.
/// A process killed outright can lose the last interval's lines (the operating system keeps
/// what was written).
pub struct JsonLines {
    queue: Arc<Queue>,
    interval: std::time::Duration,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLines")
            .field("interval", &self.interval)
            .finish()
    }
}

/// The default batch interval of [`JsonLines`].
pub const DEFAULT_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

impl JsonLines {
    /// Lines to `out`, batched every [`DEFAULT_FLUSH_INTERVAL`].
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_interval(out, DEFAULT_FLUSH_INTERVAL)
    }

    /// Lines to `out`, batched every `interval` (zero: each line on its own).
    pub fn with_interval(mut out: Box<dyn Write + Send>, interval: std::time::Duration) -> Self {
        let queue = Arc::new(Queue::default());
        let shared = queue.clone();
        let writer = std::thread::Builder::new()
            .name("idjag-audit".into())
            .spawn(move || {
                loop {
                    let mut pending = shared.lock();
                    while pending.lines.is_empty() && !pending.closed {
                        pending = shared
                            .has_data
                            .wait(pending)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                    let batch = std::mem::take(&mut pending.lines);
                    let closed = pending.closed;
                    shared.has_space.notify_all();
                    drop(pending);
                    if !batch.is_empty()
                        && out.write_all(&batch).and_then(|()| out.flush()).is_err()
                    {
                        tracing::error!("the audit log could not be written");
                    }
                    if closed && batch.is_empty() {
                        return;
                    }
                    if !interval.is_zero() && !closed {
                        std::thread::sleep(interval);
                    }
                }
            })
            .ok();
        Self {
            queue,
            interval,
            writer,
        }
    }
}

impl Drop for JsonLines {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.has_data.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl AuditSink for JsonLines {
    fn record(&self, record: &AuditRecord) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        if self.writer.is_none() {
            tracing::error!("the audit log writer could not be started");
            return;
        }
        let mut pending = self.queue.lock();
        while pending.lines.len() >= MAX_PENDING && !pending.closed {
            self.queue.has_data.notify_all();
            pending = self
                .queue
                .has_space
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        let was_empty = pending.lines.is_empty();
        pending.lines.extend_from_slice(&line);
        drop(pending);
        // The writer sleeps between batches; it waits for data only when the buffer ran
        // empty, and then one wake-up per batch is enough.
        if was_empty {
            self.queue.has_data.notify_one();
        }
    }
}

/// Records kept in memory (tests, the demo).
#[derive(Debug, Default, Clone)]
pub struct MemorySink(Arc<Mutex<Vec<AuditRecord>>>);

impl MemorySink {
    /// Every record so far.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, record: &AuditRecord) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record.clone());
    }
}

/// Several sinks.
#[derive(Debug)]
pub struct Tee(pub Vec<Arc<dyn AuditSink>>);

impl AuditSink for Tee {
    fn record(&self, record: &AuditRecord) {
        for sink in &self.0 {
            sink.record(record);
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The record of one request, filled in as it is processed and written exactly once: by
/// [`AuditEntry::finish`], or on drop if the request was abandoned.
pub struct AuditEntry {
    record: AuditRecord,
    started: Instant,
    sink: Arc<dyn AuditSink>,
    written: bool,
}

impl fmt::Debug for AuditEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEntry")
            .field("record", &self.record)
            .finish()
    }
}

impl AuditEntry {
    /// A new entry for a request that arrived at `time`.
    pub fn new(
        sink: Arc<dyn AuditSink>,
        time: SystemTime,
        request_id: &str,
        http_method: &str,
    ) -> Self {
        Self {
            record: AuditRecord {
                time: rfc3339(time),
                request_id: request_id.to_owned(),
                http_method: http_method.to_owned(),
                upstream: None,
                user: None,
                issuer: None,
                teams: Vec::new(),
                agent: None,
                method: None,
                tool: None,
                arguments: None,
                decision: Outcome::Deny,
                reason: "client_closed".to_owned(),
                status: 499,
                upstream_status: None,
                latency_ms: 0.0,
                approval_id: None,
            },
            started: Instant::now(),
            sink,
            written: false,
        }
    }

    /// Sets the upstream.
    pub fn upstream(&mut self, name: &str) {
        self.record.upstream = Some(name.to_owned());
    }

    /// Sets the caller.
    pub fn identity(&mut self, identity: &Identity) {
        self.record.user = Some(identity.user.as_str().to_owned());
        self.record.issuer = Some(identity.issuer.as_str().to_owned());
        self.record.teams = identity.teams.clone();
        self.record.agent = identity.agent.clone();
    }

    /// Sets the JSON-RPC method, tool and recorded arguments.
    pub fn message(&mut self, method: Option<&str>, tool: Option<&str>, arguments: Option<Value>) {
        self.record.method = method.map(str::to_owned);
        self.record.tool = tool.map(str::to_owned);
        self.record.arguments = arguments;
    }

    /// Sets the approval id.
    pub fn approval(&mut self, id: &str) {
        self.record.approval_id = Some(id.to_owned());
    }

    /// Sets the user, IdP and agent without an [`Identity`] (admin actions).
    pub fn subject(&mut self, user: Option<&str>, issuer: Option<&str>, agent: Option<&str>) {
        self.record.user = user.map(str::to_owned);
        self.record.issuer = issuer.map(str::to_owned);
        self.record.agent = agent.map(str::to_owned);
    }

    /// Sets the JSON-RPC method field alone (`admin` for admin actions).
    pub fn method(&mut self, method: &str) {
        self.record.method = Some(method.to_owned());
    }

    /// Sets the upstream status.
    pub fn upstream_status(&mut self, status: u16) {
        self.record.upstream_status = Some(status);
    }

    /// Writes the line.
    pub fn finish(mut self, decision: Outcome, reason: &str, status: u16) {
        self.record.decision = decision;
        self.record.reason = reason.to_owned();
        self.record.status = status;
        self.write();
    }

    fn write(&mut self) {
        if self.written {
            return;
        }
        self.written = true;
        self.record.latency_ms =
            (self.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
        self.sink.record(&self.record);
    }
}

impl Drop for AuditEntry {
    fn drop(&mut self) {
        self.write();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn rule(mode: ArgumentMode) -> ArgumentRule {
        ArgumentRule::new(mode, &["password".into(), "token".into()], 200)
    }

    #[test]
    fn keys_mode_keeps_the_shape_and_hides_every_value() {
        let args = json!({"title": "q3 plan", "meta": {"tags": ["a"], "n": 3}});
        assert_eq!(
            rule(ArgumentMode::Keys).apply(&args),
            Some(json!({"title": "[redacted]", "meta": {"tags": "[redacted]", "n": "[redacted]"}}))
        );
        assert_eq!(rule(ArgumentMode::Omit).apply(&args), None);
    }

    #[test]
    fn redact_mode_hides_sensitive_keys_and_jwts_at_any_depth() {
        let args = json!({
            "text": "hello",
            "db": {"Password": "hunter2", "AccessToken": "abc"},
            "list": ["eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", 4]
        });
        assert_eq!(
            rule(ArgumentMode::Redact).apply(&args),
            Some(json!({
                "text": "hello",
                "db": {"Password": "[redacted]", "AccessToken": "[redacted]"},
                "list": ["[redacted]", 4]
            }))
        );
    }

    #[test]
    fn oversized_arguments_are_replaced_by_their_size() {
        let args = json!({"text": "x".repeat(500)});
        assert_eq!(
            rule(ArgumentMode::Redact).apply(&args),
            Some(json!("[511 bytes, over the audit limit]"))
        );
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_writes_every_line_once_in_order_before_drop_returns() {
        for interval in [std::time::Duration::ZERO, DEFAULT_FLUSH_INTERVAL] {
            let out = Shared::default();
            let sink = JsonLines::with_interval(Box::new(out.clone()), interval);
            for i in 0..100 {
                let entry = AuditEntry::new(
                    Arc::new(MemorySink::default()),
                    UNIX_EPOCH,
                    &format!("r{i}"),
                    "POST",
                );
                sink.record(&entry.record);
                if i == 50 {
                    std::thread::sleep(std::time::Duration::from_millis(30));
                }
            }
            drop(sink);
            let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            let ids: Vec<String> = text
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["request_id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            assert_eq!(
                ids,
                (0..100).map(|i| format!("r{i}")).collect::<Vec<_>>(),
                "{interval:?}"
            );
        }
    }

    #[test]
    fn a_line_reaches_the_output_within_the_interval_without_drop() {
        let out = Shared::default();
        let sink = JsonLines::new(Box::new(out.clone()));
        let entry = AuditEntry::new(Arc::new(MemorySink::default()), UNIX_EPOCH, "r1", "GET");
        sink.record(&entry.record);
        let started = std::time::Instant::now();
        while out.0.lock().unwrap().is_empty()
            && started.elapsed() < std::time::Duration::from_secs(2)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(
            String::from_utf8(out.0.lock().unwrap().clone())
                .unwrap()
                .contains("\"r1\"")
        );
        drop(sink);
    }

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn an_abandoned_entry_is_still_written_once() {
        let sink = MemorySink::default();
        let entry = AuditEntry::new(Arc::new(sink.clone()), UNIX_EPOCH, "r1", "POST");
        drop(entry);
        let finished = AuditEntry::new(Arc::new(sink.clone()), UNIX_EPOCH, "r2", "GET");
        finished.finish(Outcome::Allow, "ok", 200);
        let records = sink.records();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (records[0].reason.as_str(), records[0].status),
            ("client_closed", 499)
        );
        assert_eq!(
            (records[1].decision, records[1].status),
            (Outcome::Allow, 200)
        );
    }
}
