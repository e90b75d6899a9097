//! Inbound token validation and the identity cache. See the [module docs](crate::inbound).

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use idjag_core::jose::UnverifiedJws;
use idjag_core::remote::RemoteJwks;
use idjag_core::server::bearer_token;
use idjag_core::{
    AccessToken, AccessTokenValidator, AlgorithmSet, Audience, ClientId, IdToken, IdTokenValidator,
    Issuer, KeySource, SharedClock, TrustedIssuers, ValidationError, wire,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::InboundKind;
use crate::inbound::identity::Identity;
use crate::inbound::teams::TeamMap;
use crate::inbound::token::{Authenticated, InboundError, InboundToken};
use crate::observe::counters::CacheCounters;

/// Settings of [`InboundAuth`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct InboundSettings {
    /// The IdP.
    pub issuer: Issuer,
    /// The gateway's client id at the IdP (the `aud` of inbound ID tokens).
    pub client_id: ClientId,
    /// The gateway's public URL (an accepted `aud` of inbound access tokens).
    pub gateway_resource: Audience,
    /// Every route's resource identifier.
    pub route_resources: Vec<Audience>,
    /// Accepted kinds.
    pub accept: Vec<InboundKind>,
    /// Accepted algorithms.
    #[serde(serialize_with = "algorithm_names")]
    pub algorithms: AlgorithmSet,
    /// Clock-skew leeway.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub leeway: Duration,
    /// Longest token.
    pub max_token_bytes: usize,
    /// Most cached identities.
    pub cache_capacity: u64,
    /// The gateway's own authorization server (`[authorization_server]`): the `iss` of
    /// gateway tokens. `None`: off.
    pub gateway_issuer: Option<Issuer>,
}

impl InboundSettings {
    /// Settings for the IdP `issuer`, the gateway's `client_id` there, its public URL and
    /// its routes, with the defaults: both token kinds, ES256/RS256/PS256/EdDSA, 30 s of
    /// leeway, 8 KiB tokens, 10 000 cached identities.
    pub fn new(
        issuer: Issuer,
        client_id: ClientId,
        gateway_resource: Audience,
        route_resources: Vec<Audience>,
    ) -> Self {
        Self {
            issuer,
            client_id,
            gateway_resource,
            route_resources,
            accept: vec![InboundKind::IdToken, InboundKind::AccessToken],
            algorithms: AlgorithmSet::from([
                idjag_core::Algorithm::Es256,
                idjag_core::Algorithm::Rs256,
                idjag_core::Algorithm::Ps256,
                idjag_core::Algorithm::EdDsa,
            ]),
            leeway: idjag_core::DEFAULT_LEEWAY,
            max_token_bytes: 8 * 1024,
            cache_capacity: 10_000,
            gateway_issuer: None,
        }
    }
}

fn algorithm_names<S: serde::Serializer>(set: &AlgorithmSet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(set.iter().map(idjag_core::Algorithm::as_str))
}

struct UntilExp {
    clock: SharedClock,
}

impl moka::Expiry<[u8; 32], Arc<Identity>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        identity: &Arc<Identity>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let left = identity.expires_at - self.clock.now_unix();
        Some(Duration::from_secs(left.clamp(1, 24 * 3600).unsigned_abs()))
    }
}

/// Validates inbound tokens and caches the identities. See the [module docs](self).
pub struct InboundAuth {
    settings: InboundSettings,
    id_tokens: IdTokenValidator,
    access_tokens: AccessTokenValidator,
    gateway_tokens: Option<AccessTokenValidator>,
    keys: Arc<dyn KeySource>,
    jwks: Option<Arc<RemoteJwks>>,
    teams: TeamMap,
    clock: SharedClock,
    cache: moka::future::Cache<[u8; 32], Arc<Identity>>,
    counters: CacheCounters,
}

