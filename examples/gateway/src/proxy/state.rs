//! Everything the proxy, the admin API and the gateway's own routes share across requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use idjag_core::SharedClock;
use tokio::sync::{Semaphore, watch};

use crate::authorization_server::AuthorizationServer;
use crate::inbound::InboundAuth;
use crate::observe::arguments::ArgumentRule;
use crate::observe::audit::AuditSink;
use crate::plan::{AdminPlan, ProxySettings};
use crate::policy::access::Authorizer;
use crate::policy::approval::Approvals;
use crate::policy::fairness::Fairness;
use crate::policy::revocation::{Principal, Revocations, is_principal};
use crate::protocol::headers::ForwardPolicy;
use crate::proxy::review::Review;
use crate::proxy::session::Sessions;
use crate::proxy::stream::StreamGauge;
use crate::upstream::{Endpoint, IdJagOutbound, IdentityMatch, Upstream};
use idjag_store::Store;

/// The gateway's shared state, one per configuration generation: built by
/// [`crate::GatewayBuilder::build`] and again by each reload. What must outlive a reload
/// (the store with the sessions, approvals and revocations on it, the audit sinks, the
/// concurrency limit, open streams, the shutdown switch) is shared between generations
/// through the `Arc`s.
pub struct GatewayState {
    pub(crate) settings: ProxySettings,
    pub(crate) inbound: Arc<InboundAuth>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) upstreams: HashMap<String, Arc<Upstream>>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) arguments: ArgumentRule,
    pub(crate) forward: ForwardPolicy,
    pub(crate) clock: SharedClock,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) fairness: Fairness,
    pub(crate) streams: Arc<StreamGauge>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) approvals: Arc<Approvals>,
    pub(crate) revocations: Arc<Revocations>,
    /// The store behind approvals, revocations and sessions (for readiness).
    pub(crate) store: Arc<dyn Store>,
    pub(crate) admin: Option<AdminPlan>,
    pub(crate) metrics_enabled: bool,
    pub(crate) metrics_require_admin: bool,
    pub(crate) outbound: Arc<IdJagOutbound>,
    pub(crate) authorization_server: Option<AuthorizationServer>,
    pub(crate) trusted_proxies: idjag_ops::audit::TrustedProxies,
    pub(crate) max_in_flight: usize,
    pub(crate) jwks_observed: Arc<AtomicU64>,
    pub(crate) audit_sinks: Option<Arc<idjag_ops::audit::Audit>>,
    pub(crate) generation: u64,
    /// Notifications of held calls, admin page sign-ins, URL-mode elicitation.
    pub(crate) review: Review,
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

impl GatewayState {
    /// Drops what this instance caches for `who`: validated inbound tokens and upstream
    /// credentials. Run when a revocation reaches the instance (every instance does), and by
    /// the admin API at once.
    pub(crate) fn forget(&self, who: &Principal) {
        let target = who.clone();
        let matches: IdentityMatch = Arc::new(move |identity| is_principal(&target, identity));
        let inbound_match = matches.clone();
        self.inbound.forget(move |identity| inbound_match(identity));
        for upstream in self.upstreams.values() {
            upstream.credential.forget(&matches);
        }
    }

    /// Ends every stdio upstream process and waits for each to exit (shutdown).
    pub(crate) async fn end_processes(&self) {
        for upstream in self.upstreams.values() {
            if let Endpoint::Stdio(processes) = &upstream.endpoint {
                processes.shutdown().await;
            }
        }
    }

    /// Drops every cached validation and credential (when revocations may have been missed).
    pub(crate) fn forget_all(&self) {
        let everyone: IdentityMatch = Arc::new(|_| true);
        self.inbound.forget(|_| true);
        for upstream in self.upstreams.values() {
            upstream.credential.forget(&everyone);
        }
    }
}
