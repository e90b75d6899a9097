//! The remote JWKS source (feature `http`): one issuer's keys, fetched from its `jwks_uri` or
//! through its metadata, cached, and refetched safely.
//!
//! It is the one JWKS implementation the resource AS, the IdP and the gateway share. Its
//! rules (threats K01 to K09):
//!
//! - **Cache**: keys are used for `max_age` (default 10 min); after that the next lookup asks
//!   for a refresh.
//! - **Stale if error**: when a refresh fails, the last good set stays usable until
//!   `max_age + stale_if_error` (default 1 h more), then lookups fail closed (threat K03).
//! - **Unknown `kid`**: triggers one refresh, at most once per `cooldown` (default 30 s), so an
//!   attacker cannot force refetches (threats K01, K02).
//! - **Single flight**: concurrent refreshes share one fetch; a fetch that completes after a
//!   newer one never overwrites it (threat K08).
//! - **Transport**: `https` only (plain `http` on loopback), redirects never followed (threat K05),
//!   a response size cap, a timeout, status 200 only. An empty or unusable set is a failure,
//!   not an update (threat K03). `jku`/`x5u` in tokens are never fetched: only the configured URLs.
//! - **Discovery**: with [`RemoteJwks::from_issuer`], the `jwks_uri` comes from the issuer's
//!   RFC 8414 / OIDC metadata, whose `issuer` must equal the configured one exactly (threat K06).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use idjag_core::remote::RemoteJwks;
//! use idjag_core::*;
//!
//! let idp = Issuer::new("https://idp.example")?;
//! let keys = RemoteJwks::from_issuer(idp.clone(), SystemClock::shared())?;
//! let validator = IdJagValidator::new(
//!     TrustedIssuers::new().with(idp, Arc::new(keys)),
//!     Audience::new("https://auth.chat.example")?,
//!     AlgorithmSet::from([Algorithm::Es256, Algorithm::Rs256]),
//!     SystemClock::shared(),
//! );
//! # let token = "";
//! let verified = validator.validate_async(token).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use url::Url;

use crate::alg::Algorithm;
use crate::clock::SharedClock;
use crate::crypto::{CryptoBackend, default_backend};
use crate::endpoint::{EndpointError, authorization_server_metadata_urls, check_endpoint_url};
use crate::error::KeyLookupError;
use crate::id::{Issuer, Kid};
use crate::keys::{BoxFuture, DEFAULT_MAX_JWKS_BYTES, KeyMiss, KeySet, KeySource, VerifyingKey};
use crate::oauth::AuthorizationServerMetadata;

/// Why a JWKS or metadata fetch failed. Kept for diagnostics; lookups fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// A configured or discovered URL is not acceptable.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The HTTP request failed (connection, timeout, TLS).
    #[error("request failed")]
    Transport,
    /// The response status was not 200 (redirects included: they are never followed).
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// The response body exceeded the size cap.
    #[error("response exceeds {0} bytes")]
    TooLarge(usize),
    /// The body is not a usable JWK Set (malformed, or no usable key).
    #[error("response is not a usable JWK set")]
    InvalidKeySet,
    /// No metadata document of the issuer could be used.
    #[error("no usable metadata for the issuer")]
    Metadata,
    /// The metadata's `issuer` differs from the configured issuer (RFC 8414 §3.3).
    #[error("metadata issuer does not match")]
    IssuerMismatch,
    /// The HTTP client could not be built.
    #[error("HTTP client setup failed")]
    Client,
}

/// Cache and fetch settings, with their defaults.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RemoteJwksConfig {
    /// How long a fetched set is used before a refresh is asked for. Default 10 min.
    pub max_age: Duration,
    /// How long past `max_age` the last good set stays usable while refreshes fail. Default 1 h.
    pub stale_if_error: Duration,
    /// Minimum time between two fetch attempts. Default 30 s.
    pub cooldown: Duration,
    /// Whole-request timeout of one fetch. Default 5 s.
    pub timeout: Duration,
    /// Largest accepted response body. Default 256 KiB.
    pub max_bytes: usize,
}

impl Default for RemoteJwksConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(600),
            stale_if_error: Duration::from_secs(3600),
            cooldown: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            max_bytes: DEFAULT_MAX_JWKS_BYTES,
        }
    }
}

#[derive(Debug, Clone)]
enum Location {
    JwksUri(Url),
    Metadata,
}

#[derive(Debug, Default)]
struct Cache {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<SystemTime>,
    last_attempt: Option<SystemTime>,
    jwks_uri: Option<Url>,
    last_error: Option<FetchError>,
}

/// One issuer's keys from the network. See the [module documentation](self).
pub struct RemoteJwks {
    issuer: Issuer,
    location: Location,
    config: RemoteJwksConfig,
    clock: SharedClock,
    backend: &'static dyn CryptoBackend,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    flight: tokio::sync::Mutex<()>,
    attempts: AtomicU64,
    fetches: AtomicU64,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("issuer", &self.issuer)
            .field("location", &self.location)
            .field("config", &self.config)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Keys of `issuer` from a configured `jwks_uri`.
    pub fn from_jwks_uri(
        issuer: Issuer,
        jwks_uri: &str,
        clock: SharedClock,
    ) -> Result<Self, FetchError> {
        let url = crate::endpoint::check_endpoint(jwks_uri)?;
        Self::new(issuer, Location::JwksUri(url), clock)
    }

