//! The wiring to idjag-ops that is this server's own: its libraries' audit events (target
//! `idjag::audit`) turned into audit lines for the configured sinks, with the client address
//! and trace id of the request and a decision counter; the request scope that carries the
//! client address to them; and the store's readiness check.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use idjag_ops::audit::Audit;
use idjag_ops::listener::Shutdown;
use idjag_store::Store;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// The `tracing` target the libraries emit their audit events on.
pub(crate) const AUDIT_TARGET: &str = "idjag::audit";

/// The audit sinks, once started (no decision is taken before that: nothing listens yet).
pub(crate) static AUDIT: OnceLock<Arc<Audit>> = OnceLock::new();

/// What an audit event needs from the request it belongs to.
#[derive(Debug, Default)]
pub(crate) struct RequestScope {
    pub(crate) client_address: Option<IpAddr>,
    /// Set when an audit line could not be queued and the sinks fail closed.
    pub(crate) audit_refused: AtomicBool,
}

tokio::task_local! {
    /// The request being handled (set by the router's guard around each request).
    pub(crate) static SCOPE: RequestScope;
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

/// Turns each audit event into one JSON line for the sinks, and counts it in `counter`
/// (`{outcome, reason}`).
struct AuditLayer {
    counter: &'static str,
}

impl<S: tracing::Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::from(idjag_ops::audit::rfc3339(wall_clock())),
        );
        line.insert("type".into(), Value::from("audit"));
        let message = fields.0.remove("message");
        line.insert("event".into(), message.unwrap_or(Value::from("decision")));
        line.append(&mut fields.0);
        let client = SCOPE.try_with(|scope| scope.client_address).ok().flatten();
        line.insert(
            "client_address".into(),
            client.map_or(Value::Null, |a| Value::from(a.to_string())),
        );
        line.insert(
            "trace_id".into(),
            idjag_ops::telemetry::current_trace_id().map_or(Value::Null, Value::from),
        );
        let label = |name: &str| {
            line.get(name)
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_owned()
        };
        metrics::counter!(self.counter, "outcome" => label("decision"), "reason" => label("reason"))
            .increment(1);
        let refused = match AUDIT.get() {
            Some(audit) => audit.record(Value::Object(line).to_string()).is_err(),
            None => true,
        };
        if refused {
            let _ = SCOPE.try_with(|scope| scope.audit_refused.store(true, Ordering::SeqCst));
        }
    }
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

/// The audit layer, for [`idjag_ops::telemetry::Telemetry::init_with_layer`]: it sees only the
/// audit target.
pub(crate) fn audit_layer(
    counter: &'static str,
) -> Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync> {
    Box::new(
        AuditLayer { counter }.with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target() == AUDIT_TARGET
        })),
    )
}

/// The log filter with the audit target left to the audit layer (never in the logs too).
pub(crate) fn without_audit(filter: &str) -> String {
    format!("{filter},{AUDIT_TARGET}=off")
}

/// Pings the store every 2 s until `shutdown`: the readiness check `store`, and the gauge
/// `<prefix>_store_up{backend}`.
pub(crate) fn watch_store(
    store: Arc<dyn Store>,
    gauge: &'static str,
    shutdown: Shutdown,
) -> Arc<AtomicBool> {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    tokio::spawn(async move {
        let backend = store.backend();
        loop {
            let ok = matches!(
                tokio::time::timeout(Duration::from_secs(2), store.ping()).await,
                Ok(Ok(()))
            );
            flag.store(ok, Ordering::SeqCst);
            metrics::gauge!(gauge, "backend" => backend).set(if ok { 1.0 } else { 0.0 });
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                () = shutdown.triggered() => return,
            }
        }
    });
    up
}
