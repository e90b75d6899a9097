//! Offboarding: revoking a user or a client (agent) at once, on top of short token
//! lifetimes.
//!
//! A revocation, made through the admin API ([`crate::admin`]), takes effect on the next
//! request (checked right after inbound authentication: 403 with a JSON-RPC error, reason
//! `revoked`), drops the cached inbound validations and the cached upstream tokens of that
//! principal, and closes its open streams with a final `event: close`
//! (`{"reason":"revoked"}`). It lasts until it is lifted or its end (default
//! `[admin] revocation_ttl`) passes. Revocations live in memory: a restarted gateway has
//! none (the IdP's own offboarding, disabling the user, stops new tokens; the tokens already
//! issued end at their short `exp`).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use idjag_core::SharedClock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::inbound::Identity;

/// Who is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
#[non_exhaustive]
pub enum Revoked {
    /// A user (`sub` at the IdP).
    User(String),
    /// A client: the agent (`azp`, `aud` of an ID token, or `client_id`).
    Client(String),
}

impl Revoked {
    /// Whether `identity` is this principal.
    pub fn matches(&self, identity: &Identity) -> bool {
        match self {
            Self::User(user) => identity.user.as_str() == user,
            Self::Client(client) => identity.agent.as_deref() == Some(client.as_str()),
        }
    }
}

/// One revocation as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RevocationView {
    /// Who.
    #[serde(flatten)]
    pub who: Revoked,
    /// Until when (Unix seconds).
    pub until: i64,
}

/// The revocations in force. See the [module docs](self).
#[derive(Debug)]
pub struct Revocations {
    entries: RwLock<HashMap<Revoked, i64>>,
    count: AtomicUsize,
    changed: watch::Sender<u64>,
    clock: SharedClock,
}

impl Revocations {
    /// None yet.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            count: AtomicUsize::new(0),
            changed: watch::channel(0).0,
            clock,
        }
    }

    /// Revokes `who` until `until` (Unix seconds).
    pub fn revoke(&self, who: Revoked, until: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.insert(who, until);
        self.count.store(entries.len(), Ordering::SeqCst);
        drop(entries);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Lifts a revocation; whether there was one.
    pub fn lift(&self, who: &Revoked) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let found = entries.remove(who).is_some();
        self.count.store(entries.len(), Ordering::SeqCst);
        found
    }

    /// The revocations in force.
    pub fn list(&self) -> Vec<RevocationView> {
        let now = self.clock.now_unix();
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = entries
            .iter()
            .filter(|(_, until)| now < **until)
            .map(|(who, until)| RevocationView {
                who: who.clone(),
                until: *until,
            })
            .collect();
        list.sort_by(|a, b| format!("{:?}", a.who).cmp(&format!("{:?}", b.who)));
        list
    }

    /// Whether `identity` is revoked now (one atomic load when nothing is revoked).
    pub fn is_revoked(&self, identity: &Identity) -> bool {
        if self.count.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let now = self.clock.now_unix();
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        [
            Revoked::User(identity.user.as_str().to_owned()),
            Revoked::Client(identity.agent.clone().unwrap_or_default()),
        ]
        .iter()
        .any(|who| entries.get(who).is_some_and(|until| now < *until))
    }

    /// A signal that resolves when `identity` is revoked (for open streams).
    pub fn watch(
        self: &std::sync::Arc<Self>,
        identity: std::sync::Arc<Identity>,
    ) -> RevocationWatch {
        RevocationWatch {
            changes: self.changed.subscribe(),
            revocations: self.clone(),
            identity,
        }
    }
}

/// Resolves when its principal is revoked. See [`Revocations::watch`].
#[derive(Debug)]
pub struct RevocationWatch {
    changes: watch::Receiver<u64>,
    revocations: std::sync::Arc<Revocations>,
    identity: std::sync::Arc<Identity>,
}

impl RevocationWatch {
    /// Waits until the principal is revoked (forever if it never is).
    pub async fn revoked(&mut self) {
        let (revocations, identity) = (&self.revocations, &self.identity);
        if self
            .changes
            .wait_for(|_| revocations.is_revoked(identity))
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}
