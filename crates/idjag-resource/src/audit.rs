//! One structured audit event per grant decision (see the threat model: every
//! refusal emits one audit event with a reason code).
//!
//! Every token request that reaches a decision emits exactly one `tracing` event on the
//! target [`AUDIT_TARGET`], at `INFO` when granted and `WARN` when denied, with these fields
//! (absent ones are left out):
//!
//! | field        | value                                                              |
//! |--------------|--------------------------------------------------------------------|
//! | `server`     | this server's issuer                                               |
//! | `decision`   | `granted` or `denied`                                              |
//! | `reason`     | `ok`, or the [`GrantError::reason_code`]                           |
//! | `iss`        | the ID-JAG issuer, only when it is one of the trusted issuers       |
//! | `client_id`  | the authenticated client                                           |
//! | `sub`        | the local subject, or its SHA-256 ([`AuditSubjects`])              |
//! | `jti_sha256` | SHA-256 of the verified ID-JAG's `jti`, hex                        |
//! | `kid`        | the `kid` of the key that verified the ID-JAG                      |
//! | `resource`   | the granted resource                                               |
//! | `scope`      | the granted scope                                                  |
//!
//! No event ever carries a token, an assertion, a secret or an unverified claim value.

use sha2::{Digest, Sha256};
use tracing::Level;

use crate::config::AuditSubjects;
use crate::error::GrantError;

/// The `tracing` target of audit events.
pub const AUDIT_TARGET: &str = "idjag::audit";

/// What is known about a request when its decision is taken. Values are verified ones;
/// they are hashed only when an event is actually recorded.
#[derive(Debug, Default)]
pub(crate) struct AuditRecord {
    pub(crate) issuer: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) subject: Option<(String, AuditSubjects)>,
    pub(crate) jti: Option<String>,
    pub(crate) kid: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) scope: Option<String>,
}

pub(crate) fn sha256_hex(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

impl AuditRecord {
    /// Emits the one event of this decision.
    pub(crate) fn emit(&self, server: &str, outcome: Result<(), &GrantError>) {
        let level = if outcome.is_ok() {
            Level::INFO
        } else {
            Level::WARN
        };
        let enabled = match level {
            Level::INFO => tracing::enabled!(target: AUDIT_TARGET, Level::INFO),
            _ => tracing::enabled!(target: AUDIT_TARGET, Level::WARN),
        };
        if !enabled {
            return;
        }
        let subject = self.subject.as_ref().map(|(subject, mode)| match mode {
            AuditSubjects::Plain => subject.clone(),
            _ => sha256_hex(subject),
        });
        let jti_sha256 = self.jti.as_deref().map(sha256_hex);
        macro_rules! event {
            ($level:expr, $decision:expr, $reason:expr) => {
                tracing::event!(
                    target: AUDIT_TARGET,
                    $level,
                    server,
                    decision = $decision,
                    reason = $reason,
                    iss = self.issuer.as_deref(),
                    client_id = self.client_id.as_deref(),
                    sub = subject.as_deref(),
                    jti_sha256 = jti_sha256.as_deref(),
                    kid = self.kid.as_deref(),
                    resource = self.resource.as_deref(),
                    scope = self.scope.as_deref(),
                    "grant decision"
                )
            };
        }
        match outcome {
            Ok(()) => event!(Level::INFO, "granted", "ok"),
            Err(e) => event!(Level::WARN, "denied", e.reason_code()),
        }
    }
}
