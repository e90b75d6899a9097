//! The IdP's signing keys and their rotation (threat X19; EMA §7.4.1).
//!
//! A key goes through three states, read from the injected clock:
//!
//! | state     | published in the JWKS | signs ID-JAGs |
//! |-----------|-----------------------|---------------|
//! | `Next`    | yes                   | no            |
//! | `Current` | yes                   | yes           |
//! | `Retired` | yes, for a while      | no            |
//!
//! [`IdJagIssuer::stage_signing_key`](crate::IdJagIssuer::stage_signing_key) publishes a new
//! key at once and lets it sign only [`RotationTiming::lead_time`] later, so resource
//! authorization servers can fetch it before they see a token it signed. From that moment the
//! previous key is retired: it stays published for [`RotationTiming::retention`] (at least
//! the longest ID-JAG lifetime plus leeway, checked when the issuer is built), so every token
//! it signed can still be verified, and then it leaves the JWKS.
//!
//! ## Persisting the schedule
//!
//! The schedule lives in memory; a server that must keep it across restarts (or share it
//! between instances) saves [`SigningKeys::schedule`] after every change and restores it with
//! [`SigningKeys::from_schedule`]. Stage a rotation on a copy, save it, then hand it to the
//! issuer with [`IdJagIssuer::replace_signing_keys`](crate::IdJagIssuer::replace_signing_keys),
//! so a crash between the two never leaves a key that signed but was not saved.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use idjag_core::{
    Algorithm, BoxFuture, KeyError, KeyLookupError, KeyMiss, KeySource, Kid, SharedClock,
    SigningKey, VerifyingKey,
};
use serde_json::{Map, Value};

/// How long a staged key waits before it signs, and how long a retired key stays published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationTiming {
    lead_time: Duration,
    retention: Duration,
}

impl RotationTiming {
    /// Default lead time: 10 minutes. The JWKS endpoint's `Cache-Control: max-age` is at most
    /// half the lead time (and at most 5 minutes), so caches that honour it hold a staged key
    /// before it signs.
    pub const DEFAULT_LEAD_TIME: Duration = Duration::from_secs(600);
    /// Default retention: 65 minutes (the longest allowed ID-JAG lifetime, one hour, plus
    /// five minutes of clock-skew leeway at the resource AS).
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3900);

    /// A timing with this lead time and retention.
    pub fn new(lead_time: Duration, retention: Duration) -> Self {
        Self {
            lead_time,
            retention,
        }
    }

    /// How long a staged key is published before it signs.
    pub fn lead_time(&self) -> Duration {
        self.lead_time
    }

    /// How long a retired key stays published after it stopped signing.
    pub fn retention(&self) -> Duration {
        self.retention
    }
}

impl Default for RotationTiming {
    fn default() -> Self {
        Self::new(Self::DEFAULT_LEAD_TIME, Self::DEFAULT_RETENTION)
    }
}

/// The state of a signing key at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyState {
    /// Published, not yet signing.
    Next,
    /// Published and signing.
    Current,
    /// Published, no longer signing.
    Retired,
}

/// Where one key stands, with the times (Unix seconds) of its schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// The key id.
    pub kid: Kid,
    /// The algorithm.
    pub alg: Algorithm,
    /// The state now.
    pub state: KeyState,
    /// When it was first published.
    pub published_at: i64,
    /// When it starts (or started) signing.
    pub signs_from: i64,
    /// When it stopped signing, once a successor took over.
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS, once retired.
    pub unpublished_at: Option<i64>,
}

/// Why a key could not be staged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// Another key (published or not yet purged) has the same `kid`.
    #[error("a signing key with this kid already exists")]
    DuplicateKid,
    /// A key is already waiting to become current; stage one rotation at a time.
    #[error("a staged key is already waiting to sign")]
    AlreadyStaged,
    /// The key's public half could not be derived.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A restored schedule is empty, or its keys are not in `signs_from` order, or a key is
    /// published after it starts signing.
    #[error("the key schedule is empty or out of order")]
    InvalidSchedule,
}

