//! Log capture: one process-wide `tracing` subscriber that records every event and every span's
//! fields at every level and target, per-thread views of that record, and the no-secret
//! assertion (STYLE: a test captures tracing output and asserts no secret substring appears).
//!
//! One global subscriber, rather than one per test with `set_default`, keeps `tracing`'s
//! callsite-interest cache consistent across test threads, so no event is ever lost. Tests that
//! run their servers on their own current-thread runtime read [`ThreadLog`]; tests with worker
//! threads filter [`events`] by a field of their own (their server's address, for example).
//!
//! ```
//! use idjag_test_support::logs;
//! let log = logs::this_thread();
//! tracing::info!(target: "demo", user = "alice", "signed in");
//! let events = log.events();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].fields["user"], "alice");
//! logs::assert_no_secret(&log.text(), &["s3cret"]);
//! ```

use std::collections::BTreeMap;
use std::sync::{Mutex, Once, OnceLock};
use std::thread::ThreadId;

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// One recorded event, or the fields of a span (its `message` is then `span <name>`).
/// Strings are recorded as they are, so a secret cannot hide behind escaping in [`Self::fields`].
#[derive(Debug, Clone)]
pub struct Event {
    /// The target.
    pub target: String,
    /// The level.
    pub level: tracing::Level,
    /// The fields: strings as recorded, other values in their `Debug` form.
    pub fields: BTreeMap<String, String>,
    /// The same fields with their JSON types (numbers and booleans stay what they were).
    pub values: Map<String, Value>,
    thread: ThreadId,
}

impl Event {
    /// `{"target": ..., "level": ..., "fields": {...}}`, the shape of `tracing-subscriber`'s
    /// JSON lines.
    pub fn to_json(&self) -> Value {
        json!({
            "target": self.target,
            "level": self.level.as_str(),
            "fields": self.values,
        })
    }
}

fn store() -> &'static Mutex<Vec<Event>> {
    static EVENTS: OnceLock<Mutex<Vec<Event>>> = OnceLock::new();
    EVENTS.get_or_init(|| Mutex::new(Vec::new()))
}

#[derive(Default)]
struct Fields {
    text: BTreeMap<String, String>,
    values: Map<String, Value>,
}

impl Fields {
    fn insert(&mut self, name: &str, text: String, value: Value) {
        self.text.insert(name.to_owned(), text);
        self.values.insert(name.to_owned(), value);
    }

    fn span(mut self, name: &str) -> Self {
        let message = format!("span {name}");
        self.insert("message", message.clone(), Value::from(message));
        self
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field.name(), value.to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field.name(), value.to_string(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field.name(), value.to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field.name(), value.to_string(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.insert(field.name(), text.clone(), Value::from(text));
    }
}

fn push(target: &str, level: tracing::Level, fields: Fields) {
    store().lock().unwrap().push(Event {
        target: target.to_owned(),
        level,
        fields: fields.text,
        values: fields.values,
        thread: std::thread::current().id(),
    });
}

struct CaptureLayer;

impl<S> tracing_subscriber::Layer<S> for CaptureLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        push(event.metadata().target(), *event.metadata().level(), fields);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if !fields.text.is_empty() {
            let meta = attrs.metadata();
            push(meta.target(), *meta.level(), fields.span(meta.name()));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(meta) = ctx.metadata(id) {
            push(meta.target(), *meta.level(), fields.span(meta.name()));
        }
    }
}

/// Installs the capture as the global subscriber (once per process; later calls do nothing).
///
/// # Panics
///
/// When another global subscriber was installed first.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(CaptureLayer);
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
}

/// Every event recorded in this process so far, in order.
pub fn events() -> Vec<Event> {
    store().lock().unwrap().clone()
}

/// Every event recorded in this process so far, as JSON lines.
pub fn text() -> String {
    render(&events())
}

fn render(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| format!("{}\n", e.to_json()))
        .collect()
}

/// The events of this thread from now on (installs the capture first).
pub fn this_thread() -> ThreadLog {
    install();
    ThreadLog {
        thread: std::thread::current().id(),
        start: store().lock().unwrap().len(),
    }
}

/// A view of the events one thread records from a point on: a test on a current-thread
/// runtime sees its servers' and its client's events, and no other test's.
#[derive(Debug, Clone)]
pub struct ThreadLog {
    thread: ThreadId,
    start: usize,
}

impl ThreadLog {
    /// The events of this view's thread since it was made.
    pub fn events(&self) -> Vec<Event> {
        store().lock().unwrap()[self.start..]
            .iter()
            .filter(|e| e.thread == self.thread)
            .cloned()
            .collect()
    }

    /// [`Self::events`] as JSON values ([`Event::to_json`]).
    pub fn json(&self) -> Vec<Value> {
        self.events().iter().map(Event::to_json).collect()
    }

    /// [`Self::events`] as JSON lines.
    pub fn text(&self) -> String {
        render(&self.events())
    }
}

/// Fails when `text` holds one of `secrets` (empty strings are ignored).
///
/// # Panics
///
/// When a secret is found; the message names the secret, not the text around it.
pub fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(!text.contains(secret), "{secret:?} leaked");
    }
}
