//! Calls held for an administrator's approval (`[upstream.tools.<name>] approval = true`).
//!
//! A call of such a tool is bound to a key: the SHA-256 of the user (issuer and `sub`), the
//! upstream, the tool and the canonical JSON of its arguments (object keys sorted, no
//! whitespace). The first call is held: the agent gets a JSON-RPC error
//! (`code` -32035, `data.reason` `approval_required`, `data.approval_id`). An administrator
//! lists the pending calls and approves or rejects one through the admin API
//! ([`crate::admin`]). The agent's retry with the same arguments then runs **once**: the
//! approval is consumed by that call; a further retry is held again under a new id, a call
//! with other arguments or by another user has another key and is held on its own. A
//! pending call and an approval expire after `[admin] approval_ttl`; a rejection is given
//! back (`approval_rejected`) until then.

use std::collections::HashMap;
use std::sync::Mutex;

use idjag_core::SharedClock;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::inbound::Identity;

/// The state of a held call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved: the next identical call runs.
    Approved,
    /// Rejected.
    Rejected,
}

/// A held call as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HeldCall {
    /// The approval id.
    pub id: String,
    /// Its state.
    pub status: ApprovalStatus,
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
    /// The arguments as the audit rule records them (`[audit] arguments`).
    pub arguments: Option<Value>,
    /// SHA-256 of the canonical arguments, hex.
    pub arguments_sha256: String,
    /// When it was held (Unix seconds).
    pub created: i64,
    /// When it (or its approval) expires (Unix seconds).
    pub expires: i64,
}

struct Entry {
    key: [u8; 32],
    call: HeldCall,
}

/// What to do with a call of an approval-required tool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gate {
    /// Approved: run it (the approval is now used up).
    Proceed {
        /// The approval consumed.
        id: String,
    },
    /// Held: waiting for a decision.
    Held {
        /// The approval id.
        id: String,
        /// Whether this call created it (an audit `hold`) or found it pending.
        new: bool,
    },
    /// Rejected by an administrator.
    Rejected {
        /// The approval id.
        id: String,
    },
    /// Too many calls are waiting.
    Full,
    /// No approval id could be drawn (the system random generator failed): the call is
    /// neither held nor run.
    Unavailable,
}

/// Why a decision could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecideError {
    /// No such id (or expired).
    #[error("no such pending call")]
    NotFound,
    /// Already approved or rejected.
    #[error("already decided")]
    AlreadyDecided,
}

/// What the gateway knows about one call to gate.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallToGate<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The upstream.
    pub upstream: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// The arguments.
    pub arguments: Option<&'a Value>,
    /// The arguments as recorded for the audit log.
    pub recorded: Option<&'a Value>,
}

