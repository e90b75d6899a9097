//! The gateway assembled from its [`Plan`]: routes, health, metadata, the two listeners,
//! reload.
//!
//! The public listener serves `/mcp/{name}` and each route's RFC 9728 metadata, nothing
//! else. The admin listener (`[admin]`) serves `/metrics`, `/healthz`, `/readyz` and, with an
//! admin token, the administrator API under `/admin/`. Every request on either gets a server
//! span continuing the caller's trace, its client address and trace id for the audit line,
//! and exactly one audit line (health probes and answered metric scrapes aside).

mod build;
mod routes;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::{any, get};
use http::{Request, Response};
use idjag_core::SystemClock;
use idjag_core::remote::FetchError;
use idjag_ops::listener::admin::{self as ops_admin, Health};
use idjag_ops::listener::{Listener, ListenerConfig, ListenerError, ServeSummary, Shutdown};
use idjag_ops::reload::{ReloadOutcome, Reloadable, Trigger, WatchOptions};
use idjag_ops::telemetry::HttpTraceLayer;
use tower::ServiceExt;

pub use build::{GatewayBuilder, Planner, plan_file};

use crate::config::ConfigError;
use crate::plan::{Plan, Warning};
use crate::proxy::{GatewayState, handle};
use crate::server::{AuditState, audit_other_requests, buffer_body, client_context};

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The IdP's key source could not be set up.
    #[error("IdP keys: {0}")]
    Jwks(#[from] FetchError),
    /// A validator setting is out of range.
    #[error("inbound validation: {0}")]
    Validator(#[from] idjag_core::ValidatorConfigError),
    /// The outbound client could not be set up.
    #[error("outbound client: {0}")]
    Client(#[from] idjag_client::ClientError),
    /// An upstream's HTTP client could not be set up.
    #[error("upstream[{upstream}]: HTTP client setup failed")]
    HttpClient {
        /// The route.
        upstream: String,
    },
    /// The audit sinks could not start.
    #[error("audit: {0}")]
    Audit(#[from] idjag_ops::audit::AuditError),
    /// A listener could not start.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// The store (`[store]`) could not be opened, or did not answer `check-config`.
    #[error("{0}")]
    Store(idjag_store::ConfigError),
    /// The approval notification webhook's HTTP client could not be set up.
    #[error("approvals.webhook: HTTP client setup failed")]
    Review,
    /// The authorization server could not be set up.
    #[error("authorization server: {0}")]
    AuthorizationServer(#[from] crate::authorization_server::AsBuildError),
}

/// One configuration generation: its state and the routers built on it.
pub(crate) struct Generation {
    state: Arc<GatewayState>,
    public: Router,
    admin: Router,
    warnings: Vec<Warning>,
    upstream_clients: usize,
}

impl Generation {
    fn new(state: Arc<GatewayState>, warnings: Vec<Warning>, upstream_clients: usize) -> Self {
        Self {
            public: public_router(&state),
            admin: admin_router(&state),
            state,
            warnings,
            upstream_clients,
        }
    }
}

/// The generations of a gateway: one for its life, or one per reload.
#[derive(Clone)]
pub(crate) enum Generations {
    Fixed(Arc<Generation>),
    Reloading(Reloadable<Generation>),
}

impl Generations {
    fn current(&self) -> Arc<Generation> {
        match self {
            Self::Fixed(generation) => generation.clone(),
            Self::Reloading(plans) => plans.current(),
        }
    }
}

fn audit_state(state: &Arc<GatewayState>) -> AuditState {
    AuditState {
        audit: state.audit.clone(),
        clock: state.clock.clone(),
        trusted_proxies: state.trusted_proxies.clone(),
    }
}

/// The public routes: MCP and discovery, nothing else (the admin paths answer 404 even if a
/// route were ever added for them).
fn public_router(state: &Arc<GatewayState>) -> Router {
    let audit = audit_state(state);
    let router = Router::new()
        .route("/mcp/{name}", any(handle))
        .route(
            "/.well-known/oauth-protected-resource/mcp/{name}",
            get(routes::route_metadata),
        )
        .merge(crate::admin::page::status_router())
        .fallback(routes::not_found)
        .with_state(state.clone());
    // With `[authorization_server]`, its endpoints (metadata, authorize, token, ...) are
    // public too.
    let router = match &state.authorization_server {
        Some(server) => router.merge(server.router()),
        None => router,
    };
    ops_admin::without_admin_paths(router)
        .layer(axum::middleware::from_fn_with_state(
            audit.clone(),
            audit_other_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(audit, client_context))
        .layer(HttpTraceLayer::new())
}

/// The admin routes: `/metrics`, health and, with a token, the administrator API.
fn admin_router(state: &Arc<GatewayState>) -> Router {
    let audit = audit_state(state);
    let ready = state.clone();
    let mut health = Health::new().check_async("gateway", move || {
        let state = ready.clone();
        async move { routes::readiness(&state).await }
    });
    if let Some(sinks) = &state.audit_sinks {
        let sinks = sinks.clone();
        health = health.check("audit", move || sinks.is_healthy());
    }
    let store = state.clone();
    health = health.check_async("store", move || {
        let state = store.clone();
        async move { routes::store_ready(&state).await }
    });
    let mut router = Router::new()
        .route("/metrics", get(routes::metrics))
        .fallback(routes::not_found);
    if state.admin.is_some() {
        router = router.merge(crate::admin::router());
    }
    router
        .with_state(state.clone())
        .merge(ops_admin::health_router(health))
        .layer(axum::middleware::from_fn_with_state(
            (
                crate::admin::MAX_ADMIN_BODY_BYTES,
                state.settings.body_timeout,
            ),
            buffer_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            audit.clone(),
            audit_other_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(audit, client_context))
        .layer(HttpTraceLayer::new())
}

/// Which of a generation's routers a [`GenerationService`] serves.
#[derive(Debug, Clone, Copy)]
enum Side {
    Public,
    Admin,
}

/// A listener's service: each request goes to the router of the generation current when it
/// arrives, and keeps it to its end (an open stream keeps the configuration it started with).
#[derive(Clone)]
struct GenerationService {
    generations: Generations,
    side: Side,
}

impl tower::Service<Request<Body>> for GenerationService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let generation = self.generations.current();
        let router = match self.side {
            Side::Public => generation.public.clone(),
            Side::Admin => generation.admin.clone(),
        };
        Box::pin(router.oneshot(request))
    }
}

/// A gateway: its current generation, what outlives reloads, its listeners' settings.
#[derive(Clone)]
pub struct Gateway {
    generations: Generations,
    persistent: Arc<build::Persistent>,
    public_url: String,
    server: ListenerConfig,
    admin: Option<ListenerConfig>,
    warnings: Vec<Warning>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("public_url", &self.public_url)
            .field("listen", &self.server.listen)
            .field("generation", &self.state().generation)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A builder for `plan`, with the system clock and the configured audit sinks.
    pub fn builder(plan: Plan) -> GatewayBuilder {
        GatewayBuilder::new(plan, SystemClock::shared())
    }

    fn state(&self) -> Arc<GatewayState> {
        self.generations.current().state.clone()
    }

    /// The warnings of the configuration at start-up.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The public routes of the current generation: `/mcp/{name}`, their RFC 9728 metadata
    /// and, with `[authorization_server]`, its endpoints ([`crate::authorization_server`]).
    pub fn router(&self) -> Router {
        self.generations.current().public.clone()
    }

    /// The gateway's own authorization server (`[authorization_server]`) of the current
    /// generation.
    pub fn authorization_server(&self) -> Option<crate::authorization_server::AuthorizationServer> {
        self.state().authorization_server.clone()
    }

    /// The admin routes of the current generation: `/metrics`, `/healthz`, `/readyz` and,
    /// with an admin token, `/admin/` ([`crate::admin`]).
    pub fn admin_router(&self) -> Router {
        self.generations.current().admin.clone()
    }

    /// Binds the public listener and, with `[admin]`, the admin listener, as configured.
    pub async fn bind(&self) -> Result<(Listener, Option<Listener>), BuildError> {
        let public = Listener::bind("public", &self.server).await?;
        let admin = match &self.admin {
            Some(config) => Some(Listener::bind("admin", config).await?),
            None => None,
        };
        Ok((public, admin))
    }

    /// Serves `public` and `admin` until `shutdown`, then drains: the listeners close, SSE
    /// streams get a final event and end, in-flight requests finish (up to each listener's
    /// `drain_timeout`).
    pub async fn serve(
        &self,
        public: Listener,
        admin: Option<Listener>,
        shutdown: Shutdown,
    ) -> (ServeSummary, Option<ServeSummary>) {
        let switch = self.persistent.shutdown.clone();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            trigger.triggered().await;
            tracing::info!("shutting down: no new connections; closing streams");
            switch.send_replace(true);
        });
        let service = |side| GenerationService {
            generations: self.generations.clone(),
            side,
        };
        let served = idjag_ops::listener::serve_pair(
            (public, service(Side::Public)),
            admin.map(|admin| (admin, service(Side::Admin))),
            shutdown,
        )
        .await;
        // Every stdio upstream process ends with the gateway.
        self.end_processes().await;
        served
    }

    /// Ends every stdio upstream process of the current generation and waits for each to
    /// exit (part of [`Self::serve`]'s shutdown). No process starts afterwards: its stdio
    /// upstreams answer 503. A generation replaced by a reload ends its processes when
    /// it is dropped.
    pub async fn end_processes(&self) {
        self.state().end_processes().await;
    }

    /// The counts of the processes of stdio upstream `name` (`None`: no such stdio
    /// upstream).
    pub fn stdio_stats(&self, name: &str) -> Option<crate::upstream::stdio::StdioStats> {
        match &self.state().upstreams.get(name)?.endpoint {
            crate::upstream::Endpoint::Stdio(processes) => Some(processes.stats()),
            _ => None,
        }
    }

    /// Reloads on SIGHUP and when the configuration file changes (a gateway built with
    /// [`GatewayBuilder::reload_from`]), until `shutdown`.
    pub fn watch(&self, options: WatchOptions, shutdown: Shutdown) {
        if let Generations::Reloading(plans) = &self.generations {
            plans.watch(options, shutdown);
        }
    }

    /// Reloads now (a gateway built with [`GatewayBuilder::reload_from`]; else refused).
    pub async fn reload(&self) -> ReloadOutcome {
        match &self.generations {
            Generations::Reloading(plans) => plans.reload(Trigger::Manual).await,
            Generations::Fixed(_) => ReloadOutcome::Refused {
                reason: "no configuration file to reload from".to_owned(),
            },
        }
    }

    /// The configuration generation in use (1 at start-up, +1 per applied reload).
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// `check-config`'s build: the gateway of `plan`, then a round trip to its store. The
    /// embedded store's file held by a running gateway is not an error (it is locked while
    /// open): a warning says so. Returns the warnings.
    pub async fn check(plan: Plan) -> Result<Vec<Warning>, BuildError> {
        let mut warnings = plan.warnings.clone();
        let clock = SystemClock::shared();
        let store: Arc<dyn idjag_store::Store> = match plan.store.config.open(clock.clone()) {
            Ok(store) => store,
            Err(idjag_store::ConfigError::Embedded(
                idjag_store::EmbeddedOpenError::AlreadyOpen,
            )) => {
                warnings.push(Warning {
                    key: "store.backend.path".to_owned(),
                    message: "open in another process (a running gateway?): not checked".to_owned(),
                });
                Arc::new(idjag_store::MemoryStore::new(clock.clone()))
            }
            Err(e) => return Err(BuildError::Store(e)),
        };
        let gateway = Self::builder(plan)
            .clock(clock)
            .store(store)
            .audit_sink(Arc::new(crate::observe::sinks::MemorySink::default()))
            .build()
            .await?;
        gateway.check_store().await?;
        Ok(warnings)
    }

    /// The store holding revocations, approvals and session bindings, opened once for the
    /// gateway's life: a reload ([`Self::reload`]) keeps it, and a gateway rebuilt from a new
    /// plan in the same process takes it over with [`GatewayBuilder::store`] (the embedded
    /// store's file can be open only once).
    pub fn store(&self) -> Arc<dyn idjag_store::Store> {
        self.persistent.store.clone()
    }

    /// One round trip to the store (`check-config`).
    pub async fn check_store(&self) -> Result<(), BuildError> {
        self.persistent
            .store
            .ping()
            .await
            .map_err(|e| BuildError::Store(idjag_store::ConfigError::Unreachable(e)))
    }

    /// Whether the store can be used now: it answers, and the local copy of the revocations
    /// is within its staleness bound.
    pub async fn store_ready(&self) -> bool {
        routes::store_ready(&self.state()).await
    }

    /// Tells open SSE streams to end (part of [`Self::serve`]'s shutdown).
    pub fn close_streams(&self) {
        self.persistent.shutdown.send_replace(true);
    }

    /// Lets the audit sinks deliver what they hold (up to `deadline`); call it after
    /// [`Self::serve`] returns.
    pub async fn flush_audit(&self, deadline: std::time::Duration) {
        if let Some(sinks) = &self.persistent.audit_sinks {
            sinks.flush(deadline).await;
        }
    }

    /// Whether the store can be used ([`Self::store_ready`]) and the IdP's keys and every
    /// upstream's credential setup are available.
    pub async fn ready(&self) -> bool {
        let state = self.state();
        routes::store_ready(&state).await && routes::readiness(&state).await
    }

    /// Token exchanges at the IdP so far.
    pub fn exchange_count(&self) -> u64 {
        self.state().outbound.exchange_count()
    }

    /// Redemptions at resource authorization servers so far.
    pub fn redemption_count(&self) -> u64 {
        self.state().outbound.redemption_count()
    }

    /// Requests for the IdP's JWK Set sent so far.
    pub fn jwks_fetch_count(&self) -> u64 {
        self.state()
            .inbound
            .jwks()
            .map_or(0, |jwks| jwks.fetch_count())
    }

    /// Responses being streamed now (SSE and JSON).
    pub fn live_streams(&self) -> usize {
        self.persistent.streams.live()
    }

    /// Requests in flight now (SSE streams included).
    pub fn in_flight(&self) -> usize {
        let state = self.state();
        state.max_in_flight - state.in_flight.available_permits()
    }

    /// Distinct upstream HTTP clients: one per transport setting, shared by its routes.
    pub fn upstream_clients(&self) -> usize {
        self.generations.current().upstream_clients
    }

    /// The warnings of the configuration in use.
    pub fn current_warnings(&self) -> Vec<Warning> {
        self.generations.current().warnings.clone()
    }

    /// The public URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The configured public listen address.
    pub fn listen(&self) -> SocketAddr {
        self.server.listen
    }

    /// The public listener's settings.
    pub fn listener_config(&self) -> &ListenerConfig {
        &self.server
    }

    /// The admin listener's settings (`None` without `[admin]`).
    pub fn admin_listener_config(&self) -> Option<&ListenerConfig> {
        self.admin.as_ref()
    }
}
