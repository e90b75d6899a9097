//! Single-use markers: redeemed ID-JAGs, client-assertion `jti`s, DPoP proof `jti`s, each in
//! its own namespace with a per-client quota.

use std::sync::Arc;

use idjag_core::BoxFuture;
use idjag_core::server::{Replay, ReplayCache, ReplayKey, ReplayStoreError};

use crate::error::StoreError;
use crate::store::{Namespace, Quota, Store, digest};

/// The kind of one-time token, each with its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MarkerKind {
    /// ID-JAGs redeemed at the resource AS (key: `iss`, `jti`; holder: the client).
    IdJag,
    /// Client assertions (`private_key_jwt`; key: `iss`, `jti`; holder: the client).
    ClientAssertion,
    /// DPoP proofs (key: thumbprint, `jti`, in idjag-idp's `dpop-proof` key namespace; holder:
    /// the client, whose quota it counts in).
    Dpop,
}

impl MarkerKind {
    /// The namespace of this kind.
    pub const fn namespace(self) -> Namespace {
        match self {
            Self::IdJag => Namespace::IdJagReplay,
            Self::ClientAssertion => Namespace::ClientAssertionReplay,
            Self::Dpop => Namespace::DpopReplay,
        }
    }
}

/// The default quota: live markers one holder may have in one namespace.
pub const DEFAULT_MARKERS_PER_HOLDER: u32 = 100_000;

/// Single-use markers of one kind on a shared [`Store`], usable wherever idjag-core takes a
/// [`ReplayCache`].
///
/// Recording is one atomic `insert_if_absent` of the key (a SHA-256, [`ReplayKey`]) with the
/// SHA-256 of the holder as value, expiring at the token's end. A holder (client) may have at
/// most `per_holder` live markers in the namespace, so one client cannot fill the store for
/// all; past that its tokens are refused ([`StoreError::QuotaExceeded`], mapped to
/// [`ReplayStoreError::Full`]) until its markers expire.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use idjag_core::TestClock;
/// use idjag_core::server::{Replay, ReplayKey};
/// use idjag_store::{MarkerKind, MemoryStore, SingleUseMarkers};
///
/// let clock = TestClock::at_unix(1_700_000_000);
/// let store = Arc::new(MemoryStore::new(clock.shared()));
/// let markers = SingleUseMarkers::new(store, MarkerKind::IdJag, 1_000);
/// let key = ReplayKey::new("https://idp.example", "jti-1");
/// assert_eq!(markers.record(key, "client-a", 1_700_000_300).await?, Replay::First);
/// assert_eq!(
///     markers.record(key, "client-a", 1_700_000_300).await?,
///     Replay::Seen { same_holder: true }
/// );
/// # Ok::<(), idjag_store::StoreError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SingleUseMarkers {
    store: Arc<dyn Store>,
    kind: MarkerKind,
    per_holder: u32,
}

impl SingleUseMarkers {
    /// Markers of `kind`, at most `per_holder` live ones per holder.
    pub fn new(store: Arc<dyn Store>, kind: MarkerKind, per_holder: u32) -> Self {
        Self {
            store,
            kind,
            per_holder,
        }
    }

    /// The kind.
    pub fn kind(&self) -> MarkerKind {
        self.kind
    }

    /// Records `key` for `holder` until `until_unix` (seconds), unless already recorded.
    pub async fn record(
        &self,
        key: ReplayKey,
        holder: &str,
        until_unix: i64,
    ) -> Result<Replay, StoreError> {
        let ns = self.kind.namespace();
        let holder_hash = digest(&[holder.as_bytes()]);
        let expires_at = until_unix.saturating_mul(1000);
        let inserted = self
            .store
            .insert_if_absent(
                ns,
                key.as_bytes(),
                &holder_hash,
                Some(expires_at),
                Some(Quota::new(holder.as_bytes(), self.per_holder)),
            )
            .await?;
        if inserted {
            return Ok(Replay::First);
        }
        // Seen: compare holders (the entry may have expired in between: a replay all the same).
        let recorded = self.store.get(ns, key.as_bytes()).await?;
        Ok(Replay::Seen {
            same_holder: recorded.is_some_and(|e| e.value == holder_hash),
        })
    }
}

impl ReplayCache for SingleUseMarkers {
    fn record<'a>(
        &'a self,
        key: ReplayKey,
        holder: &'a str,
        until_unix: i64,
    ) -> BoxFuture<'a, Result<Replay, ReplayStoreError>> {
        Box::pin(async move {
            SingleUseMarkers::record(self, key, holder, until_unix)
                .await
                .map_err(|e| match e {
                    StoreError::QuotaExceeded { .. } | StoreError::Full => ReplayStoreError::Full,
                    _ => ReplayStoreError::Unavailable,
                })
        })
    }
}
