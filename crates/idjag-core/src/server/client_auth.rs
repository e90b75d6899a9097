//! Client authentication at a token endpoint (RFC 6749 §2.3, RFC 7523 §2.2, RFC 7521 §4.2).
//!
//! Exactly one method per request: `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt`, or none (a public client, refused unless explicitly allowed). Secrets
//! are checked in constant time against what the [`ClientRegistry`] stores (a SHA-256 hash by
//! default, or the host's own check). Client assertions go through the core
//! [`ClientAssertionValidator`](crate::ClientAssertionValidator) with `aud` = this server's
//! issuer as a single value, and their `jti` is single-use within its lifetime.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use http::StatusCode;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::form::FormBody;
use super::replay::{Replay, ReplayCache, ReplayKey};
use crate::alg::AlgorithmSet;
use crate::clock::SharedClock;
use crate::error::{OAuthErrorCode, ValidationError};
use crate::id::{Audience, ClientId, Issuer};
use crate::keys::{BoxFuture, KeySource};
use crate::secret::{ClientAssertion, ClientSecret};
use crate::validate::{ClientAssertionValidator, TrustedIssuers};
use crate::wire;

/// A client authentication method (RFC 7591 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic.
    ClientSecretBasic,
    /// Secret in the form body.
    ClientSecretPost,
    /// RFC 7523 client assertion.
    PrivateKeyJwt,
    /// A public client.
    None,
}

impl ClientAuthMethod {
    /// The registry name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => wire::auth_method::CLIENT_SECRET_BASIC,
            Self::ClientSecretPost => wire::auth_method::CLIENT_SECRET_POST,
            Self::PrivateKeyJwt => wire::auth_method::PRIVATE_KEY_JWT,
            Self::None => wire::auth_method::NONE,
        }
    }
}

/// The credentials a request presents.
#[derive(Debug)]
#[non_exhaustive]
pub enum PresentedCredentials {
    /// `Authorization: Basic`.
    Basic {
        /// The client id.
        client_id: ClientId,
        /// The secret.
        secret: ClientSecret,
    },
    /// `client_id` and `client_secret` in the body.
    Post {
        /// The client id.
        client_id: ClientId,
        /// The secret.
        secret: ClientSecret,
    },
    /// `client_assertion` with `client_assertion_type` jwt-bearer.
    Assertion {
        /// The assertion.
        assertion: ClientAssertion,
        /// The body's `client_id`, when sent.
        client_id: Option<ClientId>,
    },
    /// Only a `client_id`.
    None {
        /// The client id.
        client_id: ClientId,
    },
}

/// What went wrong, without any credential in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthErrorKind {
    /// More than one method in one request (RFC 6749 §2.3).
    #[error("more than one client authentication method")]
    MultipleMethods,
    /// No credentials and no `client_id`.
    #[error("no client authentication")]
    Missing,
    /// The Basic header, `client_assertion_type` or a `client_id` is malformed or inconsistent.
    #[error("malformed client authentication")]
    Malformed,
    /// The client is not registered.
    #[error("unknown client")]
    UnknownClient,
    /// The secret does not match.
    #[error("wrong client secret")]
    WrongSecret,
    /// The client is registered for another method.
    #[error("client authentication method not allowed for this client")]
    MethodNotAllowed,
    /// A public client, and public clients are not allowed here.
    #[error("public clients are not allowed")]
    PublicClient,
    /// The client assertion failed validation.
    #[error("client assertion is invalid: {0}")]
    Assertion(ValidationError),
    /// The client assertion's `jti` was already used (threat X02).
    #[error("client assertion was replayed")]
    AssertionReplayed,
    /// The replay store could not answer (fail closed).
    #[error("replay store unavailable")]
    ReplayStore,
}

/// A failed client authentication: the reason, and whether the client used the
/// `Authorization` header (then the answer carries a `WWW-Authenticate` challenge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ClientAuthError {
    /// The reason.
    pub kind: ClientAuthErrorKind,
    /// Whether HTTP authentication was attempted.
    pub via_authorization_header: bool,
}