/// The held calls. See the [module docs](self).
pub struct Approvals {
    entries: Mutex<HashMap<String, Entry>>,
    ttl: i64,
    max_pending: usize,
    clock: SharedClock,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("ttl", &self.ttl)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

/// The canonical JSON of `value`: object keys sorted, no whitespace.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(key.clone()).to_string().as_bytes());
                out.push(b':');
                canonical_json(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh approval id of 128 random bits; `None` when the system generator fails.
fn new_id() -> Option<String> {
    idjag_core::random::hex_id(16)
        .ok()
        .map(|hex| format!("apr_{hex}"))
}

impl Approvals {
    /// Calls wait `ttl` seconds for a decision (and an approval stays usable as long); at
    /// most `max_pending` wait at once.
    pub fn new(ttl: i64, max_pending: usize, clock: SharedClock) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            max_pending,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The gate for one call.
    pub fn gate(&self, call: &CallToGate<'_>) -> Gate {
        let mut canonical = Vec::new();
        let empty = Value::Object(serde_json::Map::new());
        canonical_json(call.arguments.unwrap_or(&empty), &mut canonical);
        let arguments_sha256: [u8; 32] = Sha256::digest(&canonical).into();
        let mut hasher = Sha256::new();
        for part in [
            &call.identity.principal_key()[..],
            call.upstream.as_bytes(),
            call.tool.as_bytes(),
            &arguments_sha256,
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        let key: [u8; 32] = hasher.finalize().into();
        let now = self.clock.now_unix();
        let mut entries = self.lock();
        entries.retain(|_, e| now < e.call.expires);
        if let Some((id, status)) = entries
            .iter()
            .find(|(_, e)| e.key == key)
            .map(|(id, e)| (id.clone(), e.call.status))
        {
            return match status {
                ApprovalStatus::Approved => {
                    entries.remove(&id);
                    Gate::Proceed { id }
                }
                ApprovalStatus::Pending => Gate::Held { id, new: false },
                ApprovalStatus::Rejected => Gate::Rejected { id },
            };
        }
        if entries.len() >= self.max_pending {
            return Gate::Full;
        }
        let Some(id) = new_id() else {
            return Gate::Unavailable;
        };
        let identity = call.identity;
        let held = HeldCall {
            id: id.clone(),
            status: ApprovalStatus::Pending,
            upstream: call.upstream.to_owned(),
            tool: call.tool.to_owned(),
            user: identity.user.as_str().to_owned(),
            issuer: identity.issuer.as_str().to_owned(),
            agent: identity.agent.clone(),
            arguments: call.recorded.cloned(),
            arguments_sha256: hex(&arguments_sha256),
            created: now,
            expires: now.saturating_add(self.ttl),
        };
        entries.insert(id.clone(), Entry { key, call: held });
        Gate::Held { id, new: true }
    }

    /// Every held call not yet expired (pending, approved and rejected), oldest first.
    pub fn list(&self) -> Vec<HeldCall> {
        let now = self.clock.now_unix();
        let mut list: Vec<HeldCall> = self
            .lock()
            .values()
            .filter(|e| now < e.call.expires)
            .map(|e| e.call.clone())
            .collect();
        list.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        list
    }

    /// Approves or rejects a pending call. An approval is usable for `ttl` from now.
    pub fn decide(&self, id: &str, approve: bool) -> Result<HeldCall, DecideError> {
        let now = self.clock.now_unix();
        let mut entries = self.lock();
        let entry = entries
            .get_mut(id)
            .filter(|e| now < e.call.expires)
            .ok_or(DecideError::NotFound)?;
        if entry.call.status != ApprovalStatus::Pending {
            return Err(DecideError::AlreadyDecided);
        }
        entry.call.status = if approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        entry.call.expires = now.saturating_add(self.ttl);
        Ok(entry.call.clone())
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::{Audience, IdTokenClaims, Issuer, NumericDate, Subject, TestClock};
    use serde_json::json;

    use super::*;
    use crate::inbound::TeamMap;

    fn identity(user: &str) -> Identity {
        TeamMap::default()
            .from_id_token(&IdTokenClaims::new(
                Issuer::new("https://idp.example").unwrap(),
                Subject::new(user).unwrap(),
                Audience::new("gw").unwrap(),
                NumericDate::from_unix(1).unwrap(),
                NumericDate::from_unix(2).unwrap(),
            ))
            .unwrap()
    }

    fn gate(a: &Approvals, who: &Identity, args: &Value) -> Gate {
        a.gate(&CallToGate {
            identity: who,
            upstream: "notes",
            tool: "delete_note",
            arguments: Some(args),
            recorded: None,
        })
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut out = Vec::new();
        canonical_json(&json!({"b": [{"y": 1, "x": "é"}], "a": null}), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":null,"b":[{"x":"é","y":1}]}"#
        );
    }

    #[test]
    fn an_approval_runs_once_for_the_same_user_tool_and_arguments() {
        let clock = TestClock::at_unix(1_000);
        let a = Approvals::new(60, 10, clock.shared());
        let alice = identity("alice");
        let args = json!({"id": 1, "force": true});
        let Gate::Held { id, new: true } = gate(&a, &alice, &args) else {
            panic!()
        };
        assert_eq!(
            gate(&a, &alice, &args),
            Gate::Held {
                id: id.clone(),
                new: false
            }
        );
        a.decide(&id, true).unwrap();
        assert!(matches!(
            a.decide(&id, false),
            Err(DecideError::AlreadyDecided)
        ));
        // Other arguments (same meaning, other key order, is the same call), another user.
        assert!(matches!(
            gate(&a, &alice, &json!({"id": 2, "force": true})),
            Gate::Held { new: true, .. }
        ));
        assert!(matches!(
            gate(&a, &identity("bob"), &args),
            Gate::Held { new: true, .. }
        ));
        assert_eq!(
            gate(&a, &alice, &json!({"force": true, "id": 1})),
            Gate::Proceed { id: id.clone() }
        );
        // Replayed: held again under a new id.
        let Gate::Held {
            id: again,
            new: true,
        } = gate(&a, &alice, &args)
        else {
            panic!()
        };
        assert_ne!(again, id);
    }

    #[test]
    fn rejections_stick_and_everything_expires() {
        let clock = TestClock::at_unix(1_000);
        let a = Approvals::new(60, 2, clock.shared());
        let alice = identity("alice");
        let Gate::Held { id, .. } = gate(&a, &alice, &json!({})) else {
            panic!()
        };
        a.decide(&id, false).unwrap();
        assert_eq!(
            gate(&a, &alice, &json!({})),
            Gate::Rejected { id: id.clone() }
        );
        gate(&a, &alice, &json!({"x": 1}));
        assert_eq!(gate(&a, &alice, &json!({"x": 2})), Gate::Full);
        clock.advance(std::time::Duration::from_secs(61));
        assert!(a.list().is_empty());
        assert!(matches!(a.decide(&id, true), Err(DecideError::NotFound)));
        assert!(matches!(
            gate(&a, &alice, &json!({})),
            Gate::Held { new: true, .. }
        ));
    }
}
