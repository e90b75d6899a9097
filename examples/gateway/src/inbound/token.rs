//! The outcome of inbound authentication: who is calling and the token that proved it, or
//! why the request is not authenticated.

use std::sync::Arc;

use http::StatusCode;
use idjag_core::server::BearerError;
use idjag_core::{AccessToken, IdToken, OAuthErrorCode, ValidationError};

use crate::inbound::identity::Identity;
use crate::inbound::teams::GroupsError;

/// Why an inbound request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InboundError {
    /// No usable `Authorization` header.
    #[error(transparent)]
    Bearer(#[from] BearerError),
    /// The token is longer than the configured maximum (not decoded).
    #[error("token too large")]
    TooLarge,
    /// A kind of token this gateway does not accept.
    #[error("token kind not accepted")]
    KindNotAccepted,
    /// The token failed validation.
    #[error("invalid token: {0}")]
    Invalid(ValidationError),
    /// An access token for another of the gateway's routes.
    #[error("token issued for another resource")]
    OtherResource,
    /// A valid token whose groups cannot be used (overage marker, over the cap, malformed).
    #[error("groups unusable: {0}")]
    Groups(GroupsError),
}

impl InboundError {
    /// The HTTP status: 400 for a malformed header, 403 for unusable groups (a new token
    /// would not help), else 401.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Bearer(e) => e.status(),
            Self::Groups(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The challenge's `error`: none without credentials (RFC 6750 §3.1).
    pub fn oauth_error(&self) -> Option<OAuthErrorCode> {
        match self {
            Self::Bearer(e) => e.oauth_error(),
            Self::Groups(_) => None,
            _ => Some(OAuthErrorCode::InvalidToken),
        }
    }

    /// A stable reason code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Bearer(BearerError::Missing) => "no_token",
            Self::Bearer(BearerError::OtherScheme) => "not_bearer",
            Self::Bearer(_) => "malformed_authorization",
            Self::TooLarge => "token_too_large",
            Self::KindNotAccepted => "token_kind_not_accepted",
            Self::Invalid(e) => e.reason_code(),
            Self::OtherResource => "audience_other_resource",
            Self::Groups(e) => e.reason_code(),
        }
    }
}

/// The inbound token, kept to be presented as the token-exchange subject. Never printed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum InboundToken {
    /// An ID token.
    IdToken(IdToken),
    /// An IdP access token.
    AccessToken(AccessToken),
    /// An access token of the gateway's own authorization server: never sent anywhere; the
    /// user's IdP tokens are found through [`Identity::session`].
    GatewayToken,
}

/// An authenticated request: who, and with which token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authenticated {
    /// The verified identity.
    pub identity: Arc<Identity>,
    /// The token that proved it.
    pub token: InboundToken,
    /// The SHA-256 of that token (a cache key that is not the token).
    pub token_digest: [u8; 32],
}