impl ClientAuthError {
    /// The OAuth error code: `invalid_request` for two methods at once, `invalid_client`
    /// otherwise, `temporarily_unavailable` when the replay store failed.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        match self.kind {
            ClientAuthErrorKind::MultipleMethods => OAuthErrorCode::InvalidRequest,
            ClientAuthErrorKind::ReplayStore => OAuthErrorCode::TemporarilyUnavailable,
            _ => OAuthErrorCode::InvalidClient,
        }
    }

    /// The HTTP status (401 for `invalid_client`, RFC 6749 §5.2).
    pub fn status(&self) -> StatusCode {
        self.oauth_error().status()
    }

    /// The `WWW-Authenticate` value when the client used the `Authorization` header.
    pub fn www_authenticate(&self, realm: &str) -> Option<HeaderValue> {
        (self.via_authorization_header && self.oauth_error() == OAuthErrorCode::InvalidClient).then(
            || {
                let realm: String = realm
                    .chars()
                    .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
                    .collect();
                HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"oauth\""))
            },
        )
    }

    /// A stable reason code for audit logs.
    pub fn reason_code(&self) -> &'static str {
        match self.kind {
            ClientAuthErrorKind::MultipleMethods => "multiple_auth_methods",
            ClientAuthErrorKind::Missing => "no_client_auth",
            ClientAuthErrorKind::Malformed => "malformed_client_auth",
            ClientAuthErrorKind::UnknownClient => "unknown_client",
            ClientAuthErrorKind::WrongSecret => "wrong_client_secret",
            ClientAuthErrorKind::MethodNotAllowed => "auth_method_not_allowed",
            ClientAuthErrorKind::PublicClient => "public_client_refused",
            ClientAuthErrorKind::Assertion(_) => "bad_client_assertion",
            ClientAuthErrorKind::AssertionReplayed => "client_assertion_replayed",
            ClientAuthErrorKind::ReplayStore => "replay_store_unavailable",
        }
    }
}

fn form_decode(s: &str) -> Option<String> {
    FormBody::parse(format!("v={s}").as_bytes())
        .ok()
        .map(|f| f.get("v").unwrap_or_default().to_owned())
}

impl PresentedCredentials {
    /// Takes the credentials from a request, enforcing one method. The Basic user and password
    /// are form-urldecoded after base64 (RFC 6749 §2.3.1).
    pub fn from_request(headers: &HeaderMap, form: &FormBody) -> Result<Self, ClientAuthError> {
        let via_header = headers.contains_key(AUTHORIZATION);
        let fail = |kind| ClientAuthError {
            kind,
            via_authorization_header: via_header,
        };
        let methods = usize::from(via_header)
            + usize::from(form.contains("client_secret"))
            + usize::from(form.contains("client_assertion"));
        if methods > 1 {
            return Err(fail(ClientAuthErrorKind::MultipleMethods));
        }
        let body_client_id = form
            .get("client_id")
            .map(|id| ClientId::new(id).map_err(|_| fail(ClientAuthErrorKind::Malformed)))
            .transpose()?;
        if via_header {
            let (client_id, secret) =
                parse_basic(headers).ok_or(fail(ClientAuthErrorKind::Malformed))?;
            if body_client_id.is_some_and(|id| id != client_id) {
                return Err(fail(ClientAuthErrorKind::Malformed));
            }
            return Ok(Self::Basic { client_id, secret });
        }
        if let Some(assertion) = form.get("client_assertion") {
            if form.get("client_assertion_type") != Some(wire::CLIENT_ASSERTION_TYPE_JWT_BEARER) {
                return Err(fail(ClientAuthErrorKind::Malformed));
            }
            return Ok(Self::Assertion {
                assertion: ClientAssertion::new(assertion),
                client_id: body_client_id,
            });
        }
        let client_id = body_client_id.ok_or(fail(ClientAuthErrorKind::Missing))?;
        Ok(match form.get("client_secret") {
            Some(secret) => Self::Post {
                client_id,
                secret: ClientSecret::new(secret),
            },
            None => Self::None { client_id },
        })
    }

    /// The method used.
    pub fn method(&self) -> ClientAuthMethod {
        match self {
            Self::Basic { .. } => ClientAuthMethod::ClientSecretBasic,
            Self::Post { .. } => ClientAuthMethod::ClientSecretPost,
            Self::Assertion { .. } => ClientAuthMethod::PrivateKeyJwt,
            Self::None { .. } => ClientAuthMethod::None,
        }
    }
}

fn parse_basic(headers: &HeaderMap) -> Option<(ClientId, ClientSecret)> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = ClientId::new(form_decode(id)?).ok()?;
    let secret = form_decode(secret)?;
    (!secret.is_empty()).then(|| (id, ClientSecret::new(secret)))
}

/// Checks a presented secret against what is stored.
pub trait SecretCheck: fmt::Debug + Send + Sync {
    /// Whether `presented` is the client's secret. Must run in constant time in the secret.
    fn matches(&self, presented: &ClientSecret) -> bool;
}

/// A SHA-256 hash of a client secret, compared in constant time. Fit for the high-entropy
/// secrets a server generates; for human-chosen secrets implement [`SecretCheck`] with a
/// password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

impl SecretHash {
    /// The hash of `secret`.
    pub fn of(secret: &ClientSecret) -> Self {
        Self(Sha256::digest(secret.secret().as_bytes()).into())
    }

