//! The resource authorization server: its configuration and its framework-agnostic endpoints.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use idjag_core::endpoint::{EndpointError, check_endpoint};
use idjag_core::server::{
    ClientAuthMethod, ClientAuthenticator, ClientRegistry, DEFAULT_REPLAY_PER_HOLDER,
    FormRequestError, InMemoryReplayCache, ReplayCache, error_response, json_response,
};
use idjag_core::{
    AccessTokenValidator, Algorithm, AlgorithmSet, Audience, ClientId, IdJagValidator, Issuer,
    KeyError, KeySet, OAuthErrorCode, OAuthErrorResponse, Resource, SharedClock, SigningKey,
    SystemClock, TrustedIssuers, ValidatorConfigError, VerifyingKey, wire,
};

use crate::audit::AuditRecord;
use crate::config::{
    AbsentResource, AccessTokenLifetime, AuditSubjects, RegisteredResource, ReplayPolicy,
    TrustedIssuer, UngovernedResource,
};
use crate::error::{GrantError, generic_description};
use crate::metadata::{Advertised, AuthorizationEndpoint, Endpoints, document};

/// Default body limit of the token and introspection endpoints: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default maximum ID-JAG lifetime (`exp - iat`) and `iat` age: 20 minutes. ID-JAGs are
/// short-lived (EMA §7.4.2); this covers the 5-minute IdPs seen in practice and the draft's
/// 1000-second example.
pub const DEFAULT_MAX_ID_JAG_LIFETIME: Duration = Duration::from_secs(20 * 60);
const ONE_DAY: Duration = Duration::from_secs(24 * 3600);

/// Default capacity of the in-memory replay caches.
pub const DEFAULT_REPLAY_CAPACITY: usize = 250_000;

/// Why a [`ResourceAuthorizationServer`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The issuer is not an `https` URL (or `http` on loopback) without query or fragment.
    #[error("issuer is not a usable URL: {0}")]
    Issuer(EndpointError),
    /// No trusted issuer was configured.
    #[error("no trusted issuer")]
    NoTrustedIssuer,
    /// An issuer was trusted twice.
    #[error("issuer {0} is trusted twice")]
    DuplicateIssuer(Issuer),
    /// This server's own issuer was trusted: it must never redeem its own grants
    /// (ID-JAG -04 §9.3; requirement TX-25).
    #[error("a server cannot trust itself as an ID-JAG issuer")]
    SelfTrust,
    /// No resource was registered.
    #[error("no registered resource")]
    NoResource,
    /// A resource was registered twice.
    #[error("resource {0} is registered twice")]
    DuplicateResource(Resource),
    /// [`AbsentResource::BindTo`] names a resource that is not registered.
    #[error("the default resource is not registered")]
    DefaultResourceNotRegistered,
    /// No client registry was set.
    #[error("no client registry")]
    NoClients,
    /// An audience alias names one of this server's endpoints; ID-JAGs must name the issuer
    /// (redemption check 9; threat V19).
    #[error("an endpoint URL cannot be an audience alias")]
    EndpointAlias,
    /// [`AuthorizationEndpoint::Host`] is not an `https` URL (or `http` on loopback) without
    /// fragment.
    #[error("authorization endpoint is not a usable URL: {0}")]
    AuthorizationEndpoint(EndpointError),
    /// A validator limit was refused.
    #[error(transparent)]
    Limit(#[from] ValidatorConfigError),
    /// The access-token lifetime is zero.
    #[error("access-token lifetime must be positive")]
    ZeroLifetime,
    /// The signing key has no public key usable for verification, or no algorithm is allowed.
    #[error("signing key is unusable: {0}")]
    SigningKey(KeyError),
    /// The algorithm allow-list is empty.
    #[error("no algorithm allowed")]
    NoAlgorithm,
}

/// Builds a [`ResourceAuthorizationServer`]. The issuer and the signing key are required
/// up front; [`Self::build`] refuses a configuration that would be unsafe or useless.
#[derive(Debug)]
pub struct ResourceAuthorizationServerBuilder {
    issuer: Issuer,
    signing_key: SigningKey,
    trusted: Vec<TrustedIssuer>,
    resources: Vec<RegisteredResource>,
    absent: Option<AbsentResource>,
    clients: Option<Arc<dyn ClientRegistry>>,
    clock: SharedClock,
    replay: Option<Arc<dyn ReplayCache>>,
    assertion_replay: Option<Arc<dyn ReplayCache>>,
    replay_policy: ReplayPolicy,
    lifetime: AccessTokenLifetime,
    leeway: Duration,
    max_id_jag_lifetime: Duration,
    max_id_jag_age: Option<Duration>,
    max_assertion_bytes: usize,
    algorithms: AlgorithmSet,
    audience_aliases: Vec<Audience>,
    allow_public: bool,
    introspectors: BTreeSet<ClientId>,
    published: Vec<VerifyingKey>,
    audit_subjects: AuditSubjects,
    max_body_bytes: usize,
    authorization_endpoint: AuthorizationEndpoint,
    ungoverned: UngovernedResource,
}

