//! The ID-JAG mode: [`IdJagCredential`] is the ID-JAG flow through `idjag-client`. The
//! gateway, as the requesting app with its own client credentials, exchanges the caller's inbound ID token
//! at the IdP for an ID-JAG for the upstream's authorization server (RFC 8693), redeems it
//! there (RFC 7523) for an access token for the upstream's resource, and caches it per
//! (user token, authorization server, resource, scope) with single flight
//! ([`TokenProvider`]), so 100 concurrent first calls cost one exchange and one redemption.
//! The inbound token never leaves for the upstream (threat G03). Other modes
//! (client credentials, static keys, header templates, passthrough) implement the same
//! trait (see [`crate::upstream::bridge`]).
//!
//! With the gateway's own authorization server, the caller presents a gateway token, which
//! never leaves the gateway: the subject token is then the user's IdP ID token kept from
//! their browser sign-in, read through the [`IdpTokenVault`] (which renews it at the IdP
//! with the stored refresh token once it has expired, or answers
//! [`CredentialError::ReauthenticationRequired`]).

use std::fmt;
use std::sync::Arc;

use idjag_client::discovery::{Discovery, IdpMetadataLocation};
use idjag_client::http::SharedHttpClient;
use idjag_client::{
    AccessRequest, ClientCredentials, ClientError, IdJagClient, IdentityProvider, ResourceAsTarget,
    TokenProvider, UserToken,
};
use idjag_core::{BoxFuture, Issuer, Resource, ScopeSet, SharedClock};
use std::sync::OnceLock;

use tokio::sync::OnceCell;
use url::Url;

use crate::inbound::{Authenticated, Identity, InboundToken};
use crate::observe::counters::CacheCounters;
use crate::upstream::credential::{Credential, CredentialError, IdentityMatch, UpstreamCredential};

/// Where the gateway's authorization server keeps the IdP tokens of each browser sign-in
/// (sealed at rest). Implemented by [`crate::authorization_server`]'s vault.
pub trait IdpTokenVault: fmt::Debug + Send + Sync {
    /// The token-exchange subject of the sign-in `session`: the user's IdP ID token (renewed
    /// when it has expired) or their IdP refresh token, keyed in the token cache by the
    /// sign-in so a renewal keeps the cached grants. Fails with
    /// [`CredentialError::ReauthenticationRequired`] when the user must sign in again.
    fn subject<'a>(&'a self, session: &'a str)
    -> BoxFuture<'a, Result<UserToken, CredentialError>>;
}

/// The gateway as the requesting app at the IdP: one client and one token cache shared by
/// every ID-JAG upstream.
pub struct IdJagOutbound {
    issuer: Issuer,
    token_endpoint: Option<Url>,
    credentials: ClientCredentials,
    clock: SharedClock,
    http: SharedHttpClient,
    provider: OnceCell<TokenProvider>,
    vault: OnceLock<Arc<dyn IdpTokenVault>>,
}

impl fmt::Debug for IdJagOutbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdJagOutbound")
            .field("issuer", &self.issuer)
            .field("credentials", &self.credentials)
            .field("provider", &self.provider.get())
            .finish_non_exhaustive()
    }
}

impl IdJagOutbound {
    /// The IdP `issuer`, its token endpoint (else discovered from its metadata) and the
    /// gateway's registration there; token requests go through `http`.
    pub fn new(
        issuer: Issuer,
        token_endpoint: Option<Url>,
        credentials: ClientCredentials,
        http: SharedHttpClient,
        clock: SharedClock,
    ) -> Self {
        Self {
            issuer,
            token_endpoint,
            credentials,
            clock,
            http,
            provider: OnceCell::new(),
            vault: OnceLock::new(),
        }
    }

    /// Reads the subject tokens of gateway tokens from `vault` (set once, at build).
    pub fn set_vault(&self, vault: Arc<dyn IdpTokenVault>) {
        let _ = self.vault.set(vault);
    }

    /// The HTTP client of token requests.
    pub fn http(&self) -> &SharedHttpClient {
        &self.http
    }

    /// The IdP.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The token provider, set up on first use (IdP discovery when needed).
    pub async fn provider(&self) -> Result<&TokenProvider, ClientError> {
        self.provider
            .get_or_try_init(|| async {
                let idp = match &self.token_endpoint {
                    Some(url) => IdentityProvider::new(
                        self.issuer.clone(),
                        url.as_str(),
                        self.credentials.clone(),
                    )?,
                    None => {
                        let metadata = Discovery::new(self.http.clone())
                            .identity_provider(&self.issuer, &IdpMetadataLocation::Issuer)
                            .await?;
                        IdentityProvider::from_metadata(&metadata, self.credentials.clone())?
                    }
                };
                let client = IdJagClient::with_http_client(idp, self.http.clone())
                    .with_clock(self.clock.clone());
                Ok(TokenProvider::new(client))
            })
            .await
    }

    fn discovery(&self) -> Discovery {
        Discovery::new(self.http.clone())
    }

    /// Token exchanges started so far.
    pub fn exchange_count(&self) -> u64 {
        self.provider.get().map_or(0, TokenProvider::exchange_count)
    }

    /// Redemptions started so far.
    pub fn redemption_count(&self) -> u64 {
        self.provider
            .get()
            .map_or(0, TokenProvider::redemption_count)
    }
}

/// What one ID-JAG upstream asks for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IdJagTarget {
    /// The upstream's authorization server.
    pub authorization_server: Issuer,
    /// Its token endpoint; else from its RFC 8414 metadata.
    pub token_endpoint: Option<Url>,
    /// The resource to ask for.
    pub resource: Resource,
    /// The scope to ask for.
    pub scope: ScopeSet,
    /// The gateway's registration there.
    pub credentials: ClientCredentials,
    /// Whether the server redeems an ID-JAG more than once.
    pub id_jag_reuse: bool,
}

