//! The resource-server side: verifying the access tokens a resource authorization server
//! issued, challenging clients that lack one (RFC 6750, RFC 9728), and serving the protected
//! resource metadata document.
//!
//! ```
//! use std::sync::Arc;
//! use idjag_core::*;
//! use idjag_resource::rs::{AccessTokenVerifier, ProtectedResource};
//!
//! let as_key = SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid();
//! let as_issuer = Issuer::new("https://auth.chat.example")?;
//! let resource = Resource::new("https://mcp.chat.example/mcp")?;
//! let verifier = AccessTokenVerifier::new(
//!     resource.clone(),
//!     as_issuer.clone(),
//!     Arc::new(KeySet::new([as_key.verifying_key()?])?),
//!     SystemClock::shared(),
//! );
//! let protected = ProtectedResource::new(verifier, vec![as_issuer])?
//!     .with_scopes_supported(ScopeSet::parse("chat.read chat.write")?);
//! assert_eq!(
//!     protected.metadata_url(),
//!     "https://mcp.chat.example/.well-known/oauth-protected-resource/mcp"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "tower")]
mod layer;

use std::sync::Arc;
use std::time::Duration;

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, Response, StatusCode};
use idjag_core::challenge::BearerChallenge;
use idjag_core::endpoint::{EndpointError, check_endpoint, well_known_inserted};
use idjag_core::server::{BearerError, bearer_token, json_response};
use idjag_core::{
    AccessTokenClaims, AccessTokenValidator, AlgorithmSet, ClientId, Issuer, KeySource,
    OAuthErrorCode, OAuthErrorResponse, ProtectedResourceMetadata, Resource, ScopeSet, SharedClock,
    Subject, TrustedIssuers, ValidationError, ValidatorConfigError, Verified, wire,
};

#[cfg(feature = "tower")]
pub use layer::{RequireBearer, RequireBearerLayer};

use crate::error::generic_description;

/// Verifies RFC 9068 access tokens for one resource: `typ` `at+jwt`, a trusted issuer, that
/// issuer's keys, `aud` equal to this resource, and the time window (requirements JWT-10, MCP-04;
/// threat G02).
#[derive(Debug, Clone)]
pub struct AccessTokenVerifier {
    resource: Resource,
    issuers: TrustedIssuers,
    algorithms: AlgorithmSet,
    clock: SharedClock,
    leeway: Duration,
    validator: AccessTokenValidator,
}

impl AccessTokenVerifier {
    /// Accepts tokens for `resource` issued by `issuer`, verified with `keys` (the issuer's
    /// JWKS; a remote source is refreshed on an unknown `kid`). Every asymmetric algorithm
    /// is allowed (each key is pinned to one); the leeway is 30 s.
    pub fn new(
        resource: Resource,
        issuer: Issuer,
        keys: Arc<dyn KeySource>,
        clock: SharedClock,
    ) -> Self {
        Self::with_issuers(resource, TrustedIssuers::new().with(issuer, keys), clock)
    }

    /// Accepts tokens for `resource` from several authorization servers.
    pub fn with_issuers(resource: Resource, issuers: TrustedIssuers, clock: SharedClock) -> Self {
        let validator = AccessTokenValidator::new(
            issuers.clone(),
            resource.clone().into(),
            AlgorithmSet::all(),
            clock.clone(),
        );
        Self {
            resource,
            issuers,
            algorithms: AlgorithmSet::all(),
            clock,
            leeway: idjag_core::DEFAULT_LEEWAY,
            validator,
        }
    }

    /// Restricts the algorithms.
    pub fn with_algorithms(mut self, algorithms: AlgorithmSet) -> Self {
        self.algorithms = algorithms;
        self.validator = self.build_validator();
        self
    }

    /// Sets the clock-skew leeway (at most 5 minutes).
    pub fn with_leeway(mut self, leeway: Duration) -> Result<Self, ValidatorConfigError> {
        if leeway > idjag_core::MAX_LEEWAY {
            return Err(ValidatorConfigError::LeewayTooLarge);
        }
        self.leeway = leeway;
        self.validator = self.build_validator();
        Ok(self)
    }

    fn build_validator(&self) -> AccessTokenValidator {
        let base = AccessTokenValidator::new(
            self.issuers.clone(),
            self.resource.clone().into(),
            self.algorithms,
            self.clock.clone(),
        );
        // The leeway was checked when set, so this keeps it.
        base.clone().with_leeway(self.leeway).unwrap_or(base)
    }

    /// The protected resource.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Verifies a bearer token, refreshing remote keys once when that may help.
    pub async fn verify(
        &self,
        token: &str,
    ) -> Result<Verified<AccessTokenClaims>, ValidationError> {
        self.validator.validate_async(token).await
    }
}

