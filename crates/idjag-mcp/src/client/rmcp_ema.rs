//! Our client assertions for rmcp's own EMA helper (feature `auth-enterprise-managed`).
//!
//! rmcp's `EmaExchangeRequest` authenticates the client with a JWT assertion that an
//! [`EmaClientAssertionProvider`] makes right before each token request. [`RmcpAssertions`]
//! is that provider, backed by idjag's `private_key_jwt` signer
//! ([`idjag_client::auth::PrivateKeyJwt`]) or any
//! [`idjag_client::auth::ClientAssertionProvider`] (a KMS, an HSM): `iss` = `sub` = the client
//! id rmcp names, `aud` = the server's issuer, a fresh random `jti`, 60 s of lifetime.
//!
//! ```
//! use std::sync::Arc;
//! use idjag_client::auth::PrivateKeyJwt;
//! use idjag_core::{Algorithm, SigningKey, SystemClock};
//! use idjag_mcp::client::rmcp_ema::RmcpAssertions;
//! use rmcp::transport::auth::enterprise::{EmaAuthorizationServer, EmaClientAuthentication};
//!
//! let key = SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid();
//! let signer = PrivateKeyJwt::new(key, SystemClock::shared());
//! let resource_as = EmaAuthorizationServer::new(
//!     "https://auth.chat.example",
//!     "https://auth.chat.example/token",
//!     "f53f191f9311af35",
//! )
//! .with_client_authentication(EmaClientAuthentication::JwtAssertion(Arc::new(
//!     RmcpAssertions::private_key_jwt(signer),
//! )));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use idjag_client::auth::{ClientAssertionProvider, PrivateKeyJwt};
use idjag_core::{ClientId, Issuer};
use rmcp::transport::auth::enterprise::{
    EmaAuthorizationServer, EmaClientAssertion, EmaClientAssertionProvider,
};

/// Why no assertion could be made for rmcp. Says nothing about the key or the claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RmcpAssertionError {
    /// rmcp's client id or issuer is not a valid identifier.
    #[error("the authorization server's issuer or client id is not a valid identifier")]
    Identifier,
    /// The signer failed.
    #[error("the client assertion could not be signed")]
    Signing,
}

/// An rmcp [`EmaClientAssertionProvider`] backed by an idjag assertion signer.
#[derive(Clone)]
pub struct RmcpAssertions(Arc<dyn ClientAssertionProvider>);

impl fmt::Debug for RmcpAssertions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RmcpAssertions").field(&self.0).finish()
    }
}

impl RmcpAssertions {
    /// Assertions from any idjag provider.
    pub fn new(provider: Arc<dyn ClientAssertionProvider>) -> Self {
        Self(provider)
    }

    /// `private_key_jwt` with a local key.
    pub fn private_key_jwt(signer: PrivateKeyJwt) -> Self {
        Self(Arc::new(signer))
    }

    /// A fresh assertion from rmcp's `client_id` for its server's `issuer`.
    pub async fn assertion_for(
        &self,
        server: &EmaAuthorizationServer,
    ) -> Result<EmaClientAssertion, RmcpAssertionError> {
        let client_id =
            ClientId::new(server.client_id.as_str()).map_err(|_| RmcpAssertionError::Identifier)?;
        let audience =
            Issuer::new(server.issuer.as_str()).map_err(|_| RmcpAssertionError::Identifier)?;
        let assertion = self
            .0
            .create_assertion(&client_id, &audience)
            .await
            .map_err(|_| RmcpAssertionError::Signing)?;
        Ok(EmaClientAssertion::new(assertion.secret().to_owned()))
    }
}