/// How long before its expiry a cached access token stops being used: the token provider's
/// default margin (30 s), or half the token's life when that is shorter.
const REFRESH_MARGIN: i64 = 30;

#[derive(Clone)]
struct Hot {
    credential: Credential,
    use_until: i64,
    identity: Arc<Identity>,
}

/// The ID-JAG flow for one upstream. See the [module docs](self).
///
/// In front of the token provider's cache sits a small one keyed by the SHA-256 of the
/// inbound token, holding the ready `Authorization` value until the provider would renew it,
/// so a warm request does no token work at all.
pub struct IdJagCredential {
    outbound: Arc<IdJagOutbound>,
    target: IdJagTarget,
    request: OnceCell<AccessRequest>,
    hot: moka::future::Cache<[u8; 32], Hot>,
    counters: CacheCounters,
}

impl fmt::Debug for IdJagCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdJagCredential")
            .field("target", &self.target)
            .field("hot", &self.hot.entry_count())
            .finish_non_exhaustive()
    }
}

impl IdJagCredential {
    /// The flow through `outbound` for `target`.
    pub fn new(outbound: Arc<IdJagOutbound>, target: IdJagTarget) -> Self {
        Self {
            outbound,
            target,
            request: OnceCell::new(),
            hot: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(3600))
                .support_invalidation_closures()
                .build(),
            counters: CacheCounters::default(),
        }
    }

    async fn request(&self) -> Result<&AccessRequest, ClientError> {
        self.request
            .get_or_try_init(|| async {
                let t = &self.target;
                let ras = match &t.token_endpoint {
                    Some(url) => ResourceAsTarget::new(
                        t.authorization_server.clone(),
                        url.as_str(),
                        t.credentials.clone(),
                    )?,
                    None => {
                        let metadata = self
                            .outbound
                            .discovery()
                            .authorization_server(&t.authorization_server)
                            .await?;
                        ResourceAsTarget::from_metadata(&metadata, t.credentials.clone())?
                    }
                };
                Ok(AccessRequest::new(ras.with_id_jag_reuse(t.id_jag_reuse))
                    .with_resource(t.resource.clone())
                    .with_scope(t.scope.clone()))
            })
            .await
    }

    async fn subject(&self, caller: &Authenticated) -> Result<UserToken, CredentialError> {
        match &caller.token {
            InboundToken::IdToken(token) => Ok(UserToken::id_token(token.clone())),
            InboundToken::AccessToken(_) => Err(CredentialError::IdTokenRequired),
            InboundToken::GatewayToken => {
                let (Some(session), Some(vault)) =
                    (&caller.identity.session, self.outbound.vault.get())
                else {
                    return Err(CredentialError::NoIdpSignIn);
                };
                vault.subject(session).await
            }
        }
    }

    async fn get(
        &self,
        caller: &Authenticated,
        rejected: Option<&Credential>,
    ) -> Result<Credential, CredentialError> {
        let now = self.outbound.clock.now_unix();
        match rejected {
            None => {
                if let Some(hot) = self.hot.get(&caller.token_digest).await
                    && now < hot.use_until
                {
                    self.counters.hit();
                    return Ok(hot.credential);
                }
                self.counters.miss();
            }
            Some(_) => self.hot.invalidate(&caller.token_digest).await,
        }
        let subject = self.subject(caller).await?;
        let failed = |e: ClientError| CredentialError::from_client(&e);
        let request = self.request().await.map_err(failed)?;
        let provider = self.outbound.provider().await.map_err(failed)?;
        let grant = match rejected.and_then(|r| r.access_token.as_ref()) {
            Some(token) => {
                provider
                    .refresh_after_unauthorized(&subject, request, token)
                    .await
            }
            None => provider.access_token(&subject, request).await,
        }
        .map_err(failed)?;
        let header = grant
            .authorization_header()
            .map_err(|_| CredentialError::Unavailable {
                stage: "authorization_server",
            })?;
        let credential = Credential::new(header, Some(grant.access_token().clone()));
        let margin = REFRESH_MARGIN.min((grant.expires_at() - grant.issued_at()) / 2);
        let hot = Hot {
            credential: credential.clone(),
            use_until: grant.expires_at() - margin,
            identity: caller.identity.clone(),
        };
        self.hot.insert(caller.token_digest, hot).await;
        Ok(credential)
    }
}

impl UpstreamCredential for IdJagCredential {
    fn mode(&self) -> &'static str {
        "id_jag"
    }

    fn credential<'a>(
        &'a self,
        caller: &'a Authenticated,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(self.get(caller, None))
    }

    fn after_unauthorized<'a>(
        &'a self,
        caller: &'a Authenticated,
        rejected: &'a Credential,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(self.get(caller, Some(rejected)))
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(
            async move { self.outbound.provider().await.is_ok() && self.request().await.is_ok() },
        )
    }

    /// Drops the principal's ready credentials, and every token the shared provider holds
    /// (it is keyed by user token, not by user, so offboarding clears it whole: the other
    /// users pay one exchange each, never a stale grant).
    fn forget(&self, matches: &IdentityMatch) {
        let matches = matches.clone();
        let _ = self
            .hot
            .invalidate_entries_if(move |_, hot| matches(&hot.identity));
        if let Some(provider) = self.outbound.provider.get() {
            provider.clear();
        }
    }

    fn cache_stats(&self) -> (u64, u64) {
        self.counters.get()
    }
}