impl std::fmt::Debug for InboundAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundAuth")
            .field("settings", &self.settings)
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl InboundAuth {
    /// Validates with the IdP's keys from `jwks`.
    pub fn new(
        settings: InboundSettings,
        jwks: Arc<RemoteJwks>,
        teams: TeamMap,
        clock: SharedClock,
    ) -> Result<Self, idjag_core::ValidatorConfigError> {
        let keys: Arc<dyn KeySource> = jwks.clone();
        let mut auth = Self::with_keys(settings, keys, teams, clock)?;
        auth.jwks = Some(jwks);
        Ok(auth)
    }

    /// Validates with any key source (tests, static keys).
    pub fn with_keys(
        settings: InboundSettings,
        keys: Arc<dyn KeySource>,
        teams: TeamMap,
        clock: SharedClock,
    ) -> Result<Self, idjag_core::ValidatorConfigError> {
        let issuers = TrustedIssuers::new().with(settings.issuer.clone(), keys.clone());
        let id_tokens = IdTokenValidator::new(
            issuers.clone(),
            Audience::new(settings.client_id.as_str())
                .map_err(|_| idjag_core::ValidatorConfigError::NonPositive)?,
            settings.algorithms,
            clock.clone(),
        )
        .with_leeway(settings.leeway)?
        .with_max_token_bytes(settings.max_token_bytes)?;
        let mut access_tokens = AccessTokenValidator::new(
            issuers,
            settings.gateway_resource.clone(),
            settings.algorithms,
            clock.clone(),
        )
        .with_leeway(settings.leeway)?
        .with_max_token_bytes(settings.max_token_bytes)?;
        for route in &settings.route_resources {
            access_tokens = access_tokens.with_audience_alias(route.clone());
        }
        let cache = moka::future::Cache::builder()
            .max_capacity(settings.cache_capacity)
            .expire_after(UntilExp {
                clock: clock.clone(),
            })
            .support_invalidation_closures()
            .build();
        Ok(Self {
            settings,
            id_tokens,
            access_tokens,
            gateway_tokens: None,
            keys,
            jwks: None,
            teams,
            clock,
            cache,
            counters: CacheCounters::default(),
        })
    }

    /// Also accepts the gateway's own access tokens (`[authorization_server]`): `iss` the
    /// gateway ([`InboundSettings::gateway_issuer`]), signed with `algorithm` by a key of
    /// `keys`, `aud` exactly the route. Without a gateway issuer in the settings, nothing
    /// changes.
    pub fn with_gateway_tokens(
        mut self,
        keys: Arc<dyn KeySource>,
        algorithm: idjag_core::Algorithm,
    ) -> Result<Self, idjag_core::ValidatorConfigError> {
        let Some(issuer) = self.settings.gateway_issuer.clone() else {
            return Ok(self);
        };
        let mut validator = AccessTokenValidator::new(
            TrustedIssuers::new().with(issuer, keys),
            self.settings.gateway_resource.clone(),
            AlgorithmSet::from([algorithm]),
            self.clock.clone(),
        )
        .with_leeway(self.settings.leeway)?
        .with_max_token_bytes(self.settings.max_token_bytes)?;
        for route in &self.settings.route_resources {
            validator = validator.with_audience_alias(route.clone());
        }
        self.gateway_tokens = Some(validator);
        Ok(self)
    }

    /// Validates an ID token of the IdP for the gateway's client id there (the one the
    /// gateway's authorization server gets when it signs a user in).
    pub async fn validate_id_token(
        &self,
        token: &str,
    ) -> Result<idjag_core::Verified<idjag_core::IdTokenClaims>, ValidationError> {
        self.id_tokens.validate_async(token).await
    }

    /// The groups of a verified ID token, under the inbound rules ([`TeamMap`]).
    pub fn groups_of_id_token(
        &self,
        claims: &idjag_core::IdTokenClaims,
    ) -> Result<Vec<String>, crate::inbound::GroupsError> {
        self.teams.groups_of_id_token(claims)
    }

    /// Validates one of the gateway's own access tokens (any route).
    pub async fn validate_gateway_token(
        &self,
        token: &str,
    ) -> Result<idjag_core::Verified<idjag_core::AccessTokenClaims>, InboundError> {
        let validator = self
            .gateway_tokens
            .as_ref()
            .ok_or(InboundError::KindNotAccepted)?;
        validator
            .validate_async(token)
            .await
            .map_err(InboundError::Invalid)
    }

    /// The trusted IdP.
    pub fn issuer(&self) -> &Issuer {
        &self.settings.issuer
    }

    /// The IdP's remote key set, when it is one.
    pub fn jwks(&self) -> Option<&Arc<RemoteJwks>> {
        self.jwks.as_ref()
    }

    /// Whether the IdP's keys are loaded (fetching them if not yet).
    pub async fn ready(&self) -> bool {
        match &self.jwks {
            Some(jwks) => {
                if jwks.fetch_count() == 0 || jwks.last_error().is_some() {
                    let _ = jwks.refresh_now().await;
                }
                jwks.fetch_count() > 0 && jwks.last_error().is_none()
            }
            None => true,
        }
    }

    /// How many identities are cached.
    pub fn cached(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Authenticates a request to the route whose resource identifier is `route`.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        route: &Audience,
    ) -> Result<Authenticated, InboundError> {
        let token = bearer_token(headers)?;
        if token.len() > self.settings.max_token_bytes {
            return Err(InboundError::TooLarge);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let identity = match self.cache.get(&key).await {
            Some(identity) if self.clock.now_unix() < identity.expires_at => {
                self.counters.hit();
                identity
            }
            _ => {
                self.counters.miss();
                let identity = Arc::new(self.validate(token).await?);
                self.cache.insert(key, identity.clone()).await;
                identity
            }
        };
        let other_resource = match identity.kind {
            InboundKind::AccessToken => {
                identity.audience != route.as_str()
                    && identity.audience != self.settings.gateway_resource.as_str()
            }
            // The gateway's own tokens name exactly one route.
            InboundKind::GatewayToken => identity.audience != route.as_str(),
            InboundKind::IdToken => false,
        };
        if other_resource {
            return Err(InboundError::OtherResource);
        }
        let token = match identity.kind {
            InboundKind::IdToken => InboundToken::IdToken(IdToken::new(token)),
            InboundKind::AccessToken => InboundToken::AccessToken(AccessToken::new(token)),
            InboundKind::GatewayToken => InboundToken::GatewayToken,
        };
        Ok(Authenticated {
            identity,
            token,
            token_digest: key,
        })
    }

    async fn validate(&self, token: &str) -> Result<Identity, InboundError> {
        let jws = UnverifiedJws::parse(token, self.settings.max_token_bytes)
            .map_err(|e| InboundError::Invalid(ValidationError::Malformed(e)))?;
        let is_access_token = jws
            .unverified_header()
            .typ()
            .is_some_and(|typ| idjag_core::jose::typ_matches(typ, wire::TYP_ACCESS_TOKEN));
        let kind = if !is_access_token {
            InboundKind::IdToken
        } else if self.is_gateway_issued(&jws) {
            InboundKind::GatewayToken
        } else {
            InboundKind::AccessToken
        };
        if !self.settings.accept.contains(&kind) {
            return Err(InboundError::KindNotAccepted);
        }
        match kind {
            InboundKind::GatewayToken => {
                let validator = self
                    .gateway_tokens
                    .as_ref()
                    .ok_or(InboundError::KindNotAccepted)?;
                let verified = validator
                    .validate_async(token)
                    .await
                    .map_err(InboundError::Invalid)?;
                self.teams
                    .from_gateway_token(verified.claims(), &self.settings.issuer)
                    .map_err(InboundError::Groups)
            }
            InboundKind::AccessToken => {
                let verified = self
                    .access_tokens
                    .validate_async(token)
                    .await
                    .map_err(InboundError::Invalid)?;
                self.teams
                    .from_access_token(verified.claims())
                    .map_err(InboundError::Groups)
            }
            _ => {
                let verified = self
                    .id_tokens
                    .validate_async(token)
                    .await
                    .map_err(InboundError::Invalid)?;
                self.teams
                    .from_id_token(verified.claims())
                    .map_err(InboundError::Groups)
            }
        }
    }

    /// Whether an access token names the gateway as its issuer (read before validation only
    /// to pick the validator, which checks `iss` again).
    fn is_gateway_issued(&self, jws: &UnverifiedJws<'_>) -> bool {
        let (Some(gateway), Some(_)) = (&self.settings.gateway_issuer, &self.gateway_tokens) else {
            return false;
        };
        jws.unverified_claims().is_ok_and(|claims| {
            claims.get("iss").and_then(serde_json::Value::as_str) == Some(gateway.as_str())
        })
    }

    /// Drops every cached identity `matches` selects (offboarding).
    pub fn forget(&self, matches: impl Fn(&Identity) -> bool + Send + Sync + 'static) {
        let _ = self
            .cache
            .invalidate_entries_if(move |_, identity| matches(identity));
    }

    /// Validation cache hits and misses so far.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.counters.get()
    }

    /// The key source (for readiness checks and tests).
    pub fn keys(&self) -> &Arc<dyn KeySource> {
        &self.keys
    }
}
