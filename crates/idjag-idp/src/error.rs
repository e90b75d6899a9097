//! Why a token exchange was refused, and how each refusal is answered.

use http::StatusCode;
use idjag_core::server::{ClientAuthError, FormError, FormRequestError};
use idjag_core::{OAuthErrorCode, OAuthErrorResponse, SignError};
use serde_json::Value;

use crate::dpop::DpopError;
use crate::policy::PolicyDenial;
use crate::request::ExchangeRequestError;
use idjag_core::SubjectTokenType;

use crate::subject::{SubjectTokenError, SubjectTokenErrorCode};

/// A refused token exchange. `Display` names the problem and never a token, secret or claim
/// value; the wire answer carries only [`Self::oauth_error`] and [`Self::description`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The request envelope was refused before any parameter was read: not `POST` (405), a
    /// body over the configured limit (413), not form-encoded, or a malformed form (bad
    /// escapes, a repeated parameter, too many). Status and reason code are the core's, the
    /// same as at the resource authorization server (threat X16).
    #[error(transparent)]
    Envelope(FormRequestError),
    /// `grant_type` is missing.
    #[error("grant_type is missing")]
    MissingGrantType,
    /// The grant type is not token exchange (`unsupported_grant_type`; threat X08).
    #[error("grant type is not supported")]
    UnsupportedGrantType,
    /// An ID-JAG was presented as a JWT-bearer grant here: the IdP never trades its own
    /// ID-JAGs for tokens (`invalid_grant`; requirement TX-25; threat X18).
    #[error("an ID-JAG cannot be redeemed at the IdP")]
    IdJagRedeemedAtIdp,
    /// Client authentication failed (threats X01, X02).
    #[error(transparent)]
    ClientAuth(ClientAuthError),
    /// A request parameter was refused.
    #[error(transparent)]
    Request(ExchangeRequestError),
    /// The DPoP proof was refused (threat X15).
    #[error(transparent)]
    Dpop(DpopError),
    /// This IdP accepts no subject token of this type (`invalid_request`): SAML 2.0 without a
    /// host validator, or refresh tokens without a store.
    #[error("{} subject tokens are not accepted here", .0.name())]
    SubjectTokenTypeNotAccepted(SubjectTokenType),
    /// The subject token was refused (threats X03 to X07).
    #[error("{error}")]
    SubjectToken {
        /// Why.
        error: SubjectTokenError,
        /// The code it is answered with (see the crate docs, "Decisions").
        answered_as: SubjectTokenErrorCode,
    },
    /// The policy refused.
    #[error(transparent)]
    Policy(PolicyDenial),
    /// The policy granted more than was requested; the request fails closed (`server_error`).
    #[error("the policy granted more than was requested")]
    PolicyOverreach,
    /// The ID-JAG could not be signed (`server_error`).
    #[error("signing failed: {0}")]
    Signing(SignError),
}

