//! The two-leg client: the IdP it trusts, the resource authorization servers it talks to, and
//! what it asks for.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use idjag_core::endpoint::{check_endpoint, check_endpoint_url};
use idjag_core::{
    AlgorithmSet, AuthorizationDetail, AuthorizationServerMetadata, Issuer, KeySource, Resource,
    ScopeSet, SharedClock, SystemClock,
};
use url::Url;

use crate::AccessTokenGrant;
use crate::auth::ClientCredentials;
use crate::discovery::Discovery;
use crate::dpop::DpopKey;
use crate::error::{ClientError, DiscoveryError, InputError, Stage};
use crate::form::Form;
use crate::http::{DEFAULT_MAX_RESPONSE_BYTES, SharedHttpClient};
use crate::response::TokenFields;
use crate::subject::UserToken;
use crate::transport::{TokenCall, post_token};

fn endpoint(what: &'static str, url: &str) -> Result<Url, InputError> {
    check_endpoint(url).map_err(|error| InputError::Endpoint { what, error })
}

fn issuer_is_endpoint(what: &'static str, issuer: &Issuer) -> Result<(), InputError> {
    endpoint(what, issuer.as_str()).map(drop)
}

fn metadata_token_endpoint(metadata: &AuthorizationServerMetadata) -> Result<Url, ClientError> {
    let url = metadata
        .token_endpoint
        .as_deref()
        .ok_or(DiscoveryError::NoTokenEndpoint)?;
    Ok(check_endpoint(url).map_err(DiscoveryError::Endpoint)?)
}

/// The IdP: its issuer, its token endpoint and our registration there.
#[derive(Clone)]
pub struct IdentityProvider {
    issuer: Issuer,
    token_endpoint: Url,
    credentials: ClientCredentials,
    id_jag_keys: Option<(Arc<dyn KeySource>, AlgorithmSet)>,
}

impl fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint.as_str())
            .field("credentials", &self.credentials)
            .field("verifies_id_jag_signatures", &self.id_jag_keys.is_some())
            .finish()
    }
}

impl IdentityProvider {
    /// An IdP with a configured token endpoint. Both URLs must be `https` (or `http` on
    /// loopback).
    pub fn new(
        issuer: Issuer,
        token_endpoint: &str,
        credentials: ClientCredentials,
    ) -> Result<Self, InputError> {
        issuer_is_endpoint("IdP issuer", &issuer)?;
        Ok(Self {
            issuer,
            token_endpoint: endpoint("IdP token endpoint", token_endpoint)?,
            credentials,
            id_jag_keys: None,
        })
    }

    /// An IdP from its discovered metadata (see [`Discovery::identity_provider`]).
    pub fn from_metadata(
        metadata: &AuthorizationServerMetadata,
        credentials: ClientCredentials,
    ) -> Result<Self, ClientError> {
        issuer_is_endpoint("IdP issuer", &metadata.issuer)?;
        Ok(Self {
            issuer: metadata.issuer.clone(),
            token_endpoint: metadata_token_endpoint(metadata)?,
            credentials,
            id_jag_keys: None,
        })
    }

    /// Verifies the signature of every issued ID-JAG with the IdP's `keys` before using it.
    /// Optional: the resource authorization server verifies anyway, and some IdPs do not
    /// publish their ID-JAG keys to clients.
    pub fn with_id_jag_keys(mut self, keys: Arc<dyn KeySource>, algorithms: AlgorithmSet) -> Self {
        self.id_jag_keys = Some((keys, algorithms));
        self
    }

    /// The issuer (the ID-JAG `iss`).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// Our registration at the IdP.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    pub(crate) fn id_jag_keys(&self) -> Option<&(Arc<dyn KeySource>, AlgorithmSet)> {
        self.id_jag_keys.as_ref()
    }
}

/// A resource authorization server: its issuer (the token-exchange `audience`), its token
/// endpoint and our registration there.
#[derive(Debug, Clone)]
pub struct ResourceAuthorizationServer {
    issuer: Issuer,
    token_endpoint: Url,
    credentials: ClientCredentials,
    reuses_id_jag: bool,
}

impl ResourceAuthorizationServer {
    /// A resource authorization server with a configured token endpoint.
    pub fn new(
        issuer: Issuer,
        token_endpoint: &str,
        credentials: ClientCredentials,
    ) -> Result<Self, InputError> {
        issuer_is_endpoint("resource authorization server issuer", &issuer)?;
        Ok(Self {
            issuer,
            token_endpoint: endpoint(
                "resource authorization server token endpoint",
                token_endpoint,
            )?,
            credentials,
            reuses_id_jag: false,
        })
    }

    /// A resource authorization server from its discovered metadata.
    pub fn from_metadata(
        metadata: &AuthorizationServerMetadata,
        credentials: ClientCredentials,
    ) -> Result<Self, ClientError> {
        issuer_is_endpoint("resource authorization server issuer", &metadata.issuer)?;
        Ok(Self {
            issuer: metadata.issuer.clone(),
            token_endpoint: metadata_token_endpoint(metadata)?,
            credentials,
            reuses_id_jag: false,
        })
    }

