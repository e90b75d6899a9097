//! Why a token exchange was refused, and how each refusal is answered.

use http::StatusCode;
use idjag_core::server::{ClientAuthError, FormError};
use idjag_core::{OAuthErrorCode, OAuthErrorResponse, SignError};
use serde_json::Value;

use crate::dpop::DpopError;
use crate::policy::PolicyDenial;
use crate::request::RequestError;
use crate::subject::{SubjectTokenError, SubjectTokenErrorCode, SubjectTokenType};

/// A refused token exchange. `Display` names the problem and never a token, secret or claim
/// value; the wire answer carries only [`Self::oauth_error`] and [`Self::description`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The method is not `POST` (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body exceeds the configured limit (413; threat X16).
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body is not `application/x-www-form-urlencoded` (threat X16).
    #[error("content type is not application/x-www-form-urlencoded")]
    ContentType,
    /// The form body is malformed: bad escapes, a repeated parameter, too many (threat X16).
    #[error(transparent)]
    Form(FormError),
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
    Request(RequestError),
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
            Self::MethodNotAllowed
            | Self::BodyTooLarge { .. }
            | Self::ContentType
            | Self::Form(_)
            | Self::MissingGrantType
            | Self::SubjectTokenTypeNotAccepted(_) => OAuthErrorCode::InvalidRequest,
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
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => self.oauth_error().status(),
        }
    }

    /// A stable, low-cardinality reason code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::ContentType => "not_form_content_type",
            Self::Form(FormError::Duplicate { .. }) => "duplicate_parameter",
            Self::Form(FormError::TooManyParameters) => "too_many_parameters",
            Self::Form(_) => "malformed_form",
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
            Self::MethodNotAllowed => "the token endpoint accepts POST only",
            Self::BodyTooLarge { .. } => "the request body is too large",
            Self::ContentType => "the body must be application/x-www-form-urlencoded",
            Self::Form(FormError::Duplicate { .. }) => "a parameter is repeated",
            Self::Form(_) => "the form body is malformed",
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

fn request_description(error: &RequestError) -> &'static str {
    match error {
        RequestError::Missing { parameter } => match *parameter {
            "requested_token_type" => "requested_token_type is missing",
            "audience" => "audience is missing",
            "subject_token" => "subject_token is missing",
            "subject_token_type" => "subject_token_type is missing",
            _ => "a required parameter is missing",
        },
        RequestError::RequestedTokenType => {
            "requested_token_type must be urn:ietf:params:oauth:token-type:id-jag"
        }
        RequestError::MultipleAudiences => "audience must name exactly one authorization server",
        RequestError::MalformedAudience => "audience is malformed",
        RequestError::AudienceIsThisIssuer => "the audience is not available",
        RequestError::Resource(_) => "resource must be an absolute URI without a fragment",
        RequestError::Scope => "scope is malformed",
        RequestError::AuthorizationDetailsMalformed => "authorization_details must be a JSON array",
        RequestError::AuthorizationDetail => "an authorization detail is malformed",
        RequestError::SubjectTokenType => "subject_token_type is not supported",
        RequestError::ActorTokenPairing => "actor_token and actor_token_type must be sent together",
        RequestError::ActorTokenUnsupported => "actor tokens are not supported",
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
