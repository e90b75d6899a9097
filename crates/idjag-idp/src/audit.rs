//! The audit trail: exactly one `tracing` event per token-exchange decision, on the target
//! [`AUDIT_TARGET`] (IdP step 9: one audit event with a reason code per
//! decision).
//!
//! Fields: `decision` (`issued` or `denied`), `reason` (a stable code), `error` (the OAuth
//! code), `client_id` (at the IdP), `auth_method`, `subject_token_type`, `audience`,
//! `resource`, `scope` (granted), `ras_client_id`, `subject` or `subject_sha256`,
//! `jti_sha256`, `kid`. Values come only from verified or validated data, never from a token,
//! secret or raw parameter.

use std::fmt::Write as _;

use idjag_core::server::ClientAuthMethod;
use idjag_core::{Audience, ClientId, IdJagClaims, Kid, Resource, Subject};
use sha2::{Digest, Sha256};

use crate::error::ExchangeError;
use idjag_core::SubjectTokenType;

/// The `tracing` target of audit events.
pub const AUDIT_TARGET: &str = "idjag::audit";

/// How the audit event names the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuditSubject {
    /// `subject_sha256`: the hex SHA-256 of `sub` (the default; a pseudonym an operator can
    /// recompute for a known user, not an anonymisation).
    #[default]
    Sha256,
    /// `subject`: the `sub` as is.
    Plain,
    /// No subject field.
    Omit,
}

/// What is known about a request when its decision is made.
#[derive(Debug, Default)]
pub(crate) struct AuditContext {
    pub(crate) client_id: Option<ClientId>,
    pub(crate) auth_method: Option<ClientAuthMethod>,
    pub(crate) subject_token_type: Option<SubjectTokenType>,
    pub(crate) audience: Option<Audience>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) subject: Option<Subject>,
}

pub(crate) fn sha256_hex(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn joined(resources: &[Resource]) -> Option<String> {
    (!resources.is_empty()).then(|| {
        resources
            .iter()
            .map(Resource::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Emits the one event of a decision.
pub(crate) fn record(
    mode: AuditSubject,
    context: &AuditContext,
    outcome: Result<(&IdJagClaims, Option<&Kid>), &ExchangeError>,
) {
    if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
        return;
    }
    let (subject, subject_sha256) = match (mode, &context.subject) {
        (AuditSubject::Plain, Some(s)) => (Some(s.as_str().to_owned()), None),
        (AuditSubject::Sha256, Some(s)) => (None, Some(sha256_hex(s.as_str()))),
        _ => (None, None),
    };
    let client_id = context.client_id.as_ref().map(ClientId::as_str);
    let auth_method = context.auth_method.map(ClientAuthMethod::as_str);
    let subject_token_type = context.subject_token_type.map(SubjectTokenType::name);
    match outcome {
        Ok((claims, kid)) => {
            let scope = claims.scope.as_ref().map(ToString::to_string);
            let resource = claims.resource.as_deref().and_then(joined);
            tracing::info!(
                target: AUDIT_TARGET,
                decision = "issued",
                reason = "granted",
                client_id,
                auth_method,
                subject_token_type,
                audience = claims.aud.as_str(),
                resource,
                scope,
                ras_client_id = claims.client_id.as_str(),
                subject,
                subject_sha256,
                jti_sha256 = sha256_hex(claims.jti.as_str()),
                kid = kid.map(Kid::as_str),
                dpop_bound = claims.cnf.is_some(),
                "ID-JAG issued"
            );
        }
        Err(error) => {
            tracing::info!(
                target: AUDIT_TARGET,
                decision = "denied",
                reason = error.reason_code(),
                error = error.oauth_error().as_str(),
                client_id,
                auth_method,
                subject_token_type,
                audience = context.audience.as_ref().map(Audience::as_str),
                resource = joined(&context.resources),
                subject,
                subject_sha256,
                "ID-JAG token exchange denied"
            );
        }
    }
}
