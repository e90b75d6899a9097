//! Everything the proxy, the admin API and the gateway's own routes share across requests.

use std::collections::HashMap;
use std::sync::Arc;

use idjag_core::SharedClock;
use tokio::sync::{Semaphore, watch};

use crate::authorization_server::AuthorizationServer;
use crate::inbound::InboundAuth;
use crate::observe::arguments::ArgumentRule;
use crate::observe::audit::AuditSink;
use crate::observe::metrics::Metrics;
use crate::plan::{AdminPlan, ProxySettings};
use crate::policy::access::Authorizer;
use crate::policy::approval::Approvals;
use crate::policy::revocation::Revocations;
use crate::protocol::headers::ForwardPolicy;
use crate::proxy::session::Sessions;
use crate::proxy::stream::StreamGauge;
use crate::upstream::{IdJagOutbound, Upstream};

/// The gateway's shared state. Built once by [`crate::GatewayBuilder::build`].
#[derive(Debug)]
pub struct GatewayState {
    pub(crate) settings: ProxySettings,
    pub(crate) inbound: Arc<InboundAuth>,
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
    pub(crate) approvals: Arc<Approvals>,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) admin: Option<AdminPlan>,
    pub(crate) metrics: Option<Arc<Metrics>>,
    pub(crate) metrics_require_admin: bool,
    pub(crate) outbound: Arc<IdJagOutbound>,
    pub(crate) authorization_server: Option<AuthorizationServer>,
}