impl ResourceAuthorizationServerBuilder {
    /// Trusts an IdP (at least one is required).
    pub fn trust(mut self, issuer: TrustedIssuer) -> Self {
        self.trusted.push(issuer);
        self
    }

    /// Registers a resource (at least one is required).
    pub fn resource(mut self, resource: RegisteredResource) -> Self {
        self.resources.push(resource);
        self
    }

    /// What to do with ID-JAGs without `resource`. Default: bind to the registered resource
    /// when exactly one is registered, refuse otherwise.
    pub fn when_resource_absent(mut self, policy: AbsentResource) -> Self {
        self.absent = Some(policy);
        self
    }

    /// The registered clients (required).
    pub fn clients(mut self, registry: impl ClientRegistry + 'static) -> Self {
        self.clients = Some(Arc::new(registry));
        self
    }

    /// The registered clients, shared.
    pub fn clients_shared(mut self, registry: Arc<dyn ClientRegistry>) -> Self {
        self.clients = Some(registry);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The store of redeemed ID-JAGs (default: an [`InMemoryReplayCache`] of
    /// [`DEFAULT_REPLAY_CAPACITY`] entries, of which one client may hold at most
    /// [`DEFAULT_REPLAY_PER_HOLDER`]). Share one store (for example Redis, idjag-store's
    /// `SingleUseMarkers` of `MarkerKind::IdJag`) between all instances of a deployment.
    pub fn replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.replay = Some(cache);
        self
    }

    /// The store of used client-assertion `jti`s (default: a separate in-memory cache with the
    /// same capacity and per-client quota; idjag-store's `MarkerKind::ClientAssertion` to share
    /// one).
    pub fn client_assertion_replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.assertion_replay = Some(cache);
        self
    }

    /// Single use (default) or same-client re-presentation (decision D-01).
    pub fn replay_policy(mut self, policy: ReplayPolicy) -> Self {
        self.replay_policy = policy;
        self
    }

