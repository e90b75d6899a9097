//! Errors and the OAuth error wire format.
//!
//! Errors are layered: [`JoseError`] (structure) and [`KeyError`] (key import) feed
//! [`ValidationError`] (one token). Every variant holds structured data only: no token, secret
//! or raw claim value ever appears in a `Display` or `Debug` text. Server crates keep the
//! variant for their audit log and send only the [`OAuthErrorCode`] and a generic description.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::InvalidIdentifier;

/// The OAuth error codes idjag emits (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8693 §2.2.2,
/// RFC 8707, RFC 9396, RFC 9449, RFC 9470). Codes received from peers are parsed into
/// [`ErrorCode`], which also keeps unknown ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`: a parameter is missing, repeated, malformed or unsupported.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (401 when the `Authorization` header was used).
    InvalidClient,
    /// `invalid_grant`: the grant or assertion is invalid, expired, revoked or bound to another client.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `unsupported_response_type`: the authorization endpoint does not issue this response
    /// type (RFC 6749 §4.1.2.1).
    UnsupportedResponseType,
    /// `invalid_scope`: the requested scope is invalid, unknown or exceeds what is allowed.
    InvalidScope,
    /// `invalid_target`: the requested audience or resource is unknown or not allowed (RFC 8707, RFC 8693).
    InvalidTarget,
    /// `access_denied`: policy refused the request.
    AccessDenied,
    /// `insufficient_user_authentication`: step-up required (RFC 9470).
    InsufficientUserAuthentication,
    /// `invalid_dpop_proof` (RFC 9449).
    InvalidDpopProof,
    /// `invalid_authorization_details` (RFC 9396).
    InvalidAuthorizationDetails,
    /// `invalid_token`: a bearer token is missing its mark (RFC 6750).
    InvalidToken,
    /// `insufficient_scope`: the bearer token lacks a scope (RFC 6750).
    InsufficientScope,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::InvalidAuthorizationDetails => "invalid_authorization_details",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    const ALL: [Self; 16] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::UnsupportedResponseType,
        Self::InvalidScope,
        Self::InvalidTarget,
        Self::AccessDenied,
        Self::InsufficientUserAuthentication,
        Self::InvalidDpopProof,
        Self::InvalidAuthorizationDetails,
        Self::InvalidToken,
        Self::InsufficientScope,
        Self::ServerError,
        Self::TemporarilyUnavailable,
    ];

    /// The known code with this wire name.
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The HTTP status a server answers with for this code at a token endpoint or a
    /// protected resource.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OAuthErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An error code received from a peer: a known [`OAuthErrorCode`] or an extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A code idjag knows.
    Known(OAuthErrorCode),
    /// Any other code (kept verbatim; it came from the peer, not from a token).
    Extension(String),
}

impl ErrorCode {
    /// The code as it appeared on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Known(code) => code.as_str(),
            Self::Extension(s) => s,
        }
    }

    /// The known code, if this is one.
    pub fn known(&self) -> Option<OAuthErrorCode> {
        match self {
            Self::Known(code) => Some(*code),
            Self::Extension(_) => None,
        }
    }
}

impl From<OAuthErrorCode> for ErrorCode {
    fn from(code: OAuthErrorCode) -> Self {
        Self::Known(code)
    }
}

impl PartialEq<OAuthErrorCode> for ErrorCode {
    fn eq(&self, other: &OAuthErrorCode) -> bool {
        self.known() == Some(*other)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(OAuthErrorCode::from_wire(&s).map_or(Self::Extension(s), Self::Known))
    }
}

/// An RFC 6749 §5.2 error response body: `{"error": ..., "error_description": ..., ...}`.
///
/// ```
/// use idjag_core::{OAuthErrorCode, OAuthErrorResponse};
/// let body = OAuthErrorResponse::new(OAuthErrorCode::InvalidGrant)
///     .with_description("the assertion is not valid");
/// let json = serde_json::to_string(&body).unwrap();
/// assert_eq!(json, r#"{"error":"invalid_grant","error_description":"the assertion is not valid"}"#);
/// let back: OAuthErrorResponse = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.error, OAuthErrorCode::InvalidGrant);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthErrorResponse {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable text. Servers send only generic text here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A URI with more information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
    /// Further members (for example RFC 9470 `max_age` and `acr_values`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl OAuthErrorResponse {
    /// A response with this code and nothing else.
    pub fn new(code: impl Into<ErrorCode>) -> Self {
        Self {
            error: code.into(),
            error_description: None,
            error_uri: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Sets `error_description`.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.error_description = Some(description.into());
        self
    }

    /// Adds a further member.
    pub fn with_member(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The HTTP status for this response (400 for unknown codes).
    pub fn status(&self) -> StatusCode {
        self.error
            .known()
            .map_or(StatusCode::BAD_REQUEST, OAuthErrorCode::status)
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| br#"{"error":"server_error"}"#.to_vec())
    }
}

impl fmt::Display for OAuthErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.as_str())?;
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

