//! The public HTTP surface, dispatched to the plan in use (a configuration reload swaps the
//! plan; requests in flight keep theirs): idjag-idp's token exchange, JWKS and metadata (RFC
//! 8414 and OIDC discovery). Health and metrics live on the admin listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use idjag_ops::audit::AuditContext;
use idjag_ops::reload::Reloadable;
use idjag_ops::telemetry::HttpTraceLayer;
use tower::ServiceExt;

use crate::assemble::Plan;
use crate::ops::{RequestScope, SCOPE};

/// The public router: every request goes to the current plan's idjag-idp router.
pub(crate) fn router(plans: &Reloadable<Plan>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(middleware::from_fn(guard))
        .layer(HttpTraceLayer::new())
        .layer(plans.layer())
}

async fn dispatch(Extension(plan): Extension<Arc<Plan>>, request: Request) -> Response {
    let answer: Result<Response, Infallible> = plan.router.clone().oneshot(request).await;
    match answer {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn temporarily_unavailable() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        r#"{"error":"temporarily_unavailable","error_description":"the service is temporarily unavailable"}"#,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Around every request: the audit scope (the client address behind trusted proxies), the
/// request deadline, `Retry-After: 1` on every 503, and fail-closed auditing: when the audit
/// sinks refuse a decision's line (`on_full = "fail_closed"`), its answer is withheld.
async fn guard(request: Request, next: Next) -> Response {
    let Some(plan) = request.extensions().get::<Arc<Plan>>().cloned() else {
        return temporarily_unavailable();
    };
    let scope = RequestScope {
        client_address: AuditContext::of(&request, &plan.trusted_proxies).client_address,
        ..RequestScope::default()
    };
    let (mut response, refused) = SCOPE
        .scope(scope, async move {
            let response = match tokio::time::timeout(plan.request_timeout, next.run(request)).await
            {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!("request deadline exceeded");
                    temporarily_unavailable()
                }
            };
            let refused = SCOPE.with(|scope| scope.audit_refused.load(Ordering::SeqCst));
            (response, refused)
        })
        .await;
    if refused {
        tracing::warn!("a decision could not be audited; its answer is withheld");
        response = temporarily_unavailable();
    }
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(RETRY_AFTER)
            .or_insert(HeaderValue::from_static("1"));
    }
    response
}
