//! Calls held for an administrator's approval (`[upstream.tools.<name>] approval = true`),
//! shared by every gateway instance through the store ([`idjag_store::Approvals`]).
//!
//! A call of such a tool is bound to a key: the SHA-256 of
//!
//! - the caller: the user (issuer and `sub`) and the agent (`azp`/`client_id`),
//! - the upstream and the tool,
//! - the SHA-256 of the **canonical arguments**: RFC 8785 (JCS) computed from the exact text
//!   the client sent ([`canonical`]; arguments that are not I-JSON, such as a duplicated
//!   member or a number a double cannot hold exactly, are refused rather than approved),
//! - the **policy version**: a digest of the planned policy for that upstream and tool (its
//!   access rules, scopes and guardrails, [`PolicyVersion`]), so an approval given under one
//!   policy is not used under another.
//!
//! The first call is held: the agent gets a JSON-RPC error (`code` -32035, `data.reason`
//! `approval_held`, `data.approval_id`). An administrator lists the held calls and approves
//! or rejects one through the admin API ([`crate::admin`]) of any instance. The agent's
//! retry with the same key then runs **once**, on whichever instance it lands: the approval
//! is consumed by that call (a compare-and-swap in the store: of concurrent retries exactly
//! one runs); a further retry is held again under a new id. A pending call and an approval
//! expire after `[admin] approval_ttl`; a rejection is given back (`approval_rejected`) until
//! then. When the store cannot answer, the call is neither held nor run (503,
//! `store_unavailable`).

pub mod canonical;
pub mod notify;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use canonical::NotCanonical;
pub use idjag_store::{ApprovalRecord, ApprovalStatus, Approvals, DecideError, Gate};

use crate::inbound::Identity;
use crate::policy::caps::StoreCaps;

/// A digest of the planned policy for one upstream and tool: the SHA-256 of the RFC 8785 form
/// of its access rules, tool scopes and guardrails as planned. Shown in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyVersion([u8; 32]);

impl PolicyVersion {
    /// The version of `policy` (the planned rules, as JSON).
    pub fn of(policy: &Value) -> Result<Self, NotCanonical> {
        let canonical = canonical::ExactJson::from_value(policy).canonical()?;
        Ok(Self(Sha256::digest(&canonical).into()))
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl std::fmt::Debug for PolicyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PolicyVersion({})", self.hex())
    }
}

impl Serialize for PolicyVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.hex())
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// The SHA-256 of the canonical arguments of a JSON-RPC `tools/call` message (`body`, the
/// text as received): RFC 8785 of `params.arguments`, `{}` when absent.
pub fn arguments_digest(body: &[u8]) -> Result<[u8; 32], NotCanonical> {
    let message = canonical::ExactJson::parse(body)?;
    let arguments = match message.member("params")? {
        Some(params) => params.member("arguments")?,
        None => None,
    };
    let canonical = match arguments {
        Some(arguments) => arguments.canonical()?,
        None => b"{}".to_vec(),
    };
    Ok(Sha256::digest(&canonical).into())
}

/// What the gateway knows about one call to gate.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallToGate<'a> {
    /// The caller (user and agent).
    pub identity: &'a Identity,
    /// The upstream.
    pub upstream: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// The SHA-256 of the canonical arguments ([`arguments_digest`]).
    pub arguments_sha256: [u8; 32],
    /// The planned policy of the tool.
    pub policy_version: PolicyVersion,
    /// The arguments as recorded for the audit log (what administrators are shown).
    pub recorded: Option<&'a Value>,
}

