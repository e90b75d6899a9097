//! The gateway's own routes: `/metrics`, readiness, each route's RFC 9728 metadata, and the
//! answer to a path nobody serves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use idjag_core::server::json_response;
use idjag_core::{ProtectedResourceMetadata, Resource};
use idjag_ops::metrics::Metrics;

use crate::admin::authorized;
use crate::observe::metrics::{set_gauge, set_labeled_gauge, set_total};
use crate::proxy::GatewayState;
use crate::upstream::Endpoint;
use crate::upstream::stdio::ExitReason;

pub(crate) async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// Counts the JWK Set requests sent since the last scrape by how the last one ended (the key
/// source reports a count and its last error).
fn observe_jwks(state: &GatewayState) {
    let Some(jwks) = state.inbound.jwks() else {
        return;
    };
    let fetched = jwks.fetch_count();
    let seen = state.jwks_observed.swap(fetched, Ordering::AcqRel);
    if fetched > seen {
        let outcome = if jwks.last_error().is_some() {
            "failure"
        } else {
            "success"
        };
        metrics::counter!("idjag_gateway_jwks_fetches_total", "outcome" => outcome)
            .increment(fetched - seen);
    }
}

pub(crate) async fn metrics(
    State(state): State<Arc<GatewayState>>,
    headers: http::HeaderMap,
) -> Response {
    if !state.metrics_enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    if state.metrics_require_admin
        && let Err(response) = authorized(&state, &headers)
    {
        return *response;
    }
    observe_jwks(&state);
    let (hits, misses) = state.inbound.cache_stats();
    set_total(
        "idjag_gateway_identity_cache_total",
        &[("result", "hit".into())],
        hits,
    );
    set_total(
        "idjag_gateway_identity_cache_total",
        &[("result", "miss".into())],
        misses,
    );
    for upstream in state.upstreams.values() {
        let (hits, misses) = upstream.credential.cache_stats();
        let name = || ("upstream", upstream.name.clone());
        set_total(
            "idjag_gateway_credential_cache_total",
            &[name(), ("result", "hit".into())],
            hits,
        );
        set_total(
            "idjag_gateway_credential_cache_total",
            &[name(), ("result", "miss".into())],
            misses,
        );
        if let Endpoint::Stdio(processes) = &upstream.endpoint {
            let stats = processes.stats();
            set_labeled_gauge(
                "idjag_gateway_stdio_processes",
                &[name()],
                stats.live as f64,
            );
            set_total("idjag_gateway_stdio_starts_total", &[name()], stats.started);
            set_total(
                "idjag_gateway_stdio_restarts_total",
                &[name()],
                stats.restarts,
            );
            for reason in ExitReason::ALL {
                set_total(
                    "idjag_gateway_stdio_exits_total",
                    &[name(), ("reason", reason.label().into())],
                    stats.exits(reason),
                );
            }
        }
    }
    set_gauge(
        "idjag_gateway_requests_in_flight",
        (state.max_in_flight - state.in_flight.available_permits()) as f64,
    );
    set_gauge("idjag_gateway_streams_open", state.streams.live() as f64);
    // Calls pending in the shared store (every instance's); unchanged while the store does
    // not answer, which the next gauge says.
    if let Ok(records) = state.approvals.list().await {
        let pending = records
            .iter()
            .filter(|record| record.status == crate::policy::approval::ApprovalStatus::Pending)
            .count();
        set_gauge("idjag_gateway_approvals_pending", pending as f64);
    }
    set_gauge(
        "idjag_gateway_store_healthy",
        if store_ready(&state).await { 1.0 } else { 0.0 },
    );
    let mut response = Metrics::global().render().into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// What keeps the store from being usable, if anything: the local copy of the revocations
/// past its staleness bound, or the store not answering.
async fn store_not_ready(state: &GatewayState) -> Option<String> {
    if !state.revocations.is_fresh() {
        let age = state.revocations.age().map_or_else(
            || "never".to_owned(),
            |age| format!("{}s ago", age.as_secs()),
        );
        return Some(format!(
            "revocations last synchronised {age} (bound {}s)",
            state.revocations.max_staleness().as_secs()
        ));
    }
    if state.store.ping().await.is_err() {
        return Some(format!(
            "the {} store does not answer",
            state.store.backend()
        ));
    }
    None
}

/// Whether the store answers and the revocation replica is within its staleness bound (the
/// `store` check of `/readyz`, the gauge `idjag_gateway_store_healthy`).
pub(crate) async fn store_ready(state: &GatewayState) -> bool {
    match store_not_ready(state).await {
        None => true,
        Some(what) => {
            tracing::debug!(%what, "store not ready");
            false
        }
    }
}

/// What keeps the gateway from being ready, besides the store, if anything.
async fn not_ready(state: &GatewayState) -> Option<String> {
    if *state.shutdown.borrow() {
        return Some("shutting down".to_owned());
    }
    if !state.inbound.ready().await {
        return Some("idp: keys not loaded".to_owned());
    }
    for upstream in state.upstreams.values() {
        if !upstream.credential.ready().await {
            return Some(format!(
                "upstream[{}]: credential setup not discovered",
                upstream.name
            ));
        }
    }
    None
}

/// Whether the IdP's keys and every upstream's credential setup are available and no
/// shutdown has started (the `gateway` check of `/readyz`).
pub(crate) async fn readiness(state: &GatewayState) -> bool {
    match not_ready(state).await {
        None => true,
        Some(what) => {
            tracing::debug!(%what, "gateway not ready");
            false
        }
    }
}

pub(crate) async fn route_metadata(
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
) -> Response {
    let Some(upstream) = state.upstreams.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(resource) = Resource::new(upstream.resource.as_str()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // With its own authorization server the gateway is the route's authorization server
    // (the IdP stays behind it); without, the IdP.
    let authorization_server = state
        .authorization_server
        .as_ref()
        .map_or_else(|| state.inbound.issuer().clone(), |s| s.issuer().clone());
    let mut metadata = ProtectedResourceMetadata::new(resource, vec![authorization_server]);
    metadata.resource_name = Some(format!("{name} (through idjag-gateway)"));
    metadata.bearer_methods_supported = Some(vec!["header".to_owned()]);
    let response = json_response(StatusCode::OK, &metadata);
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}
