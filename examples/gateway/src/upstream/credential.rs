//! The credential seam: given the verified caller, the headers that authenticate one
//! upstream call, and a fresh credential after the upstream refused one. Every mode (the
//! ID-JAG flow, the bridging modes) implements [`UpstreamCredential`].

use std::fmt;
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use idjag_client::ClientError;
use idjag_core::{AccessToken, BoxFuture};

use crate::inbound::{Authenticated, Identity};

/// The credential headers of one upstream call (usually one `Authorization` value).
#[derive(Clone)]
pub struct Credential {
    headers: Arc<[(HeaderName, HeaderValue)]>,
    pub(crate) access_token: Option<AccessToken>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

impl Credential {
    /// A credential sent as `authorization` (marked sensitive).
    pub fn new(authorization: HeaderValue, access_token: Option<AccessToken>) -> Self {
        let mut credential = Self::from_headers(vec![(AUTHORIZATION, authorization)]);
        credential.access_token = access_token;
        credential
    }

    /// A credential made of several headers (each marked sensitive).
    pub fn from_headers(headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        let headers: Vec<_> = headers
            .into_iter()
            .map(|(name, mut value)| {
                value.set_sensitive(true);
                (name, value)
            })
            .collect();
        Self {
            headers: headers.into(),
            access_token: None,
        }
    }

    /// The headers to set on the upstream request (after the forwarded ones, replacing them).
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The `Authorization` header value, when the credential has one.
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(name, _)| *name == AUTHORIZATION)
            .map(|(_, value)| value)
    }
}

/// Selects identities (offboarding: the revoked user's or client's).
pub type IdentityMatch = Arc<dyn Fn(&Identity) -> bool + Send + Sync>;

/// Why no credential could be had. Never carries a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The mode needs the user's ID token, and the request carried an IdP access token.
    #[error("this upstream needs the user's ID token")]
    IdTokenRequired,
    /// The IdP refused by policy (`access_denied`, `invalid_target`, `invalid_grant`).
    #[error("the IdP refused: {code}")]
    PolicyDenied {
        /// The IdP's OAuth error code.
        code: String,
    },
    /// The IdP asks for a stronger or fresher sign-in.
    #[error("the IdP requires step-up authentication")]
    StepUpRequired,
    /// The user must sign in again.
    #[error("the user must sign in again")]
    ReauthenticationRequired,
    /// The caller's gateway token does not come from a browser sign-in (an EMA client's
    /// ID-JAG), so the gateway holds no IdP token of the user for this upstream.
    #[error("this upstream needs a browser sign-in through the gateway")]
    NoIdpSignIn,
    /// The upstream's authorization server refused the grant.
    #[error("the authorization server refused: {code}")]
    Refused {
        /// Where: `idp` or `authorization_server`.
        stage: &'static str,
        /// The OAuth error code.
        code: String,
    },
    /// A header template gave a value that cannot be sent (a control character in a claim).
    #[error("a header template gave an invalid value")]
    InvalidTemplateValue,
    /// `passthrough`: the inbound token is not an access token issued for this route (an ID
    /// token, or an access token for the whole gateway or another route).
    #[error("passthrough forwards only access tokens issued for this route")]
    NotForThisRoute,
    /// The caller has been revoked since the request started.
    #[error("revoked")]
    Revoked,
    /// The IdP or the authorization server could not be used (network, status, response).
    #[error("{stage} unavailable")]
    Unavailable {
        /// Where: `idp`, `authorization_server` or `discovery`.
        stage: &'static str,
    },
}

impl CredentialError {
    /// A stable code for the audit log and the JSON-RPC error.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::IdTokenRequired => "id_token_required",
            Self::PolicyDenied { .. } => "idp_policy_denied",
            Self::StepUpRequired => "step_up_required",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::NoIdpSignIn => "no_idp_sign_in",
            Self::Refused { .. } => "grant_refused",
            Self::InvalidTemplateValue => "template_value_invalid",
            Self::NotForThisRoute => "passthrough_token_not_for_route",
            Self::Revoked => "revoked",
            Self::Unavailable { .. } => "credential_unavailable",
        }
    }

    pub(crate) fn from_client(error: &ClientError) -> Self {
        let stage = match error.stage() {
            Some(idjag_client::Stage::ResourceAuthorizationServer) => "authorization_server",
            Some(idjag_client::Stage::Discovery) => "discovery",
            _ => "idp",
        };
        match error {
            ClientError::PolicyDenied { code, .. } => Self::PolicyDenied {
                code: code.as_str().to_owned(),
            },
            ClientError::StepUpRequired { .. } => Self::StepUpRequired,
            ClientError::ReauthenticationRequired { .. } => Self::ReauthenticationRequired,
            ClientError::Rejected { error, .. } => Self::Refused {
                stage,
                code: error.error.as_str().to_owned(),
            },
            _ => Self::Unavailable { stage },
        }
    }
}

/// How the gateway authenticates to one upstream. See the [module docs](self).
pub trait UpstreamCredential: fmt::Debug + Send + Sync {
    /// The configured mode's name (`id_jag`, ...).
    fn mode(&self) -> &'static str;
    /// A credential for `caller`.
    fn credential<'a>(
        &'a self,
        caller: &'a Authenticated,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>>;
    /// A new credential after the upstream answered `401` to `rejected`. By default there is
    /// none: a fixed credential refused once is refused again (`invalid_token`), and the
    /// call is not retried.
    fn after_unauthorized<'a>(
        &'a self,
        _caller: &'a Authenticated,
        _rejected: &'a Credential,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async {
            Err(CredentialError::Refused {
                stage: "upstream",
                code: "invalid_token".to_owned(),
            })
        })
    }
    /// Whether the mode is ready (metadata discovered, ...); may try to get there. By
    /// default, always.
    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
    /// Drops every cached credential obtained for the principal (offboarding). Modes that
    /// hold no per-user credential do nothing.
    fn forget(&self, _matches: &IdentityMatch) {}
    /// Cache hits and misses so far (modes without a cache: zero).
    fn cache_stats(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Token requests of a client-credentials mode so far (others: `None`).
    fn fetch_count(&self) -> Option<u64> {
        None
    }
}