    /// A stored hash (32 bytes).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl SecretCheck for SecretHash {
    fn matches(&self, presented: &ClientSecret) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.secret().as_bytes()).into();
        presented.ct_eq(&self.0).into()
    }
}

/// How a registered client authenticates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RegisteredCredential {
    /// A shared secret, by Basic or by POST.
    Secret(Arc<dyn SecretCheck>),
    /// `private_key_jwt` with keys from this source.
    PrivateKeyJwt(Arc<dyn KeySource>),
    /// A public client (no authentication).
    Public,
}

/// A client known to the server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegisteredClient {
    /// The client id.
    pub client_id: ClientId,
    /// How it authenticates.
    pub credential: RegisteredCredential,
    /// Methods allowed for a secret client (default: both Basic and POST).
    pub secret_methods: Vec<ClientAuthMethod>,
}

impl RegisteredClient {
    /// A confidential client with a secret (stored as its SHA-256 hash).
    pub fn with_secret(client_id: ClientId, secret: &ClientSecret) -> Self {
        Self::with_secret_check(client_id, Arc::new(SecretHash::of(secret)))
    }

    /// A confidential client whose secret is checked by the host.
    pub fn with_secret_check(client_id: ClientId, check: Arc<dyn SecretCheck>) -> Self {
        Self {
            client_id,
            credential: RegisteredCredential::Secret(check),
            secret_methods: vec![
                ClientAuthMethod::ClientSecretBasic,
                ClientAuthMethod::ClientSecretPost,
            ],
        }
    }

    /// A client that authenticates with `private_key_jwt`.
    pub fn with_private_key_jwt(client_id: ClientId, keys: Arc<dyn KeySource>) -> Self {
        Self {
            client_id,
            credential: RegisteredCredential::PrivateKeyJwt(keys),
            secret_methods: Vec::new(),
        }
    }

    /// A public client.
    pub fn public(client_id: ClientId) -> Self {
        Self {
            client_id,
            credential: RegisteredCredential::Public,
            secret_methods: Vec::new(),
        }
    }

    /// Restricts a secret client to these methods.
    pub fn only_methods(mut self, methods: &[ClientAuthMethod]) -> Self {
        self.secret_methods = methods.to_vec();
        self
    }
}

/// Where the server looks clients up.
pub trait ClientRegistry: fmt::Debug + Send + Sync {
    /// The client with this id.
    fn client<'a>(
        &'a self,
        client_id: &'a ClientId,
    ) -> BoxFuture<'a, Option<Arc<RegisteredClient>>>;
}

/// A fixed set of clients.
#[derive(Debug, Clone, Default)]
pub struct StaticClientRegistry {
    clients: HashMap<ClientId, Arc<RegisteredClient>>,
}

impl StaticClientRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a client.
    pub fn with(mut self, client: RegisteredClient) -> Self {
        self.clients
            .insert(client.client_id.clone(), Arc::new(client));
        self
    }
}

impl ClientRegistry for StaticClientRegistry {
    fn client<'a>(
        &'a self,
        client_id: &'a ClientId,
    ) -> BoxFuture<'a, Option<Arc<RegisteredClient>>> {
        Box::pin(std::future::ready(self.clients.get(client_id).cloned()))
    }
}

/// A client that proved who it is. Only [`ClientAuthenticator`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedClient {
    client_id: ClientId,
    method: ClientAuthMethod,
}

impl AuthenticatedClient {
    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The method it used.
    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }
}

/// Authenticates clients at one token endpoint.
#[derive(Debug, Clone)]
pub struct ClientAuthenticator {
    registry: Arc<dyn ClientRegistry>,
    issuer: Issuer,
    clock: SharedClock,
    replay: Arc<dyn ReplayCache>,
    algorithms: AlgorithmSet,
    audience_aliases: Vec<Audience>,
    allow_public: bool,
}

impl ClientAuthenticator {
    /// An authenticator for the server `issuer` (client assertions must name it as their only
    /// `aud`). Public clients are refused until [`Self::allow_public_clients`].
    pub fn new(
        registry: Arc<dyn ClientRegistry>,
        issuer: Issuer,
        clock: SharedClock,
        replay: Arc<dyn ReplayCache>,
    ) -> Self {
        Self {
            registry,
            issuer,
            clock,
            replay,
            algorithms: AlgorithmSet::all(),
            audience_aliases: Vec::new(),
            allow_public: false,
        }
    }

    /// Lets registered public clients through without authentication.
    pub fn allow_public_clients(mut self) -> Self {
        self.allow_public = true;
        self
    }

