//! Prometheus metrics, on `idjag-ops`'s process-wide registry, rendered at `/metrics` on the
//! admin listener together with the runtime's own (`idjag_http_*`, `idjag_tls_*`,
//! `idjag_config_*`, `idjag_audit_*`).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `idjag_gateway_build_info` | `version` | always 1 |
//! | `idjag_gateway_requests_total` | `upstream`, `method`, `decision` | MCP requests, one per audit line |
//! | `idjag_gateway_request_duration_seconds` | `upstream`, `decision` | histogram, until the response head |
//! | `idjag_gateway_upstream_duration_seconds` | `upstream` | histogram, the upstream call until its response head |
//! | `idjag_gateway_token_exchanges_total` | `outcome` | ID-JAG token exchanges at the IdP |
//! | `idjag_gateway_redemptions_total` | `outcome` | ID-JAG redemptions at resource authorization servers |
//! | `idjag_gateway_client_credentials_fetches_total` | `upstream`, `outcome` | client-credentials token requests |
//! | `idjag_gateway_jwks_fetches_total` | `outcome` | requests for the IdP's JWK Set |
//! | `idjag_gateway_credential_cache_total` | `upstream`, `result` (`hit`, `miss`) | upstream credential cache |
//! | `idjag_gateway_identity_cache_total` | `result` | inbound token validation cache |
//! | `idjag_gateway_requests_in_flight` | | MCP requests holding a slot, streams included |
//! | `idjag_gateway_streams_open` | | responses being streamed (SSE and JSON) |
//! | `idjag_gateway_limit_refusals_total` | `principal` (`user`, `agent`, `upstream`), `limit` (`rate`, `in_flight`, `streams`, `pending_approvals`, `sessions`) | requests refused (429) by a `[limits]` limit or cap |
//! | `idjag_gateway_approvals_pending` | | calls waiting for an administrator, in the shared store (every instance's) |
//! | `idjag_gateway_store_healthy` | | 1 when the store answers and the local copy of the revocations is within its staleness bound, else 0 |
//! | `idjag_gateway_stdio_processes` | `upstream` | stdio upstream processes running now (gauge) |
//! | `idjag_gateway_stdio_starts_total` | `upstream` | stdio upstream processes started |
//! | `idjag_gateway_stdio_restarts_total` | `upstream` | of those, started after a crash |
//! | `idjag_gateway_stdio_exits_total` | `upstream`, `reason` (`idle`, `crash`, `rotated`, `evicted`, `shutdown`) | stdio upstream processes ended |
//!
//! `outcome` is `success` (the server answered 200), `refused` (it answered with a 4xx: an
//! OAuth error) or `failure` (5xx, no answer, a transport error). Label values are bounded:
//! `upstream` is a configured name (or `unknown`), `method` a known MCP method (or `other`;
//! `none` for GET and DELETE), `decision` `allow`, `deny` or `error`. No user, token or
//! argument is ever a label. Request metrics are derived from the audit records
//! ([`MeteredSink`]), so every audited MCP request is counted and nothing else.

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Histogram};

use crate::observe::audit::{AuditRecord, AuditSink, Outcome};

/// The gateway's metric prefix.
pub const PREFIX: &str = "idjag_gateway";

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

const DECISIONS: [&str; 3] = ["allow", "deny", "error"];

/// How a token request ended, as the `outcome` label.
pub fn outcome_of(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "success",
        Some(400..=499) => "refused",
        _ => "failure",
    }
}

/// The request metrics of one gateway generation. Counter and histogram handles are taken
/// on first use and kept in fixed slots, so a request costs two atomic updates, not a
/// registry lookup.
pub struct RequestMetrics {
    upstreams: Vec<String>,
    counters: Vec<OnceLock<Counter>>,
    histograms: Vec<OnceLock<Histogram>>,
}

impl std::fmt::Debug for RequestMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestMetrics")
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}

impl RequestMetrics {
    /// The metrics of the configured `upstreams`.
    pub fn new(upstreams: Vec<String>) -> Self {
        // Upstreams, then "unknown"; known methods, then "none" and "other".
        let upstream_slots = upstreams.len() + 1;
        let method_slots = KNOWN_METHODS.len() + 2;
        Self {
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
        // Requests outside the MCP routes have their own lines, not these counters.
        if record.path.is_some() {
            return;
        }
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
                metrics::counter!(
                    "idjag_gateway_requests_total",
                    "upstream" => self.upstream_name(upstream),
                    "method" => name.to_owned(),
                    "decision" => DECISIONS[decision]
                )
            })
            .increment(1);
        self.histograms[upstream * DECISIONS.len() + decision]
            .get_or_init(|| {
                metrics::histogram!(
                    "idjag_gateway_request_duration_seconds",
                    "upstream" => self.upstream_name(upstream),
                    "decision" => DECISIONS[decision]
                )
            })
            .record(record.latency_ms / 1000.0);
    }
}

/// The upstream call's latency until its response head.
pub fn upstream_latency(upstream: &str) -> Histogram {
    metrics::histogram!("idjag_gateway_upstream_duration_seconds", "upstream" => upstream.to_owned())
}

/// Counts a refusal by a `[limits]` limit or cap: the principal's kind and the limit's
/// (bounded names, never a principal).
pub fn limit_refused(principal: &'static str, limit: &'static str) {
    metrics::counter!(
        "idjag_gateway_limit_refusals_total",
        "principal" => principal,
        "limit" => limit
    )
    .increment(1);
}

/// Sets a counter kept elsewhere (cache hits, fetches) to its value at scrape time.
pub fn set_total(name: &'static str, labels: &[(&'static str, String)], value: u64) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::counter!(name, labels).absolute(value);
}

/// Sets a gauge at scrape time.
pub fn set_gauge(name: &'static str, value: f64) {
    metrics::gauge!(name).set(value);
}

/// Sets a gauge with labels at scrape time (stdio processes per upstream).
pub fn set_labeled_gauge(name: &'static str, labels: &[(&'static str, String)], value: f64) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::gauge!(name, labels).set(value);
}

/// An audit sink that also counts each record in [`RequestMetrics`].
#[derive(Debug)]
pub struct MeteredSink {
    /// Where records go.
    pub inner: Arc<dyn AuditSink>,
    /// Where they are counted.
    pub metrics: Arc<RequestMetrics>,
}

impl AuditSink for MeteredSink {
    fn record(&self, record: &AuditRecord) {
        self.metrics.observe(record);
        self.inner.record(record);
    }

    fn accepting(&self) -> bool {
        self.inner.accepting()
    }
}
