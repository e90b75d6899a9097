//! Revocations (offboarding a user or an agent) shared by every instance, with a local
//! replica per instance so checks stay off the network.
//!
//! - [`RevocationSet`] writes: `revoke` and `lift` change the store, then publish the change.
//! - [`RevocationReplica`] reads: a copy in memory, updated by each published change and by a
//!   full resynchronisation every `resync_interval` (and after every notification gap). A
//!   lookup answers from memory; if the copy has not been confirmed by a full
//!   resynchronisation for longer than `max_staleness`, it fails closed with
//!   [`StoreError::Stale`] until the store answers again, which the replica notices by itself.
//! - [`RevocationReplica::events`] tells every instance of each revocation (from a
//!   notification or found by a resynchronisation), so each can close the principal's open
//!   streams.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use idjag_core::SharedClock;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::store::{Channel, Namespace, Notification, Store, digest, now_millis};

/// Who is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
#[non_exhaustive]
pub enum Principal {
    /// A user (`sub` at the IdP).
    User(String),
    /// A client: the agent (`client_id`, `azp`).
    Client(String),
}

impl Principal {
    fn key(&self) -> [u8; 32] {
        let (kind, id): (&[u8], &str) = match self {
            Self::User(id) => (b"user", id),
            Self::Client(id) => (b"client", id),
        };
        digest(&[kind, id.as_bytes()])
    }
}

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Revocation {
    /// Who.
    pub principal: Principal,
    /// Until when (Unix seconds).
    pub until: i64,
}

impl Revocation {
    /// `principal` revoked until `until` (Unix seconds).
    pub fn new(principal: Principal, until: i64) -> Self {
        Self { principal, until }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
enum Change {
    Revoke { principal: Principal, until: i64 },
    Lift { principal: Principal },
}

/// The default bound on the number of revocations a resynchronisation reads.
pub const DEFAULT_MAX_REVOCATIONS: usize = 100_000;

/// Writes revocations. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct RevocationSet {
    store: Arc<dyn Store>,
    max: usize,
}

impl RevocationSet {
    /// The revocation set in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            max: DEFAULT_MAX_REVOCATIONS,
        }
    }

    /// Revokes `principal` until `until_unix` (seconds), then tells every instance. An error
    /// after the write means the revocation is stored but may reach other instances only at
    /// their next resynchronisation; repeating the call is harmless.
    pub async fn revoke(&self, principal: Principal, until_unix: i64) -> Result<(), StoreError> {
        let record = Revocation {
            principal: principal.clone(),
            until: until_unix,
        };
        let value = serde_json::to_vec(&record).map_err(|_| StoreError::Sealing)?;
        self.store
            .put(
                Namespace::Revocations,
                &principal.key(),
                &value,
                Some(until_unix.saturating_mul(1000)),
            )
            .await?;
        self.notify(&Change::Revoke {
            principal,
            until: until_unix,
        })
        .await
    }

    /// Lifts a revocation; whether there was one.
    pub async fn lift(&self, principal: &Principal) -> Result<bool, StoreError> {
        let found = self
            .store
            .remove(Namespace::Revocations, &principal.key())
            .await?;
        self.notify(&Change::Lift {
            principal: principal.clone(),
        })
        .await?;
        Ok(found)
    }

    /// Every revocation in force, sorted by principal.
    pub async fn list(&self) -> Result<Vec<Revocation>, StoreError> {
        let mut list = read_all(self.store.as_ref(), self.max).await?;
        list.sort_by(|a, b| a.principal.cmp(&b.principal));
        Ok(list)
    }

    async fn notify(&self, change: &Change) -> Result<(), StoreError> {
        let message = serde_json::to_vec(change).map_err(|_| StoreError::Sealing)?;
        self.store.publish(Channel::Revocations, &message).await
    }
}

async fn read_all(store: &dyn Store, max: usize) -> Result<Vec<Revocation>, StoreError> {
    store
        .scan(Namespace::Revocations, max)
        .await?
        .into_iter()
        .map(|(_, e)| {
            serde_json::from_slice::<Revocation>(&e.value).map_err(|_| StoreError::Corrupt {
                namespace: Namespace::Revocations,
            })
        })
        .collect()
}

