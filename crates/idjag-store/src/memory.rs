//! The in-memory backend: one process, nothing survives a restart. For tests and single-node
//! development.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use idjag_core::SharedClock;

use crate::error::StoreError;
use crate::store::{
    Cap, Channel, Entry, LocalBus, Namespace, Notification, Quota, Store, Subscription, Swap,
    UnixMillis, check_caps, check_key, check_quota, check_write, digest, is_live, now_millis,
};

/// The default bound on live entries.
pub const DEFAULT_MEMORY_CAPACITY: usize = 1_000_000;

type Key = (Namespace, Vec<u8>);

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    expiries: BinaryHeap<Reverse<(UnixMillis, Key)>>,
    quotas: HashMap<(Namespace, [u8; 32]), BinaryHeap<Reverse<UnixMillis>>>,
    /// The cap groups each capped entry counts in.
    capped: HashMap<Key, Vec<Group>>,
    /// The entries counted in each cap group.
    groups: HashMap<Group, HashSet<Key>>,
}

/// A cap group: its namespace and the digest of its name.
type Group = (Namespace, [u8; 32]);

/// The in-memory [`Store`].
///
/// # Guarantees
///
/// - **Atomicity**: every primitive runs under one lock.
/// - **Durability**: none; a restart loses everything.
/// - **Bound**: at most `capacity` live entries; a write beyond fails with
///   [`StoreError::Full`] rather than dropping an unexpired entry (which could reopen a
///   replay window). Expired entries are purged on each write.
/// - **Failure**: it cannot be unavailable.
/// - **Notifications**: in process only.
pub struct MemoryStore {
    state: Mutex<State>,
    capacity: usize,
    clock: SharedClock,
    bus: LocalBus,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .field("len", &self.lock().entries.len())
            .finish()
    }
}

impl MemoryStore {
    /// A store of at most [`DEFAULT_MEMORY_CAPACITY`] live entries.
    pub fn new(clock: SharedClock) -> Self {
        Self::with_capacity(DEFAULT_MEMORY_CAPACITY, clock)
    }

    /// A store of at most `capacity` live entries.
    pub fn with_capacity(capacity: usize, clock: SharedClock) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity,
            clock,
            bus: LocalBus::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> UnixMillis {
        now_millis(&self.clock)
    }

    /// `insert_if_absent` and `insert_capped`: every check, then every write, under one lock.
    fn insert(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
        quota: Option<Quota<'_>>,
        caps: &[Cap<'_>],
    ) -> Result<bool, StoreError> {
        let now = self.now();
        check_write(key, value, expires_at, now)?;
        check_quota(&quota, expires_at)?;
        let mut state = self.purged(now);
        let k = (ns, key.to_vec());
        if state.live(&k, now).is_some() {
            return Ok(false);
        }
        if let Some(q) = quota {
            let group = (ns, digest(&[q.group]));
            let members = state.quotas.entry(group).or_default();
            while members.peek().is_some_and(|Reverse(at)| *at <= now) {
                members.pop();
            }
            if members.len() >= q.limit as usize {
                return Err(StoreError::QuotaExceeded { namespace: ns });
            }
        }
        let groups: Vec<Group> = caps.iter().map(|c| (ns, digest(&[c.group]))).collect();
        for (index, (cap, group)) in caps.iter().zip(&groups).enumerate() {
            if state.group_len(group, now) >= cap.limit as usize {
                return Err(StoreError::CapReached {
                    namespace: ns,
                    index,
                });
            }
        }
        // A dead entry under the key (not yet purged) leaves its groups first.
        state.drop_entry(&k);
        state.set(k.clone(), value, expires_at, self.capacity)?;
        if let (Some(q), Some(at)) = (quota, expires_at) {
            state
                .quotas
                .entry((ns, digest(&[q.group])))
                .or_default()
                .push(Reverse(at));
        }
        if !groups.is_empty() {
            for group in &groups {
                state.groups.entry(*group).or_default().insert(k.clone());
            }
            state.capped.insert(k, groups);
        }
        Ok(true)
    }

    /// Locks the state after dropping every expired entry.
    fn purged(&self, now: UnixMillis) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        while let Some(Reverse((at, _))) = state.expiries.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = state.expiries.pop() else {
                break;
            };
            if state
                .entries
                .get(&key)
                .is_some_and(|e| e.expires_at == Some(at))
            {
                state.drop_entry(&key);
            }
        }
        state
    }
}

impl State {
    fn live(&self, key: &Key, now: UnixMillis) -> Option<&Entry> {
        self.entries.get(key).filter(|e| is_live(e.expires_at, now))
    }

