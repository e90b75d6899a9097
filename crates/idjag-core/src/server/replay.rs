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
    /// The in-memory store is full of unexpired entries.
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

/// A bounded in-memory [`ReplayCache`] for one process.
///
/// When full, expired entries are dropped first; if it is still full, `record` fails (the
/// caller refuses the token) rather than forgetting an unexpired entry, which would reopen a
/// replay window.
pub struct InMemoryReplayCache {
    capacity: usize,
    clock: SharedClock,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<ReplayKey, (i64, [u8; 32])>,
    expiries: BinaryHeap<Reverse<(i64, ReplayKey)>>,
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
            .field("len", &self.len())
            .finish()
    }
}

impl InMemoryReplayCache {
    /// A cache holding at most `capacity` unexpired entries.
    pub fn new(capacity: usize, clock: SharedClock) -> Self {
        Self {
            capacity,
            clock,
            state: Mutex::new(State::default()),
        }
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
            if state.entries.get(&old).is_some_and(|(e, _)| *e == expiry) {
                state.entries.remove(&old);
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
    fn keys_do_not_collide_by_concatenation() {
        assert_ne!(ReplayKey::new("ab", "c"), ReplayKey::new("a", "bc"));
    }
}
