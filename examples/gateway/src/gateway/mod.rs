//! The gateway assembled from its [`Plan`]: routes, health, metadata and serving.

mod build;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use idjag_core::SystemClock;
use idjag_core::remote::FetchError;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use build::GatewayBuilder;

use crate::config::ConfigError;
use crate::plan::{Plan, Warning};
use crate::proxy::{GatewayState, handle};
use crate::server::{ServerLimits, serve};
use crate::upstream::IdJagOutbound;

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
    /// The audit log could not be opened.
    #[error("audit log: {0}")]
    Audit(std::io::Error),
    /// The authorization server could not be set up.
    #[error("authorization server: {0}")]
    AuthorizationServer(#[from] crate::authorization_server::AsBuildError),
}

/// A running gateway's handle: its router, shutdown switch and counters.
#[derive(Debug, Clone)]
pub struct Gateway {
    state: Arc<GatewayState>,
    public_url: String,
    listen: SocketAddr,
    limits: ServerLimits,
    shutdown: Arc<watch::Sender<bool>>,
    outbound: Arc<IdJagOutbound>,
    warnings: Vec<Warning>,
    max_in_flight: usize,
    upstream_clients: usize,
}

impl Gateway {
    /// A builder for `plan`, with the system clock and the configured audit output.
    pub fn builder(plan: Plan) -> GatewayBuilder {
        GatewayBuilder::new(plan, SystemClock::shared())
    }

    /// The configuration warnings.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The routes: `/mcp/{name}`, their RFC 9728 metadata, `/healthz`, `/readyz`,
    /// `/metrics`, the admin API under `/admin/` ([`crate::admin`]) and, with
    /// `[authorization_server]`, its endpoints ([`crate::authorization_server`]).
    pub fn router(&self) -> Router {
        let router = Router::new()
            .route("/mcp/{name}", any(handle))
            .route("/metrics", get(routes::metrics))
            .merge(crate::admin::router())
            .route(
                "/.well-known/oauth-protected-resource/mcp/{name}",
                get(routes::route_metadata),
            )
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(routes::readyz))
            .with_state(self.state.clone());
        match &self.state.authorization_server {
            Some(server) => router.merge(server.router()),
            None => router,
        }
    }

    /// The gateway's own authorization server (`[authorization_server]`).
    pub fn authorization_server(
        &self,
    ) -> Option<&crate::authorization_server::AuthorizationServer> {
        self.state.authorization_server.as_ref()
    }

    /// Serves on `listener` until `shutdown` resolves, then shuts down gracefully.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let switch = self.shutdown.clone();
        serve(listener, self.router(), self.limits, shutdown, move || {
            let _ = switch.send(true);
        })
        .await
    }

    /// Tells open SSE streams to end (part of [`Self::serve`]'s shutdown).
    pub fn close_streams(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Whether the IdP's keys and every upstream's credential setup are available.
    pub async fn ready(&self) -> bool {
        routes::readiness(&self.state).await
    }

    /// Token exchanges at the IdP so far.
    pub fn exchange_count(&self) -> u64 {
        self.outbound.exchange_count()
    }

    /// Redemptions at resource authorization servers so far.
    pub fn redemption_count(&self) -> u64 {
        self.outbound.redemption_count()
    }

    /// Requests for the IdP's JWK Set sent so far.
    pub fn jwks_fetch_count(&self) -> u64 {
        self.state
            .inbound
            .jwks()
            .map_or(0, |jwks| jwks.fetch_count())
    }

    /// Responses being streamed now (SSE and JSON).
    pub fn live_streams(&self) -> usize {
        self.state.streams.live()
    }

    /// Requests in flight now (SSE streams included).
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.state.in_flight.available_permits()
    }

    /// Distinct upstream HTTP clients: one per transport setting, shared by its routes.
    pub fn upstream_clients(&self) -> usize {
        self.upstream_clients
    }

    /// The public URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The configured listen address.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The connection limits.
    pub fn limits(&self) -> ServerLimits {
        self.limits
    }
}
