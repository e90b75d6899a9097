//! Offboarding: revoking a user or a client (agent) at once, on top of short token
//! lifetimes, on every gateway instance sharing the store.
//!
//! A revocation, made through the admin API ([`crate::admin`]) of any instance, is written
//! to the store's [`RevocationSet`] and published; every instance keeps a local
//! [`RevocationReplica`] (updated by each notification and resynchronised in full every
//! `[store] resync_interval_secs`), and checks each request against it in memory, right
//! after inbound authentication: no network round trip per request. A revoked caller gets
//! 403 with a JSON-RPC error, reason `revoked`. On every instance the revocation also closes
//! the principal's open streams with a final `event: close` (`{"reason":"revoked"}`) and
//! drops its cached inbound validations and upstream tokens. It lasts until it is lifted or
//! its end (default `[admin] revocation_ttl`) passes, across restarts (the embedded store
//! and Redis are durable).
//!
//! **Failing closed.** When the replica has not been confirmed by the store for longer than
//! `[store] max_staleness_secs` (the store is down or unreachable), the gateway cannot know
//! whether a caller was revoked meanwhile: every request gets 503 with `Retry-After: 1`, a
//! JSON-RPC error (code -32036) and reason `revocation_state_stale`, and open streams end
//! with `event: close` (`{"reason":"revocation_state_stale"}`), until a resynchronisation
//! succeeds, which the replica retries by itself.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::broadcast;

pub use idjag_store::{
    Principal, Revocation, RevocationEvent, RevocationReplica, RevocationSet, StoreError,
};

use crate::inbound::Identity;
use crate::protocol::sse::CloseReason;

/// The principals `identity` is: its user and, when known, its agent.
pub fn principals_of(identity: &Identity) -> Vec<Principal> {
    let mut principals = Vec::with_capacity(2);
    principals.push(Principal::User(identity.user.as_str().to_owned()));
    if let Some(agent) = &identity.agent {
        principals.push(Principal::Client(agent.clone()));
    }
    principals
}

/// Whether `identity` is `principal` (its user, or its agent).
pub fn is_principal(principal: &Principal, identity: &Identity) -> bool {
    match principal {
        Principal::User(user) => identity.user.as_str() == user,
        Principal::Client(client) => identity.agent.as_deref() == Some(client.as_str()),
        _ => false,
    }
}

/// One revocation as the admin API lists it: `{"kind": "user", "id": "alice", "until": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RevocationView {
    /// Who.
    #[serde(flatten)]
    pub who: Principal,
    /// Until when (Unix seconds).
    pub until: i64,
}

/// The revocations in force. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Revocations {
    set: RevocationSet,
    replica: Arc<RevocationReplica>,
    max_staleness: Duration,
}

impl Revocations {
    /// Writes go to `set`, checks read `replica`, which fails closed past `max_staleness`.
    pub fn new(
        set: RevocationSet,
        replica: Arc<RevocationReplica>,
        max_staleness: Duration,
    ) -> Self {
        Self {
            set,
            replica,
            max_staleness,
        }
    }

    /// Whether `identity` (its user or its agent) is revoked now: from memory;
    /// [`StoreError::Stale`] when the replica is older than its bound.
    pub fn check(&self, identity: &Identity) -> Result<bool, StoreError> {
        self.replica.is_any_revoked(&principals_of(identity))
    }

    /// Revokes `who` until `until` (Unix seconds) on every instance. This instance's replica
    /// is resynchronised before returning, so its next request is refused.
    pub async fn revoke(&self, who: Principal, until: i64) -> Result<(), StoreError> {
        self.set.revoke(who, until).await?;
        self.refresh().await;
        Ok(())
    }

    /// Lifts a revocation on every instance; whether there was one.
    pub async fn lift(&self, who: &Principal) -> Result<bool, StoreError> {
        let found = self.set.lift(who).await?;
        self.refresh().await;
        Ok(found)
    }

    async fn refresh(&self) {
        if let Err(error) = self.replica.resync().await {
            // The change is stored and published; this replica catches up by itself.
            tracing::warn!(%error, "revocation replica not resynchronised after a change");
        }
    }

    /// The revocations in force, from the store (not the replica), sorted by principal.
    pub async fn list(&self) -> Result<Vec<RevocationView>, StoreError> {
        Ok(self
            .set
            .list()
            .await?
            .into_iter()
            .map(|r| RevocationView {
                who: r.principal,
                until: r.until,
            })
            .collect())
    }