    /// The access-token lifetime and its cap (default: 5 minutes, never past the ID-JAG).
    pub fn token_lifetime(mut self, lifetime: AccessTokenLifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Clock-skew leeway for `exp`, `nbf` and `iat` (default 30 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Maximum ID-JAG lifetime, `exp - iat` (default [`DEFAULT_MAX_ID_JAG_LIFETIME`]).
    pub fn max_id_jag_lifetime(mut self, max: Duration) -> Self {
        self.max_id_jag_lifetime = max;
        self
    }

    /// Maximum age of an ID-JAG's `iat` (default: the maximum lifetime).
    pub fn max_id_jag_age(mut self, max: Duration) -> Self {
        self.max_id_jag_age = Some(max);
        self
    }

    /// Size cap of an ID-JAG, checked before any decoding (default 16 KiB).
    pub fn max_assertion_bytes(mut self, max: usize) -> Self {
        self.max_assertion_bytes = max;
        self
    }

    /// Algorithms accepted for ID-JAGs and client assertions (default: every supported
    /// asymmetric algorithm; each key is pinned to one anyway).
    pub fn algorithms(mut self, algorithms: AlgorithmSet) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Also accepts this exact `aud` in ID-JAGs (decision D-06), for example the issuer
    /// with a trailing slash. Endpoint URLs are refused.
    pub fn audience_alias(mut self, alias: Audience) -> Self {
        self.audience_aliases.push(alias);
        self
    }

    /// Lets registered public clients redeem ID-JAGs without authenticating. Off by default
    /// (ID-JAG -04 §9.1: confidential clients only; requirement JB-03).
    pub fn allow_public_clients(mut self) -> Self {
        self.allow_public = true;
        self
    }

    /// Lets `client` (typically a resource server) introspect every token of this server.
    /// Other authenticated clients see only their own tokens as active.
    pub fn introspection_client(mut self, client: ClientId) -> Self {
        self.introspectors.insert(client);
        self
    }

    /// Publishes another verification key in the JWKS (for example the previous signing key
    /// during a rotation, until the tokens it signed have expired).
    pub fn published_key(mut self, key: VerifyingKey) -> Self {
        self.published.push(key);
        self
    }

    /// How audit events name the user (default: hashed).
    pub fn audit_subjects(mut self, mode: AuditSubjects) -> Self {
        self.audit_subjects = mode;
        self
    }

    /// Body limit of the token and introspection endpoints (default
    /// [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// How an ID-JAG naming a resource this server does not govern is refused (default
    /// `invalid_grant`, EMA §7.6.2; or `invalid_target`, RFC 8707 §2).
    pub fn ungoverned_resource(mut self, answer: UngovernedResource) -> Self {
        self.ungoverned = answer;
        self
    }

    /// What the metadata says about an authorization endpoint (default: none). See
    /// [`AuthorizationEndpoint`] for the clients that need one listed.
    pub fn authorization_endpoint(mut self, endpoint: AuthorizationEndpoint) -> Self {
        self.authorization_endpoint = endpoint;
        self
    }

    /// Builds the server, or says which setting is unsafe or missing.
    pub fn build(self) -> Result<ResourceAuthorizationServer, BuildError> {
        let endpoints = Endpoints::for_issuer(&self.issuer).map_err(BuildError::Issuer)?;
        if let AuthorizationEndpoint::Host(url) = &self.authorization_endpoint {
            check_endpoint(url).map_err(BuildError::AuthorizationEndpoint)?;
        }
        if self.trusted.is_empty() {
            return Err(BuildError::NoTrustedIssuer);
        }
        if self.algorithms.is_empty() {
            return Err(BuildError::NoAlgorithm);
        }
        let mut trusted = HashMap::new();
        let mut issuers = TrustedIssuers::new();
        for t in self.trusted {
            if t.issuer == self.issuer {
                return Err(BuildError::SelfTrust);
            }
            issuers = issuers.with(t.issuer.clone(), t.keys.clone());
            let name = t.issuer.as_str().to_owned();
            if let Some(dup) = trusted.insert(name, t) {
                return Err(BuildError::DuplicateIssuer(dup.issuer));
            }
        }
        let first_resource = self
            .resources
            .first()
            .ok_or(BuildError::NoResource)?
            .resource
            .clone();
        for (i, r) in self.resources.iter().enumerate() {
            if self.resources[..i].iter().any(|o| o.resource == r.resource) {
                return Err(BuildError::DuplicateResource(r.resource.clone()));
            }
        }
        let absent = match self.absent {
            Some(AbsentResource::BindTo(r)) => {
                if !self.resources.iter().any(|o| o.resource == r) {
                    return Err(BuildError::DefaultResourceNotRegistered);
                }
                AbsentResource::BindTo(r)
            }
            Some(policy) => policy,
            None if self.resources.len() == 1 => AbsentResource::BindTo(first_resource.clone()),
            None => AbsentResource::Refuse,
        };
        let clients = self.clients.ok_or(BuildError::NoClients)?;
        if self.lifetime.lifetime.is_zero() {
            return Err(BuildError::ZeroLifetime);
        }
        let endpoint_urls = [
            &endpoints.token_url,
            &endpoints.introspection_url,
            &endpoints.jwks_url,
            &endpoints.metadata_url,
            &endpoints.authorize_url,
        ];
        let mut validator = IdJagValidator::new(
            issuers,
            self.issuer.to_audience(),
            self.algorithms,
            self.clock.clone(),
        )
        .with_leeway(self.leeway)?
        .with_max_lifetime(self.max_id_jag_lifetime)?
        .with_max_age(self.max_id_jag_age.unwrap_or(self.max_id_jag_lifetime))?
        .with_max_token_bytes(self.max_assertion_bytes)?;
        for alias in self.audience_aliases {
            if endpoint_urls
                .iter()
                .any(|url| alias.as_str() == url.as_str())
            {
                return Err(BuildError::EndpointAlias);
            }
            validator = validator.with_audience_alias(alias);
        }

        let own_key = self
            .signing_key
            .verifying_key()
            .map_err(BuildError::SigningKey)?;
        let jwks = KeySet::new(std::iter::once(own_key).chain(self.published))
            .map_err(BuildError::SigningKey)?;
        let mut own_tokens = AccessTokenValidator::new(
            TrustedIssuers::new().with(self.issuer.clone(), Arc::new(jwks.clone())),
            first_resource.clone().into(),
            AlgorithmSet::all(),
            self.clock.clone(),
        )
        .with_leeway(Duration::ZERO)?
        .with_max_lifetime(self.lifetime.lifetime.max(ONE_DAY))?
        .with_max_age(self.lifetime.lifetime.max(ONE_DAY))?;
        for r in self.resources.iter().skip(1) {
            own_tokens = own_tokens.with_audience_alias(r.resource.clone().into());
        }

        // One store per kind (redeemed ID-JAGs, client assertions), each with a per-client
        // quota, unless the host brings its own.
        let default_replay = || -> Arc<dyn ReplayCache> {
            Arc::new(
                InMemoryReplayCache::new(DEFAULT_REPLAY_CAPACITY, self.clock.clone())
                    .with_per_holder_limit(DEFAULT_REPLAY_PER_HOLDER),
            )
        };
        let assertion_replay = self.assertion_replay.unwrap_or_else(default_replay);
        let mut authenticator = ClientAuthenticator::new(
            clients,
            self.issuer.clone(),
            self.clock.clone(),
            assertion_replay,
        )
        .with_assertion_algorithms(self.algorithms);
        if self.allow_public {
            authenticator = authenticator.allow_public_clients();
        }
        let replay = self.replay.unwrap_or_else(default_replay);
        let mut auth_methods: Vec<String> = [
            ClientAuthMethod::ClientSecretBasic,
            ClientAuthMethod::ClientSecretPost,
            ClientAuthMethod::PrivateKeyJwt,
        ]
        .iter()
        .map(|m| m.as_str().to_owned())
        .collect();
        if self.allow_public {
            auth_methods.push(wire::auth_method::NONE.to_owned());
        }
        let scopes: BTreeSet<String> = self
            .resources
            .iter()
            .filter_map(|r| r.scopes.as_ref())
            .flat_map(|s| s.iter().map(|s| s.as_str().to_owned()))
            .collect();
        let metadata = document(
            &self.issuer,
            Advertised {
                auth_methods,
                assertion_algorithms: self
                    .algorithms
                    .iter()
                    .map(|a: Algorithm| a.as_str().to_owned())
                    .collect(),
                scopes: (!scopes.is_empty()).then(|| scopes.into_iter().collect()),
                endpoints: &endpoints,
                authorization: &self.authorization_endpoint,
            },
        );
        let leeway_secs = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        Ok(ResourceAuthorizationServer {
            inner: Arc::new(Inner {
                metadata_json: serde_json::to_vec(&metadata).unwrap_or_default(),
                jwks_json: serde_json::to_vec(&jwks.to_jwks()).unwrap_or_default(),
                jwks,
                issuer: self.issuer,
                endpoints,
                signing_key: self.signing_key,
                validator,
                own_tokens,
                trusted,
                resources: self.resources,
                absent,
                authenticator,
                replay,
                replay_policy: self.replay_policy,
                lifetime: self.lifetime,
                leeway_secs,
                clock: self.clock,
                introspectors: self.introspectors,
                audit_subjects: self.audit_subjects,
                max_body_bytes: self.max_body_bytes,
                max_assertion_bytes: self.max_assertion_bytes,
                refuses_authorization: self.authorization_endpoint
                    == AuthorizationEndpoint::Refusing,
                ungoverned: self.ungoverned,
            }),
        })
    }
}

/// A resource authorization server: it redeems ID-JAGs (RFC 7523 JWT-bearer grant, the redemption
/// checks) for RFC 9068 access tokens, and serves introspection (RFC 7662), metadata (RFC 8414) and
/// its JWKS.
///
/// The endpoint methods take a request's method, headers and body and return an
/// `http::Response<Vec<u8>>`, so any HTTP framework can mount them; with the `axum` feature,
/// [`Self::router`] does it for axum. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct ResourceAuthorizationServer {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) issuer: Issuer,
    pub(crate) endpoints: Endpoints,
    pub(crate) signing_key: SigningKey,
    pub(crate) validator: IdJagValidator,
    pub(crate) own_tokens: AccessTokenValidator,
    pub(crate) trusted: HashMap<String, TrustedIssuer>,
    pub(crate) resources: Vec<RegisteredResource>,
    pub(crate) absent: AbsentResource,
    pub(crate) authenticator: ClientAuthenticator,
    pub(crate) replay: Arc<dyn ReplayCache>,
    pub(crate) replay_policy: ReplayPolicy,
    pub(crate) lifetime: AccessTokenLifetime,
    pub(crate) leeway_secs: i64,
    pub(crate) clock: SharedClock,
    pub(crate) introspectors: BTreeSet<ClientId>,
    pub(crate) audit_subjects: AuditSubjects,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_assertion_bytes: usize,
    pub(crate) refuses_authorization: bool,
    pub(crate) metadata_json: Vec<u8>,
    pub(crate) jwks_json: Vec<u8>,
    pub(crate) jwks: KeySet,
    pub(crate) ungoverned: UngovernedResource,
}

impl fmt::Debug for ResourceAuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("ResourceAuthorizationServer")
            .field("issuer", &i.issuer)
            .field("signing_key", &i.signing_key)
            .field("trusted", &i.trusted.values().collect::<Vec<_>>())
            .field("resources", &i.resources)
            .field("absent", &i.absent)
            .field("replay_policy", &i.replay_policy)
            .field("lifetime", &i.lifetime)
            .finish_non_exhaustive()
    }
}

