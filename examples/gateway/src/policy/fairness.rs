//! Fairness: per-principal limits, so that one user, one agent or the traffic to one upstream
//! cannot take the whole gateway (threat G34 in `docs/threat-model.md`).
//!
//! For each kind of principal ([`Principal`]: the user, the agent, the upstream route) the
//! plan may set a request rate (GCRA, through `governor`'s keyed limiter), a most requests
//! in flight (an answer streamed back counts until it ends) and a most open GET streams.
//! [`Fairness::admit`] checks them all after authentication, before the body is read;
//! the first limit reached refuses the request with `429 Too Many Requests`, a
//! `Retry-After` (the time until the rate allows one more, or one second for a concurrency
//! limit) and the audit reason [`Limited::reason`]. An [`Admission`] holds its places until
//! it drops. Keys are SHA-256 digests of the principal, so no identifier is held in clear.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::inbound::Identity;

/// Per-principal limits (`None`: no limit of that kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PrincipalLimits {
    /// Most requests in flight, streamed answers counted until they end.
    pub in_flight: Option<NonZeroU32>,
    /// Most open GET streams.
    pub streams: Option<NonZeroU32>,
    /// A request rate.
    pub rate: Option<RatePlan>,
    /// Most calls waiting for approval, in the store ([`crate::policy::caps`]).
    pub pending_approvals: Option<NonZeroU32>,
    /// Most MCP sessions, in the store ([`crate::policy::caps`]).
    pub sessions: Option<NonZeroU32>,
}

/// A request rate: one request per `interval`, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RatePlan {
    /// The time one request's allowance takes to come back (`per` / `requests`).
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub interval: Duration,
    /// Most requests at once.
    pub burst: NonZeroU32,
}

/// `[limits]`: per user, per agent, per upstream route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LimitsPlan {
    /// Per user (issuer and `sub`).
    pub user: PrincipalLimits,
    /// Per agent (`azp` or `client_id`).
    pub agent: PrincipalLimits,
    /// Per upstream route.
    pub upstream: PrincipalLimits,
}

/// Rate-limiter keys are pruned of idle principals every this many admissions.
const PRUNE_EVERY: u64 = 4096;

type Key = [u8; 32];

/// A kind of principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// The user (issuer and `sub`).
    User,
    /// The agent (`azp` or `client_id`).
    Agent,
    /// The upstream route.
    Upstream,
}

/// Which limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// The request rate.
    Rate,
    /// Requests in flight.
    InFlight,
    /// Open GET streams.
    Streams,
    /// Calls waiting for approval ([`crate::policy::caps`]).
    PendingApprovals,
    /// MCP sessions ([`crate::policy::caps`]).
    Sessions,
}

impl Principal {
    /// The stable name (`user`, `agent`, `upstream`), a metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
            Self::Upstream => "upstream",
        }
    }
}

impl LimitKind {
    /// The stable name (`rate`, `in_flight`, `streams`, `pending_approvals`, `sessions`), a
    /// metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rate => "rate",
            Self::InFlight => "in_flight",
            Self::Streams => "streams",
            Self::PendingApprovals => "pending_approvals",
            Self::Sessions => "sessions",
        }
    }
}

/// A refusal: which principal, which limit, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limited {
    /// The principal whose limit was reached.
    pub principal: Principal,
    /// The limit.
    pub kind: LimitKind,
    /// Seconds until a retry may pass (at least 1).
    pub retry_after: u64,
}

impl Limited {
    /// The audit reason:
    /// `limit_{user,agent,upstream}_{rate,in_flight,streams,pending_approvals,sessions}`.
    pub fn reason(&self) -> &'static str {
        use LimitKind::*;
        use Principal::*;
        match (self.principal, self.kind) {
            (User, Rate) => "limit_user_rate",
            (User, InFlight) => "limit_user_in_flight",
            (User, Streams) => "limit_user_streams",
            (Agent, Rate) => "limit_agent_rate",
            (Agent, InFlight) => "limit_agent_in_flight",
            (Agent, Streams) => "limit_agent_streams",
            (Upstream, Rate) => "limit_upstream_rate",
            (Upstream, InFlight) => "limit_upstream_in_flight",
            (Upstream, Streams) => "limit_upstream_streams",
            (User, PendingApprovals) => "limit_user_pending_approvals",
            (User, Sessions) => "limit_user_sessions",
            (Agent, PendingApprovals) => "limit_agent_pending_approvals",
            (Agent, Sessions) => "limit_agent_sessions",
            (Upstream, PendingApprovals) => "limit_upstream_pending_approvals",
            (Upstream, Sessions) => "limit_upstream_sessions",
        }
    }
}

