//! Calls held for an administrator's approval, shared by every gateway instance.
//!
//! Each gated call has a key (the gateway's SHA-256 over user, upstream, tool and canonical
//! arguments). The state machine, every transition a compare-and-swap on the record:
//!
//! ```text
//!   (none) --gate--> Pending --decide(approve)--> Approved --gate--> Consumed
//!                       \--decide(reject)---> Rejected
//!   any state --ttl passes--> (gone)
//! ```
//!
//! - The first [`gate`](Approvals::gate) (or [`gate_capped`](Approvals::gate_capped)) of a call creates a `Pending` record (on any
//!   instance: concurrent first calls create one record). The record counts in the caps the
//!   gate is given (a [`Cap`] per principal: at most so many calls of one user waiting), in
//!   the same atomic insertion: of concurrent first calls over a cap none is held
//!   ([`Gate::CapReached`]), and none past it ever is.
//! - A record leaves its caps when it is decided (the decision is a [`Swap::Release`]),
//!   when it expires undecided, or when it is dropped; consumed and rejected records no
//!   longer count.
//! - [`decide`](Approvals::decide) moves `Pending` to `Approved` or `Rejected` once, and
//!   restarts the time to live.
//! - The next `gate` of the same call on any instance consumes an `Approved` record: of
//!   concurrent retries exactly one gets [`Gate::Proceed`]; the others (and later retries)
//!   are held again under a new id.

use std::sync::Arc;
use std::time::Duration;

use idjag_core::SharedClock;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StoreError;
use crate::store::{Cap, Namespace, Quota, Store, Swap, digest, hex, now_millis};

/// The state of a held call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved: the next identical call runs.
    Approved,
    /// Rejected.
    Rejected,
    /// Approved and used by one call.
    Consumed,
}

/// One held call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApprovalRecord {
    /// The approval id (`apr_` and 32 hex digits).
    pub id: String,
    /// Its state.
    pub status: ApprovalStatus,
    /// The call key, hex.
    pub call: String,
    /// When it was held (Unix seconds).
    pub created: i64,
    /// When it (or its approval) expires (Unix seconds).
    pub expires: i64,
    /// What the gateway shows administrators (upstream, tool, user, recorded arguments...).
    pub details: Value,
}

/// What to do with a gated call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gate {
    /// Approved: run it (the approval is now consumed).
    Proceed {
        /// The approval consumed.
        id: String,
    },
    /// Held: waiting for a decision.
    Held {
        /// The approval id.
        id: String,
        /// Whether this call created it.
        new: bool,
    },
    /// Rejected by an administrator.
    Rejected {
        /// The approval id.
        id: String,
    },
    /// Too many calls are waiting.
    Full,
    /// A principal already has as many calls waiting as its cap allows: nothing was held.
    CapReached {
        /// Which of the caps given to [`gate`](Approvals::gate) (its index).
        index: usize,
    },
}

/// Why a decision was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecideError {
    /// No such id (or it expired).
    #[error("no such pending call")]
    NotFound,
    /// Already approved, rejected or consumed.
    #[error("already decided")]
    AlreadyDecided,
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many times a transition is retried when another instance changed the record between
/// our read and our write.
const ATTEMPTS: usize = 8;

/// The quota group of pending records.
const PENDING_GROUP: &[u8] = b"held";

/// The held calls. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Approvals {
    store: Arc<dyn Store>,
    ttl: i64,
    max_pending: u32,
    max_listed: usize,
    clock: SharedClock,
}

fn corrupt() -> StoreError {
    StoreError::Corrupt {
        namespace: Namespace::Approvals,
    }
}

fn record_key(id: &str) -> [u8; 32] {
    digest(&[id.as_bytes()])
}