    /// Whether this server redeems the same ID-JAG more than once (ID-JAG -04 §4.4.3 allows
    /// it; EMA §7.4.2 forbids it through `jti` replay rejection). Default `false`: each new
    /// access token costs a new token exchange. With `true`, the cached ID-JAG is presented
    /// again while it is valid, and a new exchange follows if the server refuses it.
    pub fn with_id_jag_reuse(mut self, reuse: bool) -> Self {
        self.reuses_id_jag = reuse;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// Our registration there.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// Whether ID-JAGs are re-presented (see [`Self::with_id_jag_reuse`]).
    pub fn reuses_id_jag(&self) -> bool {
        self.reuses_id_jag
    }
}

/// What the app asks for: a resource authorization server, the resources behind it, scopes
/// and authorization details.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    resource_as: ResourceAuthorizationServer,
    resources: Vec<Resource>,
    scope: ScopeSet,
    authorization_details: Option<Vec<AuthorizationDetail>>,
}

impl AccessRequest {
    /// A request at `resource_as`, with no resource, scope or details yet.
    pub fn new(resource_as: ResourceAuthorizationServer) -> Self {
        Self {
            resource_as,
            resources: Vec::new(),
            scope: ScopeSet::new(),
            authorization_details: None,
        }
    }

    /// Adds a resource (RFC 8707; repeatable). MCP clients name their server's RFC 9728
    /// resource identifier here (requirements MCP-01, EMA-03).
    pub fn with_resource(mut self, resource: Resource) -> Self {
        if !self.resources.contains(&resource) {
            self.resources.push(resource);
        }
        self
    }

    /// Sets the requested scopes (empty: no `scope` parameter).
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = scope;
        self
    }

    /// Sets RFC 9396 authorization details.
    pub fn with_authorization_details(mut self, details: Vec<AuthorizationDetail>) -> Self {
        self.authorization_details = (!details.is_empty()).then_some(details);
        self
    }

    /// The resource authorization server.
    pub fn resource_as(&self) -> &ResourceAuthorizationServer {
        &self.resource_as
    }

    /// The resources.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// The requested scopes.
    pub fn scope(&self) -> &ScopeSet {
        &self.scope
    }

    /// The authorization details.
    pub fn authorization_details(&self) -> Option<&[AuthorizationDetail]> {
        self.authorization_details.as_deref()
    }
}

/// How strictly leg 1's `token_type` is compared with `N_A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenTypeCheck {
    /// Exactly `N_A` (RFC 8693 §2.2.1). The default.
    #[default]
    Strict,
    /// `N_A` in any case (`n_a`), for IdPs that vary it.
    IgnoreCase,
}

/// What to do with a `refresh_token` in a response that should not carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnexpectedRefreshToken {
    /// Refuse the response (requirements TX-17, JB-18). The default.
    #[default]
    Reject,
    /// Drop the refresh token and keep the access token (leg 2 only).
    Discard,
}

/// Client settings, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Leg 1 `token_type` check. Default [`TokenTypeCheck::Strict`].
    pub token_type_check: TokenTypeCheck,
    /// Clock skew allowed on the `iat` and `nbf` of issued ID-JAGs. Default 30 s, at most 5 min.
    pub leeway: Duration,
    /// Largest response body read. Default 1 MiB.
    pub max_response_bytes: usize,
    /// Send `resource` at leg 2 (requirement MCP-01: MCP clients send it in token requests).
    /// Default `true`.
    pub send_resource_at_redemption: bool,
    /// Send `scope` at leg 2. Default `false`: the ID-JAG carries the grant, and resending
    /// the requested scope could undo the IdP's narrowing.
    pub send_scope_at_redemption: bool,
    /// A `refresh_token` at leg 2. Default [`UnexpectedRefreshToken::Reject`].
    pub unexpected_refresh_token: UnexpectedRefreshToken,
    /// Lifetime assumed for an access token whose response has no `expires_in`. Default 60 s.
    pub assumed_access_token_lifetime: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            token_type_check: TokenTypeCheck::Strict,
            leeway: Duration::from_secs(30),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            send_resource_at_redemption: true,
            send_scope_at_redemption: false,
            unexpected_refresh_token: UnexpectedRefreshToken::Reject,
            assumed_access_token_lifetime: Duration::from_secs(60),
        }
    }
}

impl ClientConfig {
    fn check(&self) -> Result<(), InputError> {
        if self.leeway > idjag_core::MAX_LEEWAY {
            return Err(InputError::Config { what: "leeway" });
        }
        if self.max_response_bytes == 0 {
            return Err(InputError::Config {
                what: "max_response_bytes",
            });
        }
        if self.assumed_access_token_lifetime < Duration::from_secs(1) {
            return Err(InputError::Config {
                what: "assumed_access_token_lifetime",
            });
        }
        Ok(())
    }