/// Settings of a [`RevocationReplica`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ReplicaOptions {
    /// How long the replica may go without a successful full resynchronisation before
    /// lookups fail closed (default 30 s).
    pub max_staleness: Duration,
    /// How often it resynchronises (default: a third of `max_staleness`, so two misses in a
    /// row are tolerated).
    pub resync_interval: Duration,
    /// The most revocations a resynchronisation reads (default
    /// [`DEFAULT_MAX_REVOCATIONS`]); more fail the resynchronisation (and, in time, lookups).
    pub max_revocations: usize,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self::with_max_staleness(Duration::from_secs(30))
    }
}

impl ReplicaOptions {
    /// Options with this staleness bound, resynchronising every third of it.
    pub fn with_max_staleness(max_staleness: Duration) -> Self {
        Self {
            max_staleness,
            resync_interval: max_staleness / 3,
            max_revocations: DEFAULT_MAX_REVOCATIONS,
        }
    }

    /// Sets the resynchronisation interval.
    pub fn resync_every(mut self, interval: Duration) -> Self {
        self.resync_interval = interval;
        self
    }
}

/// What a replica tells its listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationEvent {
    /// A principal was revoked (or found revoked by a resynchronisation).
    Revoked(Revocation),
    /// A revocation was lifted.
    Lifted(Principal),
}

#[derive(Default)]
struct State {
    entries: HashMap<Principal, i64>,
    /// Time (ms) at which the last successful resynchronisation started.
    synced_at: Option<i64>,
    /// Changes received while a resynchronisation is reading, applied again on top of it.
    pending: Option<Vec<Change>>,
}

struct Shared {
    store: Arc<dyn Store>,
    clock: SharedClock,
    options: ReplicaOptions,
    state: RwLock<State>,
    events: broadcast::Sender<RevocationEvent>,
    resync: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationReplica")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A local copy of the revocation set. See the [module docs](self).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use idjag_core::TestClock;
/// use idjag_store::{MemoryStore, Principal, ReplicaOptions, RevocationReplica, RevocationSet};
///
/// let clock = TestClock::at_unix(1_700_000_000);
/// let store = Arc::new(MemoryStore::new(clock.shared()));
/// let replica =
///     RevocationReplica::start(store.clone(), clock.shared(), ReplicaOptions::default()).await;
/// let mut events = replica.events();
/// RevocationSet::new(store).revoke(Principal::User("alice".into()), 1_700_003_600).await?;
/// events.recv().await.unwrap(); // every instance hears of it
/// assert_eq!(replica.is_revoked(&Principal::User("alice".into())), Ok(true));
/// assert_eq!(replica.is_revoked(&Principal::User("bob".into())), Ok(false));
/// # Ok::<(), idjag_store::StoreError>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct RevocationReplica {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RevocationReplica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RevocationReplica {
    /// Subscribes to changes, reads the full set once (a failure leaves the replica
    /// unsynchronised: lookups fail closed until a later resynchronisation succeeds) and
    /// keeps it up to date in a background task. Must be called inside a Tokio runtime.
    pub async fn start(store: Arc<dyn Store>, clock: SharedClock, options: ReplicaOptions) -> Self {
        let shared = Arc::new(Shared {
            store,
            clock,
            options,
            state: RwLock::new(State::default()),
            events: broadcast::channel(1024).0,
            resync: tokio::sync::Mutex::new(()),
        });
        // Subscribe before the first read, so no change falls between the two.
        let subscription = shared.store.subscribe(Channel::Revocations);
        let _ = shared.resync().await;
        let task = tokio::spawn(run(Arc::downgrade(&shared), subscription));
        Self { shared, task }
    }

    /// Whether `principal` is revoked now. Answers from memory; fails with
    /// [`StoreError::Stale`] when the replica has not been confirmed for longer than
    /// `max_staleness`.
    pub fn is_revoked(&self, principal: &Principal) -> Result<bool, StoreError> {
        self.is_any_revoked(std::slice::from_ref(principal))
    }

    /// Whether any of `principals` (for example a user and their agent) is revoked now.
    pub fn is_any_revoked(&self, principals: &[Principal]) -> Result<bool, StoreError> {
        let now = now_millis(&self.shared.clock);
        let state = self.shared.read();
        self.shared.check_fresh(&state, now)?;
        if state.entries.is_empty() {
            return Ok(false);
        }
        let now_secs = now.div_euclid(1000);
        Ok(principals
            .iter()
            .any(|p| state.entries.get(p).is_some_and(|until| now_secs < *until)))
    }

    /// Time since the last successful resynchronisation (`None`: never).
    pub fn age(&self) -> Option<Duration> {
        let now = now_millis(&self.shared.clock);
        self.shared
            .read()
            .synced_at
            .map(|at| Duration::from_millis(u64::try_from(now - at).unwrap_or(0)))
    }