/// One signing key and its schedule (Unix seconds), as [`SigningKeys::schedule`] returns it
/// and [`SigningKeys::from_schedule`] restores it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScheduledSigningKey {
    /// The key (it has a `kid`).
    pub key: SigningKey,
    /// When it was first published.
    pub published_at: i64,
    /// When it starts (or started) signing.
    pub signs_from: i64,
}

impl ScheduledSigningKey {
    /// A key with its schedule.
    pub fn new(key: SigningKey, published_at: i64, signs_from: i64) -> Self {
        Self {
            key,
            published_at,
            signs_from,
        }
    }
}

struct Entry {
    signing: SigningKey,
    verifying: Arc<VerifyingKey>,
    kid: Kid,
    published_at: i64,
    signs_from: i64,
}

/// The IdP's signing keys with their rotation schedule.
///
/// Build it with the first key; it is current from the start. Every key gets a `kid` (its
/// RFC 7638 thumbprint when it has none), because resource authorization servers select keys
/// by `kid` across a rotation.
///
/// ```
/// use idjag_core::{Algorithm, SigningKey};
/// use idjag_idp::SigningKeys;
/// let keys = SigningKeys::new(SigningKey::generate(Algorithm::Es256)?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SigningKeys {
    entries: Vec<Entry>,
    timing: RotationTiming,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field(
                "kids",
                &self.entries.iter().map(|e| &e.kid).collect::<Vec<_>>(),
            )
            .field("timing", &self.timing)
            .finish()
    }
}

