//! The HTTP surface: idjag-idp's endpoints (the token exchange, the JWKS, the RFC 8414 metadata
//! and the OIDC discovery document), `/healthz`, `/readyz` (the store answers) and `/metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use idjag_idp::IdJagIssuer;
use idjag_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

/// What the extra routes need.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) issuer: IdJagIssuer,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) metrics: Option<PrometheusHandle>,
}

/// How long `/readyz` waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The whole router, with request metrics, a request timeout and `Retry-After` on 503.
pub(crate) fn router(state: AppState, request_timeout: Duration) -> Router {
    state
        .issuer
        .router()
        .merge(
            Router::new()
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz))
                .route("/metrics", get(render_metrics))
                .with_state(state),
        )
        .layer(middleware::from_fn(move |request, next| {
            guard(request, next, request_timeout)
        }))
}

async fn healthz() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
}

async fn readyz(State(state): State<AppState>) -> Response {
    let backend = state.store.backend();
    let answered = tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await;
    let up = matches!(answered, Ok(Ok(())));
    metrics::gauge!("idjag_store_up", "backend" => backend).set(if up { 1.0 } else { 0.0 });
    if up {
        json(
            StatusCode::OK,
            format!(r#"{{"status":"ready","store":{{"backend":"{backend}","status":"up"}}}}"#),
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                r#"{{"status":"not_ready","store":{{"backend":"{backend}","status":"unavailable"}}}}"#
            ),
        )
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    match state.metrics {
        Some(handle) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Request metrics (`idjag_http_requests_total{route,status}` and a latency histogram), a
/// deadline for the whole request, and `Retry-After: 1` on every 503 (the store is back
/// within seconds, or `/readyz` says it is not).
async fn guard(request: Request, next: Next, timeout: Duration) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let mut response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(route, "request deadline exceeded");
            let mut response = json(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"temporarily_unavailable","error_description":"the service is temporarily unavailable"}"#.to_owned(),
            );
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    };
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(RETRY_AFTER)
            .or_insert(HeaderValue::from_static("1"));
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!("idjag_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("idjag_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
