//! The public HTTP surface, dispatched to the plan in use (a configuration reload swaps the
//! plan; requests in flight keep theirs): idjag-idp's token exchange, JWKS and metadata (RFC
//! 8414 and OIDC discovery). Health and metrics live on the admin listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware;
use axum::response::Response;
use axum::{Extension, Router};
use idjag_ops::audit::TrustedProxies;
use idjag_ops::audit::events::AuditEvents;
use idjag_ops::guard::{self, GuardSettings};
use idjag_ops::reload::Reloadable;
use idjag_ops::telemetry::HttpTraceLayer;
use tower::ServiceExt;

use crate::assemble::Plan;

/// The public router: every request goes to the current plan's idjag-idp router.
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

async fn dispatch(Extension(plan): Extension<Arc<Plan>>, request: Request) -> Response {
    let answer: Result<Response, Infallible> = plan.router.clone().oneshot(request).await;
    match answer {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