/// A protected resource: the verifier of its access tokens and its RFC 9728 metadata.
///
/// [`Self::authorize`] turns a request's headers into a [`BearerPrincipal`] or a
/// [`BearerRejection`] that knows its HTTP answer: 401 with
/// `WWW-Authenticate: Bearer resource_metadata="..."` (requirement MD-10), or 403
/// `insufficient_scope` with the scope needed (requirement MCP-05). Tokens are read only from the
/// `Authorization` header (requirement MCP-03; threats G04, G05).
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    verifier: AccessTokenVerifier,
    metadata: ProtectedResourceMetadata,
    metadata_url: Arc<str>,
    metadata_path: String,
}

impl ProtectedResource {
    /// A resource guarded by `verifier`, whose metadata names `authorization_servers` and is
    /// served at the well-known URL derived from the resource (RFC 9728 §3.1). The resource
    /// must be an `https` URL (`http` on loopback).
    pub fn new(
        verifier: AccessTokenVerifier,
        authorization_servers: Vec<Issuer>,
    ) -> Result<Self, EndpointError> {
        let base = check_endpoint(verifier.resource().as_str())?;
        let url = well_known_inserted(&base, wire::WELL_KNOWN_OAUTH_PROTECTED_RESOURCE);
        Ok(Self {
            metadata: ProtectedResourceMetadata::new(
                verifier.resource().clone(),
                authorization_servers,
            ),
            metadata_path: url.path().to_owned(),
            metadata_url: Arc::from(String::from(url)),
            verifier,
        })
    }

    /// Lists `scopes_supported` in the metadata.
    pub fn with_scopes_supported(mut self, scopes: ScopeSet) -> Self {
        self.metadata.scopes_supported = Some(scopes.iter().map(|s| s.as_str().into()).collect());
        self
    }

    /// Sets `resource_name` in the metadata.
    pub fn with_resource_name(mut self, name: impl Into<String>) -> Self {
        self.metadata.resource_name = Some(name.into());
        self
    }

    /// The metadata document.
    pub fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.metadata
    }

    /// The metadata URL, as sent in challenges.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The metadata path, to mount [`Self::metadata_response`] at.
    pub fn metadata_path(&self) -> &str {
        &self.metadata_path
    }

    /// The verifier.
    pub fn verifier(&self) -> &AccessTokenVerifier {
        &self.verifier
    }

    /// The metadata document as an HTTP response.
    pub fn metadata_response(&self) -> Response<Vec<u8>> {
        json_response(StatusCode::OK, &self.metadata)
    }

    /// The bearer challenge of this resource, without an error.
    pub fn challenge(&self) -> BearerChallenge {
        BearerChallenge::new().with_resource_metadata(self.metadata_url.as_ref())
    }

    /// Verifies the request's bearer token.
    pub async fn authorize(&self, headers: &HeaderMap) -> Result<BearerPrincipal, BearerRejection> {
        let reject = |kind| BearerRejection {
            kind,
            resource_metadata: self.metadata_url.clone(),
            scope: None,
        };
        let token = bearer_token(headers).map_err(|e| {
            reject(match e {
                BearerError::Malformed => BearerRejectionKind::Malformed,
                _ => BearerRejectionKind::Missing,
            })
        })?;
        let verified = self
            .verifier
            .verify(token)
            .await
            .map_err(|e| reject(BearerRejectionKind::InvalidToken(e)))?;
        Ok(BearerPrincipal {
            verified: Arc::new(verified),
            resource_metadata: self.metadata_url.clone(),
        })
    }

    /// Verifies the request's bearer token and that it carries every scope of `required`.
    /// A 401 then names `required` in its challenge's `scope` (MCP 2025-11-25; requirement MD-10).
    pub async fn authorize_scopes(
        &self,
        headers: &HeaderMap,
        required: &ScopeSet,
    ) -> Result<BearerPrincipal, BearerRejection> {
        let principal = self
            .authorize(headers)
            .await
            .map_err(|rejection| rejection.with_scope_hint(required))?;
        principal.require_scopes(required)?;
        Ok(principal)
    }
}

/// The verified caller of a protected resource. The tower layer puts it in the request
/// extensions; handlers read it there and can check further scopes with
/// [`Self::require_scopes`] (for example per MCP tool).
#[derive(Debug, Clone)]
pub struct BearerPrincipal {
    verified: Arc<Verified<AccessTokenClaims>>,
    resource_metadata: Arc<str>,
}

impl BearerPrincipal {
    /// The verified access-token claims.
    pub fn claims(&self) -> &AccessTokenClaims {
        self.verified.claims()
    }

    /// The verified token, with the `kid` and algorithm that verified it.
    pub fn verified(&self) -> &Verified<AccessTokenClaims> {
        &self.verified
    }

    /// The user (`sub`).
    pub fn subject(&self) -> &Subject {
        &self.claims().sub
    }

    /// The client the token was issued to.
    pub fn client_id(&self) -> &ClientId {
        &self.claims().client_id
    }

    /// The token's scope (empty when it has none).
    pub fn scope(&self) -> ScopeSet {
        self.claims().scope.clone().unwrap_or_default()
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims()
            .scope
            .as_ref()
            .is_some_and(|s| s.contains(scope))
    }

