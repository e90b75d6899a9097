//! The storage seam: a small set of primitives every backend implements atomically.
//!
//! Every facade of this crate ([`crate::replay`], [`crate::revocation`], ...) is written
//! against [`Store`] alone, so a backend implements only these operations:
//!
//! | primitive | atomic meaning |
//! |---|---|
//! | [`insert_if_absent`](Store::insert_if_absent) | set `key` unless a live entry exists; optionally count it in a per-group quota |
//! | [`insert_capped`](Store::insert_capped) | the same, in a capped namespace, refused when one of the entry's groups already holds its cap of live entries |
//! | [`put`](Store::put) | set `key` unconditionally |
//! | [`get`](Store::get) | read a live entry |
//! | [`take`](Store::take) | read and delete a live entry: exactly one caller gets it |
//! | [`compare_and_swap`](Store::compare_and_swap) | replace (or delete, or create) `key` only if its value is still the expected one |
//! | [`remove`](Store::remove) | delete `key` |
//! | [`scan`](Store::scan) | every live entry of an indexed namespace, bounded |
//! | [`publish`](Store::publish) / [`subscribe`](Store::subscribe) | change notifications on a channel |
//! | [`ping`](Store::ping) | a round trip, for readiness probes |
//!
//! Expiry times are absolute, in milliseconds since the Unix epoch ([`UnixMillis`]), read
//! from the injected clock ([`idjag_core::Clock`]). An entry whose expiry is at or before
//! "now" is absent for every operation.

use std::fmt;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::StoreError;
pub use crate::namespace::Namespace;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// The longest key a primitive accepts (facades use 32-byte hashes).
pub const MAX_KEY_LEN: usize = 256;
/// The largest value a primitive accepts (1 MiB).
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// Revocations made and lifted.
    Revocations,
    /// The IdP's key schedule changed.
    KeySchedule,
}

impl Channel {
    /// Every channel.
    pub const ALL: &'static [Channel] = &[Channel::Revocations, Channel::KeySchedule];

    /// The stable name (the Redis channel's suffix).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Revocations => "revocations",
            Self::KeySchedule => "key-schedule",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Revocations => 0,
            Self::KeySchedule => 1,
        }
    }
}

/// A live entry.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The value.
    pub value: Vec<u8>,
    /// When it expires (`None`: never).
    pub expires_at: Option<UnixMillis>,
}

impl Entry {
    /// An entry.
    pub fn new(value: Vec<u8>, expires_at: Option<UnixMillis>) -> Self {
        Self { value, expires_at }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("value_len", &self.value.len())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A per-group bound on live insertions, for [`Store::insert_if_absent`].
///
/// The quota counts insertions made under `group` in the namespace whose expiry has not yet
/// passed (whether or not the entry was removed since). An insertion that would make the
/// count exceed `limit` fails with [`StoreError::QuotaExceeded`] and stores nothing.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Quota<'a> {
    /// The group (a client id, hashed by the backend).
    pub group: &'a [u8],
    /// The most live insertions the group may have.
    pub limit: u32,
}

impl<'a> Quota<'a> {
    /// A quota of `limit` live insertions for `group`.
    pub fn new(group: &'a [u8], limit: u32) -> Self {
        Self { group, limit }
    }
}

/// A bound on the live entries of one group, for [`Store::insert_capped`].
///
/// Unlike a [`Quota`], which counts insertions until they would have expired, a cap counts
/// the entries themselves: an entry counts in each group it was inserted under while it is
/// live and has not left them. It leaves them when it is deleted ([`Store::remove`],
/// [`Store::take`], [`Swap::Delete`]), when it expires, or when it is replaced with
/// [`Swap::Release`]; [`Store::put`] and [`Swap::Set`] keep it in its groups with the new
/// expiry. An insertion into a group already holding `limit` live entries fails with
/// [`StoreError::CapReached`] and stores nothing.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Cap<'a> {
    /// The group (a principal, hashed by the backend).
    pub group: &'a [u8],
    /// The most live entries the group may hold.
    pub limit: u32,
}

