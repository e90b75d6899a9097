//! `client_credentials`: the gateway's own token at the upstream's authorization server
//! (RFC 6749 §4.4), cached until 30 s before it expires, one fetch for concurrent callers.

use std::fmt;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use idjag_client::ClientCredentials;
use idjag_client::auth::{ClientAuth, basic_authorization};
use idjag_client::http::{HttpRequest, SharedHttpClient};
use idjag_core::{
    BoxFuture, Issuer, OAuthErrorResponse, Resource, ScopeSet, SharedClock, TokenResponse, wire,
};
use url::Url;

use crate::inbound::Authenticated;
use crate::observe::counters::CacheCounters;
use crate::upstream::credential::{Credential, CredentialError, UpstreamCredential};

/// How long a client-credentials token is used when the server gives no `expires_in`.
const DEFAULT_LIFETIME: i64 = 60;
/// Margin before expiry at which a cached token is renewed.
const RENEW_MARGIN: i64 = 30;

#[derive(Clone)]
struct Cached {
    credential: Credential,
    value: HeaderValue,
    use_until: i64,
}

/// What one client-credentials upstream asks for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientCredentialsTarget {
    /// The authorization server's issuer (audience of client assertions).
    pub authorization_server: Issuer,
    /// Its token endpoint.
    pub token_endpoint: Url,
    /// The scope to ask for, if any.
    pub scope: Option<ScopeSet>,
    /// An RFC 8707 resource, if any.
    pub resource: Option<Resource>,
    /// The gateway's registration there.
    pub credentials: ClientCredentials,
}

/// `client_credentials`: the gateway's own token. See the [bridging docs](super).
pub struct ClientCredentialsGrant {
    target: ClientCredentialsTarget,
    http: SharedHttpClient,
    clock: SharedClock,
    current: RwLock<Option<Cached>>,
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    counters: CacheCounters,
}

impl fmt::Debug for ClientCredentialsGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsGrant")
            .field("target", &self.target)
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsGrant {
    /// The grant for `target` through `http`.
    pub fn new(
        target: ClientCredentialsTarget,
        http: SharedHttpClient,
        clock: SharedClock,
    ) -> Self {
        Self {
            target,
            http,
            clock,
            current: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            counters: CacheCounters::default(),
        }
    }

    /// Token requests sent so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn cached(&self, rejected: Option<&HeaderValue>) -> Option<Credential> {
        let now = self.clock.now_unix();
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|c| now < c.use_until && rejected != Some(&c.value))
            .map(|c| c.credential.clone())
    }

    async fn get(&self, rejected: Option<&HeaderValue>) -> Result<Credential, CredentialError> {
        if let Some(credential) = self.cached(rejected) {
            self.counters.hit();
            return Ok(credential);
        }
        self.counters.miss();
        let _single_flight = self.fetching.lock().await;
        if let Some(credential) = self.cached(rejected) {
            return Ok(credential);
        }
        let fetched = self.fetch().await?;
        let credential = fetched.credential.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(fetched);
        Ok(credential)
    }

    async fn request(&self) -> Result<HttpRequest, CredentialError> {
        let unavailable = || CredentialError::Unavailable {
            stage: "authorization_server",
        };
        let t = &self.target;
        let client_id = t.credentials.client_id();
        // The assertion first: the form serializer is not `Send`.
        let assertion = match t.credentials.auth() {
            ClientAuth::Assertion(provider) => Some(
                provider
                    .create_assertion(client_id, &t.authorization_server)
                    .await
                    .map_err(|_| unavailable())?,
            ),
            _ => None,
        };
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", wire::GRANT_TYPE_CLIENT_CREDENTIALS);
        if let Some(scope) = &t.scope {
            form.append_pair("scope", &scope.to_string());
        }
        if let Some(resource) = &t.resource {
            form.append_pair("resource", resource.as_str());
        }
        let mut builder = http::Request::builder()
            .method(Method::POST)
            .uri(t.token_endpoint.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        match (t.credentials.auth(), &assertion) {
            (ClientAuth::SecretBasic(secret), _) => {
                let value = basic_authorization(client_id, secret).map_err(|_| unavailable())?;
                builder = builder.header(AUTHORIZATION, value);
            }
            (ClientAuth::SecretPost(secret), _) => {
                form.append_pair("client_id", client_id.as_str());
                form.append_pair("client_secret", secret.secret());
            }
            (_, Some(assertion)) => {
                form.append_pair("client_id", client_id.as_str());
                form.append_pair(
                    "client_assertion_type",
                    wire::CLIENT_ASSERTION_TYPE_JWT_BEARER,
                );
                form.append_pair("client_assertion", assertion.secret());
            }
            _ => {
                form.append_pair("client_id", client_id.as_str());
            }
        }
        builder
            .body(form.finish().into_bytes())
            .map_err(|_| unavailable())
    }

    async fn fetch(&self) -> Result<Cached, CredentialError> {
        let unavailable = || CredentialError::Unavailable {
            stage: "authorization_server",
        };
        let request = self.request().await?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let response = self.http.execute(request).await.map_err(|e| {
            tracing::warn!(error = %e, "client credentials: token endpoint unreachable");
            unavailable()
        })?;
        if response.status() != StatusCode::OK {
            return Err(
                match serde_json::from_slice::<OAuthErrorResponse>(response.body()) {
                    Ok(error) => CredentialError::Refused {
                        stage: "authorization_server",
                        code: error.error.as_str().to_owned(),
                    },
                    Err(_) => unavailable(),
                },
            );
        }
        let token: TokenResponse =
            serde_json::from_slice(response.body()).map_err(|_| unavailable())?;
        if !token.token_type.eq_ignore_ascii_case("bearer") || token.access_token.is_empty() {
            return Err(unavailable());
        }
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.access_token.secret()))
            .map_err(|_| unavailable())?;
        value.set_sensitive(true);
        let lifetime = token.expires_in.map_or(DEFAULT_LIFETIME, |s| {
            i64::try_from(s).unwrap_or(i64::MAX / 2)
        });
        let margin = RENEW_MARGIN.min(lifetime / 2);
        Ok(Cached {
            credential: Credential::new(value.clone(), Some(token.access_token)),
            value,
            use_until: self.clock.now_unix().saturating_add(lifetime - margin),
        })
    }
}