impl ExchangeError {
    /// The OAuth error code.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        match self {
            Self::Envelope(e) => e.oauth_error(),
            Self::MissingGrantType | Self::SubjectTokenTypeNotAccepted(_) => {
                OAuthErrorCode::InvalidRequest
            }
            Self::UnsupportedGrantType => OAuthErrorCode::UnsupportedGrantType,
            Self::IdJagRedeemedAtIdp => OAuthErrorCode::InvalidGrant,
            Self::ClientAuth(e) => e.oauth_error(),
            Self::Request(e) => e.oauth_error(),
            Self::Dpop(e) => e.oauth_error(),
            Self::SubjectToken { error, .. } if error.is_unavailable() => {
                OAuthErrorCode::TemporarilyUnavailable
            }
            Self::SubjectToken { answered_as, .. } => answered_as.code(),
            Self::Policy(e) => e.oauth_error(),
            Self::PolicyOverreach | Self::Signing(_) => OAuthErrorCode::ServerError,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Envelope(e) => e.status(),
            _ => self.oauth_error().status(),
        }
    }

    /// A stable, low-cardinality reason code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Envelope(e) => e.reason_code(),
            Self::MissingGrantType => "missing_grant_type",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::IdJagRedeemedAtIdp => "id_jag_redeemed_at_idp",
            Self::ClientAuth(e) => e.reason_code(),
            Self::Request(e) => e.reason_code(),
            Self::Dpop(e) => e.reason_code(),
            Self::SubjectTokenTypeNotAccepted(_) => "subject_token_type_not_accepted",
            Self::SubjectToken { error, .. } => error.reason_code(),
            Self::Policy(e) => e.reason_code(),
            Self::PolicyOverreach => "policy_overreach",
            Self::Signing(_) => "signing_failed",
        }
    }

    /// The generic `error_description` sent to the client. It names parameters, never values.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Envelope(e) => envelope_description(e),
            Self::MissingGrantType => "grant_type is missing",
            Self::UnsupportedGrantType => "this endpoint supports token exchange only",
            Self::IdJagRedeemedAtIdp => {
                "ID-JAGs are redeemed at the resource authorization server, not at the IdP"
            }
            Self::ClientAuth(e) if e.oauth_error() == OAuthErrorCode::InvalidRequest => {
                "use exactly one client authentication method"
            }
            Self::ClientAuth(_) => "client authentication failed",
            Self::Request(e) => request_description(e),
            Self::Dpop(_) => "the DPoP proof is not valid",
            Self::SubjectTokenTypeNotAccepted(t) => match t {
                SubjectTokenType::Saml2 => "this IdP does not accept SAML 2.0 subject tokens",
                SubjectTokenType::RefreshToken => "this IdP does not accept refresh tokens",
                _ => "this subject token type is not accepted",
            },
            Self::SubjectToken { error, .. } if error.is_unavailable() => {
                "the subject token cannot be checked right now"
            }
            Self::SubjectToken { .. } => "the subject token is not valid for this client",
            Self::Policy(e) => policy_description(e),
            Self::PolicyOverreach | Self::Signing(_) => "the ID-JAG could not be issued",
        }
    }

    /// The RFC 6749 §5.2 error body, with `max_age` and `acr_values` for step-up (RFC 9470).
    pub fn to_oauth_response(&self) -> OAuthErrorResponse {
        let mut body =
            OAuthErrorResponse::new(self.oauth_error()).with_description(self.description());
        if let Self::Policy(PolicyDenial::StepUp {
            max_age,
            acr_values,
        }) = self
        {
            if let Some(max_age) = max_age {
                body = body.with_member("max_age", Value::from(*max_age));
            }
            if !acr_values.is_empty() {
                body = body.with_member("acr_values", Value::from(acr_values.join(" ")));
            }
        }
        body
    }
}

fn envelope_description(error: &FormRequestError) -> &'static str {
    match error {
        FormRequestError::MethodNotAllowed => "the token endpoint accepts POST only",
        FormRequestError::BodyTooLarge { .. } => "the request body is too large",
        FormRequestError::ContentType => "the body must be application/x-www-form-urlencoded",
        FormRequestError::Form(FormError::Duplicate { .. }) => "a parameter is repeated",
        _ => "the form body is malformed",
    }
}

fn request_description(error: &ExchangeRequestError) -> &'static str {
    match error {
        ExchangeRequestError::Missing { parameter } => match *parameter {
            "requested_token_type" => "requested_token_type is missing",
            "audience" => "audience is missing",
            "subject_token" => "subject_token is missing",
            "subject_token_type" => "subject_token_type is missing",
            _ => "a required parameter is missing",
        },
        ExchangeRequestError::RequestedTokenType => {
            "requested_token_type must be urn:ietf:params:oauth:token-type:id-jag"
        }
        ExchangeRequestError::MultipleAudiences => {
            "audience must name exactly one authorization server"
        }
        ExchangeRequestError::MalformedAudience => "audience is malformed",
        ExchangeRequestError::AudienceIsThisIssuer => "the audience is not available",
        ExchangeRequestError::Resource(_) => "resource must be an absolute URI without a fragment",
        ExchangeRequestError::Scope => "scope is malformed",
        ExchangeRequestError::AuthorizationDetailsMalformed => {
            "authorization_details must be a JSON array"
        }
        ExchangeRequestError::AuthorizationDetail => "an authorization detail is malformed",
        ExchangeRequestError::SubjectTokenType => "subject_token_type is not supported",
        ExchangeRequestError::ActorTokenPairing => {
            "actor_token and actor_token_type must be sent together"
        }
        ExchangeRequestError::ActorTokenUnsupported => "actor tokens are not supported",
    }
}

fn policy_description(denial: &PolicyDenial) -> &'static str {
    match denial {
        PolicyDenial::UnknownAudience => "the audience is not available",
        PolicyDenial::ResourceNotRegistered | PolicyDenial::ResourceNotAllowed => {
            "the resource is not available for this audience"
        }
        PolicyDenial::NotAllowed | PolicyDenial::Denied => "the request is not allowed",
        PolicyDenial::ScopeNotAllowed => "none of the requested scopes is allowed",
        PolicyDenial::AuthorizationDetailsNotAllowed => {
            "an authorization detail type is not allowed"
        }
        PolicyDenial::StepUp { .. } => "the user must authenticate again",
        PolicyDenial::Unavailable => "the request cannot be decided right now",
    }
}