    /// Algorithms accepted for client assertions (default: all supported).
    pub fn with_assertion_algorithms(mut self, algorithms: AlgorithmSet) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Also accepts this exact `aud` in client assertions (for example the token endpoint URL,
    /// for clients that predate draft-ietf-oauth-rfc7523bis). Off by default.
    pub fn with_assertion_audience_alias(mut self, alias: Audience) -> Self {
        self.audience_aliases.push(alias);
        self
    }

    /// The issuer this authenticator serves.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Authenticates the client of a token request.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        form: &FormBody,
    ) -> Result<AuthenticatedClient, ClientAuthError> {
        let credentials = PresentedCredentials::from_request(headers, form)?;
        let via_header = matches!(credentials, PresentedCredentials::Basic { .. });
        let fail = |kind| ClientAuthError {
            kind,
            via_authorization_header: via_header,
        };
        let method = credentials.method();
        match credentials {
            PresentedCredentials::Basic { client_id, secret }
            | PresentedCredentials::Post { client_id, secret } => {
                let client = self
                    .registry
                    .client(&client_id)
                    .await
                    .ok_or(fail(ClientAuthErrorKind::UnknownClient))?;
                let RegisteredCredential::Secret(check) = &client.credential else {
                    return Err(fail(ClientAuthErrorKind::MethodNotAllowed));
                };
                if !check.matches(&secret) {
                    return Err(fail(ClientAuthErrorKind::WrongSecret));
                }
                if !client.secret_methods.contains(&method) {
                    return Err(fail(ClientAuthErrorKind::MethodNotAllowed));
                }
                Ok(AuthenticatedClient { client_id, method })
            }
            PresentedCredentials::Assertion {
                assertion,
                client_id,
            } => self
                .authenticate_assertion(&assertion, client_id)
                .await
                .map_err(fail),
            PresentedCredentials::None { client_id } => {
                let client = self
                    .registry
                    .client(&client_id)
                    .await
                    .ok_or(fail(ClientAuthErrorKind::UnknownClient))?;
                match client.credential {
                    RegisteredCredential::Public if self.allow_public => {
                        Ok(AuthenticatedClient { client_id, method })
                    }
                    RegisteredCredential::Public => Err(fail(ClientAuthErrorKind::PublicClient)),
                    _ => Err(fail(ClientAuthErrorKind::MethodNotAllowed)),
                }
            }
        }
    }

    async fn authenticate_assertion(
        &self,
        assertion: &ClientAssertion,
        body_client_id: Option<ClientId>,
    ) -> Result<AuthenticatedClient, ClientAuthErrorKind> {
        // The client is named by the body, or else by the assertion's (unverified) `iss`,
        // which then must verify under that client's own keys.
        let client_id = match body_client_id {
            Some(id) => id,
            None => unverified_issuer(assertion).ok_or(ClientAuthErrorKind::Malformed)?,
        };
        let client = self
            .registry
            .client(&client_id)
            .await
            .ok_or(ClientAuthErrorKind::UnknownClient)?;
        let RegisteredCredential::PrivateKeyJwt(keys) = &client.credential else {
            return Err(ClientAuthErrorKind::MethodNotAllowed);
        };
        let issuer = Issuer::new(client_id.as_str()).map_err(|_| ClientAuthErrorKind::Malformed)?;
        let mut validator = ClientAssertionValidator::new(
            TrustedIssuers::new().with(issuer, keys.clone()),
            self.issuer.to_audience(),
            self.algorithms,
            self.clock.clone(),
        );
        for alias in &self.audience_aliases {
            validator = validator.with_audience_alias(alias.clone());
        }
        let verified = validator
            .validate_async(assertion.secret())
            .await
            .map_err(ClientAuthErrorKind::Assertion)?;
        let claims = verified.claims();
        let until = claims
            .exp
            .unix()
            .saturating_add(crate::validate::DEFAULT_LEEWAY.as_secs() as i64);
        match self
            .replay
            .record(
                ReplayKey::new(client_id.as_str(), claims.jti.as_str()),
                client_id.as_str(),
                until,
            )
            .await
        {
            Ok(Replay::First) => Ok(AuthenticatedClient {
                client_id,
                method: ClientAuthMethod::PrivateKeyJwt,
            }),
            Ok(Replay::Seen { .. }) => Err(ClientAuthErrorKind::AssertionReplayed),
            Err(_) => Err(ClientAuthErrorKind::ReplayStore),
        }
    }
}

fn unverified_issuer(assertion: &ClientAssertion) -> Option<ClientId> {
    let jws =
        crate::jose::UnverifiedJws::parse(assertion.secret(), crate::jose::DEFAULT_MAX_TOKEN_BYTES)
            .ok()?;
    let claims = jws.unverified_claims().ok()?;
    ClientId::new(claims.get("iss")?.as_str()?).ok()
}