/// The system generator could not deliver random bytes. Callers fail the operation that
/// needed them; nothing falls back to a weaker source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random generator failed")]
#[non_exhaustive]
pub struct RandomError;

/// Which segment of a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// The protected header.
    Header,
    /// The payload.
    Payload,
    /// The signature.
    Signature,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// A structural problem with a compact JWS or its JOSE header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The token is longer than the configured cap; nothing else was looked at.
    #[error("token exceeds {max} bytes")]
    TooLarge {
        /// The cap.
        max: usize,
    },
    /// Not exactly three dot-separated segments (this also covers JWE and JSON serialisation).
    #[error("not a compact JWS with exactly three segments")]
    SegmentCount,
    /// A segment is empty (an empty signature is how `alg: none` tokens look).
    #[error("{segment} segment is empty")]
    EmptySegment {
        /// Which segment.
        segment: Segment,
    },
    /// A segment is not strict base64url (padding, `+`, `/`, whitespace, non-canonical bits).
    #[error("{segment} segment is not strict base64url")]
    Base64 {
        /// Which segment.
        segment: Segment,
    },
    /// A segment is not UTF-8 (RFC 8725 §3.7).
    #[error("{segment} is not UTF-8")]
    Utf8 {
        /// Which segment.
        segment: Segment,
    },
    /// A segment is not well-formed JSON (or nests too deeply, or has a lone surrogate).
    #[error("{segment} is not valid JSON")]
    Json {
        /// Which segment.
        segment: Segment,
    },
    /// A JSON object repeats a member name (RFC 7515 §4, RFC 7519 §4: idjag rejects).
    #[error("{segment} repeats a JSON member name")]
    DuplicateMember {
        /// Which segment.
        segment: Segment,
    },
    /// The header or payload is not a JSON object.
    #[error("{segment} is not a JSON object")]
    NotAnObject {
        /// Which segment.
        segment: Segment,
    },
    /// The header has no `alg`.
    #[error("header has no alg")]
    MissingAlgorithm,
    /// The header `alg` is not one idjag supports (`none` and HMAC are never supported).
    #[error("header alg is not supported")]
    UnsupportedAlgorithm,
    /// The header carries a member idjag refuses: `crit`, `cty`, `b64` or `zip`.
    #[error("header member {member} is not accepted")]
    ForbiddenHeader {
        /// The member name.
        member: &'static str,
    },
    /// A header member has the wrong JSON type or an invalid value.
    #[error("header member {member} is invalid")]
    InvalidHeader {
        /// The member name.
        member: &'static str,
    },
}

/// Why a key was refused at import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The JWK is not a JSON object or a member has the wrong type.
    #[error("JWK member {member} is missing or invalid")]
    InvalidMember {
        /// The member name.
        member: &'static str,
    },
    /// `kty` is not EC, RSA or OKP (symmetric `oct` keys are never used).
    #[error("key type is not supported")]
    UnsupportedKeyType,
    /// The curve is not P-256, P-384 or Ed25519.
    #[error("curve is not supported")]
    UnsupportedCurve,
    /// The JWK `alg` is not one idjag supports.
    #[error("key algorithm is not supported")]
    UnsupportedAlgorithm,
    /// The JWK `alg` does not fit its key type or curve.
    #[error("key algorithm does not match its key type or curve")]
    AlgorithmMismatch,
    /// A public key set holds private key members.
    #[error("public key carries private members")]
    PrivateMembers,
    /// A private key lacks its private members.
    #[error("private key lacks private members")]
    NotPrivate,
    /// `use` is present and is not `sig`.
    #[error("key use is not sig")]
    WrongUse,
    /// `key_ops` is present and lacks the operation needed.
    #[error("key_ops does not allow this operation")]
    WrongKeyOps,
    /// RSA modulus below 2048 bits.
    #[error("RSA modulus of {bits} bits is below 2048")]
    RsaTooSmall {
        /// The modulus size.
        bits: usize,
    },
    /// RSA modulus above 8192 bits.
    #[error("RSA modulus of {bits} bits is above 8192")]
    RsaTooLarge {
        /// The modulus size.
        bits: usize,
    },
    /// RSA public exponent is 1, even, or absurdly large.
    #[error("RSA public exponent is not acceptable")]
    RsaExponent,
    /// The RSA modulus has the ROCA fingerprint (CVE-2017-15361).
    #[error("RSA modulus has the ROCA fingerprint")]
    RsaRoca,
    /// The key material was refused by the crypto backend (for example an EC point not on the curve).
    #[error("key material is invalid")]
    InvalidKey,
    /// Another usable key in the set has the same `kid`, so neither can be picked safely.
    #[error("kid is shared by several keys")]
    DuplicateKid,
    /// PEM or DER input could not be read.
    #[error("key encoding is invalid")]
    Encoding,
    /// The key set document is not a JWK Set (`{"keys": [...]}`) or exceeds the limits.
    #[error("not a valid JWK set")]
    InvalidKeySet,
    /// The crypto backend failed.
    #[error("crypto backend failure")]
    Backend,
}