impl UpstreamCredential for ClientCredentialsGrant {
    fn mode(&self) -> &'static str {
        "client_credentials"
    }

    fn credential<'a>(
        &'a self,
        _caller: &'a Authenticated,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(self.get(None))
    }

    fn after_unauthorized<'a>(
        &'a self,
        _caller: &'a Authenticated,
        rejected: &'a Credential,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(self.get(rejected.authorization()))
    }

    fn cache_stats(&self) -> (u64, u64) {
        self.counters.get()
    }

    fn fetch_count(&self) -> Option<u64> {
        Some(self.fetches.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use idjag_core::ClientSecret;

    use super::*;

    type Seen = Arc<std::sync::Mutex<Vec<HttpRequest>>>;

    fn grant(credentials: ClientCredentials, seen: Seen) -> ClientCredentialsGrant {
        let http = idjag_client::http::from_fn(move |request: HttpRequest| {
            seen.lock().unwrap().push(request);
            async {
                Ok(http::Response::builder()
                    .status(200)
                    .body(
                        br#"{"access_token":"cc-1","token_type":"bearer","expires_in":120}"#
                            .to_vec(),
                    )
                    .unwrap())
            }
        });
        ClientCredentialsGrant::new(
            ClientCredentialsTarget {
                authorization_server: Issuer::new("https://as.example").unwrap(),
                token_endpoint: Url::parse("https://as.example/token").unwrap(),
                scope: Some(ScopeSet::parse("a b").unwrap()),
                resource: Some(Resource::new("https://api.example/mcp").unwrap()),
                credentials,
            },
            Arc::new(http),
            idjag_core::TestClock::at_unix(1_000).shared(),
        )
    }

    fn form(request: &HttpRequest) -> Vec<(String, String)> {
        url::form_urlencoded::parse(request.body())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[tokio::test]
    async fn client_secret_post_sends_the_secret_in_the_form_and_caches_the_token() {
        let seen = Seen::default();
        let credentials = ClientCredentials::secret_post(
            idjag_core::ClientId::new("gw").unwrap(),
            ClientSecret::new("s3cret"),
        )
        .unwrap();
        let g = grant(credentials, seen.clone());
        let first = g.get(None).await.unwrap();
        let again = g.get(None).await.unwrap();
        assert_eq!(first.authorization().unwrap(), "Bearer cc-1");
        assert_eq!(again.authorization().unwrap(), "Bearer cc-1");
        let requests = seen.lock().unwrap();
        assert_eq!(requests.len(), 1, "cached");
        assert!(requests[0].headers().get(AUTHORIZATION).is_none());
        assert_eq!(
            form(&requests[0]),
            [
                ("grant_type", "client_credentials"),
                ("scope", "a b"),
                ("resource", "https://api.example/mcp"),
                ("client_id", "gw"),
                ("client_secret", "s3cret"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(g.cache_stats(), (1, 1));
    }

    #[tokio::test]
    async fn private_key_jwt_signs_an_assertion_for_the_authorization_server() {
        let key = idjag_core::SigningKey::generate(idjag_core::Algorithm::Es256)
            .unwrap()
            .with_thumbprint_kid();
        let verifying = key.verifying_key().unwrap();
        let clock = idjag_core::TestClock::at_unix(1_000).shared();
        let credentials = ClientCredentials::private_key_jwt(
            idjag_core::ClientId::new("gw").unwrap(),
            idjag_client::auth::PrivateKeyJwt::new(key, clock),
        );
        let seen = Seen::default();
        let g = grant(credentials, seen.clone());
        g.get(None).await.unwrap();
        let requests = seen.lock().unwrap();
        let fields = form(&requests[0]);
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).unwrap().1.clone();
        assert_eq!(get("client_id"), "gw");
        assert_eq!(
            get("client_assertion_type"),
            wire::CLIENT_ASSERTION_TYPE_JWT_BEARER
        );
        let assertion = get("client_assertion");
        let (signed, signature) = assertion.rsplit_once('.').unwrap();
        let signature = idjag_core::jose::base64url::decode(signature).unwrap();
        assert!(verifying.verify(signed.as_bytes(), &signature));
        let payload = signed.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&idjag_core::jose::base64url::decode(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], "gw");
        assert_eq!(claims["sub"], "gw");
        assert_eq!(claims["aud"], "https://as.example");
        assert!(requests[0].headers().get(AUTHORIZATION).is_none());
    }
}