impl<'a> Cap<'a> {
    /// A cap of `limit` live entries for `group`.
    pub fn new(group: &'a [u8], limit: u32) -> Self {
        Self { group, limit }
    }
}

/// The most caps one insertion may count in.
pub const MAX_CAPS: usize = 8;

/// The new state of a key for [`Store::compare_and_swap`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Swap<'a> {
    /// Store this value with this expiry (an entry counted in [`Cap`] groups stays in them).
    Set(&'a [u8], Option<UnixMillis>),
    /// Store this value with this expiry, and take the entry out of every [`Cap`] group it
    /// counts in (a held call once decided no longer counts as pending).
    Release(&'a [u8], Option<UnixMillis>),
    /// Delete the key.
    Delete,
}

/// What a subscriber receives.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// A published message.
    Message(Vec<u8>),
    /// Messages may have been lost (the subscriber lagged, or the connection to the store
    /// was lost and has just been re-established): re-read the full state.
    Gap,
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(m) => write!(f, "Message({} bytes)", m.len()),
            Self::Gap => f.write_str("Gap"),
        }
    }
}

/// A subscription to one channel. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Notification>,
}

impl Subscription {
    pub(crate) fn new(rx: broadcast::Receiver<Notification>) -> Self {
        Self { rx }
    }

    /// The next notification; `None` once the store is closed.
    pub async fn next(&mut self) -> Option<Notification> {
        match self.rx.recv().await {
            Ok(n) => Some(n),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Notification::Gap),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The storage seam. See the [module docs](self) for the contract of each primitive; the
/// crate docs say what each backend guarantees.
///
/// Every method fails with a [`StoreError`] when the backend cannot answer; callers fail
/// closed.
#[async_trait]
pub trait Store: fmt::Debug + Send + Sync + 'static {
    /// The backend's name ("memory", "embedded", "redis").
    fn backend(&self) -> &'static str;

    /// Stores `value` under `key` unless a live entry exists. Returns whether it was stored.
    ///
    /// With a `quota`, the insertion also counts in the group's quota (checked only when the
    /// key is absent) and needs an expiry.
    async fn insert_if_absent(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
        quota: Option<Quota<'_>>,
    ) -> Result<bool, StoreError>;

    /// Stores `value` under `key` unless a live entry exists, counting it in the group of
    /// each of `caps` while it lives (see [`Cap`]), and in `quota` like
    /// [`insert_if_absent`](Self::insert_if_absent). Returns whether it was stored.
    ///
    /// Fails with [`StoreError::CapReached`] (naming the first cap reached, storing nothing)
    /// when a group already holds its limit of live entries; with
    /// [`StoreError::NotCappable`] for a namespace that keeps no caps
    /// ([`Namespace::is_capped`]); with [`StoreError::InvalidExpiry`] without an expiry, and
    /// with [`StoreError::InvalidSize`] for more than [`MAX_CAPS`] caps. The existence
    /// check, every quota and cap check and the writes are one atomic step.
    async fn insert_capped(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: UnixMillis,
        quota: Option<Quota<'_>>,
        caps: &[Cap<'_>],
    ) -> Result<bool, StoreError>;

    /// Stores `value` under `key`, replacing any entry.
    async fn put(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
    ) -> Result<(), StoreError>;

    /// The live entry under `key`.
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Entry>, StoreError>;

    /// Removes and returns the live entry under `key`. Of concurrent callers, exactly one
    /// gets it.
    async fn take(&self, ns: Namespace, key: &[u8]) -> Result<Option<Entry>, StoreError>;

    /// Applies `new` if the live value under `key` equals `expected` (`None`: absent).
    /// Returns whether it was applied.
    async fn compare_and_swap(
        &self,
        ns: Namespace,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Swap<'_>,
    ) -> Result<bool, StoreError>;

    /// Deletes `key`; whether a live entry was there.
    async fn remove(&self, ns: Namespace, key: &[u8]) -> Result<bool, StoreError>;

    /// Every live entry of an indexed namespace, in no particular order. Fails with
    /// [`StoreError::TooMany`] (returning nothing) when there are more than `limit`, and
    /// with [`StoreError::NotScannable`] for a namespace without index.
    async fn scan(&self, ns: Namespace, limit: usize) -> Result<Vec<(Vec<u8>, Entry)>, StoreError>;

    /// Publishes `message` to every subscriber of `channel` (on every instance sharing the
    /// store). Delivery is at most once: subscribers learn of possible losses through
    /// [`Notification::Gap`].
    async fn publish(&self, channel: Channel, message: &[u8]) -> Result<(), StoreError>;

    /// Subscribes to `channel`. Works while the backend is down (the subscription receives
    /// [`Notification::Gap`] once it is back).
    fn subscribe(&self, channel: Channel) -> Subscription;

    /// One round trip to the backend.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Checks sizes and expiry of a write.
pub(crate) fn check_write(
    key: &[u8],
    value: &[u8],
    expires_at: Option<UnixMillis>,
    now: UnixMillis,
) -> Result<(), StoreError> {
    check_key(key)?;
    if value.len() > MAX_VALUE_LEN {
        return Err(StoreError::InvalidSize);
    }
    match expires_at {
        Some(at) if at <= now => Err(StoreError::InvalidExpiry),
        _ => Ok(()),
    }
}

pub(crate) fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidSize);
    }
    Ok(())
}

