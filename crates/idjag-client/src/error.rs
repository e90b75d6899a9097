//! Typed errors. Each failure says where it happened ([`Stage`]) and, when a server answered
//! with an OAuth error, which code it sent. No variant holds a token, a secret or a raw claim
//! value, so `Display` and `Debug` are safe to log.

use std::fmt;

use idjag_core::challenge::ChallengeError;
use idjag_core::endpoint::EndpointError;
use idjag_core::{
    ClaimError, ErrorCode, InvalidIdentifier, JoseError, OAuthErrorCode, OAuthErrorResponse,
    ValidationError,
};

use crate::http::HttpError;

/// Where in the flow a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// The IdP token endpoint: leg 1 (token exchange) or an ID-token refresh.
    IdentityProvider,
    /// The resource authorization server token endpoint: leg 2 (JWT-bearer grant).
    ResourceAuthorizationServer,
    /// Fetching protected resource, authorization server or IdP metadata.
    Discovery,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IdentityProvider => "identity provider",
            Self::ResourceAuthorizationServer => "resource authorization server",
            Self::Discovery => "discovery",
        })
    }
}

/// An input that cannot be valid, refused before any request is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// An endpoint or issuer URL is not acceptable (https, or http on loopback only).
    #[error("{what} is not an acceptable endpoint: {error}")]
    Endpoint {
        /// Which URL.
        what: &'static str,
        /// Why.
        error: EndpointError,
    },
    /// A secret or token is empty.
    #[error("{what} is empty")]
    Empty {
        /// Which value.
        what: &'static str,
    },
    /// A token holds whitespace or control characters, is too long, or (for a SAML assertion)
    /// is not base64url.
    #[error("{what} is not a well-formed token")]
    MalformedToken {
        /// Which token.
        what: &'static str,
    },
    /// The IdP and the resource authorization server have the same issuer (ID-JAG -04 §9.3).
    #[error("the IdP and the resource authorization server must be different issuers")]
    SameIssuer,
    /// The ID-JAG was issued for another resource authorization server than the request names.
    #[error("the ID-JAG is bound to another resource authorization server")]
    WrongResourceAuthorizationServer,
    /// The ID-JAG has expired: it is never sent.
    #[error("the ID-JAG has expired")]
    IdJagExpired,
    /// The ID-JAG is bound to a DPoP key (`cnf.jkt`) that this client does not hold.
    #[error("the ID-JAG is bound to a DPoP key this client does not hold")]
    DpopKeyMissing,
    /// A value is not a valid identifier.
    #[error("{what} is not a valid identifier: {error}")]
    Identifier {
        /// Which value.
        what: &'static str,
        /// Why.
        error: InvalidIdentifier,
    },
    /// A configuration value is out of range.
    #[error("configuration value {what} is out of range")]
    Config {
        /// Which setting.
        what: &'static str,
    },
}

/// What is wrong with a successful-looking response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// The body exceeds the size cap.
    #[error("body exceeds {max} bytes")]
    TooLarge {
        /// The cap.
        max: usize,
    },
    /// The body is not one JSON object (or not UTF-8, or nests too deeply).
    #[error("body is not a JSON object")]
    NotJson,
    /// The JSON object repeats a member name.
    #[error("body repeats a JSON member")]
    DuplicateMember,
    /// A required member is absent.
    #[error("member {member} is missing")]
    Missing {
        /// The member.
        member: &'static str,
    },
    /// A member has the wrong JSON type.
    #[error("member {member} has the wrong type")]
    WrongType {
        /// The member.
        member: &'static str,
    },
    /// A member has the right type and an invalid value.
    #[error("member {member} is invalid")]
    Invalid {
        /// The member.
        member: &'static str,
    },
    /// `issued_token_type` is not the one requested (requirement TX-15).
    #[error("issued_token_type is not the requested token type")]
    IssuedTokenType,
    /// `token_type` is not `N_A` (leg 1) or `Bearer`/`DPoP` (leg 2).
    #[error("token_type is not the expected one")]
    TokenType,
    /// A `refresh_token` came back where none is expected (requirements TX-17, JB-18).
    #[error("an unexpected refresh_token was returned")]
    UnexpectedRefreshToken,
    /// The granted scope holds scopes that were not requested or not in the ID-JAG.
    #[error("granted scope exceeds what was requested")]
    ScopeExceeded,
    /// The response `scope` differs from the ID-JAG `scope` claim (requirement TX-16).
    #[error("response scope differs from the ID-JAG scope")]
    ScopeInconsistent,
    /// An echoed `resource` differs from the request.
    #[error("response resource differs from the request")]
    ResourceMismatch,
    /// The returned ID-JAG failed a check.
    #[error("ID-JAG rejected: {0}")]
    IdJag(#[from] IdJagProblem),
    /// The returned ID token failed a check (ID-token refresh at the IdP).
    #[error("ID token rejected: {0}")]
    IdToken(IdJagProblem),
    /// An error response carries an `error` that is not an RFC 6749 error code.
    #[error("error response is malformed")]
    ErrorBody,
}