    fn set(
        &mut self,
        key: Key,
        value: &[u8],
        expires_at: Option<UnixMillis>,
        capacity: usize,
    ) -> Result<(), StoreError> {
        if !self.entries.contains_key(&key) && self.entries.len() >= capacity {
            return Err(StoreError::Full);
        }
        if let Some(at) = expires_at {
            self.expiries.push(Reverse((at, key.clone())));
        }
        self.entries
            .insert(key, Entry::new(value.to_vec(), expires_at));
        Ok(())
    }

    fn remove_live(&mut self, key: &Key, now: UnixMillis) -> Option<Entry> {
        let entry = self.drop_entry(key)?;
        is_live(entry.expires_at, now).then_some(entry)
    }

    /// Removes an entry and takes it out of its cap groups.
    fn drop_entry(&mut self, key: &Key) -> Option<Entry> {
        self.release(key);
        self.entries.remove(key)
    }

    /// Takes an entry out of its cap groups.
    fn release(&mut self, key: &Key) {
        for group in self.capped.remove(key).unwrap_or_default() {
            if let Some(members) = self.groups.get_mut(&group) {
                members.remove(key);
                if members.is_empty() {
                    self.groups.remove(&group);
                }
            }
        }
    }

    /// The live entries of a cap group (after a purge, every member is live).
    fn group_len(&self, group: &Group, now: UnixMillis) -> usize {
        self.groups.get(group).map_or(0, |members| {
            members
                .iter()
                .filter(|k| self.live(k, now).is_some())
                .count()
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn insert_if_absent(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
        quota: Option<Quota<'_>>,
    ) -> Result<bool, StoreError> {
        self.insert(ns, key, value, expires_at, quota, &[])
    }

    async fn insert_capped(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: UnixMillis,
        quota: Option<Quota<'_>>,
        caps: &[Cap<'_>],
    ) -> Result<bool, StoreError> {
        check_caps(ns, caps)?;
        self.insert(ns, key, value, Some(expires_at), quota, caps)
    }

    async fn put(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        check_write(key, value, expires_at, now)?;
        self.purged(now)
            .set((ns, key.to_vec()), value, expires_at, self.capacity)
    }

    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        let now = self.now();
        Ok(self.lock().live(&(ns, key.to_vec()), now).cloned())
    }

    async fn take(&self, ns: Namespace, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        let now = self.now();
        Ok(self.purged(now).remove_live(&(ns, key.to_vec()), now))
    }

    async fn compare_and_swap(
        &self,
        ns: Namespace,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Swap<'_>,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        match new {
            Swap::Set(value, expires_at) | Swap::Release(value, expires_at) => {
                check_write(key, value, expires_at, now)?
            }
            Swap::Delete => check_key(key)?,
        }
        let mut state = self.purged(now);
        let k = (ns, key.to_vec());
        if state.live(&k, now).map(|e| e.value.as_slice()) != expected {
            return Ok(false);
        }
        match new {
            Swap::Set(value, expires_at) => state.set(k, value, expires_at, self.capacity)?,
            Swap::Release(value, expires_at) => {
                state.set(k.clone(), value, expires_at, self.capacity)?;
                state.release(&k);
            }
            Swap::Delete => {
                state.drop_entry(&k);
            }
        }
        Ok(true)
    }

    async fn remove(&self, ns: Namespace, key: &[u8]) -> Result<bool, StoreError> {
        check_key(key)?;
        let now = self.now();
        Ok(self
            .purged(now)
            .remove_live(&(ns, key.to_vec()), now)
            .is_some())
    }

    async fn scan(&self, ns: Namespace, limit: usize) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        if !ns.is_indexed() {
            return Err(StoreError::NotScannable { namespace: ns });
        }
        let now = self.now();
        let state = self.purged(now);
        let mut out = Vec::new();
        for ((n, key), entry) in &state.entries {
            if *n == ns && is_live(entry.expires_at, now) {
                if out.len() == limit {
                    return Err(StoreError::TooMany {
                        namespace: ns,
                        limit,
                    });
                }
                out.push((key.clone(), entry.clone()));
            }
        }
        Ok(out)
    }

    async fn publish(&self, channel: Channel, message: &[u8]) -> Result<(), StoreError> {
        self.bus
            .send(channel, Notification::Message(message.to_vec()));
        Ok(())
    }

    fn subscribe(&self, channel: Channel) -> Subscription {
        self.bus.subscribe(channel)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
