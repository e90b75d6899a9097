//! Replay detection for one-time JWTs (ID-JAG `jti`, client-assertion `jti`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::keys::BoxFuture;

/// The identity of a one-time token: a SHA-256 over its issuer and `jti`, so the store never
/// holds raw identifiers and keys have a fixed size.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    /// The key of (`issuer`, `jti`). The issuer's length is part of the hash input, so no two
    /// different pairs collide by concatenation.
    pub fn new(issuer: &str, jti: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update((issuer.len() as u64).to_be_bytes());
        hasher.update(issuer.as_bytes());
        hasher.update(jti.as_bytes());
        Self(hasher.finalize().into())
    }

    /// The key of (`issuer`, `jti`) in `namespace`: never equal to a key of another namespace
    /// or to a [`Self::new`] key, so one store can hold several kinds of one-time token (DPoP
    /// proofs beside client assertions, for example) without one kind spending another's.
    ///
    /// ```
    /// use idjag_core::server::ReplayKey;
    /// assert_ne!(ReplayKey::namespaced("dpop", "k", "j"), ReplayKey::new("k", "j"));
    /// assert_ne!(ReplayKey::namespaced("dpop", "k", "j"), ReplayKey::namespaced("assertion", "k", "j"));
    /// ```
    pub fn namespaced(namespace: &str, issuer: &str, jti: &str) -> Self {
        let mut hasher = Sha256::new();
        // No issuer is 2^64 - 1 bytes long, so this prefix never starts a `new` key's input.
        hasher.update([0xff; 8]);
        hasher.update((namespace.len() as u64).to_be_bytes());
        hasher.update(namespace.as_bytes());
        hasher.update((issuer.len() as u64).to_be_bytes());
        hasher.update(issuer.as_bytes());
        hasher.update(jti.as_bytes());
        Self(hasher.finalize().into())
    }

    /// The hash, for shared stores (for example a Redis key).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ReplayKey({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// The outcome of recording a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replay {
    /// First presentation: now recorded.
    First,
    /// Seen before; `same_holder` says whether the earlier presenter was the same holder.
    Seen {
        /// Whether the recorded holder equals this one.
        same_holder: bool,
    },
}

/// The store could not answer. Callers must fail closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayStoreError {
    /// The store is full of unexpired entries, or this holder's quota of them is used up.
    #[error("replay cache is full")]
    Full,
    /// A shared store failed.
    #[error("replay store unavailable")]
    Unavailable,
}

/// An atomic "first seen" check for one-time tokens.
///
/// `record` must be atomic across every instance sharing the store: with Redis this is one
/// `SET key holder NX PXAT <until>` (then a `GET` to compare holders when it was not set).
/// Entries live until `until_unix` (the token's `exp` plus the leeway).
pub trait ReplayCache: fmt::Debug + Send + Sync {
    /// Records `key` for `holder` until `until_unix` seconds, unless already present.
    fn record<'a>(
        &'a self,
        key: ReplayKey,
        holder: &'a str,
        until_unix: i64,
    ) -> BoxFuture<'a, Result<Replay, ReplayStoreError>>;
}

/// The per-holder quota of the in-memory caches the idjag servers build for themselves: one
/// client (the holder) may hold at most this many unexpired entries of one kind.
pub const DEFAULT_REPLAY_PER_HOLDER: usize = 25_000;

/// A bounded in-memory [`ReplayCache`] for one process.
///
/// When full, expired entries are dropped first; if it is still full, `record` fails (the
/// caller refuses the token) rather than forgetting an unexpired entry, which would reopen a
/// replay window. With [`Self::with_per_holder_limit`], one holder (a client) may hold at most
/// that many unexpired entries, so one client cannot fill the cache for all
/// ([`ReplayStoreError::Full`] for that client only, as idjag-store's quotas answer).
pub struct InMemoryReplayCache {
    capacity: usize,
    per_holder: usize,
    clock: SharedClock,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<ReplayKey, (i64, [u8; 32])>,
    expiries: BinaryHeap<Reverse<(i64, ReplayKey)>>,
    /// Unexpired entries per holder hash (only with a per-holder limit).
    holders: HashMap<[u8; 32], usize>,
}

impl PartialOrd for ReplayKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ReplayKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl fmt::Debug for InMemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryReplayCache")
            .field("capacity", &self.capacity)
            .field("per_holder", &self.per_holder)
            .field("len", &self.len())
            .finish()
    }
}

