//! Prometheus metrics at `/metrics` (text exposition format).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `idjag_gateway_requests_total` | `upstream`, `method`, `decision` | MCP requests, one per audit line |
//! | `idjag_gateway_request_duration_seconds` | `upstream`, `decision` | histogram, until the response head |
//! | `idjag_gateway_token_exchanges_total` | | ID-JAG token exchanges at the IdP |
//! | `idjag_gateway_redemptions_total` | | ID-JAG redemptions at resource authorization servers |
//! | `idjag_gateway_client_credentials_fetches_total` | `upstream` | client-credentials token requests |
//! | `idjag_gateway_credential_cache_total` | `upstream`, `result` (`hit`, `miss`) | upstream credential cache |
//! | `idjag_gateway_identity_cache_total` | `result` | inbound token validation cache |
//! | `idjag_gateway_jwks_fetches_total` | | requests for the IdP's JWK Set |
//! | `idjag_gateway_stdio_processes` | `upstream` | stdio upstream processes running now (gauge) |
//! | `idjag_gateway_stdio_starts_total` | `upstream` | stdio upstream processes started |
//! | `idjag_gateway_stdio_restarts_total` | `upstream` | of those, started after a crash |
//! | `idjag_gateway_stdio_exits_total` | `upstream`, `reason` (`idle`, `crash`, `rotated`, `evicted`, `shutdown`) | stdio upstream processes ended |
//!
//! Label values are bounded: `upstream` is a configured name (or `unknown`), `method` a
//! known MCP method (or `other`; `none` for GET and DELETE), `decision` `allow`, `deny` or
//! `error`. No user, token or argument is ever a label. Request metrics are derived from the
//! audit records ([`MeteredSink`]), so every audited request is counted and nothing else.
//! The recorder is the gateway's own (not the process-global one), so several gateways in
//! one process keep separate counts.

use std::sync::Arc;

use std::sync::OnceLock;

use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::observe::audit::{AuditRecord, AuditSink, Outcome};

/// MCP methods kept as label values; any other is `other`.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "notifications/initialized",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "admin",
];

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

const DECISIONS: [&str; 3] = ["allow", "deny", "error"];

/// The gateway's metrics registry. Request counters and histograms are registered on first
/// use and their handles kept in fixed slots, so a request costs two atomic updates, not a
/// registry lookup.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    upstreams: Vec<String>,
    counters: Vec<OnceLock<Counter>>,
    histograms: Vec<OnceLock<Histogram>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.clone()))
            .collect::<Vec<_>>(),
    )
}

impl Metrics {
    /// A registry for the configured `upstreams`.
    pub fn new(upstreams: Vec<String>) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Upstreams, then "unknown"; known methods, then "none" and "other".
        let upstream_slots = upstreams.len() + 1;
        let method_slots = KNOWN_METHODS.len() + 2;
        Self {
            recorder,
            handle,
            counters: (0..upstream_slots * method_slots * DECISIONS.len())
                .map(|_| OnceLock::new())
                .collect(),
            histograms: (0..upstream_slots * DECISIONS.len())
                .map(|_| OnceLock::new())
                .collect(),
            upstreams,
        }
    }

    fn upstream_name(&self, index: usize) -> String {
        self.upstreams
            .get(index)
            .map_or_else(|| "unknown".to_owned(), Clone::clone)
    }

    /// Counts one audited request.
    pub fn observe(&self, record: &AuditRecord) {
        let upstream = record
            .upstream
            .as_deref()
            .and_then(|u| self.upstreams.iter().position(|known| known == u))
            .unwrap_or(self.upstreams.len());
        let method = match record.method.as_deref() {
            None => KNOWN_METHODS.len(),
            Some(m) => KNOWN_METHODS
                .iter()
                .position(|k| *k == m)
                .unwrap_or(KNOWN_METHODS.len() + 1),
        };
        let decision = match record.decision {
            Outcome::Allow => 0,
            Outcome::Deny => 1,
            _ => 2,
        };
        let method_slots = KNOWN_METHODS.len() + 2;
        let slot = (upstream * method_slots + method) * DECISIONS.len() + decision;
        self.counters[slot]
            .get_or_init(|| {
                let name = match KNOWN_METHODS.get(method) {
                    Some(known) => known,
                    None if method == KNOWN_METHODS.len() => "none",
                    None => "other",
                };
                self.recorder.register_counter(
                    &key(
                        "idjag_gateway_requests_total",
                        &[
                            ("upstream", self.upstream_name(upstream)),
                            ("method", name.to_owned()),
                            ("decision", DECISIONS[decision].to_owned()),
                        ],
                    ),
                    &METADATA,
                )
            })
            .increment(1);
        self.histograms[upstream * DECISIONS.len() + decision]
            .get_or_init(|| {
                self.recorder.register_histogram(
                    &key(
                        "idjag_gateway_request_duration_seconds",
                        &[
                            ("upstream", self.upstream_name(upstream)),
                            ("decision", DECISIONS[decision].to_owned()),
                        ],
                    ),
                    &METADATA,
                )
            })
            .record(record.latency_ms / 1000.0);
    }

    /// Sets a counter kept elsewhere (exchanges, fetches, cache counts) to its value.
    pub fn set_total(&self, name: &'static str, labels: &[(&'static str, String)], value: u64) {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
            .absolute(value);
    }

    /// Sets a gauge kept elsewhere (live processes) to its value.
    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, String)], value: f64) {
        self.recorder
            .register_gauge(&key(name, labels), &METADATA)
            .set(value);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// An audit sink that also counts each record in [`Metrics`].
#[derive(Debug)]
pub struct MeteredSink {
    /// Where records go.
    pub inner: Arc<dyn AuditSink>,
    /// Where they are counted.
    pub metrics: Arc<Metrics>,
}

impl AuditSink for MeteredSink {
    fn record(&self, record: &AuditRecord) {
        self.metrics.observe(record);
        self.inner.record(record);
    }
}