impl CallToGate<'_> {
    /// The call key: what an approval is bound to.
    pub fn key(&self) -> [u8; 32] {
        let agent = match &self.identity.agent {
            Some(agent) => [&[1u8][..], agent.as_bytes()].concat(),
            None => vec![0],
        };
        let mut hasher = Sha256::new();
        for part in [
            &b"idjag-gateway approval v1"[..],
            &self.identity.principal_key()[..],
            &agent,
            self.upstream.as_bytes(),
            self.tool.as_bytes(),
            &self.arguments_sha256,
            self.policy_version.as_bytes(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.finalize().into()
    }

    /// What is stored with a new hold, for administrators ([`HeldDetails`]).
    pub fn details(&self) -> Value {
        let details = HeldDetails {
            upstream: self.upstream.to_owned(),
            tool: self.tool.to_owned(),
            user: self.identity.user.as_str().to_owned(),
            issuer: self.identity.issuer.as_str().to_owned(),
            agent: self.identity.agent.clone(),
            arguments: self.recorded.cloned(),
            arguments_sha256: hex(&self.arguments_sha256),
            policy_version: self.policy_version.hex(),
        };
        serde_json::to_value(details).unwrap_or(Value::Null)
    }

    /// The gate for this call: held, run (the approval consumed), or rejected.
    pub async fn gate(&self, approvals: &Approvals) -> Result<Gate, idjag_store::StoreError> {
        approvals.gate(self.key(), &self.details()).await
    }

    /// [`gate`](Self::gate), a new hold counting in `caps` ([`crate::policy::caps`]);
    /// past one nothing is held ([`Gate::CapReached`]).
    pub async fn gate_capped(
        &self,
        approvals: &Approvals,
        caps: &StoreCaps,
    ) -> Result<Gate, idjag_store::StoreError> {
        approvals
            .gate_capped(self.key(), &self.details(), &caps.caps())
            .await
    }
}

/// What a held call records besides its state: who, where, what. The arguments are recorded
/// as the audit rule allows (`[audit] arguments`), never more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HeldDetails {
    /// The upstream.
    pub upstream: String,
    /// The tool.
    pub tool: String,
    /// The user (`sub`).
    pub user: String,
    /// The IdP.
    pub issuer: String,
    /// The agent.
    pub agent: Option<String>,
    /// The arguments as the audit rule records them.
    pub arguments: Option<Value>,
    /// SHA-256 of the canonical arguments, hex.
    pub arguments_sha256: String,
    /// The policy version the call was held under, hex.
    pub policy_version: String,
}

