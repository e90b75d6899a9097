//! The errors of the store and its facades.

use std::time::Duration;

use crate::namespace::Namespace;

/// Why the store could not answer. Every caller fails closed on any of these: a single-use
/// marker that cannot be recorded is refused, a revocation list that cannot be read denies.
///
/// `Display` never shows a key, a value or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or failed (connection refused or dropped, I/O error,
    /// a database error). The operation may or may not have taken effect; callers treat it
    /// as refused. The same store object recovers by itself once the backend is back.
    #[error("the store is unavailable")]
    Unavailable,
    /// The backend did not answer within the configured timeout. As with
    /// [`Unavailable`](Self::Unavailable), the operation may or may not have taken effect.
    #[error("the store did not answer in time")]
    Timeout,
    /// The backend refused our credentials (Redis `AUTH`).
    #[error("the store refused the credentials")]
    AuthenticationFailed,
    /// The per-group quota of the namespace is used up (for example one client recorded as
    /// many live single-use markers as it may).
    #[error("quota exceeded in {namespace}")]
    QuotaExceeded {
        /// The namespace.
        namespace: Namespace,
    },
    /// A group already holds as many live entries as its [`Cap`](crate::Cap) allows (for
    /// example one user has as many calls waiting for approval as they may).
    #[error("cap {index} reached in {namespace}")]
    CapReached {
        /// The namespace.
        namespace: Namespace,
        /// Which of the insertion's caps (its index in the slice given).
        index: usize,
    },
    /// The namespace keeps no caps ([`Namespace::is_capped`]).
    #[error("{namespace} keeps no caps")]
    NotCappable {
        /// The namespace.
        namespace: Namespace,
    },
    /// A bounded backend (memory) holds as many live entries as it may.
    #[error("the store is full")]
    Full,
    /// A scan found more live entries than the caller's bound; nothing partial is returned.
    #[error("more than {limit} entries in {namespace}")]
    TooMany {
        /// The namespace.
        namespace: Namespace,
        /// The caller's bound.
        limit: usize,
    },
    /// The namespace keeps no index and cannot be scanned.
    #[error("{namespace} cannot be scanned")]
    NotScannable {
        /// The namespace.
        namespace: Namespace,
    },
    /// A local replica has not been confirmed by the store for longer than its bound; lookups
    /// fail closed until it resynchronises.
    #[error("the local replica is stale (last synchronised {age:?} ago)")]
    Stale {
        /// Time since the last successful synchronisation (`None`: never synchronised).
        age: Option<Duration>,
    },
    /// A stored value does not decode (or does not open under the sealing key).
    #[error("a stored value in {namespace} is corrupt or sealed under another key")]
    Corrupt {
        /// The namespace.
        namespace: Namespace,
    },
    /// The write carried an expiry that has already passed, or no expiry where one is
    /// required (single-use markers and quota groups).
    #[error("invalid expiry")]
    InvalidExpiry,
    /// A key was empty or longer than `MAX_KEY_LEN` (256 bytes), or a value
    /// longer than `MAX_VALUE_LEN` (1 MiB).
    #[error("invalid key or value size")]
    InvalidSize,
    /// Sealing or opening a value failed (no key configured, or the crypto backend failed).
    #[error("sealing failed")]
    Sealing,
    /// The store was shut down.
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// Whether the error means "the store could not answer" (as opposed to a definite answer
    /// such as a quota or a corrupt value). Readiness probes report these.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable
                | Self::Timeout
                | Self::AuthenticationFailed
                | Self::Stale { .. }
                | Self::Closed
        )
    }
}
