//! Client authentication at a token endpoint, chosen per endpoint and never negotiated: the
//! IdP and the resource authorization server each get their own [`ClientCredentials`].
//!
//! - `client_secret_basic`: id and secret form-urlencoded, then joined by `:` and base64
//!   encoded (RFC 6749 §2.3.1). `gw client` / `s3:cr3t` becomes `Basic Z3crY2xpZW50OnMzJTNBY3IzdA==`.
//! - `client_secret_post`: `client_id` and `client_secret` in the form.
//! - `private_key_jwt`: a fresh signed assertion per request (RFC 7523 §2.2), `aud` = the
//!   server's issuer identifier, a new random `jti` each time ([`PrivateKeyJwt`]); or any
//!   external signer through [`ClientAssertionProvider`].
//! - `none`: a public client sends only `client_id`. Use it only where the deployment really
//!   registers public clients (ID-JAG -04 §9.1 says the profile SHOULD be confidential-only).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use idjag_core::{
    BoxFuture, ClientAssertion, ClientAssertionClaims, ClientId, ClientSecret, Issuer, Jti,
    NumericDate, SharedClock, SigningKey, wire,
};

use crate::error::{ClientError, InputError, Stage};
use crate::form::Form;

/// Why an external signer could not make an assertion. Carries nothing from the signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client assertion could not be created")]
#[non_exhaustive]
pub struct AssertionError;

/// Makes a fresh client assertion right before each token request, so keys can stay in a KMS
/// or an HSM. `iss` and `sub` must be `client_id`, `aud` the server's issuer identifier, with
/// a short lifetime and a fresh `jti`.
///
/// The same shape as rmcp's `EmaClientAssertionProvider`, so one implementation can serve
/// both.
pub trait ClientAssertionProvider: fmt::Debug + Send + Sync {
    /// An assertion from `client_id` for the server `audience`.
    fn create_assertion<'a>(
        &'a self,
        client_id: &'a ClientId,
        audience: &'a Issuer,
    ) -> BoxFuture<'a, Result<ClientAssertion, AssertionError>>;
}

/// Default lifetime of a `private_key_jwt` assertion: 60 s.
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// A `private_key_jwt` signer (RFC 7523 §2.2): `iss` = `sub` = the client id, `aud` = the
/// authorization server's issuer identifier (rfc7523bis: the issuer, never the token endpoint
/// URL), a random 128-bit `jti`, `iat` now and `exp` after the lifetime (default 60 s).
///
/// The header `typ` is `JWT` by default, which every server accepts; [`Self::with_explicit_typ`]
/// switches to `client-authentication+jwt` (rfc7523bis explicit typing).
///
/// ```
/// use idjag_client::auth::PrivateKeyJwt;
/// use idjag_core::{Algorithm, ClientId, Issuer, SigningKey, TestClock};
/// let key = SigningKey::generate(Algorithm::Es256).unwrap().with_thumbprint_kid();
/// let signer = PrivateKeyJwt::new(key, TestClock::at_unix(1_700_000_000).shared());
/// let assertion = signer
///     .sign(&ClientId::new("agent").unwrap(), &Issuer::new("https://as.example").unwrap())
///     .unwrap();
/// assert_eq!(assertion.secret().split('.').count(), 3);
/// ```
#[derive(Clone)]
pub struct PrivateKeyJwt {
    key: SigningKey,
    clock: SharedClock,
    lifetime: Duration,
    typ: &'static str,
}

impl fmt::Debug for PrivateKeyJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyJwt")
            .field("key", &self.key)
            .field("lifetime", &self.lifetime)
            .field("typ", &self.typ)
            .finish()
    }
}

impl PrivateKeyJwt {
    /// A signer with `key`, reading time from `clock`.
    pub fn new(key: SigningKey, clock: SharedClock) -> Self {
        Self {
            key,
            clock,
            lifetime: DEFAULT_ASSERTION_LIFETIME,
            typ: wire::TYP_JWT,
        }
    }

