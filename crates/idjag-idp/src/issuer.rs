//! The ID-JAG issuer: configuration, the token-exchange decision and issuance.

use std::sync::Arc;
use std::time::Duration;

use http::header::{ALLOW, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use idjag_core::endpoint::{EndpointError, check_endpoint, check_endpoint_url};
use idjag_core::jose::{DEFAULT_MAX_TOKEN_BYTES, UnverifiedJws, typ_matches};
use idjag_core::server::{
    ClientAuthenticator, ClientRegistry, DEFAULT_REPLAY_PER_HOLDER, FormBody, FormRequestError,
    InMemoryReplayCache, ReplayCache, error_response, json_response, read_form_request,
};
use idjag_core::{
    Algorithm, AlgorithmSet, Audience, CompactJwt, Confirmation, IdJag, IdJagClaims,
    IdJagValidator, Issuer, Jti, KeySource, NumericDate, SharedClock, SigningKey, SubjectTokenType,
    SystemClock, TokenResponse, TrustedIssuers, wire,
};
use url::Url;

use crate::audit::{self, AuditContext, AuditSubject};
use crate::dpop::DpopVerifier;
use crate::error::ExchangeError;
use crate::keys::{KeyStatus, RotationError, SharedKeys, SigningKeys};
use crate::policy::{Grant, Policy, PolicyDenial, PolicyRequest};
use crate::request::{ExchangeRequest, ExchangeRequestError};
use crate::subject::{
    IdTokenSubjectValidator, RefreshTokenStore, RefreshTokenSubjectValidator, SubjectPrincipal,
    SubjectTokenErrorCode, SubjectTokenValidator,
};

/// Default ID-JAG lifetime: 5 minutes (`docs/flow.md#lifetimes`; EMA §7.4.2).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Longest configurable ID-JAG lifetime: 1 hour (the core ID-JAG validator's default cap).
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// Default cap on a token-exchange request body: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Capacity of each default in-memory replay cache: one for client-assertion `jti`s, one for
/// DPoP proof `jti`s, each with a per-client quota of
/// [`DEFAULT_REPLAY_PER_HOLDER`](idjag_core::server::DEFAULT_REPLAY_PER_HOLDER) entries.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// Why an issuer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The issuer is not an `https` URL (or `http` on loopback) without query or fragment.
    #[error("issuer must be an https URL without query or fragment")]
    Issuer,
    /// An endpoint URL is not acceptable.
    #[error("{endpoint} is not acceptable: {error}")]
    Endpoint {
        /// Which endpoint.
        endpoint: &'static str,
        /// Why.
        error: EndpointError,
    },
    /// The lifetime is zero or above [`MAX_LIFETIME`].
    #[error("ID-JAG lifetime must be between 1 s and {} s", MAX_LIFETIME.as_secs())]
    Lifetime,
    /// Retired keys would leave the JWKS before the tokens they signed expire.
    #[error("key retention must be at least the ID-JAG lifetime plus 5 minutes of leeway")]
    RetentionTooShort,
    /// The body limit is zero.
    #[error("the body limit must be positive")]
    BodyLimit,
}

/// Builds an [`IdJagIssuer`]. The issuer identifier, signing keys, client registry and
/// policy are required by [`IdJagIssuer::builder`]; everything else has a documented default.
#[derive(Debug)]
#[must_use]
pub struct IdJagIssuerBuilder {
    issuer: Issuer,
    keys: SigningKeys,
    clients: Arc<dyn ClientRegistry>,
    policy: Arc<dyn Policy>,
    clock: SharedClock,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    authorization_endpoint: Option<String>,
    lifetime: Duration,
    tenant: Option<String>,
    max_body_bytes: usize,
    replay: Option<Arc<dyn ReplayCache>>,
    assertion_replay: Option<Arc<dyn ReplayCache>>,
    dpop_replay: Option<Arc<dyn ReplayCache>>,
    id_token: Option<Arc<dyn SubjectTokenValidator>>,
    refresh_token: Option<Arc<dyn SubjectTokenValidator>>,
    refresh_store: Option<Arc<dyn RefreshTokenStore>>,
    saml2: Option<Arc<dyn SubjectTokenValidator>>,
    audit_subject: AuditSubject,
    subject_error_code: SubjectTokenErrorCode,
    dpop: bool,
    token_endpoint_as_assertion_audience: bool,
}

