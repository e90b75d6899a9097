//! The token provider: the whole flow behind a cache, with single flight per key.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use idjag_core::{AccessToken, Issuer, RefreshToken, Resource, ScopeSet};

use crate::auth::RegistrationKey;
use crate::client::IdJagClient;
use crate::error::{ClientError, InputError, ReauthReason};
use crate::exchange::ReceivedIdJag;
use crate::redeem::AccessTokenGrant;
use crate::target::AccessRequest;
use idjag_core::SubjectTokenType;

use crate::subject::{SubjectKey, UserToken, unverified_exp};
use crate::transport::is_invalid_grant;

/// The cache key: who, through which IdP and which registration there, at which resource AS
/// (its token endpoint and our registration there), for what.
///
/// A registration is the client id, the authentication method and the credential itself (a
/// secret's SHA-256, or the assertion provider): two registrations at one authorization server
/// never share a cached token, even for the same user, resource and scope.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    subject: SubjectKey,
    idp: Issuer,
    idp_registration: RegistrationKey,
    resource_as: Issuer,
    resource_as_endpoint: String,
    resource_as_registration: RegistrationKey,
    resources: Vec<Resource>,
    scope: ScopeSet,
    authorization_details: Option<String>,
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheKey")
            .field("subject", &self.subject)
            .field("idp", &self.idp)
            .field("idp_registration", &self.idp_registration)
            .field("resource_as", &self.resource_as)
            .field("resource_as_registration", &self.resource_as_registration)
            .field("resources", &self.resources)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl CacheKey {
    /// The key of `subject` asking `client`'s IdP for `request`.
    pub fn new(client: &IdJagClient, subject: &UserToken, request: &AccessRequest) -> Self {
        let mut resources = request.resources().to_vec();
        resources.sort();
        Self {
            subject: subject.key(),
            idp: client.identity_provider().issuer().clone(),
            idp_registration: client.identity_provider().credentials().registration_key(),
            resource_as: request.resource_as().issuer().clone(),
            resource_as_endpoint: request.resource_as().token_endpoint().to_string(),
            resource_as_registration: request.resource_as().credentials().registration_key(),
            resources,
            scope: request.scope().clone(),
            authorization_details: request
                .authorization_details()
                .map(|d| serde_json::to_string(d).unwrap_or_default()),
        }
    }
}

/// Cache settings, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// How long before `expires_at` a token stops being handed out. Default 30 s. A token whose
    /// whole lifetime is shorter than twice the margin is kept for half its lifetime.
    pub refresh_margin: Duration,
    /// Most keys kept. Default 10 000.
    pub max_entries: u64,
    /// A key unused this long (wall time) is dropped. Default 1 h.
    pub idle_timeout: Duration,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            refresh_margin: Duration::from_secs(30),
            max_entries: 10_000,
            idle_timeout: Duration::from_secs(3600),
        }
    }
}

#[derive(Default)]
struct SlotState {
    access: Option<AccessTokenGrant>,
    id_jag: Option<ReceivedIdJag>,
    last_error: Option<ClientError>,
}

/// A user's renewed subject token, shared by every cache key of that user so that a rotated
/// refresh token is used once, by one renewal at a time.
#[derive(Default)]
struct Session {
    renewed: Option<UserToken>,
    /// The key of the refresh token the caller gave, and the one to use now (rotated).
    renewal: Option<(SubjectKey, RefreshToken)>,
}

#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
    /// Finished attempts: a caller that saw fewer before waiting shares the latest outcome.
    attempts: AtomicU64,
}

/// Runs the flow for many users and resources, caching access tokens and sharing in-flight
/// requests.
///
/// Access tokens are cached per (subject, IdP and our registration there, resource AS and our
/// registration there, resources, scope, authorization details; see [`CacheKey`]) until
/// `expires_at` minus a margin. When one runs out (threat C05, each
/// step tested with an injected clock):
///
/// 1. the cached ID-JAG is presented again while it is valid, if the resource AS allows reuse
///    ([`crate::ResourceAsTarget::with_id_jag_reuse`]); if the server refuses it
///    (`invalid_grant`), a new exchange follows;
/// 2. otherwise, a new token exchange at the IdP, then a redemption;
/// 3. an expired ID token is first renewed with the subject's IdP refresh token;
/// 4. with no usable subject token left, [`ClientError::ReauthenticationRequired`].
///
/// Callers of one key wait for the one request in flight and share its result, so 100
/// concurrent callers cause one exchange; a failure is shared by those who waited for it. A
/// `401` from the resource drops the rejected token and forces one refresh, also shared
/// ([`TokenProvider::refresh_after_unauthorized`], [`TokenProvider::call`]).
pub struct TokenProvider {
    client: IdJagClient,
    config: ProviderConfig,
    slots: moka::future::Cache<CacheKey, Arc<Slot>>,
    sessions: moka::future::Cache<SubjectKey, Arc<tokio::sync::Mutex<Session>>>,
    exchanges: AtomicU64,
    redemptions: AtomicU64,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("client", &self.client)
            .field("config", &self.config)
            .field("entries", &self.slots.entry_count())
            .field("exchanges", &self.exchange_count())
            .field("redemptions", &self.redemption_count())
            .finish()
    }
}

