//! What a verified caller may do, decided before anything goes upstream: access rules down
//! to the tool, argument guardrails, approvals held for an administrator, and revocations.
//!
//! | module | job |
//! |---|---|
//! | [`access`] | per team or user, per upstream, allow and deny lists of tools (deny wins); scopes per tool |
//! | [`guardrails`] | per-tool argument rules (JSON pointer, patterns, sizes) |
//! | [`approval`] | calls held for an administrator's approval, run once when approved, on every instance; RFC 8785 arguments |
//! | [`fairness`] | per user, agent and upstream limits: rates, requests in flight, open streams (429) |
//! | [`caps`] | per user, agent and upstream caps in the shared store: calls waiting for approval, MCP sessions (429) |
//! | [`revocation`] | offboarding: revoked users and clients on every instance, their streams closed; fail closed when stale |

pub mod access;
pub mod approval;
pub mod caps;
pub mod fairness;
pub mod guardrails;
pub mod revocation;