/// Why a returned ID-JAG was refused before being used or sent anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdJagProblem {
    /// Not a well-formed compact JWS with an acceptable header (`alg: none` included).
    #[error(transparent)]
    Jose(JoseError),
    /// A claim is missing, has the wrong type or an invalid value.
    #[error(transparent)]
    Claim(ClaimError),
    /// The header `typ` is not `oauth-id-jag+jwt` (requirement IDJAG-01).
    #[error("typ is not oauth-id-jag+jwt")]
    Type,
    /// `iss` is not the IdP (requirement IDJAG-03).
    #[error("iss is not the IdP")]
    Issuer,
    /// `aud` is not the resource authorization server (requirement IDJAG-06).
    #[error("aud is not the resource authorization server")]
    Audience,
    /// `client_id` is not our client id at the resource authorization server (requirement
    /// IDJAG-07).
    #[error("client_id is not ours at the resource authorization server")]
    ClientId,
    /// `resource` names a resource that was not requested (requirements IDJAG-09, EMA-05).
    #[error("resource was not requested")]
    Resource,
    /// `scope` holds scopes that were not requested.
    #[error("scope exceeds the request")]
    Scope,
    /// `exp` has passed.
    #[error("expired")]
    Expired,
    /// `iat` lies in the future beyond the leeway.
    #[error("issued in the future")]
    IssuedInFuture,
    /// `nbf` lies in the future beyond the leeway.
    #[error("not yet valid")]
    NotYetValid,
    /// DPoP was requested and the ID-JAG carries no `cnf.jkt`: a downgrade (threat C03).
    #[error("cnf.jkt is missing although DPoP was requested")]
    ConfirmationMissing,
    /// `cnf.jkt` is not the thumbprint of our DPoP key (threat C03).
    #[error("cnf.jkt does not match our DPoP key")]
    ConfirmationMismatch,
    /// `cnf` is present although no DPoP proof was sent (requirement IDJAG-16).
    #[error("cnf is present although no DPoP proof was sent")]
    ConfirmationUnexpected,
    /// Signature verification (configured IdP keys) failed.
    #[error("signature verification failed: {0}")]
    Signature(ValidationError),
}

