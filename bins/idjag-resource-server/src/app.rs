//! The public HTTP surface, dispatched to the plan in use (a configuration reload swaps the
//! plan; requests in flight keep theirs): the token endpoint, introspection, the RFC 8414
//! metadata at the inserted and the appended well-known forms, the JWKS, and the refusing
//! authorization endpoint when configured. Health and metrics live on the admin listener.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use http::header::{ALLOW, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use idjag_ops::audit::TrustedProxies;
use idjag_ops::audit::events::AuditEvents;
use idjag_ops::guard::{self, GuardSettings};
use idjag_ops::reload::Reloadable;
use idjag_ops::telemetry::HttpTraceLayer;
use idjag_resource::ResourceAuthorizationServer;

use crate::assemble::Plan;

/// The public router: every path is resolved against the current plan.
pub(crate) fn router(plans: &Reloadable<Plan>, events: &AuditEvents) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(
            events.clone(),
            guard::guard::<Plan>,
        ))
        .layer(HttpTraceLayer::new())
        .layer(plans.layer())
}

impl GuardSettings for Plan {
    fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
    fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }
}

fn into_axum(response: http::Response<Vec<u8>>) -> Response {
    response.map(Body::from)
}

enum ReadError {
    TooLarge,
    Aborted,
}

async fn read_body(body: Body, max: usize) -> Result<Vec<u8>, ReadError> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ReadError::TooLarge),
        Err(_) => Err(ReadError::Aborted),
    }
}

/// `{issuer path}/.well-known/oauth-authorization-server`, when the issuer has a path.
fn appended_metadata_path(server: &ResourceAuthorizationServer) -> Option<String> {
    let issuer = url::Url::parse(server.issuer().as_str()).ok()?;
    let path = issuer.path().trim_end_matches('/');
    (!path.is_empty()).then(|| format!("{path}/.well-known/oauth-authorization-server"))
}

fn only_get(method: &Method) -> Option<Response> {
    (method != Method::GET && method != Method::HEAD).then(|| {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        response
    })
}

async fn dispatch(Extension(plan): Extension<Arc<Plan>>, request: Request) -> Response {
    let server = &plan.server;
    let path = request.uri().path().to_owned();
    let (parts, body) = request.into_parts();
    if path == server.token_path() {
        return match read_body(body, server.max_body_bytes()).await {
            Ok(bytes) => into_axum(server.token(&parts.method, &parts.headers, &bytes).await),
            Err(ReadError::TooLarge) => into_axum(server.token_body_too_large()),
            // The client went away before its request was complete: no decision to take.
            Err(ReadError::Aborted) => StatusCode::BAD_REQUEST.into_response(),
        };
    }
    if path == server.introspection_path() {
        return match read_body(body, server.max_body_bytes()).await {
            Ok(bytes) => into_axum(
                server
                    .introspect(&parts.method, &parts.headers, &bytes)
                    .await,
            ),
            Err(ReadError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            Err(ReadError::Aborted) => StatusCode::BAD_REQUEST.into_response(),
        };
    }
    if path == server.jwks_path() {
        return only_get(&parts.method).unwrap_or_else(|| into_axum(server.jwks()));
    }
    if path == server.metadata_path() || appended_metadata_path(server).as_deref() == Some(&path) {
        return only_get(&parts.method).unwrap_or_else(|| into_axum(server.metadata()));
    }
    if server.authorize_path() == Some(path.as_str()) {
        return into_axum(server.authorize());
    }
    StatusCode::NOT_FOUND.into_response()
}