/// What a call to the resource came to, as far as authorization goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResourceReply<T> {
    /// Anything but a `401`.
    Done(T),
    /// A `401`: the access token was refused.
    Unauthorized(T),
}

/// Why [`TokenProvider::call`] failed.
#[non_exhaustive]
pub enum CallError<T> {
    /// No access token could be had.
    Token(ClientError),
    /// The resource still answered `401` after the one forced refresh; its reply.
    Unauthorized(T),
}

impl<T> fmt::Debug for CallError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(error) => f.debug_tuple("Token").field(error).finish(),
            Self::Unauthorized(_) => f.write_str("Unauthorized(..)"),
        }
    }
}

impl<T> fmt::Display for CallError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(error) => fmt::Display::fmt(error, f),
            Self::Unauthorized(_) => {
                f.write_str("the resource refused a freshly issued access token")
            }
        }
    }
}

impl<T> std::error::Error for CallError<T> {}

impl TokenProvider {
    /// A provider around `client` with the default [`ProviderConfig`].
    pub fn new(client: IdJagClient) -> Self {
        Self::build(client, ProviderConfig::default())
    }

    /// A provider with `config`.
    pub fn with_config(client: IdJagClient, config: ProviderConfig) -> Result<Self, InputError> {
        if config.max_entries == 0
            || config.idle_timeout.is_zero()
            || config.refresh_margin > Duration::from_secs(3600)
        {
            return Err(InputError::Config { what: "provider" });
        }
        Ok(Self::build(client, config))
    }

    fn build(client: IdJagClient, config: ProviderConfig) -> Self {
        let slots = moka::future::Cache::builder()
            .max_capacity(config.max_entries)
            .time_to_idle(config.idle_timeout)
            .build();
        let sessions = moka::future::Cache::builder()
            .max_capacity(config.max_entries)
            .time_to_idle(config.idle_timeout)
            .build();
        Self {
            client,
            config,
            slots,
            sessions,
            exchanges: AtomicU64::new(0),
            redemptions: AtomicU64::new(0),
        }
    }

    /// The client.
    pub fn client(&self) -> &IdJagClient {
        &self.client
    }

    /// How many token exchanges this provider has started.
    pub fn exchange_count(&self) -> u64 {
        self.exchanges.load(Ordering::SeqCst)
    }

    /// How many redemptions this provider has started.
    pub fn redemption_count(&self) -> u64 {
        self.redemptions.load(Ordering::SeqCst)
    }

    /// Forgets every cached token.
    pub fn clear(&self) {
        self.slots.invalidate_all();
        self.sessions.invalidate_all();
    }

    /// An access token for `subject` and `request`: the cached one while it is valid, else a
    /// renewed one (see [`TokenProvider`]).
    pub async fn access_token(
        &self,
        subject: &UserToken,
        request: &AccessRequest,
    ) -> Result<AccessTokenGrant, ClientError> {
        self.get(subject, request, None).await
    }

    /// After the resource answered `401` to `rejected`: drops it and gets a new one, once.
    /// Concurrent callers holding the same rejected token share one refresh.
    pub async fn refresh_after_unauthorized(
        &self,
        subject: &UserToken,
        request: &AccessRequest,
        rejected: &AccessToken,
    ) -> Result<AccessTokenGrant, ClientError> {
        self.get(subject, request, Some(rejected)).await
    }

    /// Calls the resource with an access token; on `401`, forces one refresh and calls again;
    /// a second `401` is returned as [`CallError::Unauthorized`].
    pub async fn call<T, F, Fut>(
        &self,
        subject: &UserToken,
        request: &AccessRequest,
        mut call: F,
    ) -> Result<T, CallError<T>>
    where
        F: FnMut(AccessTokenGrant) -> Fut,
        Fut: Future<Output = ResourceReply<T>>,
    {
        let grant = self
            .access_token(subject, request)
            .await
            .map_err(CallError::Token)?;
        let used = grant.access_token().clone();
        match call(grant).await {
            ResourceReply::Done(reply) => return Ok(reply),
            ResourceReply::Unauthorized(_) => {}
        }
        let grant = self
            .refresh_after_unauthorized(subject, request, &used)
            .await
            .map_err(CallError::Token)?;
        match call(grant).await {
            ResourceReply::Done(reply) => Ok(reply),
            ResourceReply::Unauthorized(reply) => Err(CallError::Unauthorized(reply)),
        }
    }