fn with_kid(key: SigningKey) -> (SigningKey, Kid) {
    let key = if key.kid().is_some() {
        key
    } else {
        key.with_thumbprint_kid()
    };
    let kid = key.kid().cloned().expect("the key has a kid");
    (key, kid)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl SigningKeys {
    /// A key set whose only key is current from the beginning of time.
    pub fn new(first: SigningKey) -> Result<Self, KeyError> {
        let (signing, kid) = with_kid(first);
        let verifying = Arc::new(signing.verifying_key()?);
        Ok(Self {
            entries: vec![Entry {
                signing,
                verifying,
                kid,
                published_at: i64::MIN,
                signs_from: i64::MIN,
            }],
            timing: RotationTiming::default(),
        })
    }

    /// Restores a schedule saved from [`Self::schedule`]: keys in `signs_from` order, each
    /// published no later than it signs, `kid`s unique. Keys without a `kid` get their RFC 7638
    /// thumbprint, as in [`Self::new`].
    pub fn from_schedule(
        entries: Vec<ScheduledSigningKey>,
        timing: RotationTiming,
    ) -> Result<Self, RotationError> {
        if entries.is_empty() {
            return Err(RotationError::InvalidSchedule);
        }
        let mut restored: Vec<Entry> = Vec::with_capacity(entries.len());
        for scheduled in entries {
            let (signing, kid) = with_kid(scheduled.key);
            if scheduled.published_at > scheduled.signs_from
                || restored
                    .last()
                    .is_some_and(|prev| prev.signs_from > scheduled.signs_from)
            {
                return Err(RotationError::InvalidSchedule);
            }
            if restored.iter().any(|e| e.kid == kid) {
                return Err(RotationError::DuplicateKid);
            }
            let verifying = Arc::new(signing.verifying_key()?);
            restored.push(Entry {
                signing,
                verifying,
                kid,
                published_at: scheduled.published_at,
                signs_from: scheduled.signs_from,
            });
        }
        Ok(Self {
            entries: restored,
            timing,
        })
    }

    /// Every key kept (waiting, signing, retired and not yet purged) with its schedule, in
    /// `signs_from` order: what a server persists after each change.
    pub fn schedule(&self) -> Vec<ScheduledSigningKey> {
        self.entries
            .iter()
            .map(|e| ScheduledSigningKey::new(e.signing.clone(), e.published_at, e.signs_from))
            .collect()
    }

    /// A key set with a freshly generated ES256 key (the default ID-JAG algorithm).
    pub fn generate_es256() -> Result<Self, KeyError> {
        Self::new(SigningKey::generate(Algorithm::Es256)?)
    }

    /// Sets the rotation timing.
    pub fn with_timing(mut self, timing: RotationTiming) -> Self {
        self.timing = timing;
        self
    }

    /// The rotation timing.
    pub fn timing(&self) -> RotationTiming {
        self.timing
    }

    /// Dates the first key, which has been current "since always", to `now` (when the issuer
    /// is built), so its status shows real times.
    pub(crate) fn date_first_key(&mut self, now: i64) {
        for entry in self.entries.iter_mut().filter(|e| e.signs_from == i64::MIN) {
            entry.published_at = now;
            entry.signs_from = now;
        }
    }

    /// Entries ordered by `signs_from` (staging keeps them in that order).
    fn current_index(&self, now: i64) -> usize {
        self.entries
            .iter()
            .rposition(|e| e.signs_from <= now)
            .unwrap_or(0)
    }

    fn retired_at(&self, index: usize, now: i64) -> Option<i64> {
        let next = self.entries.get(index + 1)?;
        (next.signs_from <= now).then_some(next.signs_from)
    }

    fn is_published(&self, index: usize, now: i64) -> bool {
        let entry = &self.entries[index];
        if entry.published_at > now {
            return false;
        }
        match self.retired_at(index, now) {
            Some(at) => now < at.saturating_add(secs(self.timing.retention)),
            None => true,
        }
    }

    /// The key that signs at `now`.
    pub(crate) fn current(&self, now: i64) -> &SigningKey {
        &self.entries[self.current_index(now)].signing
    }

    /// The keys published at `now`.
    pub(crate) fn published(&self, now: i64) -> impl Iterator<Item = &Arc<VerifyingKey>> {
        (0..self.entries.len())
            .filter(move |i| self.is_published(*i, now))
            .map(|i| &self.entries[i].verifying)
    }

    /// The status of every key that is published at `now` or waiting to be.
    pub fn status(&self, now: i64) -> Vec<KeyStatus> {
        let current = self.current_index(now);
        (0..self.entries.len())
            .filter(|i| self.is_published(*i, now))
            .map(|i| {
                let e = &self.entries[i];
                let retired_at = self.retired_at(i, now);
                KeyStatus {
                    kid: e.kid.clone(),
                    alg: e.signing.alg(),
                    state: if i == current {
                        KeyState::Current
                    } else if i > current {
                        KeyState::Next
                    } else {
                        KeyState::Retired
                    },
                    published_at: e.published_at,
                    signs_from: e.signs_from,
                    retired_at,
                    unpublished_at: retired_at
                        .map(|at| at.saturating_add(secs(self.timing.retention))),
                }
            })
            .collect()
    }

    /// Publishes `key` at `now`; it signs from `now + lead_time`. Keys that have left the
    /// JWKS for good are dropped. Returns the key's `kid`.
    pub fn stage(&mut self, key: SigningKey, now: i64) -> Result<Kid, RotationError> {
        let (signing, kid) = with_kid(key);
        if self.entries.iter().any(|e| e.kid == kid) {
            return Err(RotationError::DuplicateKid);
        }
        if self.entries.iter().any(|e| e.signs_from > now) {
            return Err(RotationError::AlreadyStaged);
        }
        let verifying = Arc::new(signing.verifying_key()?);
        let current = self.current_index(now);
        // Everything before the current key that is no longer published is gone for good.
        let keep: Vec<bool> = (0..self.entries.len())
            .map(|i| i >= current || self.is_published(i, now))
            .collect();
        let mut index = 0;
        self.entries.retain(|_| {
            index += 1;
            keep[index - 1]
        });
        self.entries.push(Entry {
            signing,
            verifying,
            kid: kid.clone(),
            published_at: now,
            signs_from: now.saturating_add(secs(self.timing.lead_time)),
        });
        Ok(kid)
    }

    /// The JWK Set document of the keys published at `now`.
    pub(crate) fn jwks(&self, now: i64) -> Value {
        let keys = self.published(now).map(|k| k.to_jwk()).collect();
        let mut set = Map::new();
        set.insert("keys".into(), Value::Array(keys));
        Value::Object(set)
    }
}

/// A shared, clock-aware handle on the signing keys.
#[derive(Clone)]
pub(crate) struct SharedKeys {
    keys: Arc<RwLock<SigningKeys>>,
    clock: SharedClock,
}

impl fmt::Debug for SharedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKeys").finish_non_exhaustive()
    }
}

