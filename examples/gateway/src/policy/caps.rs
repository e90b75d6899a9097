//! Caps kept in the shared store: per user, per agent and per upstream route, the most calls
//! waiting for an administrator's approval and the most MCP sessions at once (threats G37
//! and G38 in `docs/threat-model.md`).
//!
//! Unlike the limits of [`crate::policy::fairness`], held in each instance's memory, these
//! count entries of the store ([`idjag_store::Cap`]), so every instance sharing it sees one
//! count: a held call counts until it is decided or expires, a session until it is deleted
//! or idle past its time. The check and the insertion it guards are one atomic store
//! operation, so concurrent requests over a cap never all get in. The principals' keys are
//! those of [`fairness::principal_keys`]: SHA-256 digests, the same on every instance.
//!
//! - **User** (issuer and `sub`): fairness between people; the cap to set first.
//! - **Agent** (`azp` or `client_id`, per issuer): one misbehaving agent, used by many
//!   people, cannot fill the approval queue or open sessions without end.
//! - **Upstream** (the route): a bound on what one upstream is given (its sessions, its
//!   administrators' queue), whoever calls it. On its own it is no fairness: one user can
//!   take all of it, so pair it with a user cap.
//!
//! A refusal is a [`Limited`]: `429 Too Many Requests` with `Retry-After: 1` (a place comes
//! back when the principal ends a session or an administrator decides, which the client
//! cannot time) and the audit reason `limit_<principal>_{pending_approvals,sessions}`.

use idjag_store::Cap;

use crate::inbound::Identity;
use crate::policy::fairness::{self, LimitKind, Limited, LimitsPlan, Principal};

/// The caps that apply to one insertion: each principal with a cap of the kind, its group in
/// the store and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCaps {
    kind: LimitKind,
    groups: Vec<(Principal, Vec<u8>, u32)>,
}

const PRINCIPALS: [Principal; 3] = [Principal::User, Principal::Agent, Principal::Upstream];

impl StoreCaps {
    /// The caps on calls waiting for approval of `identity` at `upstream`.
    pub fn pending_approvals(plan: &LimitsPlan, identity: &Identity, upstream: &str) -> Self {
        Self::of(LimitKind::PendingApprovals, plan, identity, upstream)
    }

    /// The caps on MCP sessions of `identity` at `upstream`.
    pub fn sessions(plan: &LimitsPlan, identity: &Identity, upstream: &str) -> Self {
        Self::of(LimitKind::Sessions, plan, identity, upstream)
    }

    fn of(kind: LimitKind, plan: &LimitsPlan, identity: &Identity, upstream: &str) -> Self {
        let limits = [plan.user, plan.agent, plan.upstream];
        let keys = fairness::principal_keys(identity, upstream);
        let groups = PRINCIPALS
            .into_iter()
            .zip(limits)
            .zip(keys)
            .filter_map(|((principal, limits), key)| {
                let limit = match kind {
                    LimitKind::PendingApprovals => limits.pending_approvals,
                    _ => limits.sessions,
                }?;
                let group = [principal.name().as_bytes(), b":", &key?].concat();
                Some((principal, group, limit.get()))
            })
            .collect();
        Self { kind, groups }
    }

    /// The caps, as the store takes them (none when no cap of the kind is set).
    pub fn caps(&self) -> Vec<Cap<'_>> {
        self.groups
            .iter()
            .map(|(_, group, limit)| Cap::new(group, *limit))
            .collect()
    }

    /// The refusal for the cap the store reports reached (its index in [`caps`](Self::caps)).
    pub fn limited(&self, index: usize) -> Limited {
        let principal = self
            .groups
            .get(index)
            .map_or(Principal::User, |(principal, _, _)| *principal);
        Limited {
            principal,
            kind: self.kind,
            retry_after: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::policy::fairness::PrincipalLimits;

    fn identity(agent: Option<&str>) -> Identity {
        Identity::for_test("alice", agent)
    }

    #[test]
    fn g37_g38_each_principal_with_a_cap_has_its_own_group() {
        let plan = LimitsPlan {
            user: PrincipalLimits {
                pending_approvals: NonZeroU32::new(2),
                sessions: NonZeroU32::new(3),
                ..PrincipalLimits::default()
            },
            agent: PrincipalLimits {
                sessions: NonZeroU32::new(10),
                ..PrincipalLimits::default()
            },
            upstream: PrincipalLimits::default(),
        };
        let alice = identity(Some("agent-a"));
        let held = StoreCaps::pending_approvals(&plan, &alice, "notes");
        assert_eq!(held.caps().len(), 1);
        assert_eq!(held.caps()[0].limit, 2);
        assert_eq!(held.limited(0).reason(), "limit_user_pending_approvals");
        let sessions = StoreCaps::sessions(&plan, &alice, "notes");
        let limits: Vec<u32> = sessions.caps().iter().map(|c| c.limit).collect();
        assert_eq!(limits, [3, 10]);
        assert_eq!(sessions.limited(1).reason(), "limit_agent_sessions");
        assert_eq!(sessions.limited(1).retry_after, 1);
        // The user's and the agent's groups differ, and are the same for every request.
        assert_ne!(sessions.caps()[0].group, sessions.caps()[1].group);
        assert_eq!(sessions, StoreCaps::sessions(&plan, &alice, "wiki"));
        // No agent in the token: no agent cap.
        let anonymous_agent = StoreCaps::sessions(&plan, &identity(None), "notes");
        assert_eq!(anonymous_agent.caps().len(), 1);
        assert!(
            StoreCaps::pending_approvals(&LimitsPlan::default(), &alice, "notes")
                .caps()
                .is_empty()
        );
    }
}
