//! The middleware around every request of an OAuth server built on the libraries (the
//! resource authorization server, the ID-JAG issuer): the audit scope with the client address
//! behind trusted proxies, the request deadline, `Retry-After: 1` on every 503, and fail-closed
//! auditing: when the audit sinks refuse a decision's line (`on_full = "fail_closed"`), its
//! answer is withheld and the client gets `503 temporarily_unavailable` (RFC 6749 §5.2).
//!
//! The settings come from the plan in use, which [`Reloadable::layer`](crate::reload::Reloadable::layer)
//! puts in each request's extensions; a request without one is answered 503.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::{Router, middleware};
//! use idjag_ops::audit::TrustedProxies;
//! use idjag_ops::audit::events::AuditEvents;
//! use idjag_ops::guard::{self, GuardSettings};
//!
//! struct Plan {
//!     request_timeout: Duration,
//!     trusted_proxies: TrustedProxies,
//! }
//!
//! impl GuardSettings for Plan {
//!     fn request_timeout(&self) -> Duration {
//!         self.request_timeout
//!     }
//!     fn trusted_proxies(&self) -> &TrustedProxies {
//!         &self.trusted_proxies
//!     }
//! }
//!
//! let events = AuditEvents::new("idjag_example_decisions_total");
//! let router: Router = Router::new()
//!     .layer(middleware::from_fn_with_state(events, guard::guard::<Plan>));
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::audit::events::AuditEvents;
use crate::audit::{AuditContext, TrustedProxies};

/// What [`guard`] reads from the plan in use.
pub trait GuardSettings: Send + Sync + 'static {
    /// The deadline of one request, body included.
    fn request_timeout(&self) -> Duration;
    /// The proxies whose `Forwarded`/`X-Forwarded-For` name the client.
    fn trusted_proxies(&self) -> &TrustedProxies;
}

/// `503` with the OAuth error `temporarily_unavailable`, not cacheable.
pub fn temporarily_unavailable() -> Response {
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

/// The middleware (for `axum::middleware::from_fn_with_state`); `P` is the plan type in the
/// request's extensions (as `Arc<P>`).
pub async fn guard<P: GuardSettings>(
    State(events): State<AuditEvents>,
    request: Request,
    next: Next,
) -> Response {
    let Some(plan) = request.extensions().get::<Arc<P>>().cloned() else {
        return temporarily_unavailable();
    };
    let client_address = AuditContext::of(&request, plan.trusted_proxies()).client_address;
    let handling = async move {
        match tokio::time::timeout(plan.request_timeout(), next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!("request deadline exceeded");
                temporarily_unavailable()
            }
        }
    };
    let (mut response, refused) = events.scope(client_address, handling).await;
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