    /// Resynchronises now (the background task does it on its own).
    pub async fn resync(&self) -> Result<(), StoreError> {
        self.shared.resync().await
    }

    /// Revocations as they reach this instance.
    pub fn events(&self) -> broadcast::Receiver<RevocationEvent> {
        self.shared.events.subscribe()
    }

    /// Resolves once any of `principals` is revoked (at once if one already is), so a
    /// long-lived stream can be closed on every instance. It does not resolve on staleness:
    /// callers that want to close streams while the replica is stale check
    /// [`is_any_revoked`](Self::is_any_revoked) themselves.
    pub async fn revoked(&self, principals: &[Principal]) {
        let mut events = self.events();
        if self.is_any_revoked(principals) == Ok(true) {
            return;
        }
        loop {
            match events.recv().await {
                Ok(RevocationEvent::Revoked(r)) if principals.contains(&r.principal) => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if self.is_any_revoked(principals) == Ok(true) {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn check_fresh(&self, state: &State, now: i64) -> Result<(), StoreError> {
        let bound = i64::try_from(self.options.max_staleness.as_millis()).unwrap_or(i64::MAX);
        match state.synced_at {
            Some(at) if now.saturating_sub(at) <= bound => Ok(()),
            Some(at) => Err(StoreError::Stale {
                age: Some(Duration::from_millis(
                    u64::try_from(now.saturating_sub(at)).unwrap_or(0),
                )),
            }),
            None => Err(StoreError::Stale { age: None }),
        }
    }

    fn apply(&self, state: &mut State, change: &Change) {
        match change {
            Change::Revoke { principal, until } => {
                state.entries.insert(principal.clone(), *until);
                let _ = self.events.send(RevocationEvent::Revoked(Revocation {
                    principal: principal.clone(),
                    until: *until,
                }));
            }
            Change::Lift { principal } => {
                state.entries.remove(principal);
                let _ = self.events.send(RevocationEvent::Lifted(principal.clone()));
            }
        }
    }

    fn on_message(&self, message: &[u8]) {
        let Ok(change) = serde_json::from_slice::<Change>(message) else {
            tracing::warn!(target: "idjag_store", "ignored a malformed revocation notification");
            return;
        };
        let mut state = self.write();
        self.apply(&mut state, &change);
        if let Some(pending) = state.pending.as_mut() {
            pending.push(change);
        }
    }

    async fn resync(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.resync.lock().await;
        let started = now_millis(&self.clock);
        self.write().pending = Some(Vec::new());
        let result = read_all(self.store.as_ref(), self.options.max_revocations).await;
        let mut state = self.write();
        let pending = state.pending.take().unwrap_or_default();
        let list = match result {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(target: "idjag_store", error = %e, "revocation resync failed");
                return Err(e);
            }
        };
        let mut fresh: HashMap<Principal, i64> =
            list.into_iter().map(|r| (r.principal, r.until)).collect();
        // Changes heard while reading may be newer than what was read.
        for change in &pending {
            match change {
                Change::Revoke { principal, until } => {
                    fresh.insert(principal.clone(), *until);
                }
                Change::Lift { principal } => {
                    fresh.remove(principal);
                }
            }
        }
        for (principal, until) in &fresh {
            if state.entries.get(principal) != Some(until) {
                let _ = self.events.send(RevocationEvent::Revoked(Revocation {
                    principal: principal.clone(),
                    until: *until,
                }));
            }
        }
        for principal in state.entries.keys() {
            if !fresh.contains_key(principal) {
                let _ = self.events.send(RevocationEvent::Lifted(principal.clone()));
            }
        }
        state.entries = fresh;
        state.synced_at = Some(started);
        Ok(())
    }
}

async fn run(shared: std::sync::Weak<Shared>, mut subscription: crate::store::Subscription) {
    let interval = match shared.upgrade() {
        Some(s) => s.options.resync_interval.max(Duration::from_millis(10)),
        None => return,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let resync = tokio::select! {
            n = subscription.next() => match n {
                Some(Notification::Message(m)) => {
                    let Some(s) = shared.upgrade() else { return };
                    s.on_message(&m);
                    false
                }
                Some(Notification::Gap) => true,
                None => return,
            },
            _ = tick.tick() => true,
        };
        if resync {
            let Some(s) = shared.upgrade() else { return };
            let _ = s.resync().await;
        }
    }
}