    fn margin(&self, issued_at: i64, expires_at: i64) -> i64 {
        let configured = i64::try_from(self.config.refresh_margin.as_secs()).unwrap_or(i64::MAX);
        configured.min(expires_at.saturating_sub(issued_at) / 2)
    }

    fn access_usable(&self, grant: &AccessTokenGrant, now: i64) -> bool {
        now < grant.expires_at() - self.margin(grant.issued_at(), grant.expires_at())
    }

    fn id_jag_usable(&self, id_jag: &ReceivedIdJag, now: i64) -> bool {
        now < id_jag.expires_at() - self.margin(id_jag.claims().iat.unix(), id_jag.expires_at())
    }

    async fn get(
        &self,
        subject: &UserToken,
        request: &AccessRequest,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessTokenGrant, ClientError> {
        let key = CacheKey::new(&self.client, subject, request);
        let slot = self
            .slots
            .get_with(key, async { Arc::new(Slot::default()) })
            .await;
        let seen = slot.attempts.load(Ordering::SeqCst);
        let mut state = slot.state.lock().await;
        let now = self.client.now();
        if let Some(rejected) = rejected {
            if state
                .access
                .as_ref()
                .is_some_and(|a| a.access_token().ct_eq(rejected))
            {
                // Refused by the resource: neither the token nor its ID-JAG is used again.
                state.access = None;
                state.id_jag = None;
            } else if let Some(access) =
                state.access.as_ref().filter(|a| self.access_usable(a, now))
            {
                return Ok(access.clone());
            }
        }
        if let Some(access) = state.access.as_ref().filter(|a| self.access_usable(a, now)) {
            return Ok(access.clone());
        }
        // An attempt finished while this caller waited for it: share its failure.
        if slot.attempts.load(Ordering::SeqCst) != seen
            && let Some(error) = &state.last_error
        {
            return Err(error.clone());
        }
        let result = self.renew(&mut state, subject, request, now).await;
        slot.attempts.fetch_add(1, Ordering::SeqCst);
        match &result {
            Ok(grant) => {
                state.access = Some(grant.clone());
                state.last_error = None;
            }
            Err(error) => {
                state.access = None;
                state.last_error = Some(error.clone());
            }
        }
        result
    }

    async fn renew(
        &self,
        state: &mut SlotState,
        subject: &UserToken,
        request: &AccessRequest,
        now: i64,
    ) -> Result<AccessTokenGrant, ClientError> {
        let reuse = request.resource_as().reuses_id_jag();
        if reuse && let Some(id_jag) = state.id_jag.clone().filter(|j| self.id_jag_usable(j, now)) {
            self.redemptions.fetch_add(1, Ordering::SeqCst);
            match self.client.redeem(&id_jag, request).await {
                Ok(grant) => return Ok(grant),
                Err(error) if is_invalid_grant(&error) => state.id_jag = None,
                Err(error) => return Err(error),
            }
        }
        let subject = self.usable_subject(subject, now).await?;
        self.exchanges.fetch_add(1, Ordering::SeqCst);
        let id_jag = self.client.exchange(&subject, request).await?;
        state.id_jag = reuse.then(|| id_jag.clone());
        self.redemptions.fetch_add(1, Ordering::SeqCst);
        self.client.redeem(&id_jag, request).await
    }

    /// The subject to exchange: the caller's ID token, or a renewed one once it has expired
    /// (renewed once per user, whatever the cache key).
    async fn usable_subject(
        &self,
        subject: &UserToken,
        now: i64,
    ) -> Result<UserToken, ClientError> {
        if subject.token_type() != SubjectTokenType::IdToken {
            return Ok(subject.clone());
        }
        let session = self
            .sessions
            .get_with(subject.key(), async { Arc::default() })
            .await;
        let mut session = session.lock().await;
        let expiry = |token: &UserToken| unverified_exp(token.token().secret());
        let current = match &session.renewed {
            Some(renewed) if expiry(renewed) > expiry(subject) => renewed.clone(),
            _ => subject.clone(),
        };
        if expiry(&current).is_none_or(|exp| now < exp) {
            return Ok(current);
        }
        let given = subject
            .renewal_token()
            .map(|t| (SubjectKey::from_token(t.secret()), t));
        let (origin, refresh) = match (&session.renewal, given) {
            (Some((origin, rotated)), Some((key, _))) if *origin == key => (key, rotated.clone()),
            (_, Some((key, token))) => (key, token.clone()),
            (Some((origin, rotated)), None) => (*origin, rotated.clone()),
            (None, None) => {
                return Err(ClientError::ReauthenticationRequired {
                    reason: ReauthReason::IdTokenExpired,
                });
            }
        };
        let renewed = self.client.renew_id_token(&refresh).await?;
        let fresh = subject.renewed(renewed.id_token);
        session.renewal = Some((origin, renewed.refresh_token.unwrap_or(refresh)));
        session.renewed = Some(fresh.clone());
        Ok(fresh)
    }
}