/// Why no verification key was found for a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLookupError {
    /// No key of the issuer has this `kid`.
    #[error("no key with this kid")]
    UnknownKid,
    /// No `kid` was given and no key of the issuer fits the algorithm.
    #[error("no key fits the token")]
    NoMatchingKey,
    /// No `kid` was given and several keys fit (threat V15).
    #[error("several keys fit and the token names none")]
    AmbiguousKey,
    /// The key named by `kid` is pinned to another algorithm than the header names.
    #[error("key is pinned to another algorithm")]
    AlgorithmMismatch,
    /// The issuer's key set could not be obtained, or is too old to use.
    #[error("issuer keys are unavailable")]
    KeysUnavailable,
}

/// What is wrong with one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimProblem {
    /// Required and absent (or `null`).
    Missing,
    /// Present with the wrong JSON type (CVE-2026-25537 class: a hard error, never "absent").
    WrongType,
    /// Present with the right type and an invalid value.
    Invalid,
}

impl fmt::Display for ClaimProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "is missing",
            Self::WrongType => "has the wrong type",
            Self::Invalid => "is invalid",
        })
    }
}

/// A claim that failed to parse. Names the claim, never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("claim {claim} {problem}")]
pub struct ClaimError {
    /// The claim name.
    pub claim: &'static str,
    /// The problem.
    pub problem: ClaimProblem,
}

impl ClaimError {
    pub(crate) const fn missing(claim: &'static str) -> Self {
        Self {
            claim,
            problem: ClaimProblem::Missing,
        }
    }
    pub(crate) const fn wrong_type(claim: &'static str) -> Self {
        Self {
            claim,
            problem: ClaimProblem::WrongType,
        }
    }
    pub(crate) const fn invalid(claim: &'static str) -> Self {
        Self {
            claim,
            problem: ClaimProblem::Invalid,
        }
    }
    /// A claim whose string is not a valid identifier (empty, too long, control characters).
    pub(crate) fn from_identifier(claim: &'static str, _: InvalidIdentifier) -> Self {
        Self::invalid(claim)
    }
}

/// Why a token was rejected. Checks run in a fixed order (size, base64url, JSON, header,
/// issuer-scoped key lookup, signature, claims), so the first failing step names the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The token is not a well-formed compact JWS with an acceptable header.
    #[error(transparent)]
    Malformed(#[from] JoseError),
    /// The header `typ` is not the one this token kind requires (RFC 8725 §3.11, §3.12).
    #[error("token type is not {expected}")]
    WrongType {
        /// The `typ` this validator requires.
        expected: &'static str,
    },
    /// The header `alg` is supported but not allowed by this validator.
    #[error("algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// `iss` is absent, not a string, or not exactly a trusted issuer.
    #[error("issuer is not trusted")]
    UntrustedIssuer,
    /// No usable key of the issuer fits.
    #[error(transparent)]
    Key(#[from] KeyLookupError),
    /// The signature does not verify (also: wrong length or DER encoding).
    #[error("signature is invalid")]
    BadSignature,
    /// A claim failed to parse.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// `aud` is not the expected audience.
    #[error("audience does not match")]
    AudienceMismatch,
    /// `exp` has passed (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `exp - iat` exceeds the maximum lifetime.
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong,
    /// `iat` is older than the maximum age.
    #[error("token is too old")]
    TooOld,
    /// `exp` lies further ahead than the maximum lifetime (tokens without `iat`).
    #[error("token expires too far in the future")]
    ExpiresTooFarAhead,
}

impl ValidationError {
    /// The OAuth error code for this failure when the token was presented as an
    /// authorization grant (RFC 7523 §3.1: `invalid_grant` for every invalid JWT). Callers
    /// that validate client assertions answer `invalid_client`, and resource servers
    /// `invalid_token`, for the same variants.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        OAuthErrorCode::InvalidGrant
    }

    /// A stable, low-cardinality reason code for audit logs and metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Malformed(JoseError::TooLarge { .. }) => "too_large",
            Self::Malformed(JoseError::UnsupportedAlgorithm | JoseError::MissingAlgorithm) => {
                "unsupported_alg"
            }
            Self::Malformed(
                JoseError::ForbiddenHeader { .. } | JoseError::InvalidHeader { .. },
            ) => "bad_header",
            Self::Malformed(_) => "malformed",
            Self::WrongType { .. } => "wrong_typ",
            Self::AlgorithmNotAllowed => "alg_not_allowed",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::Key(KeyLookupError::KeysUnavailable) => "keys_unavailable",
            Self::Key(_) => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Claim(_) => "bad_claim",
            Self::AudienceMismatch => "wrong_audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::TooOld => "too_old",
            Self::ExpiresTooFarAhead => "exp_too_far_ahead",
        }
    }
}
