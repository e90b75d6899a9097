//! Why a token request was refused, and how each reason maps to the wire.

use http::StatusCode;
use idjag_core::server::{ClientAuthError, FormRequestError, ReplayStoreError};
use idjag_core::{OAuthErrorCode, SignError, ValidationError};

/// Why a token request was refused.
///
/// The variant is for the audit log ([`Self::reason_code`]); the client sees only the OAuth
/// error code ([`Self::oauth_error`]), the HTTP status ([`Self::status`]) and a generic
/// description of the code, never the reason (threat J03).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The request envelope was refused before any parameter was read: not `POST` (405), a
    /// body over the limit (413), not form-encoded, or a malformed form (bad escapes, a
    /// repeated parameter, too many parameters). Status and reason code are the core's, the
    /// same as at the IdP.
    #[error(transparent)]
    Envelope(FormRequestError),
    /// A required parameter is absent or empty.
    #[error("parameter {name} is missing")]
    MissingParameter {
        /// The parameter.
        name: &'static str,
    },
    /// A `grant_type` other than jwt-bearer (including the draft jwt-dpop grant; threat J07).
    #[error("grant type is not supported")]
    UnsupportedGrantType,
    /// Client authentication failed.
    #[error(transparent)]
    Client(ClientAuthError),
    /// The `scope` parameter is not an RFC 6749 §3.3 scope string.
    #[error("requested scope is malformed")]
    MalformedScope,
    /// The `resource` parameter is not an absolute URI without fragment (RFC 8707 §2).
    #[error("requested resource is malformed")]
    MalformedResource,
    /// The `authorization_details` parameter is not a JSON array of typed objects.
    #[error("requested authorization_details are malformed")]
    MalformedAuthorizationDetails,
    /// The ID-JAG failed validation.
    #[error("assertion is invalid: {0}")]
    Assertion(ValidationError),
    /// The ID-JAG was issued by this server itself (ID-JAG -04 §9.3; threat V18).
    #[error("assertion was issued by this server")]
    SelfIssued,
    /// The ID-JAG's `client_id` is not the authenticated client (requirement JB-09; threat V20).
    #[error("assertion client_id is not the authenticated client")]
    ClientMismatch,
    /// The issuer may not vouch for the authenticated client.
    #[error("issuer may not vouch for this client")]
    ClientNotAllowedForIssuer,
    /// The `tenant` claim is absent or not an accepted tenant.
    #[error("tenant is not accepted")]
    Tenant,
    /// The subject cannot be resolved (requirement JB-12).
    #[error("subject cannot be resolved")]
    UnknownSubject,
    /// The subject directory could not answer.
    #[error("subject directory unavailable")]
    SubjectDirectoryUnavailable,
    /// A `resource` of the ID-JAG is not registered here (requirements JB-14, EMA-17).
    #[error("resource is not registered here")]
    ResourceNotRegistered,
    /// A `resource` of the ID-JAG is not governed here, answered as `invalid_target`
    /// ([`UngovernedResource::InvalidTarget`](crate::UngovernedResource::InvalidTarget)).
    #[error("resource is not governed here")]
    ResourceNotGoverned,
    /// The ID-JAG's issuer may not vouch for the granted resource
    /// ([`TrustedIssuer::for_resources`](crate::TrustedIssuer::for_resources)).
    #[error("issuer may not vouch for this resource")]
    ResourceNotAllowedForIssuer,
    /// The ID-JAG has no `resource` and the policy refuses that.
    #[error("assertion names no resource")]
    ResourceAbsent,
    /// The requested `resource` is not one the ID-JAG grants.
    #[error("requested resource is not granted")]
    ResourceNotGranted,
    /// The ID-JAG grants several resources and the request names none.
    #[error("several resources granted and none requested")]
    ResourceAmbiguous,
    /// None of the requested scopes can be granted.
    #[error("no requested scope can be granted")]
    ScopeNotGranted,
    /// The ID-JAG carries an `authorization_details` type the resource does not allow.
    #[error("authorization detail type is not allowed")]
    AuthorizationDetailTypeNotAllowed,
    /// The requested `authorization_details` are not all in the ID-JAG.
    #[error("requested authorization_details exceed the grant")]
    AuthorizationDetailsNotGranted,
    /// The ID-JAG is sender-constrained (`cnf`) and no proof of possession can be checked
    /// (idjag supports no DPoP; requirement JB-21; threat V32).
    #[error("assertion is sender-constrained and proof of possession is not supported")]
    ConfirmationUnsupported,
    /// The ID-JAG expires so soon that the access token would be born expired.
    #[error("assertion expires before a token could be used")]
    GrantExpiring,
    /// The ID-JAG was redeemed before (requirements JB-11, EMA-12; threat V34).
    #[error("assertion was already redeemed")]
    Replayed,
    /// The replay store could not answer (fail closed).
    #[error("replay store unavailable: {0}")]
    ReplayStore(ReplayStoreError),
    /// Signing the access token failed.
    #[error("token signing failed: {0}")]
    Signing(SignError),
}

