//! The two-leg client: the IdP it trusts, its HTTP client, clock and settings. The legs
//! themselves are in `exchange` (leg 1), `redeem` (leg 2 and both legs) and `renewal`.

use std::fmt;

use idjag_core::endpoint::check_endpoint_url;
use idjag_core::{SharedClock, SystemClock};

use crate::config::ClientConfig;
use crate::discovery::Discovery;
use crate::dpop::DpopKey;
use crate::error::{ClientError, InputError, Stage};
use crate::form::Form;
use crate::http::SharedHttpClient;
use crate::response::TokenFields;
use crate::target::{AccessRequest, IdentityProvider, ResourceAsTarget};
use crate::transport::{TokenCall, post_token};

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
        Ok(Self::with_http_client(idp, std::sync::Arc::new(http)))
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
        ras: &ResourceAsTarget,
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
        check::<crate::ReceivedIdJag>();
        check::<crate::AccessTokenGrant>();
        check::<crate::TokenProvider>();
        check::<ClientError>();
    }
}
