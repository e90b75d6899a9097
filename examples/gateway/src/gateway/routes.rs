//! The gateway's own routes: `/metrics`, `/readyz` and each route's RFC 9728 metadata.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use idjag_core::server::json_response;
use idjag_core::{ProtectedResourceMetadata, Resource};

use crate::admin::authorized;
use crate::proxy::GatewayState;

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

pub(crate) async fn readiness(state: &GatewayState) -> bool {
    if *state.shutdown.borrow() || !state.inbound.ready().await {
        return false;
    }
    for upstream in state.upstreams.values() {
        if !upstream.credential.ready().await {
            return false;
        }
    }
    true
}

pub(crate) async fn readyz(State(state): State<Arc<GatewayState>>) -> Response {
    if readiness(&state).await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
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