pub(crate) fn check_quota(
    quota: &Option<Quota<'_>>,
    expires_at: Option<UnixMillis>,
) -> Result<(), StoreError> {
    if quota.is_some() && expires_at.is_none() {
        return Err(StoreError::InvalidExpiry);
    }
    Ok(())
}

pub(crate) fn check_caps(ns: Namespace, caps: &[Cap<'_>]) -> Result<(), StoreError> {
    if !ns.is_capped() {
        return Err(StoreError::NotCappable { namespace: ns });
    }
    if caps.len() > MAX_CAPS {
        return Err(StoreError::InvalidSize);
    }
    Ok(())
}

/// Whether an entry expiring at `expires_at` is live at `now`.
pub(crate) fn is_live(expires_at: Option<UnixMillis>, now: UnixMillis) -> bool {
    expires_at.is_none_or(|at| at > now)
}

/// The current time in milliseconds from the injected clock.
pub(crate) fn now_millis(clock: &idjag_core::SharedClock) -> UnixMillis {
    match clock.now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// In-process fan-out of notifications, one broadcast channel per [`Channel`].
#[derive(Debug)]
pub(crate) struct LocalBus {
    senders: Vec<broadcast::Sender<Notification>>,
}

/// How many notifications a slow subscriber may fall behind before it gets a
/// [`Notification::Gap`].
pub(crate) const BUS_CAPACITY: usize = 1024;

impl LocalBus {
    pub(crate) fn new() -> Self {
        Self {
            senders: Channel::ALL
                .iter()
                .map(|_| broadcast::channel(BUS_CAPACITY).0)
                .collect(),
        }
    }

    pub(crate) fn send(&self, channel: Channel, n: Notification) {
        // No subscriber is not an error.
        let _ = self.senders[channel.index()].send(n);
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn send_all(&self, n: &Notification) {
        for sender in &self.senders {
            let _ = sender.send(n.clone());
        }
    }

    pub(crate) fn subscribe(&self, channel: Channel) -> Subscription {
        Subscription::new(self.senders[channel.index()].subscribe())
    }
}

/// SHA-256 over length-prefixed parts, so no two different part lists collide by
/// concatenation.
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

pub(crate) fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}