    /// Sets the assertion lifetime (1 s to 10 min).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Result<Self, InputError> {
        if lifetime < Duration::from_secs(1) || lifetime > Duration::from_secs(600) {
            return Err(InputError::Config {
                what: "assertion lifetime",
            });
        }
        self.lifetime = lifetime;
        Ok(self)
    }

    /// Uses `typ: client-authentication+jwt` (rfc7523bis) instead of `JWT`.
    pub fn with_explicit_typ(mut self) -> Self {
        self.typ = wire::TYP_CLIENT_AUTHENTICATION;
        self
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a fresh assertion from `client_id` for the server `audience`.
    pub fn sign(
        &self,
        client_id: &ClientId,
        audience: &Issuer,
    ) -> Result<ClientAssertion, AssertionError> {
        let now = self.clock.now_unix();
        let lifetime = i64::try_from(self.lifetime.as_secs()).map_err(|_| AssertionError)?;
        let iat = NumericDate::from_unix(now).ok_or(AssertionError)?;
        let exp = iat.plus(lifetime).ok_or(AssertionError)?;
        let iss = Issuer::new(client_id.as_str()).map_err(|_| AssertionError)?;
        let claims =
            ClientAssertionClaims::new(iss, audience.to_audience(), random_jti()?, iat, exp);
        self.key
            .sign_jwt(Some(self.typ), &claims)
            .map(|jwt| jwt.into_client_assertion())
            .map_err(|_| AssertionError)
    }
}

impl ClientAssertionProvider for PrivateKeyJwt {
    fn create_assertion<'a>(
        &'a self,
        client_id: &'a ClientId,
        audience: &'a Issuer,
    ) -> BoxFuture<'a, Result<ClientAssertion, AssertionError>> {
        Box::pin(std::future::ready(self.sign(client_id, audience)))
    }
}

/// A fresh random `jti` from the crypto backend: 128 bits, base64url.
pub(crate) fn random_jti() -> Result<Jti, AssertionError> {
    idjag_core::random::jti().map_err(|_| AssertionError)
}

/// How the client authenticates at one token endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A public client (`none`): only `client_id` is sent.
    None,
    /// `client_secret_basic`.
    SecretBasic(ClientSecret),
    /// `client_secret_post`.
    SecretPost(ClientSecret),
    /// `private_key_jwt` (or any JWT client assertion) from a provider.
    Assertion(Arc<dyn ClientAssertionProvider>),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::SecretBasic(secret) => f.debug_tuple("SecretBasic").field(secret).finish(),
            Self::SecretPost(secret) => f.debug_tuple("SecretPost").field(secret).finish(),
            Self::Assertion(provider) => f.debug_tuple("Assertion").field(provider).finish(),
        }
    }
}

impl ClientAuth {
    /// The RFC 7591 method name (`client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt`, `none`).
    pub fn method(&self) -> &'static str {
        match self {
            Self::None => wire::auth_method::NONE,
            Self::SecretBasic(_) => wire::auth_method::CLIENT_SECRET_BASIC,
            Self::SecretPost(_) => wire::auth_method::CLIENT_SECRET_POST,
            Self::Assertion(_) => wire::auth_method::PRIVATE_KEY_JWT,
        }
    }
}

/// A client registration at one token endpoint: the client id there and how to authenticate.
///
/// A client usually has a different id at the IdP and at each resource authorization server
/// (ID-JAG -04 §5).
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    client_id: ClientId,
    auth: ClientAuth,
}

impl ClientCredentials {
    /// Credentials with an explicit method.
    pub fn new(client_id: ClientId, auth: ClientAuth) -> Result<Self, InputError> {
        if let ClientAuth::SecretBasic(secret) | ClientAuth::SecretPost(secret) = &auth
            && secret.is_empty()
        {
            return Err(InputError::Empty {
                what: "client secret",
            });
        }
        Ok(Self { client_id, auth })
    }

    /// `client_secret_basic`.
    pub fn secret_basic(client_id: ClientId, secret: ClientSecret) -> Result<Self, InputError> {
        Self::new(client_id, ClientAuth::SecretBasic(secret))
    }

    /// `client_secret_post`.
    pub fn secret_post(client_id: ClientId, secret: ClientSecret) -> Result<Self, InputError> {
        Self::new(client_id, ClientAuth::SecretPost(secret))
    }