/// Why discovery could not produce usable metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// No candidate URL returned a usable metadata document.
    #[error("no usable metadata document was found")]
    NotFound,
    /// The metadata `issuer` differs from the issuer used to build its URL (RFC 8414 §3.3;
    /// requirement MD-07; threat C04). Discovery stops here.
    #[error("metadata issuer does not match the expected issuer")]
    IssuerMismatch,
    /// The protected resource metadata `resource` differs from the resource used (RFC 9728
    /// §3.3; requirement MD-08).
    #[error("protected resource metadata names another resource")]
    ResourceMismatch,
    /// The protected resource metadata lists no authorization server (requirement MD-09).
    #[error("protected resource metadata lists no authorization server")]
    NoAuthorizationServer,
    /// The expected authorization server is not among those the resource lists.
    #[error("the expected authorization server is not listed by the resource")]
    UnexpectedAuthorizationServer,
    /// The authorization server says it does not support the ID-JAG grant profile (requirement
    /// MD-12).
    #[error("the authorization server does not support the ID-JAG grant profile")]
    ProfileNotSupported,
    /// The IdP metadata says it does not issue ID-JAGs by token exchange (requirements MD-01,
    /// MD-02).
    #[error("the IdP does not advertise ID-JAG issuance by token exchange")]
    IdJagNotIssued,
    /// The metadata has no `token_endpoint`.
    #[error("metadata has no token_endpoint")]
    NoTokenEndpoint,
    /// A URL in the metadata or the challenge is not acceptable.
    #[error("a discovered URL is not acceptable: {0}")]
    Endpoint(EndpointError),
    /// The `WWW-Authenticate` header could not be parsed.
    #[error("WWW-Authenticate header is malformed")]
    Challenge,
    /// The challenge's `resource_metadata` is not on the resource's own origin (scheme, host
    /// and port; threat C09). Nothing was fetched.
    #[error("the resource metadata URL is not on the resource's origin")]
    MetadataCrossOrigin,
    /// An `https` resource named `http` metadata (threat C09). Nothing was fetched.
    #[error("an https resource named plain-http metadata")]
    MetadataDowngrade,
    /// A URL the resource named leads to an address outside the address policy: loopback for a
    /// resource that is not, a private network unless allowed, or a link-local, metadata or
    /// reserved address (threat C10).
    #[error("a discovered URL leads to an address that is not allowed")]
    AddressNotAllowed,
}

impl From<ChallengeError> for DiscoveryError {
    fn from(error: ChallengeError) -> Self {
        match error {
            ChallengeError::Endpoint(error) => Self::Endpoint(error),
            _ => Self::Challenge,
        }
    }
}

/// A step-up request from the IdP: `insufficient_user_authentication` with the RFC 9470
/// parameters, to be passed to the next interactive sign-in.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StepUp {
    /// `max_age`: the largest acceptable age of the user's authentication, in seconds.
    pub max_age: Option<u64>,
    /// `acr_values`: the authentication context classes to satisfy, space-separated.
    pub acr_values: Option<String>,
    /// The whole error response.
    pub error: OAuthErrorResponse,
}

/// Why the user has to sign in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReauthReason {
    /// The ID token has expired and no refresh token is at hand.
    IdTokenExpired,
    /// The IdP refused the refresh token (`invalid_grant`).
    RefreshRejected,
}

impl fmt::Display for ReauthReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IdTokenExpired => "the ID token has expired and there is no refresh token",
            Self::RefreshRejected => "the IdP refused the refresh token",
        })
    }
}