    pub(crate) fn leeway_secs(&self) -> i64 {
        i64::try_from(self.leeway.as_secs()).unwrap_or(300)
    }
}

/// The requesting app's client: leg 1 ([`Self::exchange`]) at its IdP, leg 2
/// ([`Self::redeem`]) at any resource authorization server, or both ([`Self::access_token`]).
/// It caches nothing; see [`crate::TokenProvider`] for that.
#[derive(Clone)]
pub struct IdJagClient {
    pub(crate) idp: IdentityProvider,
    pub(crate) http: SharedHttpClient,
    pub(crate) clock: SharedClock,
    pub(crate) config: ClientConfig,
    pub(crate) dpop: Option<DpopKey>,
}

impl fmt::Debug for IdJagClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdJagClient")
            .field("idp", &self.idp)
            .field("http", &self.http)
            .field("config", &self.config)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

impl IdJagClient {
    /// A client of `idp` with the default HTTP client ([`crate::http::ReqwestHttpClient`]) and
    /// the system clock.
    #[cfg(feature = "reqwest")]
    pub fn new(idp: IdentityProvider) -> Result<Self, ClientError> {
        let http = crate::http::ReqwestHttpClient::new()?;
        Ok(Self::with_http_client(idp, Arc::new(http)))
    }

    /// A client of `idp` sending its requests through `http`.
    pub fn with_http_client(idp: IdentityProvider, http: SharedHttpClient) -> Self {
        Self {
            idp,
            http,
            clock: SystemClock::shared(),
            config: ClientConfig::default(),
            dpop: None,
        }
    }

    /// Reads time from `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the settings.
    pub fn with_config(mut self, config: ClientConfig) -> Result<Self, InputError> {
        config.check()?;
        self.config = config;
        Ok(self)
    }

    /// Asks for DPoP-bound ID-JAGs and access tokens with `key` (threat C03).
    pub fn with_dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// The IdP.
    pub fn identity_provider(&self) -> &IdentityProvider {
        &self.idp
    }

    /// The HTTP client.
    pub fn http_client(&self) -> &SharedHttpClient {
        &self.http
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The DPoP key, if any.
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.dpop.as_ref()
    }

    /// Discovery through the same HTTP client.
    pub fn discovery(&self) -> Discovery {
        Discovery::new(self.http.clone()).with_max_response_bytes(self.config.max_response_bytes)
    }

    /// Both legs, without caching: a new ID-JAG, redeemed once.
    pub async fn access_token(
        &self,
        subject: &UserToken,
        request: &AccessRequest,
    ) -> Result<AccessTokenGrant, ClientError> {
        let id_jag = self.exchange(subject, request).await?;
        self.redeem(&id_jag, request).await
    }

    /// Checks a request before anything is sent.
    pub(crate) fn check_request(&self, request: &AccessRequest) -> Result<(), InputError> {
        let ras = request.resource_as();
        if ras.issuer() == self.idp.issuer() {
            return Err(InputError::SameIssuer);
        }
        for url in [self.idp.token_endpoint(), ras.token_endpoint()] {
            check_endpoint_url(url).map_err(|error| InputError::Endpoint {
                what: "token endpoint",
                error,
            })?;
        }
        Ok(())
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_unix()
    }

    /// POSTs a token request to the IdP (with DPoP when asked and configured) and reads the
    /// members of its answer.
    pub(crate) async fn post_to_idp(
        &self,
        grant: &'static str,
        form: Form,
        with_dpop: bool,
    ) -> Result<TokenFields, ClientError> {
        self.post(TokenCall {
            stage: Stage::IdentityProvider,
            grant,
            endpoint: self.idp.token_endpoint(),
            issuer: self.idp.issuer(),
            credentials: self.idp.credentials(),
            form,
            dpop: self.dpop.as_ref().filter(|_| with_dpop),
        })
        .await
    }

    /// POSTs a token request to a resource authorization server and reads its answer.
    pub(crate) async fn post_to_resource_as(
        &self,
        ras: &ResourceAuthorizationServer,
        grant: &'static str,
        form: Form,
    ) -> Result<TokenFields, ClientError> {
        self.post(TokenCall {
            stage: Stage::ResourceAuthorizationServer,
            grant,
            endpoint: ras.token_endpoint(),
            issuer: ras.issuer(),
            credentials: ras.credentials(),
            form,
            dpop: self.dpop.as_ref(),
        })
        .await
    }

    async fn post(&self, call: TokenCall<'_>) -> Result<TokenFields, ClientError> {
        let stage = call.stage;
        let map = post_token(self.http.as_ref(), self.config.max_response_bytes, call).await?;
        TokenFields::from_map(map).map_err(|p| ClientError::malformed(stage, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<IdJagClient>();
        check::<crate::IssuedIdJag>();
        check::<AccessTokenGrant>();
        check::<crate::TokenProvider>();
        check::<ClientError>();
    }
}