impl IdJagIssuerBuilder {
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The token endpoint URL (default: `{issuer}/token`).
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.token_endpoint = Some(url.into());
        self
    }

    /// The JWKS URL (default: `{issuer}/jwks`).
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// The host's OpenID authorization endpoint, where users sign in (default: none). The
    /// metadata then lists it with `response_types_supported: ["code"]` and
    /// `code_challenge_methods_supported: ["S256"]`; without it, `response_types_supported`
    /// is empty (RFC 8414 §2 requires the member). Clients that discover the IdP may need it:
    /// the TypeScript MCP SDK (`@modelcontextprotocol/client` 2.4) refuses metadata without an
    /// `authorization_endpoint`.
    pub fn authorization_endpoint(mut self, url: impl Into<String>) -> Self {
        self.authorization_endpoint = Some(url.into());
        self
    }

    /// The ID-JAG lifetime (default [`DEFAULT_LIFETIME`], at most [`MAX_LIFETIME`]).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Puts `tenant` in every ID-JAG (multi-tenant issuers; requirements IDJAG-12, TX-14).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The request body limit (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// One replay store for both kinds of single-use `jti`: client assertions and DPoP proofs
    /// (DPoP keys live in their own namespace there, [`ReplayKey::namespaced`]). Prefer one
    /// store per kind ([`Self::client_assertion_replay_cache`], [`Self::dpop_replay_cache`],
    /// for example idjag-store's `SingleUseMarkers` of each `MarkerKind`); a kind-specific
    /// setter wins over this one.
    ///
    /// Default: two in-memory caches for one process, one per kind, each of
    /// [`DEFAULT_REPLAY_CAPACITY`] entries with a per-client quota; share a store (for example
    /// Redis-backed) across replicas.
    ///
    /// [`ReplayKey::namespaced`]: idjag_core::server::ReplayKey::namespaced
    pub fn replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.replay = Some(cache);
        self
    }

    /// The replay store of client-assertion `jti`s (`private_key_jwt`).
    pub fn client_assertion_replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.assertion_replay = Some(cache);
        self
    }

    /// The replay store of DPoP proof `jti`s, recorded only for requests that passed every
    /// other check (threat X21).
    pub fn dpop_replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.dpop_replay = Some(cache);
        self
    }

    /// Replaces the built-in ID-token validator (which trusts this issuer and its own
    /// published keys), for hosts whose ID tokens are signed by other keys.
    pub fn id_token_validator(mut self, validator: Arc<dyn SubjectTokenValidator>) -> Self {
        self.id_token = Some(validator);
        self
    }

    /// Accepts IdP refresh tokens as subject tokens, looked up in `store` (requirement TX-10).
    pub fn refresh_token_store(mut self, store: Arc<dyn RefreshTokenStore>) -> Self {
        self.refresh_store = Some(store);
        self
    }

    /// Accepts refresh tokens through the host's own validator.
    pub fn refresh_token_validator(mut self, validator: Arc<dyn SubjectTokenValidator>) -> Self {
        self.refresh_token = Some(validator);
        self
    }

    /// Accepts SAML 2.0 assertions through the host's validator (requirement TX-09). Without one,
    /// `saml2` subject tokens get `invalid_request`.
    pub fn saml2_validator(mut self, validator: Arc<dyn SubjectTokenValidator>) -> Self {
        self.saml2 = Some(validator);
        self
    }

    /// How audit events name the user (default: [`AuditSubject::Sha256`]).
    pub fn audit_subject(mut self, mode: AuditSubject) -> Self {
        self.audit_subject = mode;
        self
    }

    /// The code for a refused subject token (default `invalid_grant`; see the crate docs).
    pub fn subject_token_error_code(mut self, code: SubjectTokenErrorCode) -> Self {
        self.subject_error_code = code;
        self
    }

    /// Ignores `DPoP` headers instead of validating them and binding the ID-JAG (default:
    /// DPoP is supported).
    pub fn without_dpop(mut self) -> Self {
        self.dpop = false;
        self
    }

    /// Also accepts client assertions whose `aud` is the token endpoint URL, for clients
    /// written before draft-ietf-oauth-rfc7523bis. Off by default: `aud` must be the issuer
    /// (threat X02).
    pub fn accept_token_endpoint_as_assertion_audience(mut self) -> Self {
        self.token_endpoint_as_assertion_audience = true;
        self
    }

    /// Checks the configuration and builds the issuer.
    pub fn build(self) -> Result<IdJagIssuer, BuildError> {
        let issuer_url = Url::parse(self.issuer.as_str()).map_err(|_| BuildError::Issuer)?;
        if check_endpoint_url(&issuer_url).is_err() || issuer_url.query().is_some() {
            return Err(BuildError::Issuer);
        }
        let base = self.issuer.as_str().trim_end_matches('/');
        let endpoint = |given: Option<String>, path: &str, name: &'static str| {
            check_endpoint(&given.unwrap_or_else(|| format!("{base}{path}"))).map_err(|error| {
                BuildError::Endpoint {
                    endpoint: name,
                    error,
                }
            })
        };
        let token_endpoint = endpoint(self.token_endpoint, "/token", "token_endpoint")?;
        let jwks_uri = endpoint(self.jwks_uri, "/jwks", "jwks_uri")?;
        let authorization_endpoint = self
            .authorization_endpoint
            .map(|url| endpoint(Some(url), "", "authorization_endpoint"))
            .transpose()?;
        if self.lifetime.is_zero() || self.lifetime > MAX_LIFETIME {
            return Err(BuildError::Lifetime);
        }
        if self.keys.timing().retention() < self.lifetime + idjag_core::MAX_LEEWAY {
            return Err(BuildError::RetentionTooShort);
        }
        if self.max_body_bytes == 0 {
            return Err(BuildError::BodyLimit);
        }

        let mut keys = self.keys;
        keys.date_first_key(self.clock.now_unix());
        let keys = SharedKeys::new(keys, self.clock.clone());
        // One store per kind, each with a per-client quota, unless the host brings its own.
        let default_replay = || -> Arc<dyn ReplayCache> {
            Arc::new(
                InMemoryReplayCache::new(DEFAULT_REPLAY_CAPACITY, self.clock.clone())
                    .with_per_holder_limit(DEFAULT_REPLAY_PER_HOLDER),
            )
        };
        let assertion_replay = self
            .assertion_replay
            .or_else(|| self.replay.clone())
            .unwrap_or_else(default_replay);
        let dpop_replay = self
            .dpop_replay
            .or_else(|| self.replay.clone())
            .unwrap_or_else(default_replay);
        let mut authenticator = ClientAuthenticator::new(
            self.clients,
            self.issuer.clone(),
            self.clock.clone(),
            assertion_replay,
        );
        if self.token_endpoint_as_assertion_audience {
            authenticator = authenticator.with_assertion_audience_alias(
                Audience::new(token_endpoint.as_str()).map_err(|_| BuildError::Endpoint {
                    endpoint: "token_endpoint",
                    error: EndpointError::NotAUrl,
                })?,
            );
        }
        let id_token = self.id_token.unwrap_or_else(|| {
            Arc::new(IdTokenSubjectValidator::new(
                self.issuer.clone(),
                Arc::new(keys.clone()),
                AlgorithmSet::all(),
                self.clock.clone(),
            ))
        });
        let refresh_token = self.refresh_token.or_else(|| {
            self.refresh_store
                .map(|store| -> Arc<dyn SubjectTokenValidator> {
                    Arc::new(RefreshTokenSubjectValidator::new(store, self.clock.clone()))
                })
        });
        let dpop = self
            .dpop
            .then(|| DpopVerifier::new(&token_endpoint, dpop_replay, self.clock.clone()));
        Ok(IdJagIssuer {
            inner: Arc::new(Inner {
                lifetime: i64::try_from(self.lifetime.as_secs()).unwrap_or(300),
                issuer: self.issuer,
                token_endpoint,
                jwks_uri,
                authorization_endpoint,
                keys,
                clock: self.clock,
                authenticator,
                id_token,
                refresh_token,
                saml2: self.saml2,
                policy: self.policy,
                dpop,
                tenant: self.tenant,
                max_body_bytes: self.max_body_bytes,
                audit_subject: self.audit_subject,
                subject_error_code: self.subject_error_code,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    issuer: Issuer,
    token_endpoint: Url,
    jwks_uri: Url,
    authorization_endpoint: Option<Url>,
    keys: SharedKeys,
    clock: SharedClock,
    authenticator: ClientAuthenticator,
    id_token: Arc<dyn SubjectTokenValidator>,
    refresh_token: Option<Arc<dyn SubjectTokenValidator>>,
    saml2: Option<Arc<dyn SubjectTokenValidator>>,
    policy: Arc<dyn Policy>,
    dpop: Option<DpopVerifier>,
    lifetime: i64,
    tenant: Option<String>,
    max_body_bytes: usize,
    audit_subject: AuditSubject,
    subject_error_code: SubjectTokenErrorCode,
}

/// An issued ID-JAG: the token, exactly the claims it carries, and its lifetime.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedIdJag {
    /// The signed ID-JAG (a credential: never log it).
    pub id_jag: IdJag,
    /// Its claims.
    pub claims: IdJagClaims,
    /// Its lifetime in seconds (`expires_in`).
    pub expires_in: u64,
}

impl IssuedIdJag {
    /// The RFC 8693 §2.2.1 response: `access_token` = the ID-JAG, `issued_token_type` id-jag,
    /// `token_type` `N_A`, `expires_in`, the granted `scope` and `authorization_details`, and
    /// no refresh token (requirements TX-15 to TX-17).
    pub fn token_response(&self) -> TokenResponse {
        let token = CompactJwt::from(self.id_jag.clone()).into_access_token();
        let mut response = TokenResponse::new(token, wire::TOKEN_TYPE_NOT_APPLICABLE);
        response.issued_token_type = Some(wire::TOKEN_TYPE_ID_JAG.to_owned());
        response.expires_in = Some(self.expires_in);
        response.scope = self.claims.scope.clone();
        response.authorization_details = self.claims.authorization_details.as_ref().map(|d| {
            d.iter()
                .map(|item| serde_json::Value::Object(item.as_object().clone()))
                .collect()
        });
        response
    }
}

/// Random `jti`s: 128 bits from the crypto backend's generator, base64url (22 characters).
pub(crate) fn new_jti() -> Result<Jti, ExchangeError> {
    idjag_core::random::jti().map_err(|_| {
        ExchangeError::Signing(idjag_core::SignError::Key(idjag_core::KeyError::Backend))
    })
}

/// An IdP that issues ID-JAGs through RFC 8693 token exchange.
///
/// Cheap to clone (one `Arc`). See the crate docs for an example.
#[derive(Debug, Clone)]
pub struct IdJagIssuer {
    inner: Arc<Inner>,
}

impl IdJagIssuer {
    /// Starts the configuration with what has no safe default: the issuer identifier, the
    /// signing keys, the clients and the policy.
    pub fn builder(
        issuer: Issuer,
        keys: SigningKeys,
        clients: Arc<dyn ClientRegistry>,
        policy: Arc<dyn Policy>,
    ) -> IdJagIssuerBuilder {
        IdJagIssuerBuilder {
            issuer,
            keys,
            clients,
            policy,
            clock: SystemClock::shared(),
            token_endpoint: None,
            jwks_uri: None,
            authorization_endpoint: None,
            lifetime: DEFAULT_LIFETIME,
            tenant: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            replay: None,
            assertion_replay: None,
            dpop_replay: None,
            id_token: None,
            refresh_token: None,
            refresh_store: None,
            saml2: None,
            audit_subject: AuditSubject::default(),
            subject_error_code: SubjectTokenErrorCode::default(),
            dpop: true,
            token_endpoint_as_assertion_audience: false,
        }
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> &Url {
        &self.inner.token_endpoint
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> &Url {
        &self.inner.jwks_uri
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The request body limit.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    #[cfg(feature = "axum")]
    pub(crate) fn audit_subject(&self) -> AuditSubject {
        self.inner.audit_subject
    }

    /// The key that signs now (the dev helpers sign ID tokens with it).
    pub fn current_signing_key(&self) -> SigningKey {
        self.inner.keys.current()
    }

    /// The published keys, as a key source (for validators in the same process).
    pub fn published_keys(&self) -> Arc<dyn KeySource> {
        Arc::new(self.inner.keys.clone())
    }

    /// An ID-JAG validator for the resource AS `audience` that trusts exactly this issuer's
    /// published keys: for tests, demos and resource ASes in the same process.
    pub fn id_jag_validator(&self, audience: Audience) -> IdJagValidator {
        IdJagValidator::new(
            TrustedIssuers::new().with(self.inner.issuer.clone(), self.published_keys()),
            audience,
            AlgorithmSet::all(),
            self.inner.clock.clone(),
        )
    }

    /// Publishes `key` now; it signs from the configured lead time on, and the current key
    /// is retired then (see [`crate::keys`]).
    pub fn stage_signing_key(&self, key: SigningKey) -> Result<KeyStatus, RotationError> {
        self.inner.keys.write(|keys, now| {
            let kid = keys.stage(key, now)?;
            Ok(keys
                .status(now)
                .into_iter()
                .find(|s| s.kid == kid)
                .expect("a staged key is published"))
        })
    }

    /// The signing keys with their schedule, to persist after a change (see
    /// [`crate::keys`]).
    pub fn signing_key_schedule(&self) -> Vec<crate::keys::ScheduledSigningKey> {
        self.inner.keys.read(|keys, _| keys.schedule())
    }

    /// Replaces the signing keys and their schedule, for example with one restored from a
    /// store, or changed by another instance. The retention must still cover the ID-JAG
    /// lifetime plus the leeway, as at build time.
    pub fn replace_signing_keys(&self, keys: SigningKeys) -> Result<(), BuildError> {
        let lifetime = Duration::from_secs(self.inner.lifetime.unsigned_abs());
        if keys.timing().retention() < lifetime + idjag_core::MAX_LEEWAY {
            return Err(BuildError::RetentionTooShort);
        }
        self.inner.keys.write(|current, _| *current = keys);
        Ok(())
    }

    /// The rotation timing of the signing keys.
    pub fn rotation_timing(&self) -> crate::keys::RotationTiming {
        self.inner.keys.read(|keys, _| keys.timing())
    }

    /// The status of every published key.
    pub fn key_status(&self) -> Vec<KeyStatus> {
        self.inner.keys.read(|keys, now| keys.status(now))
    }

    /// The JWK Set of the published keys (what the JWKS endpoint serves).
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.keys.read(|keys, now| keys.jwks(now))
    }

    /// The RFC 8414 / OIDC discovery metadata (requirements MD-01, MD-02; ID-JAG -04 §7.1). Hosts
    /// that serve their own discovery document can merge these members into it.
    pub fn metadata(&self) -> idjag_core::AuthorizationServerMetadata {
        let mut md = idjag_core::AuthorizationServerMetadata::new(self.inner.issuer.clone());
        md.token_endpoint = Some(self.inner.token_endpoint.to_string());
        md.jwks_uri = Some(self.inner.jwks_uri.to_string());
        md.response_types_supported = Some(Vec::new());
        if let Some(url) = &self.inner.authorization_endpoint {
            md.authorization_endpoint = Some(url.to_string());
            md.response_types_supported = Some(vec!["code".to_owned()]);
            md.code_challenge_methods_supported = Some(vec!["S256".to_owned()]);
        }
        md.grant_types_supported = Some(vec![wire::GRANT_TYPE_TOKEN_EXCHANGE.to_owned()]);
        md.identity_chaining_requested_token_types_supported =
            Some(vec![wire::TOKEN_TYPE_ID_JAG.to_owned()]);
        md.token_endpoint_auth_methods_supported = Some(
            [
                wire::auth_method::CLIENT_SECRET_BASIC,
                wire::auth_method::CLIENT_SECRET_POST,
                wire::auth_method::PRIVATE_KEY_JWT,
            ]
            .map(str::to_owned)
            .to_vec(),
        );
        let algs: Vec<String> = Algorithm::ALL
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        md.token_endpoint_auth_signing_alg_values_supported = Some(algs.clone());
        let signing_algs: Vec<String> = self.inner.keys.read(|keys, now| {
            let mut algs: Vec<String> = keys
                .published(now)
                .map(|k| k.alg().as_str().to_owned())
                .collect();
            algs.sort_unstable();
            algs.dedup();
            algs
        });
        md.extra.insert(
            "id_token_signing_alg_values_supported".into(),
            signing_algs.into(),
        );
        if self.inner.dpop.is_some() {
            md.extra
                .insert("dpop_signing_alg_values_supported".into(), algs.into());
        }
        md
    }

    /// Handles one HTTP request to the token endpoint, framework-agnostic: `POST`, a form body
    /// within the limit, then [`Self::exchange`]. Every answer is JSON with
    /// `Cache-Control: no-store`.
    pub async fn handle<B: AsRef<[u8]>>(&self, request: Request<B>) -> Response<Vec<u8>> {
        let (parts, body) = request.into_parts();
        match self.read_form(&parts.method, &parts.headers, body.as_ref()) {
            Ok(form) => match self.exchange(&parts.headers, &form).await {
                Ok(issued) => json_response(StatusCode::OK, &issued.token_response()),
                Err(error) => self.error_response(&error),
            },
            Err(error) => {
                audit::record(
                    self.inner.audit_subject,
                    &AuditContext::default(),
                    Err(&error),
                );
                self.error_response(&error)
            }
        }
    }

    fn read_form(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<FormBody, ExchangeError> {
        // RFC 8693 lets `resource` repeat; every other parameter is single.
        read_form_request(
            method,
            headers,
            body,
            self.inner.max_body_bytes,
            &["resource"],
        )
        .map_err(ExchangeError::Envelope)
    }

    /// The error answer: status, RFC 6749 §5.2 body, no-store headers, `WWW-Authenticate`
    /// after a failed Basic authentication and `Allow` on a wrong method.
    pub fn error_response(&self, error: &ExchangeError) -> Response<Vec<u8>> {
        let challenge = match error {
            ExchangeError::ClientAuth(e) => e.www_authenticate(self.inner.issuer.as_str()),
            _ => None,
        };
        let mut response = error_response(&error.to_oauth_response(), challenge);
        *response.status_mut() = error.status();
        if matches!(
            error,
            ExchangeError::Envelope(FormRequestError::MethodNotAllowed)
        ) {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }

    /// Decides one token-exchange request and issues the ID-JAG, emitting exactly one audit
    /// event. For hosts that parse HTTP themselves; [`Self::handle`] wraps it.
    pub async fn exchange(
        &self,
        headers: &HeaderMap,
        form: &FormBody,
    ) -> Result<IssuedIdJag, ExchangeError> {
        let mut context = AuditContext::default();
        let result = self.decide(headers, form, &mut context).await;
        match &result {
            Ok((issued, kid)) => audit::record(
                self.inner.audit_subject,
                &context,
                Ok((&issued.claims, Some(kid))),
            ),
            Err(error) => audit::record(self.inner.audit_subject, &context, Err(error)),
        }
        result.map(|(issued, _)| issued)
    }

    async fn decide(
        &self,
        headers: &HeaderMap,
        form: &FormBody,
        context: &mut AuditContext,
    ) -> Result<(IssuedIdJag, idjag_core::Kid), ExchangeError> {
        let inner = &self.inner;
        match form.get("grant_type") {
            None => return Err(ExchangeError::MissingGrantType),
            Some(wire::GRANT_TYPE_TOKEN_EXCHANGE) => {}
            Some(wire::GRANT_TYPE_JWT_BEARER) if presents_id_jag(form) => {
                return Err(ExchangeError::IdJagRedeemedAtIdp);
            }
            Some(_) => return Err(ExchangeError::UnsupportedGrantType),
        }

        let client = inner
            .authenticator
            .authenticate(headers, form)
            .await
            .map_err(ExchangeError::ClientAuth)?;
        context.client_id = Some(client.client_id().clone());
        context.auth_method = Some(client.method());

        let request = ExchangeRequest::from_form(form).map_err(ExchangeError::Request)?;
        context.subject_token_type = Some(request.subject_token_type);
        context.audience = Some(request.audience.clone());
        context.resources = request.resources.clone();
        if request.audience.as_str() == inner.issuer.as_str() {
            return Err(ExchangeError::Request(
                ExchangeRequestError::AudienceIsThisIssuer,
            ));
        }

        // Checked here, spent only once everything else passed (below).
        let proof = match &inner.dpop {
            Some(dpop) => dpop.verify(headers).map_err(ExchangeError::Dpop)?,
            None => None,
        };

        let validator = match request.subject_token_type {
            SubjectTokenType::IdToken => Some(&inner.id_token),
            SubjectTokenType::RefreshToken => inner.refresh_token.as_ref(),
            SubjectTokenType::Saml2 => inner.saml2.as_ref(),
            _ => None,
        }
        .ok_or(ExchangeError::SubjectTokenTypeNotAccepted(
            request.subject_token_type,
        ))?;
        let principal = validator
            .validate(&request.subject_token, &client)
            .await
            .map_err(|error| ExchangeError::SubjectToken {
                error,
                answered_as: inner.subject_error_code,
            })?;
        context.subject = Some(principal.subject.clone());

        let now = inner.clock.now_unix();
        let now_date = NumericDate::from_unix(now).ok_or(ExchangeError::PolicyOverreach)?;
        let policy_request = PolicyRequest {
            client_id: client.client_id(),
            principal: &principal,
            audience: &request.audience,
            resources: &request.resources,
            scope: request.scope.as_ref(),
            authorization_details: request.authorization_details.as_deref(),
            now: now_date,
        };
        let grant = inner
            .policy
            .evaluate(&policy_request)
            .await
            .map_err(ExchangeError::Policy)?;
        check_grant(&grant, &request, &inner.issuer)?;

        // The request passed: only now is the DPoP proof's `jti` spent (threat X21), so a proof
        // attached to a refused request stays usable and refused requests never fill the
        // store. A replay loses here, before anything is signed.
        let jkt = match (&inner.dpop, proof) {
            (Some(dpop), Some(proof)) => {
                dpop.spend(&proof, client.client_id().as_str())
                    .await
                    .map_err(ExchangeError::Dpop)?;
                Some(proof.into_thumbprint())
            }
            _ => None,
        };
        self.issue(grant, &principal, jkt, now_date)
    }

    fn issue(
        &self,
        grant: Grant,
        principal: &SubjectPrincipal,
        jkt: Option<String>,
        now: NumericDate,
    ) -> Result<(IssuedIdJag, idjag_core::Kid), ExchangeError> {
        let inner = &self.inner;
        let exp = now
            .plus(inner.lifetime)
            .ok_or(ExchangeError::PolicyOverreach)?;
        let mut claims = IdJagClaims::new(
            inner.issuer.clone(),
            grant.subject.unwrap_or_else(|| principal.subject.clone()),
            grant.audience.to_audience(),
            grant.client_id,
            new_jti()?,
            now,
            exp,
        );
        claims.resource = (!grant.resources.is_empty()).then_some(grant.resources);
        claims.scope = grant.scope;
        claims.authorization_details = grant.authorization_details;
        claims.tenant = inner.tenant.clone();
        claims.auth_time = principal.auth_time;
        claims.acr = principal.acr.clone();
        claims.amr = principal.amr.clone();
        claims.email = if grant.include_email {
            principal.email.clone()
        } else {
            None
        };
        claims.cnf = jkt.map(Confirmation::jkt);

        let (kid, signed) = inner.keys.with_current(|key| {
            let kid = key.kid().cloned().expect("signing keys always have a kid");
            (kid, key.sign_jwt(Some(wire::TYP_ID_JAG), &claims))
        });
        let id_jag = signed.map_err(ExchangeError::Signing)?.into_id_jag();
        Ok((
            IssuedIdJag {
                id_jag,
                claims,
                expires_in: inner.lifetime.unsigned_abs(),
            },
            kid,
        ))
    }
}

/// Whether a JWT-bearer request presents an ID-JAG (by its `typ`; nothing is trusted or
/// verified, the request is refused either way).
fn presents_id_jag(form: &FormBody) -> bool {
    form.get("assertion")
        .and_then(|a| UnverifiedJws::parse(a, DEFAULT_MAX_TOKEN_BYTES).ok())
        .and_then(|jws| jws.unverified_header().typ().map(str::to_owned))
        .is_some_and(|typ| typ_matches(&typ, wire::TYP_ID_JAG))
}

/// The issuer never grants more than was asked, whatever the policy says.
fn check_grant(
    grant: &Grant,
    request: &ExchangeRequest,
    issuer: &Issuer,
) -> Result<(), ExchangeError> {
    if &grant.audience == issuer {
        return Err(ExchangeError::Request(
            ExchangeRequestError::AudienceIsThisIssuer,
        ));
    }
    if let Some(requested) = &request.scope {
        match &grant.scope {
            Some(granted) if !granted.is_empty() && granted.is_subset(requested) => {}
            Some(granted) if !granted.is_subset(requested) => {
                return Err(ExchangeError::PolicyOverreach);
            }
            _ => return Err(ExchangeError::Policy(PolicyDenial::ScopeNotAllowed)),
        }
    }
    if !request.resources.is_empty() {
        if grant.resources.is_empty() {
            return Err(ExchangeError::Policy(PolicyDenial::ResourceNotAllowed));
        }
        if grant
            .resources
            .iter()
            .any(|r| !request.resources.contains(r))
        {
            return Err(ExchangeError::PolicyOverreach);
        }
    }
    if request.authorization_details.is_none() && grant.authorization_details.is_some() {
        return Err(ExchangeError::PolicyOverreach);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn x17_jti_is_unique_across_100k_issuances_and_carries_128_bits() {
        let mut seen = HashSet::with_capacity(100_000);
        for _ in 0..100_000 {
            let jti = new_jti().unwrap().into_string();
            assert_eq!(jti.len(), 22); // 16 bytes, base64url without padding
            assert!(seen.insert(jti));
        }
    }
}