    /// Keys of `issuer` from the `jwks_uri` of its RFC 8414 or OIDC metadata.
    pub fn from_issuer(issuer: Issuer, clock: SharedClock) -> Result<Self, FetchError> {
        authorization_server_metadata_urls(&issuer)?;
        Self::new(issuer, Location::Metadata, clock)
    }

    fn new(issuer: Issuer, location: Location, clock: SharedClock) -> Result<Self, FetchError> {
        let config = RemoteJwksConfig::default();
        Ok(Self {
            issuer,
            location,
            http: http_client(config.timeout)?,
            config,
            clock,
            backend: default_backend(),
            cache: RwLock::new(Cache::default()),
            flight: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        })
    }

    /// Replaces the cache and fetch settings.
    pub fn with_config(mut self, config: RemoteJwksConfig) -> Result<Self, FetchError> {
        self.http = http_client(config.timeout)?;
        self.config = config;
        Ok(self)
    }

    /// Uses another crypto backend for the imported keys.
    pub fn with_backend(mut self, backend: &'static dyn CryptoBackend) -> Self {
        self.backend = backend;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// How many HTTP requests for JWK Sets were sent (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Why the last refresh failed, if it did.
    pub fn last_error(&self) -> Option<FetchError> {
        self.read().last_error.clone()
    }

    /// Fetches now unless a fetch ran within the cooldown. Returns the outcome of this call's
    /// own fetch, or `Ok` when another caller's fetch stood in for it.
    pub async fn refresh_now(&self) -> Result<(), FetchError> {
        let seen = self.attempts.load(Ordering::SeqCst);
        let _flight = self.flight.lock().await;
        if self.attempts.load(Ordering::SeqCst) != seen || !self.cooldown_passed() {
            return Ok(());
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let now = self.clock.now();
        let result = self.fetch().await;
        let mut cache = self.write();
        cache.last_attempt = Some(now);
        match result {
            Ok((keys, jwks_uri)) => {
                cache.keys = Some(Arc::new(keys));
                cache.fetched_at = Some(now);
                cache.jwks_uri = Some(jwks_uri);
                cache.last_error = None;
                Ok(())
            }
            Err(e) => {
                cache.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn elapsed_since(&self, then: SystemTime) -> Duration {
        self.clock.now().duration_since(then).unwrap_or_default()
    }

    fn cooldown_passed(&self) -> bool {
        self.read()
            .last_attempt
            .is_none_or(|t| self.elapsed_since(t) >= self.config.cooldown)
    }

    async fn fetch(&self) -> Result<(KeySet, Url), FetchError> {
        let jwks_uri = match &self.location {
            Location::JwksUri(url) => url.clone(),
            Location::Metadata => {
                let known = self.read().jwks_uri.clone();
                match known {
                    Some(url) => url,
                    None => self.discover().await?,
                }
            }
        };
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let body = self.get(&jwks_uri).await?;
        let import = KeySet::from_jwks_json_with(&body, self.backend)
            .map_err(|_| FetchError::InvalidKeySet)?;
        if import.keys.is_empty() {
            return Err(FetchError::InvalidKeySet);
        }
        Ok((import.keys, jwks_uri))
    }

    async fn discover(&self) -> Result<Url, FetchError> {
        let mut outcome = FetchError::Metadata;
        for url in authorization_server_metadata_urls(&self.issuer)? {
            let Ok(body) = self.get(&url).await else {
                continue;
            };
            let Ok(metadata) = serde_json::from_slice::<AuthorizationServerMetadata>(&body) else {
                continue;
            };
            if metadata.issuer != self.issuer {
                outcome = FetchError::IssuerMismatch;
                continue;
            }
            let uri = metadata.jwks_uri.ok_or(FetchError::Metadata)?;
            return Ok(crate::endpoint::check_endpoint(&uri)?);
        }
        Err(outcome)
    }

    async fn get(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        check_endpoint_url(url)?;
        let mut response = self
            .http
            .get(url.clone())
            .header(
                http::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|_| FetchError::Transport)?;
        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let max = self.config.max_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > max as u64)
        {
            return Err(FetchError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| FetchError::Transport)? {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|_| FetchError::Client)
}

impl KeySource for RemoteJwks {
    fn find(&self, kid: Option<&Kid>, alg: Algorithm) -> Result<Arc<VerifyingKey>, KeyMiss> {
        let (keys, age) = {
            let cache = self.read();
            (
                cache.keys.clone(),
                cache.fetched_at.map(|t| self.elapsed_since(t)),
            )
        };
        let can_refetch = self.cooldown_passed();
        let (Some(keys), Some(age)) = (keys, age) else {
            return Err(KeyMiss {
                error: KeyLookupError::KeysUnavailable,
                refresh_may_help: can_refetch,
            });
        };
        if age > self.config.max_age {
            if can_refetch {
                return Err(KeyMiss {
                    error: KeyLookupError::KeysUnavailable,
                    refresh_may_help: true,
                });
            }
            if age > self.config.max_age + self.config.stale_if_error {
                return Err(KeyMiss::final_(KeyLookupError::KeysUnavailable));
            }
        }
        keys.find(kid, alg).map_err(|error| KeyMiss {
            refresh_may_help: can_refetch && error == KeyLookupError::UnknownKid,
            error,
        })
    }

    fn refresh(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.refresh_now().await;
        })
    }
}