#[async_trait::async_trait]
impl EmaClientAssertionProvider for RmcpAssertions {
    async fn create_assertion(
        &self,
        server: &EmaAuthorizationServer,
    ) -> Result<EmaClientAssertion, Box<dyn StdError + Send + Sync>> {
        Ok(self.assertion_for(server).await?)
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::jose::UnverifiedJws;
    use idjag_core::{
        Algorithm, AlgorithmSet, Audience, ClientAssertionValidator, KeySet, TestClock,
        TrustedIssuers, wire,
    };

    use super::*;

    fn server() -> EmaAuthorizationServer {
        EmaAuthorizationServer::new(
            "https://auth.chat.example",
            "https://auth.chat.example/oauth2/token",
            "f53f191f9311af35",
        )
    }

    /// The assertion rmcp gets is what a resource authorization server's client
    /// authentication accepts: `iss` = `sub` = rmcp's client id, `aud` = the issuer (never the
    /// token endpoint), 60 s, a signature by our key.
    #[tokio::test]
    async fn rmcp_gets_a_private_key_jwt_for_its_server() {
        let clock = TestClock::at_unix(1_800_000_000);
        let key = idjag_core::SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_thumbprint_kid();
        let verifying = key.verifying_key().unwrap();
        let provider = RmcpAssertions::private_key_jwt(PrivateKeyJwt::new(key, clock.shared()));
        let assertion = provider.assertion_for(&server()).await.unwrap();
        let rendered = format!("{assertion:?}");
        assert!(!rendered.contains("ey"), "{rendered}");

        // rmcp keeps the value private; its form field is what the server sees. Re-sign the
        // same way and check the claims on the wire format through our own provider.
        let again = provider
            .0
            .create_assertion(
                &ClientId::new("f53f191f9311af35").unwrap(),
                &Issuer::new("https://auth.chat.example").unwrap(),
            )
            .await
            .unwrap();
        let jws = UnverifiedJws::parse(again.secret(), 8192).unwrap();
        let claims = jws.unverified_claims().unwrap();
        assert_eq!(claims["iss"], "f53f191f9311af35");
        assert_eq!(claims["sub"], "f53f191f9311af35");
        assert_eq!(claims["aud"], "https://auth.chat.example");
        assert_eq!(claims["exp"], 1_800_000_060);
        assert_eq!(jws.unverified_header().typ(), Some(wire::TYP_JWT));

        let validator = ClientAssertionValidator::new(
            TrustedIssuers::new().with(
                Issuer::new("f53f191f9311af35").unwrap(),
                Arc::new(KeySet::new([verifying]).unwrap()),
            ),
            Audience::new("https://auth.chat.example").unwrap(),
            AlgorithmSet::from([Algorithm::Es256]),
            clock.shared(),
        );
        validator.validate(again.secret()).unwrap();
    }

    #[tokio::test]
    async fn each_request_gets_a_fresh_jti() {
        let clock = TestClock::at_unix(1_800_000_000);
        let key = idjag_core::SigningKey::generate(Algorithm::Es256).unwrap();
        let provider = RmcpAssertions::private_key_jwt(PrivateKeyJwt::new(key, clock.shared()));
        let id = ClientId::new("c").unwrap();
        let aud = Issuer::new("https://as.example").unwrap();
        let a = provider.0.create_assertion(&id, &aud).await.unwrap();
        let b = provider.0.create_assertion(&id, &aud).await.unwrap();
        let jti = |s: &str| {
            UnverifiedJws::parse(s, 8192)
                .unwrap()
                .unverified_claims()
                .unwrap()["jti"]
                .clone()
        };
        assert_ne!(jti(a.secret()), jti(b.secret()));
    }

    #[tokio::test]
    async fn an_unusable_server_identity_is_refused_before_signing() {
        let key = idjag_core::SigningKey::generate(Algorithm::Es256).unwrap();
        let provider = RmcpAssertions::private_key_jwt(PrivateKeyJwt::new(
            key,
            TestClock::at_unix(1_800_000_000).shared(),
        ));
        let bad = EmaAuthorizationServer::new("", "https://as.example/token", "c");
        assert_eq!(
            provider.assertion_for(&bad).await.unwrap_err(),
            RmcpAssertionError::Identifier
        );
        // Through rmcp's trait, the error is boxed and says nothing of the key.
        let boxed = EmaClientAssertionProvider::create_assertion(&provider, &bad)
            .await
            .unwrap_err();
        assert_eq!(
            boxed.to_string(),
            "the authorization server's issuer or client id is not a valid identifier"
        );
    }
}