/// Live counts of one principal.
#[derive(Debug, Default)]
struct Live {
    in_flight: u32,
    streams: u32,
}

type LiveMap = Arc<Mutex<HashMap<Key, Live>>>;

/// The limits of one kind of principal.
struct Limiter {
    principal: Principal,
    limits: PrincipalLimits,
    rate: Option<DefaultKeyedRateLimiter<Key>>,
    live: LiveMap,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("principal", &self.principal)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    fn new(principal: Principal, limits: PrincipalLimits) -> Self {
        let rate = limits.rate.and_then(|rate| {
            Quota::with_period(rate.interval)
                .map(|quota| RateLimiter::keyed(quota.allow_burst(rate.burst)))
        });
        Self {
            principal,
            limits,
            rate,
            live: Arc::default(),
        }
    }

    fn limited(&self, kind: LimitKind, retry_after: u64) -> Limited {
        Limited {
            principal: self.principal,
            kind,
            retry_after: retry_after.max(1),
        }
    }

    /// Whether a request (`stream`: a GET stream) has anything to check here.
    fn applies(&self, stream: bool) -> bool {
        self.rate.is_some()
            || self.limits.in_flight.is_some()
            || (stream && self.limits.streams.is_some())
    }

    fn check_rate(&self, key: &Key) -> Result<(), Limited> {
        let Some(rate) = &self.rate else {
            return Ok(());
        };
        rate.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            self.limited(LimitKind::Rate, ceil_secs(wait))
        })
    }

    /// Takes an in-flight place (and a stream place for a stream), or says which is full.
    fn enter(&self, key: Key, stream: bool) -> Result<Option<Held>, Limited> {
        let (in_flight, streams) = (self.limits.in_flight, self.limits.streams);
        if in_flight.is_none() && (streams.is_none() || !stream) {
            return Ok(None);
        }
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let entry = live.entry(key).or_default();
        if in_flight.is_some_and(|max| entry.in_flight >= max.get()) {
            return Err(self.limited(LimitKind::InFlight, 1));
        }
        if stream && streams.is_some_and(|max| entry.streams >= max.get()) {
            return Err(self.limited(LimitKind::Streams, 1));
        }
        entry.in_flight += 1;
        entry.streams += u32::from(stream);
        Ok(Some(Held {
            live: self.live.clone(),
            key,
            stream,
        }))
    }
}

fn ceil_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// One principal's places, given back on drop.
#[derive(Debug)]
struct Held {
    live: LiveMap,
    key: Key,
    stream: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = live.get_mut(&self.key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.streams = entry.streams.saturating_sub(u32::from(self.stream));
            if entry.in_flight == 0 && entry.streams == 0 {
                live.remove(&self.key);
            }
        }
    }
}

/// The places one request holds; they are given back when it drops.
#[derive(Debug, Default)]
pub struct Admission {
    _held: Vec<Held>,
}

/// Per-principal limits. See the [module docs](self).
#[derive(Debug)]
pub struct Fairness {
    plan: LimitsPlan,
    limiters: [Limiter; 3],
    admitted: AtomicU64,
}

impl Fairness {
    /// The limits of `plan`.
    pub fn new(plan: &LimitsPlan) -> Self {
        Self {
            plan: *plan,
            limiters: [
                Limiter::new(Principal::User, plan.user),
                Limiter::new(Principal::Agent, plan.agent),
                Limiter::new(Principal::Upstream, plan.upstream),
            ],
            admitted: AtomicU64::new(0),
        }
    }

    /// The planned limits (the store caps of [`crate::policy::caps`] are read from them).
    pub fn plan(&self) -> &LimitsPlan {
        &self.plan
    }

