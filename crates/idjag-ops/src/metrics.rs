//! Prometheus metrics on the [`metrics`] facade, rendered from a route on the admin listener.
//!
//! ## Conventions
//!
//! - Names are `snake_case` with the server's prefix (`idjag_gateway_`, `idjag_resource_`,
//!   `idjag_issuer_`); this crate's own metrics start with `idjag_`.
//! - Counters end in `_total` and say how things ended in an `outcome` label
//!   (`success`, `failure`, `refused`, …: a small fixed set per counter), see
//!   [`count_outcome`].
//! - Durations are histograms in seconds, named `…_seconds` ([`observe_seconds`]); the
//!   buckets run from 0.5 ms to 10 s.
//! - Gauges for what is open or waiting: in-flight requests, open streams, pending
//!   approvals ([`GaugeGuard`] keeps one right even when a future is dropped).
//! - `<prefix>_build_info{version, …} 1` ([`build_info`]).
//! - Label values are bounded (configured names, fixed codes); never a user, a token, a
//!   path with identifiers or an error message.
//!
//! ## The recorder
//!
//! The facade's recorder is process-wide. [`Metrics::global`] installs the Prometheus recorder
//! the first time it is called and returns the same handle afterwards, so a server calls it at
//! start-up and tests call it freely (in parallel too); tests then read
//! [`Metrics::render`] and look for their own label values (use a unique listener or sink name
//! per test). Call it before building listeners and sinks: they take their metric handles
//! when they start. Another recorder already installed makes [`Metrics::global`] fall back to
//! a private registry and log an error; [`Metrics::install`] reports it instead.
//!
//! This crate's metrics:
//!
//! | metric | labels |
//! |---|---|
//! | `idjag_http_connections_open` | `listener` |
//! | `idjag_http_requests_in_flight` | `listener` |
//! | `idjag_http_connections_refused_total` | `listener`, `reason` (`max_connections`, `max_connections_per_ip`) |
//! | `idjag_http_server_request_duration_seconds` | `method`, `status` (the status class, `2xx`…) |
//! | `idjag_tls_reloads_total` | `listener`, `outcome` (`reloaded`, `refused`) |
//! | `idjag_config_reloads_total` | `outcome` (`applied`, `refused`, `unchanged`) |
//! | `idjag_config_generation` | |
//! | `idjag_audit_lines_total` | `sink`, `outcome` (`written`, `dropped`, `failed`) |
//! | `idjag_audit_queue_lines` | `sink` |
//! | `idjag_audit_sink_healthy` | `sink` |

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets of every `…_seconds` metric.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The Prometheus registry behind the facade, and its text rendering.
pub struct Metrics {
    handle: PrometheusHandle,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Another recorder was installed first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a metrics recorder is already installed in this process")]
#[non_exhaustive]
pub struct RecorderTaken;

static GLOBAL: OnceLock<Metrics> = OnceLock::new();
static TAKEN: AtomicBool = AtomicBool::new(false);

fn builder() -> PrometheusBuilder {
    let builder = PrometheusBuilder::new();
    builder
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

impl Metrics {
    /// Installs the Prometheus recorder as the process-wide recorder (once; later calls
    /// return the same registry).
    pub fn install() -> Result<&'static Metrics, RecorderTaken> {
        let metrics = GLOBAL.get_or_init(|| match builder().install_recorder() {
            Ok(handle) => Metrics { handle },
            Err(_) => {
                TAKEN.store(true, Ordering::Release);
                tracing::error!(
                    "a metrics recorder was installed first; /metrics renders a private registry"
                );
                Metrics {
                    handle: builder().build_recorder().handle(),
                }
            }
        });
        if TAKEN.load(Ordering::Acquire) {
            Err(RecorderTaken)
        } else {
            Ok(metrics)
        }
    }

    /// The process-wide registry, installed on first use (see the module docs).
    pub fn global() -> &'static Metrics {
        match Self::install() {
            Ok(metrics) => metrics,
            Err(RecorderTaken) => GLOBAL.get_or_init(unreachable_metrics),
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// `GET /metrics`, for the admin listener.
    pub fn router(&'static self) -> Router {
        Router::new().route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    self.render(),
                )
            }),
        )
    }
}

fn unreachable_metrics() -> Metrics {
    Metrics {
        handle: builder().build_recorder().handle(),
    }
}

/// Sets `<prefix>_build_info{version, …labels} 1`.
pub fn build_info(prefix: &str, version: &str, labels: &[(&str, &str)]) {
    let mut all = vec![metrics::Label::new("version", version.to_owned())];
    all.extend(
        labels
            .iter()
            .map(|(k, v)| metrics::Label::new((*k).to_owned(), (*v).to_owned())),
    );
    metrics::gauge!(format!("{prefix}_build_info"), all).set(1.0);
}

/// Counts one `outcome` of `name` (which must end in `_total`).
pub fn count_outcome(name: &'static str, outcome: &'static str) {
    debug_assert!(name.ends_with("_total"), "{name}: counters end in _total");
    metrics::counter!(name, "outcome" => outcome).increment(1);
}

/// Records `elapsed` in the histogram `name` (which must end in `_seconds`).
pub fn observe_seconds(
    name: &'static str,
    elapsed: Duration,
    labels: &[(&'static str, &'static str)],
) {
    debug_assert!(
        name.ends_with("_seconds"),
        "{name}: durations are in seconds"
    );
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::from_static_parts(k, v))
        .collect();
    metrics::histogram!(name, labels).record(elapsed.as_secs_f64());
}

/// A gauge increased while this guard lives (in-flight requests, open streams, pending
/// approvals); dropping it decreases the gauge, also when a future is cancelled.
#[derive(Debug)]
pub struct GaugeGuard(metrics::Gauge);

impl GaugeGuard {
    /// Increments `gauge` until the guard is dropped.
    pub fn new(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_registry_renders_outcomes_gauges_and_build_info() {
        let metrics = Metrics::global();
        build_info("idjag_unit", "1.2.3", &[("commit", "abc")]);
        count_outcome("idjag_unit_exchanges_total", "success");
        count_outcome("idjag_unit_exchanges_total", "success");
        count_outcome("idjag_unit_exchanges_total", "failure");
        observe_seconds(
            "idjag_unit_latency_seconds",
            Duration::from_millis(3),
            &[("route", "x")],
        );
        let guard = GaugeGuard::new(metrics::gauge!("idjag_unit_streams_open"));
        let text = metrics.render();
        assert!(
            text.contains("idjag_unit_build_info{version=\"1.2.3\",commit=\"abc\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("idjag_unit_exchanges_total{outcome=\"success\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("idjag_unit_exchanges_total{outcome=\"failure\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("idjag_unit_latency_seconds_bucket{route=\"x\",le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("idjag_unit_streams_open 1\n"), "{text}");
        drop(guard);
        assert!(metrics.render().contains("idjag_unit_streams_open 0\n"));
        assert!(std::ptr::eq(metrics, Metrics::global()));
    }
}
