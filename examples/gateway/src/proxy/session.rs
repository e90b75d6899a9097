//! MCP sessions bound to the principal that created them (threat G14).
//!
//! When an upstream answers with a new `Mcp-Session-Id`, the gateway records which user
//! (issuer and subject) it belongs to. A later request carrying that id must come from the
//! same user; a request with an id the gateway does not know, or one bound to someone else,
//! gets 404, the answer MCP clients take as "start a new session", and which does not tell
//! an attacker whether the id exists. Ids are kept as SHA-256 digests, per upstream, in a
//! bounded cache (least recently used ids are dropped first, idle ones after a while).

use std::time::Duration;

use sha2::{Digest, Sha256};

/// The key of a session: upstream and the digest of its id.
type Key = (String, [u8; 32]);

/// How a presented session id relates to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionCheck {
    /// Bound to this caller.
    Owned,
    /// Unknown here, or bound to another caller: answered alike, with 404.
    NotFound,
}

/// Session bindings.
#[derive(Debug)]
pub struct Sessions {
    bindings: moka::future::Cache<Key, [u8; 32]>,
}

fn digest(id: &[u8]) -> [u8; 32] {
    Sha256::digest(id).into()
}

impl Sessions {
    /// At most `capacity` sessions, each forgotten after `idle` without use.
    pub fn new(capacity: u64, idle: Duration) -> Self {
        Self {
            bindings: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(idle)
                .build(),
        }
    }

    /// Whether `id` at `upstream` belongs to `principal`.
    pub async fn check(&self, upstream: &str, id: &[u8], principal: &[u8; 32]) -> SessionCheck {
        match self.bindings.get(&(upstream.to_owned(), digest(id))).await {
            Some(owner) if owner == *principal => SessionCheck::Owned,
            _ => SessionCheck::NotFound,
        }
    }

    /// Binds a session the upstream just created to `principal`. Returns `false` (and
    /// changes nothing) when the id is already bound to someone else.
    pub async fn bind(&self, upstream: &str, id: &[u8], principal: [u8; 32]) -> bool {
        let entry = self
            .bindings
            .entry((upstream.to_owned(), digest(id)))
            .or_insert(principal)
            .await;
        *entry.value() == principal
    }

    /// Forgets a session (after a successful DELETE).
    pub async fn remove(&self, upstream: &str, id: &[u8]) {
        self.bindings
            .invalidate(&(upstream.to_owned(), digest(id)))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn g14_a_session_answers_only_its_owner() {
        let sessions = Sessions::new(100, Duration::from_secs(60));
        let (alice, bob) = ([1; 32], [2; 32]);
        assert!(sessions.bind("notes", b"s1", alice).await);
        assert_eq!(
            sessions.check("notes", b"s1", &alice).await,
            SessionCheck::Owned
        );
        assert_eq!(
            sessions.check("notes", b"s1", &bob).await,
            SessionCheck::NotFound
        );
        assert_eq!(
            sessions.check("other", b"s1", &alice).await,
            SessionCheck::NotFound
        );
        assert_eq!(
            sessions.check("notes", b"unknown", &alice).await,
            SessionCheck::NotFound
        );
        assert!(!sessions.bind("notes", b"s1", bob).await);
        assert_eq!(
            sessions.check("notes", b"s1", &alice).await,
            SessionCheck::Owned
        );
        sessions.remove("notes", b"s1").await;
        assert_eq!(
            sessions.check("notes", b"s1", &alice).await,
            SessionCheck::NotFound
        );
    }
}
