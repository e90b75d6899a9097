//! MCP sessions bound to the principal that created them, shared by every gateway instance.
//!
//! A session id is stored as SHA-256 over (upstream, id), bound to a 32-byte principal key
//! (the gateway's digest of issuer and subject). A binding lives `idle` after its last use; a
//! check renews it once less than half of that remains, so a busy session costs one write per
//! half idle period, not one per request.
//!
//! A binding may count in caps (a [`Cap`] per principal: at most so many sessions of one
//! user): [`bind_capped`](SessionBindings::bind_capped) refuses a new session past a cap
//! ([`StoreError::CapReached`]) in the same atomic insertion, and a session stops counting
//! once removed or idle past its time.

use std::sync::Arc;
use std::time::Duration;

use idjag_core::SharedClock;

use crate::error::StoreError;
use crate::store::{Cap, Namespace, Store, Swap, digest, now_millis};

/// How a presented session id relates to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionCheck {
    /// Bound to this caller.
    Owned,
    /// Unknown, expired, or bound to another caller (answered alike).
    NotFound,
}

/// Session bindings. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SessionBindings {
    store: Arc<dyn Store>,
    idle: i64,
    clock: SharedClock,
}

fn key(upstream: &str, id: &[u8]) -> [u8; 32] {
    digest(&[upstream.as_bytes(), id])
}

impl SessionBindings {
    /// Bindings forgotten `idle` after their last use.
    pub fn new(store: Arc<dyn Store>, idle: Duration, clock: SharedClock) -> Self {
        Self {
            store,
            idle: i64::try_from(idle.as_millis()).unwrap_or(i64::MAX).max(1),
            clock,
        }
    }

    fn expiry(&self) -> i64 {
        now_millis(&self.clock).saturating_add(self.idle)
    }

    /// Binds a session the upstream just created to `principal`. Returns `false` (and changes
    /// nothing) when the id is already bound to someone else.
    pub async fn bind(
        &self,
        upstream: &str,
        id: &[u8],
        principal: [u8; 32],
    ) -> Result<bool, StoreError> {
        self.bind_capped(upstream, id, principal, &[]).await
    }

    /// [`bind`](Self::bind), the binding counting in each of `caps`. Returns `false` (and changes nothing) when the id is already bound to someone
    /// else; fails with [`StoreError::CapReached`] (and binds nothing) when one of `caps` is
    /// reached.
    pub async fn bind_capped(
        &self,
        upstream: &str,
        id: &[u8],
        principal: [u8; 32],
        caps: &[Cap<'_>],
    ) -> Result<bool, StoreError> {
        let k = key(upstream, id);
        if self
            .store
            .insert_capped(
                Namespace::Sessions,
                &k,
                &principal,
                self.expiry(),
                None,
                caps,
            )
            .await?
        {
            return Ok(true);
        }
        Ok(self.check(upstream, id, &principal).await? == SessionCheck::Owned)
    }

    /// Whether `id` at `upstream` belongs to `principal`; renews the binding when due.
    pub async fn check(
        &self,
        upstream: &str,
        id: &[u8],
        principal: &[u8; 32],
    ) -> Result<SessionCheck, StoreError> {
        let k = key(upstream, id);
        let Some(entry) = self.store.get(Namespace::Sessions, &k).await? else {
            return Ok(SessionCheck::NotFound);
        };
        if entry.value.as_slice() != principal.as_slice() {
            return Ok(SessionCheck::NotFound);
        }
        let now = now_millis(&self.clock);
        if entry
            .expires_at
            .is_some_and(|at| at.saturating_sub(now) < self.idle / 2)
        {
            // Losing this race (a concurrent renewal or removal) changes nothing for the caller.
            self.store
                .compare_and_swap(
                    Namespace::Sessions,
                    &k,
                    Some(principal),
                    Swap::Set(principal, Some(self.expiry())),
                )
                .await?;
        }
        Ok(SessionCheck::Owned)
    }

    /// Forgets a session (after a successful DELETE); whether it was bound.
    pub async fn remove(&self, upstream: &str, id: &[u8]) -> Result<bool, StoreError> {
        self.store
            .remove(Namespace::Sessions, &key(upstream, id))
            .await
    }
}
