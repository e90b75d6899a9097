//! The admin listener's router (`/metrics`, `/healthz`, `/readyz`) and the checks that keep
//! those paths off the public listener.
//!
//! ```
//! use axum::Router;
//! use idjag_ops::listener::admin::{self, Health};
//! use idjag_ops::metrics::Metrics;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let metrics = Metrics::global();
//! let admin = admin::router(metrics, Health::new());
//! // The server's own admin routes (`/admin/...`) are merged into `admin`, never into the
//! // public router; a start-up check (or a test) proves it:
//! let public = Router::new().route("/mcp", axum::routing::post(|| async { "ok" }));
//! admin::assert_absent(&public, admin::ADMIN_PATHS).await.unwrap();
//! # let _ = admin;
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower::ServiceExt;

use crate::listener::Shutdown;
use crate::metrics::Metrics;

/// Runs `probe` (each run bounded by 2 s) every 2 s until `shutdown`, for a readiness check
/// that must not wait on `/readyz` (a store's ping): the last result, also set on `gauge` (1
/// or 0). False until the first probe succeeds.
///
/// ```no_run
/// # async fn demo(shutdown: idjag_ops::listener::Shutdown) {
/// use std::sync::atomic::Ordering;
/// use idjag_ops::listener::admin::{self, Health};
///
/// let up = admin::watch(
///     || async { true /* ping the dependency */ },
///     metrics::gauge!("idjag_example_store_up", "backend" => "memory"),
///     &shutdown,
/// );
/// let health = Health::new().check("store", move || up.load(Ordering::SeqCst));
/// # let _ = health;
/// # }
/// ```
pub fn watch<P, F>(probe: P, gauge: metrics::Gauge, shutdown: &Shutdown) -> Arc<AtomicBool>
where
    P: Fn() -> F + Send + 'static,
    F: std::future::Future<Output = bool> + Send,
{
    const EVERY: Duration = Duration::from_secs(2);
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let ok = matches!(tokio::time::timeout(EVERY, probe()).await, Ok(true));
            flag.store(ok, Ordering::SeqCst);
            gauge.set(if ok { 1.0 } else { 0.0 });
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                () = shutdown.triggered() => return,
            }
        }
    });
    up
}

/// Paths that belong on the admin listener only.
pub const ADMIN_PATHS: &[&str] = &["/metrics", "/admin", "/admin/", "/healthz", "/readyz"];

type Check = Arc<dyn Fn() -> bool + Send + Sync>;
type AsyncCheck = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync,
>;

/// Readiness: named checks (an audit sink's health, a dependency) and the shutdown state.
/// `/readyz` answers 200 when every check passes and no shutdown has started, else 503 with
/// the names of the failing checks.
#[derive(Clone, Default)]
pub struct Health {
    checks: Vec<(String, Check)>,
    async_checks: Vec<(String, AsyncCheck)>,
    shutdown: Option<Shutdown>,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field(
                "checks",
                &self
                    .checks
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Health {
    /// No checks: always ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check; `name` is shown when it fails.
    pub fn check(mut self, name: &str, check: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.checks.push((name.to_owned(), Arc::new(check)));
        self
    }

    /// Adds a check that needs to wait (a dependency's keys being fetched, a store's ping);
    /// `/readyz` runs the async checks one after the other. `name` is shown when it fails.
    pub fn check_async<F>(
        mut self,
        name: &str,
        check: impl Fn() -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: std::future::Future<Output = bool> + Send + 'static,
    {
        let check: AsyncCheck = Arc::new(move || {
            let future: std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> =
                Box::pin(check());
            future
        });
        self.async_checks.push((name.to_owned(), check));
        self
    }

    /// Not ready once `shutdown` has started (load balancers stop sending new requests while
    /// the listeners drain).
    pub fn until(mut self, shutdown: &Shutdown) -> Self {
        self.shutdown = Some(shutdown.clone());
        self
    }

    /// The names of the failing checks (`shutdown` while draining); empty when ready.
    pub fn failing(&self) -> Vec<String> {
        let mut failing: Vec<String> = self
            .checks
            .iter()
            .filter(|(_, check)| !check())
            .map(|(name, _)| name.clone())
            .collect();
        if self.shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
            failing.push("shutdown".to_owned());
        }
        failing
    }

    /// [`Health::failing`] and the async checks.
    pub async fn failing_all(&self) -> Vec<String> {
        let mut failing = self.failing();
        for (name, check) in &self.async_checks {
            if !check().await {
                failing.push(name.clone());
            }
        }
        failing
    }
}

/// `GET /metrics` (Prometheus text format), `GET /healthz` (the process answers) and
/// `GET /readyz` (every [`Health`] check passes). Merge the server's `/admin` routes into it.
pub fn router(metrics: &'static Metrics, health: Health) -> Router {
    Router::new()
        .merge(metrics.router())
        .merge(health_router(health))
}

/// `GET /healthz` and `GET /readyz` alone, for a server that serves `/metrics` its own way
/// (behind a token, say).
pub fn health_router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    let failing = health.failing_all().await;
                    if failing.is_empty() {
                        (StatusCode::OK, "ready\n".to_owned()).into_response()
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                            format!("not ready: {}\n", failing.join(", ")),
                        )
                            .into_response()
                    }
                }
            }),
        )
}

/// A path that answered on a router that must not serve it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} answers {status} on a router that must not serve it")]
#[non_exhaustive]
pub struct PathPresent {
    /// The path.
    pub path: String,
    /// What a `GET` got.
    pub status: StatusCode,
}

/// Checks that `GET` of each path gets 404 (or 405) from `router`; run it at start-up on the
/// public router, or in a test.
pub async fn assert_absent(router: &Router, paths: &[&str]) -> Result<(), PathPresent> {
    for path in paths {
        let request = Request::get(*path)
            .body(Body::empty())
            .map_err(|_| PathPresent {
                path: (*path).to_owned(),
                status: StatusCode::BAD_REQUEST,
            })?;
        let status = match router.clone().oneshot(request).await {
            Ok(response) => response.status(),
            Err(never) => match never {},
        };
        if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
            return Err(PathPresent {
                path: (*path).to_owned(),
                status,
            });
        }
    }
    Ok(())
}

/// Wraps a public router so that [`ADMIN_PATHS`] (and anything under `/admin/`) answer 404
/// whatever routes it has: a second line of defence behind keeping them off it.
pub fn without_admin_paths(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(
        |request: Request<Body>, next: axum::middleware::Next| async move {
            let path = request.uri().path();
            if ADMIN_PATHS.contains(&path) || path.starts_with("/admin/") {
                return StatusCode::NOT_FOUND.into_response();
            }
            next.run(request).await
        },
    ))
}