impl ResourceAuthorizationServer {
    /// Starts the configuration of the server `issuer` (its RFC 8414 issuer identifier, also
    /// the `aud` every ID-JAG must carry), signing access tokens with `signing_key`.
    pub fn builder(issuer: Issuer, signing_key: SigningKey) -> ResourceAuthorizationServerBuilder {
        ResourceAuthorizationServerBuilder {
            issuer,
            signing_key,
            trusted: Vec::new(),
            resources: Vec::new(),
            absent: None,
            clients: None,
            clock: SystemClock::shared(),
            replay: None,
            assertion_replay: None,
            replay_policy: ReplayPolicy::default(),
            lifetime: AccessTokenLifetime::default(),
            leeway: idjag_core::DEFAULT_LEEWAY,
            max_id_jag_lifetime: DEFAULT_MAX_ID_JAG_LIFETIME,
            max_id_jag_age: None,
            max_assertion_bytes: idjag_core::jose::DEFAULT_MAX_TOKEN_BYTES,
            algorithms: AlgorithmSet::all(),
            audience_aliases: Vec::new(),
            allow_public: false,
            introspectors: BTreeSet::new(),
            published: Vec::new(),
            audit_subjects: AuditSubjects::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            authorization_endpoint: AuthorizationEndpoint::None,
            ungoverned: UngovernedResource::default(),
        }
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> &str {
        &self.inner.endpoints.token_url
    }

    /// The introspection endpoint URL.
    pub fn introspection_endpoint(&self) -> &str {
        &self.inner.endpoints.introspection_url
    }

    /// The JWKS URL (the keys resource servers verify access tokens with).
    pub fn jwks_uri(&self) -> &str {
        &self.inner.endpoints.jwks_url
    }

    /// The RFC 8414 metadata URL.
    pub fn metadata_url(&self) -> &str {
        &self.inner.endpoints.metadata_url
    }

    /// The path of the token endpoint (to mount [`Self::token`] with another framework).
    pub fn token_path(&self) -> &str {
        &self.inner.endpoints.token_path
    }

    /// The path of the introspection endpoint.
    pub fn introspection_path(&self) -> &str {
        &self.inner.endpoints.introspection_path
    }

    /// The path of the JWKS.
    pub fn jwks_path(&self) -> &str {
        &self.inner.endpoints.jwks_path
    }

    /// The path of the RFC 8414 metadata document (path insertion, RFC 8414 §3.1).
    pub fn metadata_path(&self) -> &str {
        &self.inner.endpoints.metadata_path
    }

    /// The public keys of this server, for resource servers in the same process.
    pub fn verification_keys(&self) -> KeySet {
        self.inner.jwks.clone()
    }

    /// The largest body the endpoints accept.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    /// The token endpoint: redeems an ID-JAG (ID-JAG -04 §4.4; the redemption checks). Emits
    /// exactly one audit event.
    pub async fn token(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        let mut audit = AuditRecord::default();
        let result = self.inner.grant(method, headers, body, &mut audit).await;
        self.inner.finish(result, &audit)
    }

    /// Answers a token request whose body exceeded the limit while it was read (for adapters
    /// that stream bodies). Emits the audit event of that refusal.
    pub fn token_body_too_large(&self) -> Response<Vec<u8>> {
        let result = Err(GrantError::Envelope(FormRequestError::BodyTooLarge {
            max: self.inner.max_body_bytes,
        }));
        self.inner.finish(result, &AuditRecord::default())
    }

    /// The introspection endpoint (RFC 7662), for authenticated clients only.
    pub async fn introspect(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        match self.inner.introspect(method, headers, body).await {
            Ok(response) => response,
            Err(e) => self.inner.error_response(&e),
        }
    }

    /// The path of the refusing authorization endpoint, when
    /// [`AuthorizationEndpoint::Refusing`] is configured.
    pub fn authorize_path(&self) -> Option<&str> {
        let i = &self.inner;
        i.refuses_authorization
            .then_some(i.endpoints.authorize_path.as_str())
    }

    /// The answer of the refusing authorization endpoint ([`AuthorizationEndpoint::Refusing`])
    /// to any request: `400 unsupported_response_type`, never a redirect.
    pub fn authorize(&self) -> Response<Vec<u8>> {
        let body = OAuthErrorResponse::new(OAuthErrorCode::UnsupportedResponseType)
            .with_description("this server grants access only through the JWT-bearer grant");
        error_response(&body, None)
    }

    /// The RFC 8414 metadata document.
    pub fn metadata(&self) -> Response<Vec<u8>> {
        json_bytes(self.inner.metadata_json.clone(), wire::MEDIA_TYPE_JSON)
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Response<Vec<u8>> {
        json_bytes(self.inner.jwks_json.clone(), wire::MEDIA_TYPE_JWK_SET)
    }
}

fn json_bytes(body: Vec<u8>, content_type: &'static str) -> Response<Vec<u8>> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

impl Inner {
    /// The audit event and the HTTP answer of a decision.
    fn finish(
        &self,
        result: Result<Response<Vec<u8>>, GrantError>,
        audit: &AuditRecord,
    ) -> Response<Vec<u8>> {
        match result {
            Ok(response) => {
                audit.emit(self.issuer.as_str(), Ok(()));
                response
            }
            Err(e) => {
                audit.emit(self.issuer.as_str(), Err(&e));
                self.error_response(&e)
            }
        }
    }

    /// An RFC 6749 §5.2 error with a generic description, no-store headers, the Basic
    /// challenge after failed HTTP authentication, and `Allow` on a 405.
    pub(crate) fn error_response(&self, e: &GrantError) -> Response<Vec<u8>> {
        let code = e.oauth_error();
        let body = OAuthErrorResponse::new(code).with_description(generic_description(code));
        let challenge = match e {
            GrantError::Client(c) => c.www_authenticate(self.issuer.as_str()),
            _ => None,
        };
        let mut response = error_response(&body, challenge);
        *response.status_mut() = e.status();
        if e.status() == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }

    /// A successful JSON answer with no-store headers.
    pub(crate) fn ok_json(body: &impl serde::Serialize) -> Response<Vec<u8>> {
        json_response(StatusCode::OK, body)
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::server::{RegisteredClient, StaticClientRegistry};
    use idjag_core::{Algorithm, ClientId, ClientSecret, KeySet, Resource};

    use super::*;
    use crate::config::{RegisteredResource, TrustedIssuer};

    /// Threat X22: the default stores of redeemed ID-JAGs and of client assertions are two
    /// caches, each with a per-client quota.
    #[test]
    fn x22_the_default_replay_stores_are_separate_and_quota_d() {
        let idp_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let server = ResourceAuthorizationServer::builder(
            Issuer::new("https://auth.chat.example").unwrap(),
            SigningKey::generate(Algorithm::Es256)
                .unwrap()
                .with_thumbprint_kid(),
        )
        .trust(TrustedIssuer::new(
            Issuer::new("https://idp.example").unwrap(),
            Arc::new(KeySet::new([idp_key.verifying_key().unwrap()]).unwrap()),
        ))
        .resource(RegisteredResource::new(
            Resource::new("https://mcp.chat.example/mcp").unwrap(),
        ))
        .clients(
            StaticClientRegistry::new().with(RegisteredClient::with_secret(
                ClientId::new("chat-agent").unwrap(),
                &ClientSecret::new("s3cret"),
            )),
        )
        .build()
        .unwrap();
        let inner = &server.inner;
        let expected = format!(
            "InMemoryReplayCache {{ capacity: {DEFAULT_REPLAY_CAPACITY}, per_holder: {DEFAULT_REPLAY_PER_HOLDER}, len: 0 }}"
        );
        assert_eq!(format!("{:?}", inner.replay), expected);
        assert!(
            format!("{:?}", inner.authenticator).contains(&expected),
            "{:?}",
            inner.authenticator
        );
    }
}