    /// `private_key_jwt` with a local key.
    pub fn private_key_jwt(client_id: ClientId, signer: PrivateKeyJwt) -> Self {
        Self {
            client_id,
            auth: ClientAuth::Assertion(Arc::new(signer)),
        }
    }

    /// A JWT client assertion from an external provider.
    pub fn assertion(client_id: ClientId, provider: Arc<dyn ClientAssertionProvider>) -> Self {
        Self {
            client_id,
            auth: ClientAuth::Assertion(provider),
        }
    }

    /// A public client (`none`).
    pub fn public(client_id: ClientId) -> Self {
        Self {
            client_id,
            auth: ClientAuth::None,
        }
    }

    /// The client id at this server.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The authentication method.
    pub fn auth(&self) -> &ClientAuth {
        &self.auth
    }

    /// Adds this client's authentication to a request: one method only (threat C01).
    pub(crate) async fn apply(
        &self,
        audience: &Issuer,
        stage: Stage,
        form: &mut Form,
        headers: &mut http::HeaderMap,
    ) -> Result<(), ClientError> {
        match &self.auth {
            ClientAuth::SecretBasic(secret) => {
                headers.insert(
                    http::header::AUTHORIZATION,
                    basic_authorization(&self.client_id, secret)?,
                );
            }
            ClientAuth::SecretPost(secret) => {
                form.push("client_id", self.client_id.as_str());
                form.push("client_secret", secret.secret());
            }
            ClientAuth::None => form.push("client_id", self.client_id.as_str()),
            ClientAuth::Assertion(provider) => {
                let assertion = provider
                    .create_assertion(&self.client_id, audience)
                    .await
                    .map_err(|_| ClientError::Signing {
                        stage,
                        what: "client assertion",
                    })?;
                if assertion.is_empty() {
                    return Err(ClientError::Signing {
                        stage,
                        what: "client assertion",
                    });
                }
                form.push("client_id", self.client_id.as_str());
                form.push(
                    "client_assertion_type",
                    wire::CLIENT_ASSERTION_TYPE_JWT_BEARER,
                );
                form.push("client_assertion", assertion.secret());
            }
        }
        Ok(())
    }
}

/// The identity of one registration, for cache keys: the client id, the method and which
/// credential (the SHA-256 of a secret, or the very assertion provider). Two registrations at
/// one server never share a key, even with the same client id. Never printed.
#[derive(Clone)]
pub(crate) struct RegistrationKey {
    client_id: ClientId,
    credential: CredentialKey,
}

#[derive(Clone)]
enum CredentialKey {
    None,
    Secret(&'static str, [u8; 32]),
    /// Held, so its address cannot be reused by another provider while the key lives.
    Assertion(Arc<dyn ClientAssertionProvider>),
}

impl CredentialKey {
    fn address(&self) -> Option<*const ()> {
        match self {
            Self::Assertion(provider) => Some(Arc::as_ptr(provider).cast::<()>()),
            _ => None,
        }
    }
}

impl PartialEq for CredentialKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::None, Self::None) => true,
            (Self::Secret(m, a), Self::Secret(n, b)) => m == n && a == b,
            (Self::Assertion(_), Self::Assertion(_)) => self.address() == other.address(),
            _ => false,
        }
    }
}

impl Eq for CredentialKey {}

impl std::hash::Hash for CredentialKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::None => {}
            Self::Secret(method, digest) => (method, digest).hash(state),
            Self::Assertion(_) => self.address().hash(state),
        }
    }
}

impl PartialEq for RegistrationKey {
    fn eq(&self, other: &Self) -> bool {
        self.client_id == other.client_id && self.credential == other.credential
    }
}

impl Eq for RegistrationKey {}

impl std::hash::Hash for RegistrationKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.client_id.hash(state);
        self.credential.hash(state);
    }
}

impl fmt::Debug for RegistrationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match &self.credential {
            CredentialKey::None => wire::auth_method::NONE,
            CredentialKey::Secret(method, _) => method,
            CredentialKey::Assertion(_) => wire::auth_method::PRIVATE_KEY_JWT,
        };
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("method", &method)
            .finish()
    }
}