impl GrantError {
    /// The OAuth error code the client receives.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        use OAuthErrorCode as C;
        match self {
            Self::Envelope(e) => e.oauth_error(),
            Self::MissingParameter { .. } => C::InvalidRequest,
            Self::UnsupportedGrantType => C::UnsupportedGrantType,
            Self::Client(e) => e.oauth_error(),
            Self::MalformedScope | Self::ScopeNotGranted => C::InvalidScope,
            Self::MalformedResource
            | Self::ResourceNotGranted
            | Self::ResourceAmbiguous
            | Self::ResourceNotGoverned => C::InvalidTarget,
            Self::MalformedAuthorizationDetails | Self::AuthorizationDetailsNotGranted => {
                C::InvalidAuthorizationDetails
            }
            Self::Assertion(e) => e.oauth_error(),
            Self::SelfIssued
            | Self::ClientMismatch
            | Self::ClientNotAllowedForIssuer
            | Self::Tenant
            | Self::UnknownSubject
            | Self::ResourceNotRegistered
            | Self::ResourceNotAllowedForIssuer
            | Self::ResourceAbsent
            | Self::AuthorizationDetailTypeNotAllowed
            | Self::ConfirmationUnsupported
            | Self::GrantExpiring
            | Self::Replayed => C::InvalidGrant,
            Self::SubjectDirectoryUnavailable | Self::ReplayStore(_) => C::TemporarilyUnavailable,
            Self::Signing(_) => C::ServerError,
        }
    }

    /// The HTTP status: the code's status, except 405 for a wrong method and 413 for a body
    /// over the limit.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Envelope(e) => e.status(),
            Self::Client(e) => e.status(),
            other => other.oauth_error().status(),
        }
    }

    /// A stable, low-cardinality reason code for audit logs and metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Envelope(e) => e.reason_code(),
            Self::MissingParameter { .. } => "missing_parameter",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::Client(e) => e.reason_code(),
            Self::MalformedScope => "malformed_scope",
            Self::MalformedResource => "malformed_resource",
            Self::MalformedAuthorizationDetails => "malformed_authorization_details",
            Self::Assertion(e) => e.reason_code(),
            Self::SelfIssued => "self_issued",
            Self::ClientMismatch => "client_id_mismatch",
            Self::ClientNotAllowedForIssuer => "client_not_allowed_for_issuer",
            Self::Tenant => "tenant_mismatch",
            Self::UnknownSubject => "unknown_subject",
            Self::SubjectDirectoryUnavailable => "subject_directory_unavailable",
            Self::ResourceNotRegistered | Self::ResourceNotGoverned => "resource_not_registered",
            Self::ResourceNotAllowedForIssuer => "resource_not_allowed_for_issuer",
            Self::ResourceAbsent => "resource_absent",
            Self::ResourceNotGranted => "resource_not_granted",
            Self::ResourceAmbiguous => "resource_ambiguous",
            Self::ScopeNotGranted => "scope_not_granted",
            Self::AuthorizationDetailTypeNotAllowed => "authorization_detail_type_not_allowed",
            Self::AuthorizationDetailsNotGranted => "authorization_details_not_granted",
            Self::ConfirmationUnsupported => "cnf_unsupported",
            Self::GrantExpiring => "grant_expiring",
            Self::Replayed => "replayed",
            Self::ReplayStore(_) => "replay_store_unavailable",
            Self::Signing(_) => "signing_failed",
        }
    }
}

/// The one `error_description` sent for each code: generic on purpose, so no response tells
/// an attacker which check failed (threat J03).
pub fn generic_description(code: OAuthErrorCode) -> &'static str {
    use OAuthErrorCode as C;
    match code {
        C::InvalidRequest => "the request is malformed",
        C::InvalidClient => "client authentication failed",
        C::InvalidGrant => "the authorization grant is invalid",
        C::UnauthorizedClient => "the client may not use this grant",
        C::UnsupportedGrantType => "the grant type is not supported",
        C::InvalidScope => "the requested scope cannot be granted",
        C::InvalidTarget => "the requested resource cannot be granted",
        C::InvalidAuthorizationDetails => "the requested authorization details cannot be granted",
        C::InvalidToken => "the access token is invalid",
        C::InsufficientScope => "the access token lacks a required scope",
        C::TemporarilyUnavailable => "the service is temporarily unavailable",
        C::ServerError => "internal error",
        _ => "the request was refused",
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::server::FormError;

    use super::*;

    #[test]
    fn statuses_follow_rfc6749_with_405_and_413_for_transport_errors() {
        assert_eq!(
            GrantError::Envelope(FormRequestError::MethodNotAllowed).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            GrantError::Envelope(FormRequestError::BodyTooLarge { max: 1 }).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(GrantError::Replayed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            GrantError::ReplayStore(ReplayStoreError::Full).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            GrantError::Assertion(ValidationError::Expired).oauth_error(),
            OAuthErrorCode::InvalidGrant
        );
        assert_eq!(
            GrantError::Assertion(ValidationError::Expired).reason_code(),
            "expired"
        );
    }

    #[test]
    fn display_never_carries_values() {
        let text = GrantError::Envelope(FormRequestError::Form(FormError::Duplicate {
            name: "assertion".into(),
        }))
        .to_string();
        assert_eq!(text, "parameter assertion is repeated");
    }
}