/// Every failure of the client. Never a fallback to another credential: each error ends the
/// attempt and names its stage.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Refused before any request was sent.
    #[error("request not sent: {0}")]
    InvalidInput(#[from] InputError),
    /// The IdP refused by policy: `access_denied`, `invalid_target` or `invalid_grant`.
    #[error("{stage} denied the request: {code} (HTTP {status})")]
    PolicyDenied {
        /// Where (always the IdP).
        stage: Stage,
        /// HTTP status.
        status: u16,
        /// The OAuth code.
        code: OAuthErrorCode,
        /// The error response.
        error: Box<OAuthErrorResponse>,
    },
    /// The IdP asks for a stronger or fresher sign-in (`insufficient_user_authentication`).
    #[error("{stage} requires step-up authentication (HTTP {status})")]
    StepUpRequired {
        /// Where.
        stage: Stage,
        /// HTTP status.
        status: u16,
        /// The RFC 9470 parameters.
        step_up: Box<StepUp>,
    },
    /// Any other OAuth error, at the resource authorization server or the IdP.
    #[error("{stage} rejected the request: {} (HTTP {status})", error.error)]
    Rejected {
        /// Where.
        stage: Stage,
        /// HTTP status.
        status: u16,
        /// The error response.
        error: Box<OAuthErrorResponse>,
    },
    /// A status other than 200 without an OAuth error body; redirects land here, unfollowed.
    #[error("{stage} answered HTTP {status}")]
    UnexpectedStatus {
        /// Where.
        stage: Stage,
        /// HTTP status.
        status: u16,
    },
    /// A 200 response that is malformed or inconsistent with the request.
    #[error("{stage} sent an unacceptable response: {problem}")]
    MalformedResponse {
        /// Where.
        stage: Stage,
        /// What is wrong.
        problem: ResponseProblem,
    },
    /// The request did not complete (connection, TLS, timeout, size cap).
    #[error("{stage} request failed: {error}")]
    Transport {
        /// Where.
        stage: Stage,
        /// The transport error.
        error: HttpError,
    },
    /// Discovery produced no usable metadata.
    #[error("discovery failed: {0}")]
    Discovery(#[from] DiscoveryError),
    /// The client assertion (`private_key_jwt`) or the DPoP proof could not be made.
    #[error("{stage}: the client could not sign its {what}")]
    Signing {
        /// Where.
        stage: Stage,
        /// What: `client assertion` or `DPoP proof`.
        what: &'static str,
    },
    /// No usable subject token is left: the user must sign in again (threat C05).
    #[error("the user must sign in again: {reason}")]
    ReauthenticationRequired {
        /// Why.
        reason: ReauthReason,
    },
}

impl ClientError {
    /// Where the failure happened (`None` for inputs refused before sending).
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Self::PolicyDenied { stage, .. }
            | Self::StepUpRequired { stage, .. }
            | Self::Rejected { stage, .. }
            | Self::UnexpectedStatus { stage, .. }
            | Self::MalformedResponse { stage, .. }
            | Self::Transport { stage, .. }
            | Self::Signing { stage, .. } => Some(*stage),
            Self::Discovery(_) => Some(Stage::Discovery),
            Self::ReauthenticationRequired { .. } => Some(Stage::IdentityProvider),
            Self::InvalidInput(_) => None,
        }
    }

    /// The OAuth error code the server answered with, if any.
    pub fn oauth_error(&self) -> Option<&ErrorCode> {
        match self {
            Self::PolicyDenied { error, .. } | Self::Rejected { error, .. } => Some(&error.error),
            Self::StepUpRequired { step_up, .. } => Some(&step_up.error.error),
            _ => None,
        }
    }

    /// The HTTP status of the answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::PolicyDenied { status, .. }
            | Self::StepUpRequired { status, .. }
            | Self::Rejected { status, .. }
            | Self::UnexpectedStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the IdP refused by policy ("blocked by your administrator").
    pub fn is_policy_denial(&self) -> bool {
        matches!(self, Self::PolicyDenied { .. })
    }

    /// The step-up request, when the IdP asked for one.
    pub fn step_up(&self) -> Option<&StepUp> {
        match self {
            Self::StepUpRequired { step_up, .. } => Some(step_up),
            _ => None,
        }
    }

    pub(crate) fn malformed(stage: Stage, problem: impl Into<ResponseProblem>) -> Self {
        Self::MalformedResponse {
            stage,
            problem: problem.into(),
        }
    }
}

/// Classifies an OAuth error response (RFC 6749 §5.2) received at `stage`.
pub(crate) fn classify(stage: Stage, status: u16, error: OAuthErrorResponse) -> ClientError {
    match error.error.known() {
        Some(OAuthErrorCode::InsufficientUserAuthentication) => {
            let max_age = error.extra.get("max_age").and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            });
            let acr_values = error
                .extra
                .get("acr_values")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            ClientError::StepUpRequired {
                stage,
                status,
                step_up: Box::new(StepUp {
                    max_age,
                    acr_values,
                    error,
                }),
            }
        }
        Some(
            code @ (OAuthErrorCode::AccessDenied
            | OAuthErrorCode::InvalidTarget
            | OAuthErrorCode::InvalidGrant),
        ) if stage == Stage::IdentityProvider => ClientError::PolicyDenied {
            stage,
            status,
            code,
            error: Box::new(error),
        },
        _ => ClientError::Rejected {
            stage,
            status,
            error: Box::new(error),
        },
    }
}
