//! One structured audit event per grant decision (STYLE 25; SECURITY-CASES B4).
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

/// What is known about a request when its decision is taken.
#[derive(Debug, Default)]
pub(crate) struct AuditRecord {
    pub(crate) issuer: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) jti_sha256: Option<String>,
    pub(crate) kid: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) scope: Option<String>,
}

pub(crate) fn sha256_hex(value: &str) -> String {
    use std::fmt::Write as _;
    Sha256::digest(value.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

impl AuditRecord {
    pub(crate) fn set_subject(&mut self, subject: &str, mode: AuditSubjects) {
        self.subject = Some(match mode {
            AuditSubjects::Plain => subject.to_owned(),
            _ => sha256_hex(subject),
        });
    }

    /// Emits the one event of this decision.
    pub(crate) fn emit(&self, server: &str, outcome: Result<(), &GrantError>) {
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
                    sub = self.subject.as_deref(),
                    jti_sha256 = self.jti_sha256.as_deref(),
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
