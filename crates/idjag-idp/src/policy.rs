//! Issuance policy: who may get an ID-JAG for which resource AS, resources and scopes
//! (IdP steps 4 and 5; requirements TX-11 to TX-13, TX-20, TX-22, TX-26).
//!
//! [`Policy`] is the extension point; [`TomlPolicy`] is the declarative implementation.
//! Whatever the policy answers, the issuer never grants more than was asked: a grant with a
//! scope, resource or authorization detail beyond the request is refused as a policy fault.

mod toml;

use std::fmt;

use idjag_core::{
    Audience, AuthorizationDetail, BoxFuture, ClientId, Issuer, NumericDate, OAuthErrorCode,
    Resource, ScopeSet, Subject,
};

pub use self::toml::{AbsentScope, PolicyConfigError, TomlPolicy};
use crate::subject::SubjectPrincipal;

/// What the policy decides about.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PolicyRequest<'a> {
    /// The authenticated client's id at this IdP.
    pub client_id: &'a ClientId,
    /// The user, from the verified subject token.
    pub principal: &'a SubjectPrincipal,
    /// The `audience` parameter as sent (an issuer or an alias).
    pub audience: &'a Audience,
    /// The `resource` parameters (possibly none).
    pub resources: &'a [Resource],
    /// The `scope` parameter, when sent.
    pub scope: Option<&'a ScopeSet>,
    /// The `authorization_details` parameter, when sent.
    pub authorization_details: Option<&'a [AuthorizationDetail]>,
    /// The current time, from the issuer's clock.
    pub now: NumericDate,
}

/// What the policy grants. The ID-JAG carries exactly this (requirement TX-13).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Grant {
    /// The resource AS issuer: the ID-JAG `aud`, never an alias (threat X10).
    pub audience: Issuer,
    /// The client's id at that resource AS: the ID-JAG `client_id` (requirement IDJAG-07).
    pub client_id: ClientId,
    /// The granted resources (a subset of those requested).
    pub resources: Vec<Resource>,
    /// The granted scope (a non-empty subset of the requested one). `None` gives an ID-JAG
    /// without a `scope` claim, whose scope the resource AS decides, possibly with defaults
    /// wider than this policy would allow: for a request without `scope`, answer the allowed
    /// scopes explicitly or refuse, as [`TomlPolicy`] does (threat X23).
    pub scope: Option<ScopeSet>,
    /// The granted authorization details, possibly modified by policy.
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
    /// Overrides the ID-JAG `sub` (for IdPs with pairwise identifiers: the value the resource
    /// AS sees in its own SSO, ID-JAG -04 §5). `None` keeps the principal's subject.
    pub subject: Option<Subject>,
    /// Whether the ID-JAG carries the user's email (requirement IDJAG-13; EMA §7.4.3 says keep PII
    /// out).
    pub include_email: bool,
}

impl Grant {
    /// A grant for `audience`, naming the client as `client_id` there, with nothing else.
    pub fn new(audience: Issuer, client_id: ClientId) -> Self {
        Self {
            audience,
            client_id,
            resources: Vec::new(),
            scope: None,
            authorization_details: None,
            subject: None,
            include_email: false,
        }
    }

    /// Sets the granted resources.
    pub fn with_resources(mut self, resources: Vec<Resource>) -> Self {
        self.resources = resources;
        self
    }

    /// Sets the granted scope.
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Sets the granted authorization details.
    pub fn with_authorization_details(mut self, details: Vec<AuthorizationDetail>) -> Self {
        self.authorization_details = Some(details);
        self
    }

    /// Puts the user's email in the ID-JAG.
    pub fn with_email(mut self) -> Self {
        self.include_email = true;
        self
    }
}

/// Why the policy refused. The wire answer names the class of problem only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyDenial {
    /// The audience is not a configured resource AS, or the client has no id there
    /// (`invalid_target`; the two are not told apart, so the list of resource ASes does not
    /// leak, requirement MD-05).
    #[error("audience is not available to this client")]
    UnknownAudience,
    /// A resource is not registered for the audience (EMA §7.6.1; `invalid_target`).
    #[error("resource is not registered for the audience")]
    ResourceNotRegistered,
    /// A resource is registered but not allowed for this client and user (`invalid_target`).
    #[error("resource is not allowed")]
    ResourceNotAllowed,
    /// No rule allows this client and user to reach the audience (`access_denied`).
    #[error("no rule allows this request")]
    NotAllowed,
    /// A deny rule matched (`access_denied`).
    #[error("a deny rule matched")]
    Denied,
    /// None of the requested scopes is allowed (`invalid_scope`).
    #[error("no requested scope is allowed")]
    ScopeNotAllowed,
    /// An authorization detail has a type that is not allowed (`invalid_authorization_details`).
    #[error("authorization details are not allowed")]
    AuthorizationDetailsNotAllowed,
    /// The user must authenticate again, more recently or more strongly
    /// (`insufficient_user_authentication`, RFC 9470 style; requirement TX-20).
    #[error("step-up authentication required")]
    StepUp {
        /// The largest acceptable age of the authentication, in seconds.
        max_age: Option<u64>,
        /// Acceptable authentication context classes.
        acr_values: Vec<String>,
    },
    /// A policy backend could not answer (`temporarily_unavailable`; fail closed).
    #[error("policy backend unavailable")]
    Unavailable,
}

impl PolicyDenial {
    /// The OAuth error code.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        match self {
            Self::UnknownAudience | Self::ResourceNotRegistered | Self::ResourceNotAllowed => {
                OAuthErrorCode::InvalidTarget
            }
            Self::NotAllowed | Self::Denied => OAuthErrorCode::AccessDenied,
            Self::ScopeNotAllowed => OAuthErrorCode::InvalidScope,
            Self::AuthorizationDetailsNotAllowed => OAuthErrorCode::InvalidAuthorizationDetails,
            Self::StepUp { .. } => OAuthErrorCode::InsufficientUserAuthentication,
            Self::Unavailable => OAuthErrorCode::TemporarilyUnavailable,
        }
    }

    /// A stable reason code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::UnknownAudience => "audience_not_available",
            Self::ResourceNotRegistered => "resource_not_registered",
            Self::ResourceNotAllowed => "resource_not_allowed",
            Self::NotAllowed => "not_allowed",
            Self::Denied => "denied_by_rule",
            Self::ScopeNotAllowed => "scope_not_allowed",
            Self::AuthorizationDetailsNotAllowed => "authorization_details_not_allowed",
            Self::StepUp { .. } => "step_up_required",
            Self::Unavailable => "policy_unavailable",
        }
    }
}

/// Decides what an ID-JAG grants.
///
/// Implementations see the verified user and the request, and answer a [`Grant`] or a
/// [`PolicyDenial`]. Use [`TomlPolicy`] for a declarative policy, or implement this to ask
/// your own policy engine.
pub trait Policy: fmt::Debug + Send + Sync {
    /// The decision for `request`.
    fn evaluate<'a>(
        &'a self,
        request: &'a PolicyRequest<'a>,
    ) -> BoxFuture<'a, Result<Grant, PolicyDenial>>;
}