impl Approvals {
    /// Calls wait `ttl` for a decision (and an approval stays usable as long); at most
    /// `max_pending` calls may be held within one `ttl`.
    pub fn new(store: Arc<dyn Store>, ttl: Duration, max_pending: u32, clock: SharedClock) -> Self {
        Self {
            store,
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).max(1),
            max_pending,
            max_listed: 10_000,
            clock,
        }
    }

    fn now(&self) -> i64 {
        now_millis(&self.clock).div_euclid(1000)
    }

    async fn read(&self, id: &str) -> Result<Option<(ApprovalRecord, Vec<u8>)>, StoreError> {
        match self
            .store
            .get(Namespace::Approvals, &record_key(id))
            .await?
        {
            None => Ok(None),
            Some(e) => {
                let record: ApprovalRecord =
                    serde_json::from_slice(&e.value).map_err(|_| corrupt())?;
                Ok(Some((record, e.value)))
            }
        }
    }

    /// Replaces a record (if still `old`); a record no longer pending leaves its caps.
    async fn replace(&self, old: &[u8], record: &ApprovalRecord) -> Result<bool, StoreError> {
        let value = serde_json::to_vec(record).map_err(|_| corrupt())?;
        let expires = Some(record.expires.saturating_mul(1000));
        let new = if record.status == ApprovalStatus::Pending {
            Swap::Set(&value, expires)
        } else {
            Swap::Release(&value, expires)
        };
        self.store
            .compare_and_swap(
                Namespace::Approvals,
                &record_key(&record.id),
                Some(old),
                new,
            )
            .await
    }

    /// The gate for the call with key `call`. `details` are stored with a new hold.
    pub async fn gate(&self, call: [u8; 32], details: &Value) -> Result<Gate, StoreError> {
        self.gate_capped(call, details, &[]).await
    }

    /// [`gate`](Self::gate), a new hold counting in each of `caps` until it is decided,
    /// dropped or expires (at most [`MAX_CAPS`](crate::store::MAX_CAPS)). Past a cap,
    /// nothing is held: [`Gate::CapReached`].
    pub async fn gate_capped(
        &self,
        call: [u8; 32],
        details: &Value,
        caps: &[Cap<'_>],
    ) -> Result<Gate, StoreError> {
        for _ in 0..ATTEMPTS {
            if let Some(index) = self.store.get(Namespace::ApprovalCalls, &call).await? {
                let id = String::from_utf8(index.value.clone()).map_err(|_| corrupt())?;
                let found = self.read(&id).await?;
                match found {
                    Some((record, _)) if record.status == ApprovalStatus::Pending => {
                        return Ok(Gate::Held { id, new: false });
                    }
                    Some((record, _)) if record.status == ApprovalStatus::Rejected => {
                        return Ok(Gate::Rejected { id });
                    }
                    Some((mut record, raw)) if record.status == ApprovalStatus::Approved => {
                        record.status = ApprovalStatus::Consumed;
                        if self.replace(&raw, &record).await? {
                            // Free the call key so the next identical call is held anew.
                            self.store
                                .compare_and_swap(
                                    Namespace::ApprovalCalls,
                                    &call,
                                    Some(&index.value),
                                    Swap::Delete,
                                )
                                .await?;
                            return Ok(Gate::Proceed { id });
                        }
                        continue;
                    }
                    _ => {
                        // Consumed or expired: forget it and hold anew.
                        self.store
                            .compare_and_swap(
                                Namespace::ApprovalCalls,
                                &call,
                                Some(&index.value),
                                Swap::Delete,
                            )
                            .await?;
                        continue;
                    }
                }
            }
            let now = self.now();
            let id = format!(
                "apr_{}",
                idjag_core::random::hex_id(16).map_err(|_| StoreError::Unavailable)?
            );
            let record = ApprovalRecord {
                id: id.clone(),
                status: ApprovalStatus::Pending,
                call: hex(&call),
                created: now,
                expires: now.saturating_add(self.ttl),
                details: details.clone(),
            };
            let expires_ms = record.expires.saturating_mul(1000);
            let value = serde_json::to_vec(&record).map_err(|_| corrupt())?;
            let key = record_key(&id);
            match self
                .store
                .insert_capped(
                    Namespace::Approvals,
                    &key,
                    &value,
                    expires_ms,
                    Some(Quota::new(PENDING_GROUP, self.max_pending)),
                    caps,
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(StoreError::QuotaExceeded { .. }) => return Ok(Gate::Full),
                Err(StoreError::CapReached { index, .. }) => return Ok(Gate::CapReached { index }),
                Err(e) => return Err(e),
            }
            if self
                .store
                .insert_if_absent(
                    Namespace::ApprovalCalls,
                    &call,
                    id.as_bytes(),
                    Some(expires_ms),
                    None,
                )
                .await?
            {
                return Ok(Gate::Held { id, new: true });
            }
            // Another instance held the same call first: drop ours and use theirs.
            self.store.remove(Namespace::Approvals, &key).await?;
        }
        Err(StoreError::Unavailable)
    }

    /// Approves or rejects a pending call. An approval is usable for the time to live from
    /// now.
    pub async fn decide(&self, id: &str, approve: bool) -> Result<ApprovalRecord, DecideError> {
        for _ in 0..ATTEMPTS {
            let Some((mut record, raw)) = self.read(id).await? else {
                return Err(DecideError::NotFound);
            };
            if record.status != ApprovalStatus::Pending {
                return Err(DecideError::AlreadyDecided);
            }
            record.status = if approve {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Rejected
            };
            record.expires = self.now().saturating_add(self.ttl);
            if self.replace(&raw, &record).await? {
                // Keep the call key as long as the decision.
                let call = crate::store::unhex(record.call.as_bytes()).ok_or_else(corrupt)?;
                self.store
                    .compare_and_swap(
                        Namespace::ApprovalCalls,
                        &call,
                        Some(id.as_bytes()),
                        Swap::Set(id.as_bytes(), Some(record.expires.saturating_mul(1000))),
                    )
                    .await?;
                return Ok(record);
            }
        }
        Err(DecideError::Store(StoreError::Unavailable))
    }

    /// One held call.
    pub async fn get(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        Ok(self.read(id).await?.map(|(r, _)| r))
    }

    /// Every held call not yet expired (consumed ones included), oldest first.
    pub async fn list(&self) -> Result<Vec<ApprovalRecord>, StoreError> {
        let mut list = self
            .store
            .scan(Namespace::Approvals, self.max_listed)
            .await?
            .into_iter()
            .map(|(_, e)| serde_json::from_slice::<ApprovalRecord>(&e.value).map_err(|_| corrupt()))
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(list)
    }
}
