//! idjag's libraries report each decision as a `tracing` event on [`AUDIT_TARGET`]; this
//! turns those events into audit lines for the sinks of an [`Audit`], so a server built on the
//! libraries gets one line per decision without writing its own.
//!
//! Each line is the event's fields as a JSON object, plus `timestamp`, `type: "audit"`,
//! `event` (the event's message) and the request's `client_address` and `trace_id`. A server
//! runs each request inside [`AuditEvents::scope`], which carries the client address to the
//! lines and reports whether a line was refused (sinks that fail closed), so the server can
//! withhold that decision's answer.
//!
//! ```no_run
//! # async fn demo(audit: std::sync::Arc<idjag_ops::audit::Audit>) {
//! use idjag_ops::audit::events::{self, AuditEvents};
//! use idjag_ops::telemetry::{ServiceInfo, Telemetry, TelemetryConfig};
//!
//! let events = AuditEvents::new("idjag_example_decisions_total");
//! let mut config = TelemetryConfig::default();
//! config.log_filter = events::without_audit(&config.log_filter);
//! let _telemetry =
//!     Telemetry::init_with_layer(&config, &ServiceInfo::new("example", "0.1.0"), events.layer());
//! events.attach(audit);
//! // Per request:
//! let (answer, refused) = events.scope(None, async { "the answer" }).await;
//! # let _ = (answer, refused);
//! # }
//! ```

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::Audit;

/// The `tracing` target idjag's libraries emit their audit events on.
pub const AUDIT_TARGET: &str = "idjag::audit";

/// The log filter with [`AUDIT_TARGET`] left to the audit layer (never in the logs too).
pub fn without_audit(filter: &str) -> String {
    format!("{filter},{AUDIT_TARGET}=off")
}

/// What an audit line needs from the request it belongs to.
#[derive(Debug, Default)]
struct RequestScope {
    client_address: Option<IpAddr>,
    /// Set when a line could not be queued and the sinks fail closed.
    audit_refused: AtomicBool,
}

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// The bridge from audit events to audit lines: one per process (the `tracing` layer is
/// installed once), cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditEvents {
    /// The sinks, once started (no decision is taken before that: nothing listens yet).
    audit: Arc<OnceLock<Arc<Audit>>>,
    /// The counter of decisions, labelled `{outcome, reason}` from the event's `decision` and
    /// `reason` fields.
    counter: &'static str,
}

impl AuditEvents {
    /// A bridge counting each decision in the counter `counter`.
    pub fn new(counter: &'static str) -> Self {
        Self {
            audit: Arc::new(OnceLock::new()),
            counter,
        }
    }

    /// The `tracing` layer (for
    /// [`Telemetry::init_with_layer`](crate::telemetry::Telemetry::init_with_layer)); it sees
    /// only [`AUDIT_TARGET`].
    pub fn layer(&self) -> Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync> {
        let layer = AuditLayer {
            events: self.clone(),
        };
        Box::new(
            layer.with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target() == AUDIT_TARGET
            })),
        )
    }

    /// Sends the lines to `audit` from now on. Only the first call counts; before it, every
    /// line is refused.
    pub fn attach(&self, audit: Arc<Audit>) {
        let _ = self.audit.set(audit);
    }

    /// Runs one request's handling with its client address; also returns whether an audit
    /// line of this request was refused (the caller then withholds the answer).
    pub async fn scope<F: Future>(
        &self,
        client_address: Option<IpAddr>,
        handling: F,
    ) -> (F::Output, bool) {
        let scope = RequestScope {
            client_address,
            ..RequestScope::default()
        };
        SCOPE
            .scope(scope, async move {
                let output = handling.await;
                let refused = SCOPE.with(|scope| scope.audit_refused.load(Ordering::SeqCst));
                (output, refused)
            })
            .await
    }

    fn record(&self, line: Value) {
        let refused = match self.audit.get() {
            Some(audit) => audit.record(line.to_string()).is_err(),
            None => true,
        };
        if refused {
            let _ = SCOPE.try_with(|scope| scope.audit_refused.store(true, Ordering::SeqCst));
        }
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

struct AuditLayer {
    events: AuditEvents,
}

impl<S: tracing::Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let line = audit_line(fields.0, wall_clock());
        let label = |name: &str| {
            line.get(name)
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_owned()
        };
        metrics::counter!(self.events.counter, "outcome" => label("decision"), "reason" => label("reason"))
            .increment(1);
        self.events.record(Value::Object(line));
    }
}

/// The line of one event: its fields under the common ones.
fn audit_line(mut fields: Map<String, Value>, now: std::time::SystemTime) -> Map<String, Value> {
    let mut line = Map::new();
    line.insert("timestamp".into(), Value::from(super::rfc3339(now)));
    line.insert("type".into(), Value::from("audit"));
    let message = fields.remove("message");
    line.insert("event".into(), message.unwrap_or(Value::from("decision")));
    line.append(&mut fields);
    let client = SCOPE.try_with(|scope| scope.client_address).ok().flatten();
    line.insert(
        "client_address".into(),
        client.map_or(Value::Null, |a| Value::from(a.to_string())),
    );
    line.insert(
        "trace_id".into(),
        crate::telemetry::current_trace_id().map_or(Value::Null, Value::from),
    );
    line
}

/// The wall-clock time of an audit line (the injected-clock rule is for decisions, not for
/// a log line's timestamp).
#[allow(
    clippy::disallowed_methods,
    reason = "the wall-clock time of an audit line"
)]
fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_line_carries_the_event_under_the_common_fields() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line = audit_line(
            fields(&[
                ("message", Value::from("token_exchange")),
                ("decision", Value::from("deny")),
                ("reason", Value::from("policy")),
            ]),
            at,
        );
        assert_eq!(
            Value::Object(line),
            serde_json::json!({
                "timestamp": "2023-11-14T22:13:20.123Z",
                "type": "audit",
                "event": "token_exchange",
                "decision": "deny",
                "reason": "policy",
                "client_address": null,
                "trace_id": null,
            })
        );
    }

    #[test]
    fn an_event_without_a_message_is_a_decision() {
        let line = audit_line(Map::new(), UNIX_EPOCH);
        assert_eq!(line["event"], "decision");
    }

    #[tokio::test]
    async fn the_scope_carries_the_client_address_and_reports_a_refused_line() {
        let events = AuditEvents::new("idjag_test_decisions_total");
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        let (line, refused) = events
            .scope(Some(address), async {
                let line = audit_line(Map::new(), UNIX_EPOCH);
                // No sinks attached yet: the line is refused.
                events.record(Value::Object(line.clone()));
                line
            })
            .await;
        assert_eq!(line["client_address"], "192.0.2.7");
        assert!(refused);
        let (_, refused) = events.scope(None, async {}).await;
        assert!(!refused);
    }

    #[test]
    fn the_log_filter_leaves_the_audit_target_out() {
        assert_eq!(without_audit("info"), "info,idjag::audit=off");
    }
}