impl SharedKeys {
    pub(crate) fn new(keys: SigningKeys, clock: SharedClock) -> Self {
        Self {
            keys: Arc::new(RwLock::new(keys)),
            clock,
        }
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&SigningKeys, i64) -> T) -> T {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        f(&keys, self.clock.now_unix())
    }

    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut SigningKeys, i64) -> T) -> T {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        f(&mut keys, self.clock.now_unix())
    }

    /// The key that signs now.
    pub(crate) fn current(&self) -> SigningKey {
        self.read(|keys, now| keys.current(now).clone())
    }

    /// Runs `f` with the key that signs now, without cloning it.
    pub(crate) fn with_current<T>(&self, f: impl FnOnce(&SigningKey) -> T) -> T {
        self.read(|keys, now| f(keys.current(now)))
    }
}

/// Signing keys with their rotation schedule, shared and read at an injected clock: the same
/// schedule as the IdP's ([`SigningKeys`]), for other token issuers (the MCP gateway's own
/// authorization server signs its access tokens with one). Cloning shares the keys.
///
/// ```
/// use idjag_core::{Algorithm, KeySource, SigningKey, SystemClock};
/// use idjag_idp::{RotatingKeys, SigningKeys};
/// let keys = RotatingKeys::new(SigningKeys::generate_es256()?, SystemClock::shared());
/// let kid = keys.current().kid().cloned();
/// keys.stage(SigningKey::generate(Algorithm::Es256)?)?; // published now, signs after the lead time
/// assert_eq!(keys.current().kid().cloned(), kid);
/// assert_eq!(keys.jwks()["keys"].as_array().map(Vec::len), Some(2));
/// assert!(keys.find(kid.as_ref(), Algorithm::Es256).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RotatingKeys {
    keys: SharedKeys,
}

impl RotatingKeys {
    /// The keys of `keys`, the first one dated now.
    pub fn new(mut keys: SigningKeys, clock: SharedClock) -> Self {
        keys.date_first_key(clock.now_unix());
        Self {
            keys: SharedKeys::new(keys, clock),
        }
    }

    /// The key that signs now.
    pub fn current(&self) -> SigningKey {
        self.keys.current()
    }

    /// Publishes `key` now; it signs from now plus the lead time, and the current key then
    /// retires (published for the retention time).
    pub fn stage(&self, key: SigningKey) -> Result<Kid, RotationError> {
        self.keys.write(|keys, now| keys.stage(key, now))
    }

    /// The JWK Set document of the keys published now.
    pub fn jwks(&self) -> Value {
        self.keys.read(|keys, now| keys.jwks(now))
    }

    /// Where each published or waiting key stands now.
    pub fn status(&self) -> Vec<KeyStatus> {
        self.keys.read(|keys, now| keys.status(now))
    }
}

/// The published keys, to verify what they signed.
impl KeySource for RotatingKeys {
    fn find(&self, kid: Option<&Kid>, alg: Algorithm) -> Result<Arc<VerifyingKey>, KeyMiss> {
        self.keys.find(kid, alg)
    }

