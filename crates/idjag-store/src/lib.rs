//! # idjag-store
//!
//! The security state of every idjag role, shared by replicas and kept across restarts:
//! single-use markers (ID-JAG, client-assertion and DPoP `jti`s), revocations with a local
//! replica per instance, held calls and their approvals, MCP session bindings, the IdP's
//! signing-key schedule, and the OAuth state of an authorization server (codes, refresh-token
//! families, sealed upstream tokens).
//!
//! - [`Store`]: the storage seam, a handful of primitives each backend implements atomically
//!   (`insert_if_absent`, `insert_capped`, `put`, `get`, `take`, `compare_and_swap`, `remove`, bounded
//!   `scan`, `publish`/`subscribe`, `ping`).
//! - Backends: [`MemoryStore`] (tests, one process), [`EmbeddedStore`] (feature `embedded`,
//!   the single-node default: one redb file, durable, no server), [`RedisStore`] (feature
//!   `redis`: many instances).
//! - Facades, written once against [`Store`]: [`SingleUseMarkers`] (idjag-core's
//!   [`ReplayCache`](idjag_core::server::ReplayCache)), [`RevocationSet`] and
//!   [`RevocationReplica`], [`Approvals`], [`SessionBindings`], [`KeyScheduleStore`],
//!   [`AuthCodes`], [`RefreshFamilies`], [`SealedTokens`].
//! - [`StoreConfig`]: the `[store]` section of the servers' TOML files, with
//!   [`check`](StoreConfig::check) for `check-config` and [`Store::ping`] for `/readyz`.
//!
//! ## Example: one ID-JAG redeemed once across two replicas
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use idjag_core::TestClock;
//! use idjag_core::server::{Replay, ReplayKey};
//! use idjag_store::{EmbeddedStore, MarkerKind, SingleUseMarkers, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let clock = TestClock::at_unix(1_700_000_000);
//! // Both replicas of the resource AS share one store (here one file; with Redis, one server).
//! let store: Arc<dyn Store> =
//!     Arc::new(EmbeddedStore::open(dir.path().join("state.redb"), clock.shared()).unwrap());
//! let replica_a = SingleUseMarkers::new(store.clone(), MarkerKind::IdJag, 10_000);
//! let replica_b = SingleUseMarkers::new(store, MarkerKind::IdJag, 10_000);
//!
//! let key = ReplayKey::new("https://idp.example", "9b8e6f0a");
//! let until = 1_700_000_330; // exp + leeway
//! assert_eq!(replica_a.record(key, "client-1", until).await?, Replay::First);
//! assert_eq!(
//!     replica_b.record(key, "client-1", until).await?,
//!     Replay::Seen { same_holder: true }
//! );
//! # Ok::<(), idjag_store::StoreError>(()) }).unwrap();
//! ```
//!
//! ## Backends and their guarantees
//!
//! | | memory | embedded (redb) | redis |
//! |---|---|---|---|
//! | shared by | one process | one process (file lock) | every instance |
//! | atomicity | one lock per primitive | one writer thread, one transaction per batch | one command or one Lua script per primitive |
//! | durability | none | every acknowledged write is fsynced | the server's persistence (`appendonly yes`, `appendfsync always` for every write) |
//! | expiry | injected clock | injected clock; purged on writes and by an idle sweep | absolute `PXAT` from the injected clock (keep clocks in sync) |
//! | notifications | in process | in process | pub/sub, gaps reported after reconnects |
//! | when it fails | cannot | [`StoreError::Unavailable`] / [`StoreError::Timeout`], nothing committed | [`StoreError::Unavailable`] / [`StoreError::Timeout`]; reconnects by itself |
//!
//! The embedded database is redb 2.6 (see [`embedded`] for why). The details of each
//! backend are in its module: [`memory`], [`embedded`], [`redis_store`].
//!
//! ## Failing closed
//!
//! Every operation returns a typed [`StoreError`] when the backend cannot answer, and every
//! facade refuses on error: a marker that cannot be recorded refuses the token, a
//! [`RevocationReplica`] older than its staleness bound answers [`StoreError::Stale`] instead
//! of "not revoked". No object needs a restart after an outage: the next operation after the
//! backend is back succeeds, and replicas resynchronise by themselves.
//!
//! ## Security
//!
//! - **No token or secret in clear.** Keys are SHA-256 digests of what only needs comparing
//!   (`(iss, jti)`, authorization codes, refresh tokens, session ids, principals); a
//!   holder is stored as its digest. Values that must be read back (stored IdP tokens, the
//!   IdP's private keys) are sealed with an AEAD ([`Sealer`]: AES-256-GCM or
//!   ChaCha20-Poly1305 through idjag-core's crypto backend, a random nonce per value, the
//!   namespace and key as associated data, so a value moved elsewhere does not open). What
//!   stays readable: revoked principals' ids, held calls' details and grants, for the admin
//!   API.
//! - **One client cannot fill the store for all.** Single-use markers are counted per client
//!   (or DPoP key) and namespace; past its quota a client's tokens are refused
//!   ([`StoreError::QuotaExceeded`]), others' are not. Held calls and MCP sessions may be
//!   capped per principal ([`Cap`]: live entries, freed as they are decided, removed or
//!   expire); past a cap the insertion is refused ([`StoreError::CapReached`]) atomically on
//!   every backend.
//! - **Bounded reads.** Scans fail ([`StoreError::TooMany`]) rather than return a partial
//!   revocation list.
//! - **Redis**: use `rediss://` with a CA you control, an ACL user limited to the key
//!   prefix, a password from a file or the environment (never in the URL: refused). Anyone
//!   who can write to the Redis server can revoke, approve or replay-block; anyone who can
//!   read it learns which principals are revoked but no token.
//! - `Debug` and `Display` of every type here show no key material, token or value.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod approvals;
pub mod config;
mod error;
pub mod keys;
pub mod memory;
mod namespace;
pub mod oauth;
pub mod replay;
pub mod revocation;
pub mod seal;
pub mod sessions;
pub mod store;

pub use namespace::Namespace;

#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "redis")]
pub mod redis_store;

pub use approvals::{ApprovalRecord, ApprovalStatus, Approvals, DecideError, Gate};
pub use config::{BackendConfig, ConfigError, QuotaConfig, RedisConfig, StoreConfig};
pub use error::StoreError;
pub use keys::{KeyScheduleStore, ScheduleVersion, ScheduledKey};
pub use memory::MemoryStore;
pub use oauth::{AuthCodes, FamilyId, Redemption, RefreshFamilies, Rotation, SealedTokens};
pub use replay::{DEFAULT_MARKERS_PER_HOLDER, MarkerKind, SingleUseMarkers};
pub use revocation::{
    DEFAULT_MAX_REVOCATIONS, Principal, ReplicaOptions, Revocation, RevocationEvent,
    RevocationReplica, RevocationSet,
};
pub use seal::Sealer;
pub use sessions::{SessionBindings, SessionCheck};
pub use store::{Cap, Channel, Entry, Notification, Quota, Store, Subscription, Swap, UnixMillis};

#[cfg(feature = "embedded")]
pub use embedded::{EmbeddedOpenError, EmbeddedOptions, EmbeddedStore};
#[cfg(feature = "redis")]
pub use redis_store::{RedisConfigError, RedisOptions, RedisStore, RedisTls};