impl InMemoryReplayCache {
    /// A cache holding at most `capacity` unexpired entries.
    pub fn new(capacity: usize, clock: SharedClock) -> Self {
        Self {
            capacity,
            per_holder: usize::MAX,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// At most `limit` unexpired entries per holder (default: no limit beyond the capacity).
    pub fn with_per_holder_limit(mut self, limit: usize) -> Self {
        self.per_holder = limit;
        self
    }

    /// Unexpired entries recorded for `holder` (counted only with a per-holder limit; expired
    /// ones count until they are pruned).
    pub fn holder_len(&self, holder: &str) -> usize {
        let hash: [u8; 32] = Sha256::digest(holder.as_bytes()).into();
        self.lock().holders.get(&hash).copied().unwrap_or(0)
    }

    /// Number of entries, expired ones included until they are pruned.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn record_now(
        &self,
        key: ReplayKey,
        holder: &str,
        until_unix: i64,
    ) -> Result<Replay, ReplayStoreError> {
        let now = self.clock.now_unix();
        let holder_hash: [u8; 32] = Sha256::digest(holder.as_bytes()).into();
        let mut state = self.lock();
        while let Some(Reverse((expiry, old))) = state.expiries.peek().copied() {
            if expiry >= now {
                break;
            }
            state.expiries.pop();
            if state.entries.get(&old).is_some_and(|(e, _)| *e == expiry)
                && let Some((_, holder)) = state.entries.remove(&old)
                && let Some(count) = state.holders.get_mut(&holder)
            {
                *count -= 1;
                if *count == 0 {
                    state.holders.remove(&holder);
                }
            }
        }
        if let Some((expiry, recorded)) = state.entries.get(&key)
            && *expiry >= now
        {
            return Ok(Replay::Seen {
                same_holder: *recorded == holder_hash,
            });
        }
        if state.entries.len() >= self.capacity {
            return Err(ReplayStoreError::Full);
        }
        if self.per_holder != usize::MAX {
            let count = state.holders.entry(holder_hash).or_insert(0);
            if *count >= self.per_holder {
                return Err(ReplayStoreError::Full);
            }
            *count += 1;
        }
        state.entries.insert(key, (until_unix, holder_hash));
        state.expiries.push(Reverse((until_unix, key)));
        Ok(Replay::First)
    }
}

impl ReplayCache for InMemoryReplayCache {
    fn record<'a>(
        &'a self,
        key: ReplayKey,
        holder: &'a str,
        until_unix: i64,
    ) -> BoxFuture<'a, Result<Replay, ReplayStoreError>> {
        Box::pin(std::future::ready(self.record_now(key, holder, until_unix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;

    fn block<T>(f: BoxFuture<'_, T>) -> T {
        // The in-memory cache never awaits, so one poll completes it.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = f;
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => unreachable!("in-memory cache is synchronous"),
        }
    }

    #[test]
    fn second_presentation_is_seen_until_expiry() {
        let clock = TestClock::at_unix(1000);
        let cache = InMemoryReplayCache::new(10, clock.shared());
        let key = ReplayKey::new("https://idp", "j1");
        assert_eq!(
            block(cache.record(key, "client-a", 1100)),
            Ok(Replay::First)
        );
        assert_eq!(
            block(cache.record(key, "client-a", 1100)),
            Ok(Replay::Seen { same_holder: true })
        );
        assert_eq!(
            block(cache.record(key, "client-b", 1100)),
            Ok(Replay::Seen { same_holder: false })
        );
        clock.set_unix(1101);
        assert_eq!(
            block(cache.record(key, "client-a", 1200)),
            Ok(Replay::First)
        );
    }

    #[test]
    fn a_full_cache_fails_closed_until_entries_expire() {
        let clock = TestClock::at_unix(0);
        let cache = InMemoryReplayCache::new(2, clock.shared());
        for jti in ["a", "b"] {
            assert_eq!(
                block(cache.record(ReplayKey::new("i", jti), "h", 10)),
                Ok(Replay::First)
            );
        }
        assert_eq!(
            block(cache.record(ReplayKey::new("i", "c"), "h", 10)),
            Err(ReplayStoreError::Full)
        );
        clock.set_unix(11);
        assert_eq!(
            block(cache.record(ReplayKey::new("i", "c"), "h", 20)),
            Ok(Replay::First)
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn one_holder_cannot_fill_the_cache_for_the_others() {
        let clock = TestClock::at_unix(0);
        let cache = InMemoryReplayCache::new(10, clock.shared()).with_per_holder_limit(2);
        for jti in ["a", "b"] {
            assert_eq!(
                block(cache.record(ReplayKey::new("i", jti), "greedy", 10)),
                Ok(Replay::First)
            );
        }
        assert_eq!(
            block(cache.record(ReplayKey::new("i", "c"), "greedy", 10)),
            Err(ReplayStoreError::Full)
        );
        // A refused record is not counted, and a replay is still seen as one.
        assert_eq!(cache.holder_len("greedy"), 2);
        assert_eq!(
            block(cache.record(ReplayKey::new("i", "a"), "greedy", 10)),
            Ok(Replay::Seen { same_holder: true })
        );
        assert_eq!(
            block(cache.record(ReplayKey::new("i", "c"), "modest", 10)),
            Ok(Replay::First)
        );
        // Expired entries give the quota back.
        clock.set_unix(11);
        assert_eq!(
            block(cache.record(ReplayKey::new("i", "d"), "greedy", 20)),
            Ok(Replay::First)
        );
        assert_eq!(cache.holder_len("greedy"), 1);
        assert_eq!(cache.holder_len("modest"), 0);
    }

    #[test]
    fn namespaced_keys_never_meet_plain_ones() {
        assert_ne!(
            ReplayKey::namespaced("dpop", "k", "j"),
            ReplayKey::new("k", "j")
        );
        assert_ne!(
            ReplayKey::namespaced("a", "bc", "j"),
            ReplayKey::namespaced("ab", "c", "j")
        );
        assert_eq!(
            ReplayKey::namespaced("dpop", "k", "j"),
            ReplayKey::namespaced("dpop", "k", "j")
        );
    }

    #[test]
    fn keys_do_not_collide_by_concatenation() {
        assert_ne!(ReplayKey::new("ab", "c"), ReplayKey::new("a", "bc"));
    }
}
