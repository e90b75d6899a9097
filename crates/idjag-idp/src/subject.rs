//! Subject tokens: what the client trades for an ID-JAG (requirements TX-05, TX-06, TX-08 to
//! TX-10).
//!
//! Each `subject_token_type` has a [`SubjectTokenValidator`]. The built-in ones are
//! [`IdTokenSubjectValidator`] (OIDC ID tokens signed by this IdP, issued to the
//! authenticated client) and [`RefreshTokenSubjectValidator`] (refresh tokens looked up in a
//! host [`RefreshTokenStore`]). SAML 2.0 assertions are accepted only through a validator the
//! host brings; without one the IdP answers `invalid_request`.

mod id_token;
mod refresh;

use std::fmt;

use idjag_core::server::AuthenticatedClient;
use idjag_core::{BoxFuture, NumericDate, OAuthErrorCode, Subject, SubjectToken, ValidationError};

pub use id_token::IdTokenSubjectValidator;
pub use refresh::{
    RefreshTokenRecord, RefreshTokenStore, RefreshTokenSubjectValidator, StoreUnavailable,
};

/// The user a valid subject token names, with the facts policy and the ID-JAG need.
///
/// Validators build it from verified data only: the claims of a verified ID token, or the
/// current record of the user behind a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubjectPrincipal {
    /// The user's identifier at this IdP (the ID-JAG `sub`; requirement IDJAG-04).
    pub subject: Subject,
    /// The user's email, put in an ID-JAG only when policy asks for it (requirement IDJAG-13).
    pub email: Option<String>,
    /// Group names, for policy.
    pub groups: Vec<String>,
    /// The tenant the user belongs to, when the IdP is multi-tenant.
    pub tenant: Option<String>,
    /// When the user last authenticated (for step-up rules).
    pub auth_time: Option<NumericDate>,
    /// The authentication context class (for step-up rules).
    pub acr: Option<String>,
    /// The authentication methods.
    pub amr: Option<Vec<String>>,
}

impl SubjectPrincipal {
    /// A principal with only its subject.
    pub fn new(subject: Subject) -> Self {
        Self {
            subject,
            email: None,
            groups: Vec::new(),
            tenant: None,
            auth_time: None,
            acr: None,
            amr: None,
        }
    }

    /// Sets the email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the groups.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the authentication context: when, how strongly and by which methods.
    pub fn with_authentication(
        mut self,
        auth_time: Option<NumericDate>,
        acr: Option<String>,
        amr: Option<Vec<String>>,
    ) -> Self {
        self.auth_time = auth_time;
        self.acr = acr;
        self.amr = amr;
        self
    }
}

/// Why a subject token was refused. Names the problem, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectTokenError {
    /// A JWT subject token failed validation (signature, `typ`, issuer, time, claims).
    #[error("subject token is not valid: {0}")]
    Invalid(ValidationError),
    /// The token was issued to another client than the one authenticated (requirements TX-08,
    /// TX-10; threats X03, X07).
    #[error("subject token was issued to another client")]
    OtherClient,
    /// The token is not known (for example a string that is not one of our refresh tokens).
    #[error("subject token is not known")]
    Unknown,
    /// The token has expired.
    #[error("subject token has expired")]
    Expired,
    /// The token was revoked.
    #[error("subject token was revoked")]
    Revoked,
    /// The user behind the token is disabled or gone.
    #[error("the user is disabled")]
    UserDisabled,
    /// A host validator refused the token for its own reason (a stable, low-cardinality code).
    #[error("subject token was refused ({reason})")]
    Refused {
        /// The host's reason code, for the audit log.
        reason: &'static str,
    },
    /// The store behind the validator could not answer; the request fails closed.
    #[error("subject token store unavailable")]
    Unavailable,
}

impl SubjectTokenError {
    /// A stable reason code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Invalid(ValidationError::AudienceMismatch) => "subject_token_other_client",
            Self::Invalid(ValidationError::WrongType { .. }) => "subject_token_wrong_type",
            Self::Invalid(ValidationError::Expired) => "subject_token_expired",
            Self::Invalid(ValidationError::BadSignature) => "subject_token_bad_signature",
            Self::Invalid(ValidationError::UntrustedIssuer) => "subject_token_untrusted_issuer",
            Self::Invalid(_) => "subject_token_invalid",
            Self::OtherClient => "subject_token_other_client",
            Self::Unknown => "subject_token_unknown",
            Self::Expired => "subject_token_expired",
            Self::Revoked => "subject_token_revoked",
            Self::UserDisabled => "subject_user_disabled",
            Self::Refused { reason } => reason,
            Self::Unavailable => "subject_store_unavailable",
        }
    }

    /// Whether the failure is the store's, not the token's.
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable)
    }
}

/// The OAuth error code for a refused subject token (see the crate docs, "Decisions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubjectTokenErrorCode {
    /// `invalid_grant`: the threat model (threats X03 to X07) and the ID-JAG draft's example (the
    /// default).
    #[default]
    InvalidGrant,
    /// `invalid_request`: the letter of RFC 8693 §2.2.2.
    InvalidRequest,
}

impl SubjectTokenErrorCode {
    pub(crate) fn code(self) -> OAuthErrorCode {
        match self {
            Self::InvalidGrant => OAuthErrorCode::InvalidGrant,
            Self::InvalidRequest => OAuthErrorCode::InvalidRequest,
        }
    }
}

/// Validates one kind of subject token for an authenticated client.
///
/// Implement it to accept SAML 2.0 assertions (check the signature, the Conditions and that
/// the Audience maps to `client`; requirement TX-09) or any token your OpenID provider issues.
pub trait SubjectTokenValidator: fmt::Debug + Send + Sync {
    /// The user `token` names, if it is valid and was issued to `client`.
    fn validate<'a>(
        &'a self,
        token: &'a SubjectToken,
        client: &'a AuthenticatedClient,
    ) -> BoxFuture<'a, Result<SubjectPrincipal, SubjectTokenError>>;
}