    /// Checks that the token carries every scope of `required`; the error knows its 403.
    pub fn require_scopes(&self, required: &ScopeSet) -> Result<(), InsufficientScope> {
        let held = self.claims().scope.clone().unwrap_or_default();
        if required.is_subset(&held) {
            Ok(())
        } else {
            Err(InsufficientScope {
                required: required.clone(),
                resource_metadata: self.resource_metadata.clone(),
            })
        }
    }
}

/// A valid token lacks a scope the operation needs (RFC 6750 §3.1 `insufficient_scope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the access token lacks a required scope")]
pub struct InsufficientScope {
    required: ScopeSet,
    resource_metadata: Arc<str>,
}

impl InsufficientScope {
    /// The scopes the operation needs (sent as the challenge's `scope`).
    pub fn required(&self) -> &ScopeSet {
        &self.required
    }

    /// `Bearer error="insufficient_scope", scope="...", resource_metadata="..."`.
    pub fn challenge(&self) -> BearerChallenge {
        BearerChallenge::new()
            .with_error(OAuthErrorCode::InsufficientScope)
            .with_scope(self.required.clone())
            .with_resource_metadata(self.resource_metadata.as_ref())
    }

    /// The 403 answer.
    pub fn to_response(&self) -> Response<Vec<u8>> {
        BearerRejection::from(self.clone()).to_response()
    }
}

/// Why a request to a protected resource was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerRejectionKind {
    /// No bearer token (no `Authorization` header, or another scheme): 401 without an error
    /// code (RFC 6750 §3.1).
    Missing,
    /// A malformed `Authorization` header (two headers, bad spacing, not token68): 400
    /// `invalid_request` (threat G04).
    Malformed,
    /// The token failed verification: 401 `invalid_token` (threat G02).
    InvalidToken(ValidationError),
    /// The token lacks scopes: 403 `insufficient_scope` (threat G16).
    InsufficientScope {
        /// The scopes needed.
        required: ScopeSet,
    },
}

/// A refused request, with its challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerRejection {
    kind: BearerRejectionKind,
    resource_metadata: Arc<str>,
    scope: Option<ScopeSet>,
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            self.oauth_error()
                .map_or("no bearer token", OAuthErrorCode::as_str),
        )
    }
}

impl std::error::Error for BearerRejection {}

impl From<InsufficientScope> for BearerRejection {
    fn from(e: InsufficientScope) -> Self {
        Self {
            kind: BearerRejectionKind::InsufficientScope {
                required: e.required,
            },
            resource_metadata: e.resource_metadata,
            scope: None,
        }
    }
}

impl BearerRejection {
    /// Why.
    pub fn kind(&self) -> &BearerRejectionKind {
        &self.kind
    }

    /// The OAuth error code, if the answer carries one.
    pub fn oauth_error(&self) -> Option<OAuthErrorCode> {
        match self.kind {
            BearerRejectionKind::Missing => None,
            BearerRejectionKind::Malformed => Some(OAuthErrorCode::InvalidRequest),
            BearerRejectionKind::InvalidToken(_) => Some(OAuthErrorCode::InvalidToken),
            BearerRejectionKind::InsufficientScope { .. } => {
                Some(OAuthErrorCode::InsufficientScope)
            }
        }
    }

    /// The HTTP status: 401, 400 or 403.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            BearerRejectionKind::Missing | BearerRejectionKind::InvalidToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            BearerRejectionKind::Malformed => StatusCode::BAD_REQUEST,
            BearerRejectionKind::InsufficientScope { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9728 §5.1).
    pub fn challenge(&self) -> BearerChallenge {
        let mut challenge =
            BearerChallenge::new().with_resource_metadata(self.resource_metadata.as_ref());
        if let Some(code) = self.oauth_error() {
            challenge = challenge.with_error(code);
        }
        match (&self.kind, &self.scope) {
            (BearerRejectionKind::InsufficientScope { required }, _) | (_, Some(required)) => {
                challenge = challenge.with_scope(required.clone());
            }
            _ => {}
        }
        challenge
    }

    /// Names the scopes the request needs in the challenge (`scope`), when there are any.
    pub fn with_scope_hint(mut self, scope: &ScopeSet) -> Self {
        if !scope.is_empty() {
            self.scope = Some(scope.clone());
        }
        self
    }

    /// The HTTP answer: the status, the challenge and, when there is an error code, a JSON
    /// error body with a generic description.
    pub fn to_response(&self) -> Response<Vec<u8>> {
        let mut response = match self.oauth_error() {
            Some(code) => json_response(
                self.status(),
                &OAuthErrorResponse::new(code).with_description(generic_description(code)),
            ),
            None => {
                let mut response = Response::new(Vec::new());
                *response.status_mut() = self.status();
                response
            }
        };
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, self.challenge().to_header_value());
        response
    }
}
