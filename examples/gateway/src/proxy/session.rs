//! MCP sessions bound to the principal that created them (threat G14), on every instance.
//!
//! When an upstream answers with a new `Mcp-Session-Id`, the gateway records in the store
//! ([`SessionBindings`]) which user (issuer and subject) it belongs to. A later request
//! carrying that id, on any instance sharing the store, must come from the same user; a
//! request with an id no instance knows, or one bound to someone else, gets 404, the answer
//! MCP clients take as "start a new session", and which does not tell an attacker whether
//! the id exists. Ids are stored as SHA-256 digests, per upstream; a binding is forgotten an
//! hour after its last use, or at once after a successful `DELETE` or an upstream `404`.
//!
//! Each instance remembers the bindings it confirmed for [`CONFIRMED_FOR`], so a busy
//! session costs one store read per instance and period, not one per request (a binding
//! never changes owner, so a remembered one cannot be wrong; at most an ended session is
//! forwarded, and the upstream answers 404). A session the instance has not confirmed
//! recently needs the store: while it cannot answer, such requests get 503
//! (`store_unavailable`).
//!
//! A new session counts in the caller's caps on sessions (`[limits.*] sessions`,
//! [`crate::policy::caps`]) until it is deleted or idle past its time; past one, the
//! binding is refused in the same atomic store operation.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::policy::caps::StoreCaps;
pub use idjag_store::{SessionBindings, SessionCheck, StoreError};

/// How long an instance trusts a binding it confirmed in the store.
pub const CONFIRMED_FOR: Duration = Duration::from_secs(30);

/// The key of a session: upstream and the digest of its id.
type Key = (String, [u8; 32]);

/// Session bindings: the store's, with the recently confirmed ones remembered.
#[derive(Debug)]
pub struct Sessions {
    bindings: SessionBindings,
    confirmed: moka::future::Cache<Key, [u8; 32]>,
}

fn key(upstream: &str, id: &[u8]) -> Key {
    (upstream.to_owned(), Sha256::digest(id).into())
}

impl Sessions {
    /// Bindings in `bindings`; at most `capacity` confirmed ones remembered, each for
    /// [`CONFIRMED_FOR`].
    pub fn new(bindings: SessionBindings, capacity: u64) -> Self {
        Self {
            bindings,
            confirmed: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(CONFIRMED_FOR)
                .build(),
        }
    }

    /// Whether `id` at `upstream` belongs to `principal`.
    pub async fn check(
        &self,
        upstream: &str,
        id: &[u8],
        principal: &[u8; 32],
    ) -> Result<SessionCheck, StoreError> {
        let key = key(upstream, id);
        if self.confirmed.get(&key).await.as_ref() == Some(principal) {
            return Ok(SessionCheck::Owned);
        }
        let check = self.bindings.check(upstream, id, principal).await?;
        if check == SessionCheck::Owned {
            self.confirmed.insert(key, *principal).await;
        }
        Ok(check)
    }

    /// Binds a session the upstream just created to `principal`, counting it in `caps`
    /// ([`crate::policy::caps`]). Returns `false` (and changes nothing) when the id is
    /// already bound to someone else; fails with [`StoreError::CapReached`] (binding
    /// nothing) past a cap.
    pub async fn bind(
        &self,
        upstream: &str,
        id: &[u8],
        principal: [u8; 32],
        caps: &StoreCaps,
    ) -> Result<bool, StoreError> {
        let bound = self
            .bindings
            .bind_capped(upstream, id, principal, &caps.caps())
            .await?;
        if bound {
            self.confirmed.insert(key(upstream, id), principal).await;
        }
        Ok(bound)
    }

    /// Forgets a session (after a successful DELETE, or the upstream's 404).
    pub async fn remove(&self, upstream: &str, id: &[u8]) -> Result<(), StoreError> {
        self.confirmed.invalidate(&key(upstream, id)).await;
        self.bindings.remove(upstream, id).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use idjag_core::TestClock;
    use idjag_store::MemoryStore;

    use super::*;

    #[tokio::test]
    async fn g14_a_session_answers_only_its_owner_on_every_instance() {
        let clock = TestClock::at_unix(1_000);
        let store = Arc::new(MemoryStore::new(clock.shared()));
        let instance = || {
            Sessions::new(
                SessionBindings::new(store.clone(), Duration::from_secs(3600), clock.shared()),
                100,
            )
        };
        let (a, b) = (instance(), instance());
        let (alice, bob) = ([1; 32], [2; 32]);
        let none = StoreCaps::sessions(
            &crate::policy::fairness::LimitsPlan::default(),
            &crate::inbound::Identity {
                issuer: idjag_core::Issuer::new("https://idp.example").unwrap(),
                user: idjag_core::Subject::new("alice").unwrap(),
                teams: Vec::new(),
                agent: None,
                kind: crate::config::InboundKind::IdToken,
                audience: "gw".to_owned(),
                scope: None,
                expires_at: 0,
                session: None,
            },
            "notes",
        );
        assert!(a.bind("notes", b"s1", alice, &none).await.unwrap());
        for sessions in [&a, &b] {
            assert_eq!(
                sessions.check("notes", b"s1", &alice).await,
                Ok(SessionCheck::Owned)
            );
            assert_eq!(
                sessions.check("notes", b"s1", &bob).await,
                Ok(SessionCheck::NotFound)
            );
            assert_eq!(
                sessions.check("other", b"s1", &alice).await,
                Ok(SessionCheck::NotFound)
            );
            assert_eq!(
                sessions.check("notes", b"unknown", &alice).await,
                Ok(SessionCheck::NotFound)
            );
        }
        assert!(!b.bind("notes", b"s1", bob, &none).await.unwrap());
        assert_eq!(
            b.check("notes", b"s1", &alice).await,
            Ok(SessionCheck::Owned)
        );
        b.remove("notes", b"s1").await.unwrap();
        assert_eq!(
            b.check("notes", b"s1", &alice).await,
            Ok(SessionCheck::NotFound)
        );
    }
}
