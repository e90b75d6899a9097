//! Everything the proxy, the admin API and the gateway's own routes share across requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use idjag_core::SharedClock;
use tokio::sync::{Semaphore, watch};

use crate::inbound::InboundAuth;
use crate::observe::arguments::ArgumentRule;
use crate::observe::audit::AuditSink;
use crate::plan::{AdminPlan, ProxySettings};
use crate::policy::access::Authorizer;
use crate::policy::approval::Approvals;
use crate::policy::revocation::Revocations;
use crate::protocol::headers::ForwardPolicy;
use crate::proxy::session::Sessions;
use crate::proxy::stream::StreamGauge;
use crate::upstream::{IdJagOutbound, Upstream};

/// Whether the shared store answers (the hook [`crate::GatewayBuilder::store_health`] fills:
/// the gauge `idjag_gateway_store_healthy` and the `store` readiness check).
pub type StoreHealth = Arc<dyn Fn() -> bool + Send + Sync>;

/// The gateway's shared state, one per configuration generation: built by
/// [`crate::GatewayBuilder::build`] and again by each reload. What must outlive a reload
/// (sessions, approvals, revocations, the audit sinks, the concurrency limit, open streams,
/// the shutdown switch) is shared between generations through the `Arc`s.
pub struct GatewayState {
    pub(crate) settings: ProxySettings,
    pub(crate) inbound: InboundAuth,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) upstreams: HashMap<String, Arc<Upstream>>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) arguments: ArgumentRule,
    pub(crate) forward: ForwardPolicy,
    pub(crate) clock: SharedClock,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) streams: Arc<StreamGauge>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) approvals: Arc<Approvals>,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) admin: Option<AdminPlan>,
    pub(crate) metrics_enabled: bool,
    pub(crate) metrics_require_admin: bool,
    pub(crate) outbound: Arc<IdJagOutbound>,
    pub(crate) trusted_proxies: idjag_ops::audit::TrustedProxies,
    pub(crate) max_in_flight: usize,
    pub(crate) jwks_observed: Arc<AtomicU64>,
    pub(crate) store_health: Option<StoreHealth>,
    pub(crate) audit_sinks: Option<Arc<idjag_ops::audit::Audit>>,
    pub(crate) generation: u64,
}

impl std::fmt::Debug for GatewayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayState")
            .field("generation", &self.generation)
            .field("upstreams", &self.upstreams.keys().collect::<Vec<_>>())
            .field("inbound", &self.inbound)
            .finish_non_exhaustive()
    }
}