/// A held call as the admin API shows it: the record's state and its details.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HeldCall {
    /// The approval id.
    pub id: String,
    /// Its state.
    pub status: ApprovalStatus,
    /// When it was held (Unix seconds).
    pub created: i64,
    /// When it (or its approval) expires (Unix seconds).
    pub expires: i64,
    /// Upstream, tool, user, issuer, agent, arguments as recorded, digests.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl HeldCall {
    /// The view of a stored record.
    pub fn from_record(record: &ApprovalRecord) -> Self {
        Self {
            id: record.id.clone(),
            status: record.status,
            created: record.created,
            expires: record.expires,
            details: match &record.details {
                Value::Object(map) => map.clone(),
                _ => Map::new(),
            },
        }
    }

    /// The details, if they are the gateway's.
    pub fn held_details(&self) -> Option<HeldDetails> {
        serde_json::from_value(Value::Object(self.details.clone())).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use idjag_core::{Audience, IdTokenClaims, Issuer, NumericDate, Subject, TestClock};
    use idjag_store::MemoryStore;
    use serde_json::json;

    use super::*;
    use crate::inbound::TeamMap;

    fn identity(user: &str, agent: &str) -> Identity {
        let mut identity = TeamMap::default()
            .from_id_token(&IdTokenClaims::new(
                Issuer::new("https://idp.example").unwrap(),
                Subject::new(user).unwrap(),
                Audience::new("gw").unwrap(),
                NumericDate::from_unix(1).unwrap(),
                NumericDate::from_unix(2).unwrap(),
            ))
            .unwrap();
        identity.agent = Some(agent.to_owned());
        identity
    }

    fn version(n: u8) -> PolicyVersion {
        PolicyVersion::of(&json!({ "policy": n })).unwrap()
    }

    fn call<'a>(who: &'a Identity, arguments: &str, policy: PolicyVersion) -> CallToGate<'a> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"delete_note","arguments":{arguments}}}}}"#
        );
        CallToGate {
            identity: who,
            upstream: "notes",
            tool: "delete_note",
            arguments_sha256: arguments_digest(body.as_bytes()).unwrap(),
            policy_version: policy,
            recorded: None,
        }
    }

    fn approvals(clock: &TestClock, max_pending: u32) -> Approvals {
        Approvals::new(
            Arc::new(MemoryStore::new(clock.shared())),
            Duration::from_secs(60),
            max_pending,
            clock.shared(),
        )
    }

    #[test]
    fn the_key_binds_caller_agent_upstream_tool_arguments_and_policy() {
        let alice = identity("alice", "chat");
        let base = call(&alice, r#"{"id": 1, "force": true}"#, version(1));
        let key = base.key();
        // The same call, written differently, is the same call.
        assert_eq!(
            call(&alice, r#"{"force":true,"id":1.0}"#, version(1)).key(),
            key
        );
        let bob = identity("bob", "chat");
        let other_agent = identity("alice", "cli");
        for other in [
            call(&bob, r#"{"id": 1, "force": true}"#, version(1)),
            call(&other_agent, r#"{"id": 1, "force": true}"#, version(1)),
            call(&alice, r#"{"id": 2, "force": true}"#, version(1)),
            call(&alice, r#"{"id": 1, "force": true}"#, version(2)),
            CallToGate {
                upstream: "wiki",
                ..base
            },
            CallToGate {
                tool: "delete_page",
                ..base
            },
        ] {
            assert_ne!(other.key(), key);
        }
    }

    #[test]
    fn arguments_that_parsers_read_differently_have_no_digest() {
        let body = |arguments: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","arguments":{arguments}}}}}"#
            )
        };
        assert_eq!(
            arguments_digest(body(r#"{"amount": 9007199254740993}"#).as_bytes()),
            Err(NotCanonical::InexactNumber)
        );
        assert_eq!(
            arguments_digest(body(r#"{"to": "a", "to": "b"}"#).as_bytes()),
            Err(NotCanonical::DuplicateName)
        );
        let twice = r#"{"params":{"name":"t","arguments":{},"arguments":{"x":1}}}"#;
        assert_eq!(
            arguments_digest(twice.as_bytes()),
            Err(NotCanonical::DuplicateName)
        );
        // No arguments at all: the empty object.
        let none = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#;
        assert_eq!(
            arguments_digest(none.as_bytes()),
            arguments_digest(body("{}").as_bytes())
        );
    }

    #[tokio::test]
    async fn an_approval_runs_once_for_the_same_call() {
        let clock = TestClock::at_unix(1_000);
        let a = approvals(&clock, 10);
        let alice = identity("alice", "chat");
        let held = call(&alice, r#"{"id": 1}"#, version(1));
        let Gate::Held { id, new: true } = held.gate(&a).await.unwrap() else {
            panic!()
        };
        assert_eq!(
            held.gate(&a).await.unwrap(),
            Gate::Held {
                id: id.clone(),
                new: false
            }
        );
        let record = a.decide(&id, true).await.unwrap();
        let view = HeldCall::from_record(&record);
        assert_eq!(view.status, ApprovalStatus::Approved);
        let details = view.held_details().unwrap();
        assert_eq!(
            (details.user.as_str(), details.tool.as_str()),
            ("alice", "delete_note")
        );
        assert_eq!(details.agent.as_deref(), Some("chat"));
        assert_eq!(details.policy_version, version(1).hex());
        assert_eq!(
            a.decide(&id, false).await.unwrap_err(),
            DecideError::AlreadyDecided
        );
        // Under another policy the approval is not this call's.
        assert!(matches!(
            call(&alice, r#"{"id": 1}"#, version(2))
                .gate(&a)
                .await
                .unwrap(),
            Gate::Held { new: true, .. }
        ));
        assert_eq!(
            held.gate(&a).await.unwrap(),
            Gate::Proceed { id: id.clone() }
        );
        let Gate::Held {
            id: again,
            new: true,
        } = held.gate(&a).await.unwrap()
        else {
            panic!()
        };
        assert_ne!(again, id);
    }

    #[tokio::test]
    async fn rejections_stick_and_everything_expires() {
        let clock = TestClock::at_unix(1_000);
        let a = approvals(&clock, 2);
        let alice = identity("alice", "chat");
        let first = call(&alice, "{}", version(1));
        let Gate::Held { id, .. } = first.gate(&a).await.unwrap() else {
            panic!()
        };
        a.decide(&id, false).await.unwrap();
        assert_eq!(
            first.gate(&a).await.unwrap(),
            Gate::Rejected { id: id.clone() }
        );
        call(&alice, r#"{"x": 1}"#, version(1))
            .gate(&a)
            .await
            .unwrap();
        assert_eq!(
            call(&alice, r#"{"x": 2}"#, version(1))
                .gate(&a)
                .await
                .unwrap(),
            Gate::Full
        );
        clock.advance(Duration::from_secs(61));
        assert!(a.list().await.unwrap().is_empty());
        assert_eq!(
            a.decide(&id, true).await.unwrap_err(),
            DecideError::NotFound
        );
        assert!(matches!(
            first.gate(&a).await.unwrap(),
            Gate::Held { new: true, .. }
        ));
    }
}