    /// Admits one request of `identity` to `upstream` (`stream`: a GET stream), or says
    /// which limit refuses it.
    pub fn admit(
        &self,
        identity: &Identity,
        upstream: &str,
        stream: bool,
    ) -> Result<Admission, Limited> {
        if self.admitted.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            for limiter in &self.limiters {
                if let Some(rate) = &limiter.rate {
                    rate.retain_recent();
                }
            }
        }
        let mut admission = Admission::default();
        for limiter in &self.limiters {
            // A principal is digested only for a limiter with something to check.
            if !limiter.applies(stream) {
                continue;
            }
            let Some(key) = principal_key(identity, upstream, limiter.principal) else {
                continue;
            };
            limiter.check_rate(&key)?;
            if let Some(held) = limiter.enter(key, stream)? {
                admission._held.push(held);
            }
        }
        Ok(admission)
    }
}

/// The keys of the user, the agent (when the token names one) and the upstream route, in
/// the order of [`Principal`]: SHA-256 digests, the same on every instance.
pub fn principal_keys(identity: &Identity, upstream: &str) -> [Option<Key>; 3] {
    [Principal::User, Principal::Agent, Principal::Upstream]
        .map(|principal| principal_key(identity, upstream, principal))
}

/// The key of one principal of a request (`None`: the token names no agent).
fn principal_key(identity: &Identity, upstream: &str, principal: Principal) -> Option<Key> {
    match principal {
        Principal::User => Some(identity.principal_key()),
        Principal::Agent => identity
            .agent
            .as_deref()
            .map(|agent| digest(&[identity.issuer.as_str(), agent])),
        Principal::Upstream => Some(digest(&[upstream])),
    }
}

fn digest(parts: &[&str]) -> Key {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
    }

    fn identity(user: &str, agent: &str) -> Identity {
        Identity::for_test(user, Some(agent))
    }

    #[test]
    fn g34_each_principal_is_limited_on_its_own_and_places_come_back() {
        let plan = LimitsPlan {
            user: PrincipalLimits {
                in_flight: limit(2),
                streams: limit(1),
                ..PrincipalLimits::default()
            },
            agent: PrincipalLimits {
                in_flight: limit(3),
                ..PrincipalLimits::default()
            },
            upstream: PrincipalLimits::default(),
        };
        let fairness = Fairness::new(&plan);
        let (alice, bob, carol) = (
            identity("alice", "a"),
            identity("bob", "a"),
            identity("carol", "a"),
        );
        let first = fairness.admit(&alice, "notes", true).unwrap();
        let stream = fairness.admit(&alice, "notes", true).unwrap_err();
        assert_eq!(stream.reason(), "limit_user_streams");
        let second = fairness.admit(&alice, "notes", false).unwrap();
        assert_eq!(
            fairness.admit(&alice, "notes", false).unwrap_err(),
            Limited {
                principal: Principal::User,
                kind: LimitKind::InFlight,
                retry_after: 1
            }
        );
        // Bob is his own user, but shares the agent: its third place is his.
        let _bob = fairness.admit(&bob, "notes", false).unwrap();
        assert_eq!(
            fairness.admit(&carol, "notes", false).unwrap_err().reason(),
            "limit_agent_in_flight"
        );
        drop((first, second));
        let _again = fairness.admit(&alice, "notes", true).unwrap();
        let _carol = fairness.admit(&carol, "notes", false).unwrap();
    }

    #[test]
    fn g34_a_rate_refuses_with_the_time_to_wait() {
        let plan = LimitsPlan {
            upstream: PrincipalLimits {
                rate: Some(RatePlan {
                    interval: Duration::from_secs(3600),
                    burst: NonZeroU32::new(2).unwrap(),
                }),
                ..PrincipalLimits::default()
            },
            ..LimitsPlan::default()
        };
        let fairness = Fairness::new(&plan);
        let alice = identity("alice", "a");
        fairness.admit(&alice, "notes", false).unwrap();
        fairness.admit(&alice, "notes", false).unwrap();
        let refused = fairness.admit(&alice, "notes", false).unwrap_err();
        assert_eq!(refused.reason(), "limit_upstream_rate");
        assert!((3500..=3600).contains(&refused.retry_after));
        // Another route has its own allowance.
        fairness.admit(&alice, "wiki", false).unwrap();
    }
}
