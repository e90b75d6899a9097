//! The gateway's shared state, from the plan's `[store]`: the store opened (or the one the
//! builder was given), the revocation replica started, and the facades over them: the
//! revocations, the approvals and the session bindings every instance sharing the store
//! sees alike. And the listener that, on every instance, drops the caches of a principal as
//! its revocation arrives.

use std::sync::{Arc, Weak};
use std::time::Duration;

use idjag_core::SharedClock;
use idjag_store::{
    Approvals, ReplicaOptions, RevocationEvent, RevocationReplica, RevocationSet, SessionBindings,
    Store,
};
use tokio::sync::broadcast;

use crate::gateway::BuildError;
use crate::plan::{ApprovalPlan, StorePlan};
use crate::policy::revocation::Revocations;
use crate::proxy::GatewayState;
use crate::proxy::session::Sessions;

/// Most MCP session bindings an instance remembers having confirmed.
const SESSION_CAPACITY: u64 = 100_000;
/// How long an unused session binding is kept in the store.
const SESSION_IDLE: Duration = Duration::from_secs(3600);

/// What the store holds for the gateway.
pub(crate) struct SharedState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) revocations: Revocations,
    pub(crate) approvals: Approvals,
    pub(crate) sessions: Sessions,
}

/// Opens the store of `plan` (or takes `given`) and starts the revocation replica. A store
/// that does not answer yet is not an error: requests are refused (fail closed) until it
/// does, and `/readyz` says so.
pub(crate) async fn open(
    plan: &StorePlan,
    given: Option<Arc<dyn Store>>,
    approvals: &ApprovalPlan,
    clock: &SharedClock,
) -> Result<SharedState, BuildError> {
    let store = match given {
        Some(store) => store,
        None => plan.config.open(clock.clone()).map_err(BuildError::Store)?,
    };
    let options =
        ReplicaOptions::with_max_staleness(plan.max_staleness).resync_every(plan.resync_interval);
    let replica = RevocationReplica::start(store.clone(), clock.clone(), options).await;
    if replica.age().is_none() {
        tracing::warn!(
            backend = store.backend(),
            "the store did not answer: requests are refused until it does"
        );
    }
    let revocations = Revocations::new(
        RevocationSet::new(store.clone()),
        Arc::new(replica),
        plan.max_staleness,
    );
    let approvals = Approvals::new(
        store.clone(),
        approvals.ttl,
        u32::try_from(approvals.max_pending).unwrap_or(u32::MAX),
        clock.clone(),
    );
    let sessions = Sessions::new(
        SessionBindings::new(store.clone(), SESSION_IDLE, clock.clone()),
        SESSION_CAPACITY,
    );
    Ok(SharedState {
        store,
        revocations,
        approvals,
        sessions,
    })
}

/// On every instance: as a revocation arrives (notification or resynchronisation), drop the
/// principal's cached validations and upstream credentials; after missed events, drop them
/// all. Ends with the gateway.
pub(crate) fn listen(state: Weak<GatewayState>, mut events: broadcast::Receiver<RevocationEvent>) {
    tokio::spawn(async move {
        loop {
            let event = events.recv().await;
            let Some(state) = state.upgrade() else { return };
            match event {
                Ok(RevocationEvent::Revoked(revocation)) => state.forget(&revocation.principal),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => state.forget_all(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}