    fn refresh(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The IdP's own published keys, as a key source for validating its own ID tokens.
impl KeySource for SharedKeys {
    fn find(&self, kid: Option<&Kid>, alg: Algorithm) -> Result<Arc<VerifyingKey>, KeyMiss> {
        self.read(|keys, now| find_published(keys, now, kid, alg).map_err(KeyMiss::final_))
    }

    fn refresh(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The published key for a token header, with the lookup rules of the core `KeySet`.
fn find_published(
    keys: &SigningKeys,
    now: i64,
    kid: Option<&Kid>,
    alg: Algorithm,
) -> Result<Arc<VerifyingKey>, KeyLookupError> {
    let mut published = keys.published(now);
    match kid {
        Some(kid) => {
            let key = published
                .find(|k| k.kid() == Some(kid))
                .ok_or(KeyLookupError::UnknownKid)?;
            if key.alg() == alg {
                Ok(key.clone())
            } else {
                Err(KeyLookupError::AlgorithmMismatch)
            }
        }
        None => {
            let mut fits = published.filter(|k| k.alg() == alg);
            match (fits.next(), fits.next()) {
                (Some(key), None) => Ok(key.clone()),
                (None, _) => Err(KeyLookupError::NoMatchingKey),
                (Some(_), Some(_)) => Err(KeyLookupError::AmbiguousKey),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::generate(Algorithm::Es256).unwrap()
    }

    fn kids(keys: &SigningKeys, now: i64) -> Vec<String> {
        keys.published(now)
            .map(|k| k.kid().unwrap().as_str().to_owned())
            .collect()
    }

    #[test]
    fn a_staged_key_is_published_before_it_signs_and_the_old_one_lingers() {
        let timing = RotationTiming::new(Duration::from_secs(100), Duration::from_secs(400));
        let mut keys = SigningKeys::new(key()).unwrap().with_timing(timing);
        let first = keys.current(0).kid().unwrap().clone();
        let second = keys.stage(key(), 1000).unwrap();

        assert_eq!(keys.current(1099).kid(), Some(&first));
        assert_eq!(kids(&keys, 1000), [first.as_str(), second.as_str()]);
        assert_eq!(keys.current(1100).kid(), Some(&second));
        assert_eq!(kids(&keys, 1499), [first.as_str(), second.as_str()]);
        assert_eq!(kids(&keys, 1500), [second.as_str()]);

        let status = keys.status(1200);
        assert_eq!(status[0].state, KeyState::Retired);
        assert_eq!(status[0].retired_at, Some(1100));
        assert_eq!(status[0].unpublished_at, Some(1500));
        assert_eq!(status[1].state, KeyState::Current);
        assert_eq!(status[1].published_at, 1000);
    }

    #[test]
    fn one_rotation_at_a_time_and_kids_are_unique() {
        let mut keys = SigningKeys::new(key()).unwrap();
        let again = keys.current(0).clone();
        assert_eq!(keys.stage(again, 0), Err(RotationError::DuplicateKid));
        keys.stage(key(), 0).unwrap();
        assert_eq!(keys.stage(key(), 1), Err(RotationError::AlreadyStaged));
    }

    #[test]
    fn a_saved_schedule_restores_the_same_keys_and_times() {
        let timing = RotationTiming::new(Duration::from_secs(100), Duration::from_secs(400));
        let mut keys = SigningKeys::new(key()).unwrap().with_timing(timing);
        keys.date_first_key(1000);
        let second = keys.stage(key(), 1500).unwrap();
        let restored = SigningKeys::from_schedule(keys.schedule(), timing).unwrap();
        assert_eq!(restored.status(1550), keys.status(1550));
        assert_eq!(restored.current(1600).kid(), Some(&second));
        assert_eq!(restored.jwks(1550), keys.jwks(1550));

        let mut out_of_order = keys.schedule();
        out_of_order.reverse();
        assert_eq!(
            SigningKeys::from_schedule(out_of_order, timing).unwrap_err(),
            RotationError::InvalidSchedule
        );
        assert_eq!(
            SigningKeys::from_schedule(Vec::new(), timing).unwrap_err(),
            RotationError::InvalidSchedule
        );
        let mut twice = keys.schedule();
        twice.push(twice[1].clone());
        assert_eq!(
            SigningKeys::from_schedule(twice, timing).unwrap_err(),
            RotationError::DuplicateKid
        );
    }

    #[test]
    fn unpublished_keys_are_dropped_on_the_next_rotation() {
        let timing = RotationTiming::new(Duration::from_secs(10), Duration::from_secs(10));
        let mut keys = SigningKeys::new(key()).unwrap().with_timing(timing);
        keys.stage(key(), 0).unwrap();
        keys.stage(key(), 100).unwrap();
        assert_eq!(keys.entries.len(), 2);
        assert_eq!(keys.status(100).len(), 2);
    }
}
