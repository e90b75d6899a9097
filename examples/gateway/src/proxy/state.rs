//! Everything the proxy, the admin API and the gateway's own routes share across requests.

use std::collections::HashMap;
use std::sync::Arc;

use idjag_core::SharedClock;
use tokio::sync::{Semaphore, watch};

use crate::inbound::InboundAuth;
use crate::observe::arguments::ArgumentRule;
use crate::observe::audit::AuditSink;
use crate::observe::metrics::Metrics;
use crate::plan::{AdminPlan, ProxySettings};
use crate::policy::access::Authorizer;
use crate::policy::approval::Approvals;
use crate::policy::revocation::{Principal, Revocations, is_principal};
use crate::protocol::headers::ForwardPolicy;
use crate::proxy::session::Sessions;
use crate::proxy::stream::StreamGauge;
use crate::upstream::{Endpoint, IdJagOutbound, IdentityMatch, Upstream};
use idjag_store::Store;

/// The gateway's shared state. Built once by [`crate::GatewayBuilder::build`].
#[derive(Debug)]
pub struct GatewayState {
    pub(crate) settings: ProxySettings,
    pub(crate) inbound: InboundAuth,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) upstreams: HashMap<String, Arc<Upstream>>,
    pub(crate) sessions: Sessions,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) arguments: ArgumentRule,
    pub(crate) forward: ForwardPolicy,
    pub(crate) clock: SharedClock,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) streams: Arc<StreamGauge>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) approvals: Approvals,
    pub(crate) revocations: Revocations,
    /// The store behind approvals, revocations and sessions (for readiness).
    pub(crate) store: Arc<dyn Store>,
    pub(crate) admin: Option<AdminPlan>,
    pub(crate) metrics: Option<Arc<Metrics>>,
    pub(crate) metrics_require_admin: bool,
    pub(crate) outbound: Arc<IdJagOutbound>,
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