impl ClientCredentials {
    /// The cache identity of this registration.
    pub(crate) fn registration_key(&self) -> RegistrationKey {
        use sha2::{Digest, Sha256};
        let secret = |method: &'static str, secret: &ClientSecret| {
            let mut hasher = Sha256::new();
            hasher.update(b"idjag-client registration secret\0");
            hasher.update(secret.secret().as_bytes());
            CredentialKey::Secret(method, hasher.finalize().into())
        };
        let credential = match &self.auth {
            ClientAuth::None => CredentialKey::None,
            ClientAuth::SecretBasic(s) => secret(wire::auth_method::CLIENT_SECRET_BASIC, s),
            ClientAuth::SecretPost(s) => secret(wire::auth_method::CLIENT_SECRET_POST, s),
            ClientAuth::Assertion(provider) => CredentialKey::Assertion(provider.clone()),
        };
        RegistrationKey {
            client_id: self.client_id.clone(),
            credential,
        }
    }
}

/// The `Authorization: Basic` value of RFC 6749 §2.3.1: id and secret are each
/// form-urlencoded, joined by `:`, then base64 encoded. The value is marked sensitive.
///
/// ```
/// use idjag_client::auth::basic_authorization;
/// use idjag_core::{ClientId, ClientSecret};
/// let value = basic_authorization(&ClientId::new("gw client").unwrap(), &ClientSecret::new("s3:cr3t")).unwrap();
/// assert_eq!(value.to_str().unwrap(), "Basic Z3crY2xpZW50OnMzJTNBY3IzdA==");
/// assert!(value.is_sensitive());
/// ```
pub fn basic_authorization(
    client_id: &ClientId,
    secret: &ClientSecret,
) -> Result<http::HeaderValue, InputError> {
    let id: String = url::form_urlencoded::byte_serialize(client_id.as_str().as_bytes()).collect();
    let secret: String = url::form_urlencoded::byte_serialize(secret.secret().as_bytes()).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let mut value = http::HeaderValue::try_from(format!("Basic {encoded}")).map_err(|_| {
        InputError::MalformedToken {
            what: "client secret",
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn form_decode(value: &str) -> String {
        url::form_urlencoded::parse(format!("v={value}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    proptest! {
        /// RFC 6749 §2.3.1: the first `:` of the decoded Basic value separates the
        /// form-encoded id from the form-encoded secret, whatever characters they hold.
        #[test]
        fn basic_credentials_round_trip(id in "\\PC{1,30}", secret in "\\PC{1,30}") {
            let value = basic_authorization(&ClientId::new(id.clone()).unwrap(), &ClientSecret::new(secret.clone())).unwrap();
            let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap().to_owned();
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
            let decoded = String::from_utf8(decoded).unwrap();
            let (got_id, got_secret) = decoded.split_once(':').unwrap();
            prop_assert_eq!(form_decode(got_id), id);
            prop_assert_eq!(form_decode(got_secret), secret);
        }
    }

    #[test]
    fn jtis_are_fresh() {
        let a = random_jti().unwrap();
        let b = random_jti().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
    }

    #[test]
    fn assertion_lifetime_is_bounded() {
        let key = SigningKey::generate(idjag_core::Algorithm::Es256).unwrap();
        let signer =
            PrivateKeyJwt::new(key, idjag_core::TestClock::at_unix(1_700_000_000).shared());
        assert!(
            signer
                .clone()
                .with_lifetime(Duration::from_secs(0))
                .is_err()
        );
        assert!(
            signer
                .clone()
                .with_lifetime(Duration::from_secs(601))
                .is_err()
        );
        let explicit = signer
            .with_lifetime(Duration::from_secs(120))
            .unwrap()
            .with_explicit_typ();
        let assertion = explicit
            .sign(
                &ClientId::new("c").unwrap(),
                &Issuer::new("https://as.example").unwrap(),
            )
            .unwrap();
        let jws = idjag_core::jose::UnverifiedJws::parse(assertion.secret(), 4096).unwrap();
        assert_eq!(
            jws.unverified_header().typ(),
            Some(wire::TYP_CLIENT_AUTHENTICATION)
        );
        let claims = jws.unverified_claims().unwrap();
        assert_eq!(claims["aud"], "https://as.example");
        assert_eq!(claims["exp"], 1_700_000_120);
    }
}
