//! The user's sign-in at the enterprise IdP: the gateway as an OIDC confidential client
//! (its `[idp.client]` registration), authorization code with PKCE (S256), `state` and
//! `nonce` (OpenID Connect Core §3.1; requirement EMA-15). The endpoints come from the
//! configuration or the IdP's metadata (whose `issuer` must be the configured one). The
//! token response is read with a size limit; its ID token is then checked by the caller
//! with the inbound validator (issuer, signature, `aud` = the gateway's client id, time) and
//! against the `nonce`.

use std::fmt;

use idjag_client::auth::{ClientAuth, ClientCredentials, basic_authorization};
use idjag_client::discovery::{Discovery, IdpMetadataLocation};
use idjag_client::http::SharedHttpClient;
use idjag_core::{Issuer, ScopeSet, wire};
use serde::Deserialize;
use tokio::sync::OnceCell;
use url::Url;

/// Largest IdP token response read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// Why the sign-in at the IdP failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdpError {
    /// The IdP's metadata or token endpoint could not be used.
    #[error("the identity provider is unavailable")]
    Unavailable,
    /// The IdP refused the code (its OAuth error code).
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The answer has no ID token, or is not JSON.
    #[error("the identity provider's answer is malformed")]
    Malformed,
}

/// What the IdP's token endpoint gave for the code.
pub struct IdpTokens {
    /// The ID token.
    pub id_token: String,
    /// The refresh token, if any.
    pub refresh_token: Option<String>,
}

impl fmt::Debug for IdpTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdpTokens([redacted])")
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
}

/// The gateway as an OIDC client of the IdP.
pub struct IdpLogin {
    issuer: Issuer,
    credentials: ClientCredentials,
    authorization_endpoint: Option<Url>,
    token_endpoint: Option<Url>,
    redirect_uri: Url,
    scope: ScopeSet,
    http: SharedHttpClient,
    endpoints: OnceCell<(Url, Url)>,
}

impl fmt::Debug for IdpLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpLogin")
            .field("issuer", &self.issuer)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

impl IdpLogin {
    /// The client `credentials` at the IdP `issuer`, coming back to `redirect_uri`.
    pub fn new(
        issuer: Issuer,
        credentials: ClientCredentials,
        authorization_endpoint: Option<Url>,
        token_endpoint: Option<Url>,
        redirect_uri: Url,
        scope: ScopeSet,
        http: SharedHttpClient,
    ) -> Self {
        Self {
            issuer,
            credentials,
            authorization_endpoint,
            token_endpoint,
            redirect_uri,
            scope,
            http,
            endpoints: OnceCell::new(),
        }
    }

    /// The authorization and token endpoints (configured, else from the IdP's metadata).
    async fn endpoints(&self) -> Result<&(Url, Url), IdpError> {
        self.endpoints
            .get_or_try_init(|| async {
                if let (Some(a), Some(t)) = (&self.authorization_endpoint, &self.token_endpoint) {
                    return Ok((a.clone(), t.clone()));
                }
                let metadata = Discovery::new(self.http.clone())
                    .identity_provider(&self.issuer, &IdpMetadataLocation::Issuer)
                    .await
                    .map_err(|_| IdpError::Unavailable)?;
                let pick = |configured: &Option<Url>, found: Option<&String>| {
                    configured.clone().map_or_else(
                        || {
                            found
                                .and_then(|u| idjag_core::endpoint::check_endpoint(u).ok())
                                .ok_or(IdpError::Unavailable)
                        },
                        Ok,
                    )
                };
                Ok((
                    pick(
                        &self.authorization_endpoint,
                        metadata.authorization_endpoint.as_ref(),
                    )?,
                    pick(&self.token_endpoint, metadata.token_endpoint.as_ref())?,
                ))
            })
            .await
    }

    /// Where to send the user's browser.
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<Url, IdpError> {
        let (endpoint, _) = self.endpoints().await?;
        let mut url = endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.credentials.client_id().as_str())
            .append_pair("redirect_uri", self.redirect_uri.as_str())
            .append_pair("scope", &self.scope.to_string())
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url)
    }

    /// Redeems the IdP's code (with the PKCE verifier) for the user's tokens.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<IdpTokens, IdpError> {
        let (_, token_endpoint) = self.endpoints().await?;
        // Pairs first, encoded at the end (the encoder is not `Send` across the awaits).
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", wire::GRANT_TYPE_AUTHORIZATION_CODE.to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", self.redirect_uri.as_str().to_owned()),
            ("code_verifier", verifier.to_owned()),
        ];
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(token_endpoint.as_str())
            .header(http::header::CONTENT_TYPE, wire::MEDIA_TYPE_FORM)
            .header(http::header::ACCEPT, wire::MEDIA_TYPE_JSON);
        let client_id = self.credentials.client_id();
        match self.credentials.auth() {
            ClientAuth::SecretBasic(secret) => {
                let value =
                    basic_authorization(client_id, secret).map_err(|_| IdpError::Unavailable)?;
                request = request.header(http::header::AUTHORIZATION, value);
            }
            ClientAuth::SecretPost(secret) => {
                form.push(("client_id", client_id.as_str().to_owned()));
                form.push(("client_secret", secret.secret().to_owned()));
            }
            ClientAuth::Assertion(provider) => {
                let assertion = provider
                    .create_assertion(client_id, &self.issuer)
                    .await
                    .map_err(|_| IdpError::Unavailable)?;
                form.push(("client_id", client_id.as_str().to_owned()));
                form.push((
                    "client_assertion_type",
                    wire::CLIENT_ASSERTION_TYPE_JWT_BEARER.to_owned(),
                ));
                form.push(("client_assertion", assertion.secret().to_owned()));
            }
            _ => form.push(("client_id", client_id.as_str().to_owned())),
        }
        let body = zeroize::Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish(),
        );
        drop(form);
        let request = request
            .body(body.as_bytes().to_vec())
            .map_err(|_| IdpError::Unavailable)?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|_| IdpError::Unavailable)?;
        if response.body().len() > MAX_TOKEN_RESPONSE_BYTES {
            return Err(IdpError::Malformed);
        }
        if !response.status().is_success() {
            if response.status().is_client_error()
                && let Ok(answer) = serde_json::from_slice::<ErrorAnswer>(response.body())
            {
                let code: String = answer
                    .error
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(64)
                    .collect();
                return Err(IdpError::Refused(code));
            }
            return Err(IdpError::Unavailable);
        }
        let answer: TokenAnswer =
            serde_json::from_slice(response.body()).map_err(|_| IdpError::Malformed)?;
        let id_token = answer.id_token.ok_or(IdpError::Malformed)?;
        Ok(IdpTokens {
            id_token,
            refresh_token: answer.refresh_token.filter(|t| !t.is_empty()),
        })
    }
}
