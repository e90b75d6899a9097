//! The gateway's own routes: `/metrics`, `/readyz` and each route's RFC 9728 metadata.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use idjag_core::server::json_response;
use idjag_core::{ProtectedResourceMetadata, Resource};

use crate::admin::authorized;
use crate::proxy::GatewayState;
use crate::upstream::Endpoint;
use crate::upstream::stdio::ExitReason;

pub(crate) async fn metrics(
    State(state): State<Arc<GatewayState>>,
    headers: http::HeaderMap,
) -> Response {
    let Some(metrics) = &state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if state.metrics_require_admin
        && let Err(response) = authorized(&state, &headers)
    {
        return *response;
    }
    metrics.set_total(
        "idjag_gateway_token_exchanges_total",
        &[],
        state.outbound.exchange_count(),
    );
    metrics.set_total(
        "idjag_gateway_redemptions_total",
        &[],
        state.outbound.redemption_count(),
    );
    metrics.set_total(
        "idjag_gateway_jwks_fetches_total",
        &[],
        state.inbound.jwks().map_or(0, |jwks| jwks.fetch_count()),
    );
    let (hits, misses) = state.inbound.cache_stats();
    metrics.set_total(
        "idjag_gateway_identity_cache_total",
        &[("result", "hit".into())],
        hits,
    );
    metrics.set_total(
        "idjag_gateway_identity_cache_total",
        &[("result", "miss".into())],
        misses,
    );
    for upstream in state.upstreams.values() {
        let (hits, misses) = upstream.credential.cache_stats();
        let name = || ("upstream", upstream.name.clone());
        metrics.set_total(
            "idjag_gateway_credential_cache_total",
            &[name(), ("result", "hit".into())],
            hits,
        );
        metrics.set_total(
            "idjag_gateway_credential_cache_total",
            &[name(), ("result", "miss".into())],
            misses,
        );
        if let Endpoint::Stdio(processes) = &upstream.endpoint {
            let stats = processes.stats();
            metrics.set_gauge(
                "idjag_gateway_stdio_processes",
                &[name()],
                stats.live as f64,
            );
            metrics.set_total("idjag_gateway_stdio_starts_total", &[name()], stats.started);
            metrics.set_total(
                "idjag_gateway_stdio_restarts_total",
                &[name()],
                stats.restarts,
            );
            for reason in ExitReason::ALL {
                metrics.set_total(
                    "idjag_gateway_stdio_exits_total",
                    &[name(), ("reason", reason.label().into())],
                    stats.exits(reason),
                );
            }
        }
        if let Some(fetches) = upstream.credential.fetch_count() {
            metrics.set_total(
                "idjag_gateway_client_credentials_fetches_total",
                &[name()],
                fetches,
            );
        }
    }
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Whether the store answers and the revocation replica is within its staleness bound.
pub(crate) async fn store_ready(state: &GatewayState) -> bool {
    state.revocations.is_fresh() && state.store.ping().await.is_ok()
}

/// What keeps the gateway from being ready, if anything.
async fn not_ready(state: &GatewayState) -> Option<String> {
    if *state.shutdown.borrow() {
        return Some("shutting down".to_owned());
    }
    if !state.revocations.is_fresh() {
        let age = state.revocations.age().map_or_else(
            || "never".to_owned(),
            |age| format!("{}s ago", age.as_secs()),
        );
        return Some(format!(
            "store: revocations last synchronised {age} (bound {}s)",
            state.revocations.max_staleness().as_secs()
        ));
    }
    if state.store.ping().await.is_err() {
        return Some(format!(
            "store: the {} store does not answer",
            state.store.backend()
        ));
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

pub(crate) async fn readiness(state: &GatewayState) -> bool {
    not_ready(state).await.is_none()
}

/// `/readyz`: 200 `ready`, or 503 `not ready: <what>` (the store, the IdP's keys, an
/// upstream's credential setup, shutdown).
pub(crate) async fn readyz(State(state): State<Arc<GatewayState>>) -> Response {
    match not_ready(&state).await {
        None => (StatusCode::OK, "ready").into_response(),
        Some(what) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {what}"),
        )
            .into_response(),
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
    let mut metadata =
        ProtectedResourceMetadata::new(resource, vec![state.inbound.issuer().clone()]);
    metadata.resource_name = Some(format!("{name} (through idjag-gateway)"));
    metadata.bearer_methods_supported = Some(vec!["header".to_owned()]);
    let response = json_response(StatusCode::OK, &metadata);
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}