    /// Revocations as they reach this instance (by notification or resynchronisation).
    pub fn events(&self) -> broadcast::Receiver<RevocationEvent> {
        self.replica.events()
    }

    /// Time since the replica was last confirmed by the store (`None`: never).
    pub fn age(&self) -> Option<Duration> {
        self.replica.age()
    }

    /// Whether the replica is within its staleness bound (checks can be answered).
    pub fn is_fresh(&self) -> bool {
        self.replica.is_any_revoked(&[]).is_ok()
    }

    /// The staleness bound.
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// A signal for an open stream of `identity`: resolves with [`CloseReason::Revoked`] when
    /// the user or the agent is revoked (on any instance), or with
    /// [`CloseReason::RevocationStateStale`] once the replica is past its bound.
    pub fn watch(&self, identity: &Identity) -> RevocationWatch {
        let replica = self.replica.clone();
        let principals = principals_of(identity);
        let every = (self.max_staleness / 4).max(Duration::from_millis(100));
        let ended = async move {
            let revoked = replica.revoked(&principals);
            let stale = async {
                loop {
                    tokio::time::sleep(every).await;
                    match replica.is_any_revoked(&principals) {
                        Ok(false) => {}
                        Ok(true) => return CloseReason::Revoked,
                        Err(_) => return CloseReason::RevocationStateStale,
                    }
                }
            };
            tokio::select! {
                () = revoked => CloseReason::Revoked,
                reason = stale => reason,
            }
        };
        RevocationWatch {
            ended: Some(ended.boxed()),
        }
    }
}

/// Resolves when an open stream must end. See [`Revocations::watch`].
pub struct RevocationWatch {
    ended: Option<BoxFuture<'static, CloseReason>>,
}

impl std::fmt::Debug for RevocationWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationWatch")
            .field("ended", &self.ended.is_none())
            .finish()
    }
}

impl RevocationWatch {
    /// Waits until the stream must end, and why (forever once it has answered).
    pub async fn ended(&mut self) -> CloseReason {
        match &mut self.ended {
            Some(ended) => {
                let reason = ended.await;
                self.ended = None;
                reason
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::TestClock;
    use idjag_store::{MemoryStore, ReplicaOptions, Store};

    use super::*;

    #[tokio::test]
    async fn a_revocation_closes_the_watch_and_staleness_does_too() {
        let clock = TestClock::at_unix(1_000);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(clock.shared()));
        let bound = Duration::from_secs(2);
        let replica = Arc::new(
            RevocationReplica::start(
                store.clone(),
                clock.shared(),
                // Resynchronised by changes only: the test clock decides staleness.
                ReplicaOptions::with_max_staleness(bound).resync_every(Duration::from_secs(3600)),
            )
            .await,
        );
        let revocations = Revocations::new(RevocationSet::new(store), replica, bound);
        let alice = crate::inbound::TeamMap::default()
            .from_id_token(&idjag_core::IdTokenClaims::new(
                idjag_core::Issuer::new("https://idp.example").unwrap(),
                idjag_core::Subject::new("alice").unwrap(),
                idjag_core::Audience::new("chat").unwrap(),
                idjag_core::NumericDate::from_unix(1).unwrap(),
                idjag_core::NumericDate::from_unix(2).unwrap(),
            ))
            .unwrap();
        assert_eq!(revocations.check(&alice), Ok(false));
        let mut watch = revocations.watch(&alice);
        revocations
            .revoke(Principal::Client("chat".into()), 2_000)
            .await
            .unwrap();
        assert_eq!(revocations.check(&alice), Ok(true));
        assert_eq!(watch.ended().await, CloseReason::Revoked);
        assert!(
            revocations
                .lift(&Principal::Client("chat".into()))
                .await
                .unwrap()
        );
        assert_eq!(revocations.check(&alice), Ok(false));
        // Let the replica take in the two notifications (revoked, lifted) still queued.
        tokio::time::sleep(Duration::from_millis(50)).await;

        // The clock runs past the bound without a resynchronisation: fail closed.
        let mut watch = revocations.watch(&alice);
        clock.advance(Duration::from_secs(3));
        assert!(matches!(
            revocations.check(&alice),
            Err(StoreError::Stale { .. })
        ));
        assert!(!revocations.is_fresh());
        assert_eq!(watch.ended().await, CloseReason::RevocationStateStale);
    }
}
