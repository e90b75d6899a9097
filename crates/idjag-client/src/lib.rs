//! # idjag-client
//!
//! The requesting app of the Identity Assertion JWT Authorization Grant (ID-JAG,
//! `draft-ietf-oauth-identity-assertion-authz-grant-04`) and of MCP Enterprise-Managed
//! Authorization: trade the user's ID token at the enterprise IdP for an ID-JAG (leg 1, RFC
//! 8693), redeem it at the resource authorization server for an access token (leg 2, RFC
//! 7523), and keep tokens cached and fresh.
//!
//! ```no_run
//! # use idjag_client::*; use idjag_core::*;
//! # async fn demo(id_token: IdToken) -> Result<(), Box<dyn std::error::Error>> {
//! let idp = IdentityProvider::new(Issuer::new("https://acme.idp.example")?, "https://acme.idp.example/oauth2/token", ClientCredentials::secret_basic(ClientId::new("agent")?, ClientSecret::new("idp-secret"))?)?;
//! let client = IdJagClient::new(idp)?;
//! let target = client.discovery().resource(&Resource::new("https://mcp.chat.example/mcp")?, None, None).await?;
//! let request = target.access_request(ClientCredentials::secret_basic(ClientId::new("f53f191f9311af35")?, ClientSecret::new("as-secret"))?)?;
//! let token = TokenProvider::new(client).access_token(&UserToken::id_token(id_token), &request).await?;
//! # let _ = token.authorization_header()?; Ok(()) }
//! ```
//!
//! ## Contents
//!
//! - [`IdJagClient`]: one IdP ([`IdentityProvider`]), leg 1 ([`IdJagClient::exchange`] →
//!   [`ReceivedIdJag`]), leg 2 ([`IdJagClient::redeem`] → [`AccessTokenGrant`]), both
//!   ([`IdJagClient::access_token`]), ID-token renewal and the SAML → refresh-token exchange
//!   ([`IdJagClient::renew_id_token`], [`IdJagClient::saml_to_refresh_token`]).
//! - [`AccessRequest`]: the [`ResourceAsTarget`], resources, scopes and
//!   authorization details to ask for. [`UserToken`]: the user's ID token, refresh token or
//!   SAML assertion.
//! - [`TokenProvider`]: the flow behind a cache keyed by (subject, IdP, resource AS,
//!   resources, scope), with single flight, renewal and the one forced refresh after a `401`.
//! - [`auth`]: `client_secret_basic`, `client_secret_post`, `private_key_jwt`
//!   ([`auth::PrivateKeyJwt`], or any [`auth::ClientAssertionProvider`]) and `none`, chosen
//!   per endpoint.
//! - [`discovery`]: `WWW-Authenticate` challenges, RFC 9728 protected resource metadata, RFC
//!   8414 / OIDC metadata with exact issuer match, the ID-JAG grant profile, IdP metadata with
//!   an explicit alias option.
//! - [`dpop`]: DPoP-bound ID-JAGs and access tokens.
//! - [`http`]: the HTTP seam ([`http::HttpClient`]) and its reqwest default.
//! - [`ClientError`]: typed failures with their [`Stage`] and OAuth code.
//! - [`compat`] (feature `oauth2`): conversions to the `oauth2` crate's newtypes.
//!
//! ## What is checked
//!
//! Before sending: endpoints are `https` (or `http` on loopback), the subject token is
//! well-formed, the IdP and the resource AS are different issuers, an ID-JAG goes only to the
//! server named in its `aud`, never after it expired (requirements EMA-09, TX-05).
//!
//! Leg 1 answer (requirements TX-15 to TX-17; threat C02): status 200, one JSON object without
//! duplicate members, `issued_token_type` the id-jag URN, `token_type` `N_A`, no
//! `refresh_token`; the ID-JAG a compact JWS (`alg` never `none`) with `typ`
//! `oauth-id-jag+jwt`, `iss` the IdP, a single `aud` equal to the resource AS issuer,
//! `client_id` our id there, `resource` and `scope` within the request, `scope` consistent
//! with the response's, `exp` ahead, `iat`/`nbf` not in the future, `cnf.jkt` equal to our
//! DPoP key when DPoP is on (threat C03). Its signature is verified too when the IdP's keys are
//! configured ([`IdentityProvider::with_id_jag_keys`]). Nothing reaches leg 2 otherwise.
//!
//! Leg 2 answer (requirements JB-17, JB-18): `token_type` `Bearer` (or `DPoP` with DPoP on), no
//! `refresh_token`, granted `scope` within the ID-JAG's and the request's.
//!
//! ## Decisions on open questions
//!
//! - **ID-JAG reuse** (decision D-01): per resource AS. Off by default (EMA's `jti` replay
//!   rejection); [`ResourceAsTarget::with_id_jag_reuse`] re-presents a valid
//!   ID-JAG, and a refusal (`invalid_grant`) is followed by one new exchange.
//! - **IdP error codes** (decision D-02): `access_denied`, `invalid_target` and `invalid_grant`
//!   from the IdP are policy denials ([`ClientError::PolicyDenied`]); `invalid_request` and
//!   the rest are [`ClientError::Rejected`]. `insufficient_user_authentication` is
//!   [`ClientError::StepUpRequired`] with its RFC 9470 `max_age` and `acr_values` (decision
//!   D-14).
//! - **`resource`** (decision D-03; requirement MCP-01): sent in leg 1 whenever the request names
//!   one (discovery always does) and, by default, in leg 2 too.
//! - **`scope` at leg 2** (decision D-05): not sent by default; the ID-JAG carries the grant.
//! - **`aud`** (decision D-06): exact match with the issuer we sent as `audience`.
//! - **`token_type` of leg 1**: exactly `N_A` by default, any case as an option
//!   ([`TokenTypeCheck::IgnoreCase`]).
//! - **`client_secret_basic`**: id and secret form-urlencoded before base64 (RFC 6749 §2.3.1).
//! - **`private_key_jwt`**: `aud` is the server's issuer, `jti` 128 random bits, lifetime 60 s,
//!   `typ` `JWT` (`client-authentication+jwt` as an option).
//! - **Public clients** (decision D-09): supported where configured explicitly
//!   ([`ClientCredentials::public`]).
//! - **DPoP grant type** (decision D-11): always `jwt-bearer` with a `DPoP` header, never
//!   `jwt-dpop`.
//! - **Grant profile** (decision D-12; requirement MD-12): an authorization server that lists
//!   profiles without ID-JAG, or grant types without jwt-bearer, is refused; a silent one is
//!   assumed to support it ([`discovery::ProfileAssumption`]).
//! - **IdP metadata** (decision D-13): an explicit list without the id-jag token type or the
//!   token-exchange grant is refused; silence is accepted by default.
//! - **`expires_in`**: an integer, or a string of digits (some servers send one).
//!
//! ## Security
//!
//! Secrets and tokens ([`idjag_core::ClientSecret`], [`idjag_core::IdJag`],
//! [`idjag_core::AccessToken`], ...) print as `[redacted]`; every type here that holds one has
//! a `Debug` that omits it, and errors carry codes and member names only. Log events (target
//! `idjag_client`, level `debug`) name issuers, client ids, statuses and the SHA-256 prefix of
//! a `jti`, never a token (requirements EMA-13, EMA-16). Redirects are never followed, so a token
//! or a secret never travels to a server other than the configured one; response bodies are capped;
//! a policy denial never falls back to another credential. The client checks the ID-JAG it
//! receives, but the resource authorization server is the one that must verify it.
//!
//! ## Requirements, decisions and threats
//!
//! These docs cite the project's [requirements checklist] ("requirement TX-08"), its
//! [decisions on open questions] ("decision D-07"), its [threat model] ("threat G16"), and
//! [the flow] ("redemption check 13", "IdP step 4", or a page anchor such as
//! `docs/flow.md#renewal`). The pages live in the repository's `docs/` folder and in the
//! `idjag` crate's `manual` module.
//!
//! [requirements checklist]: https://github.com/idjag/idjag/blob/main/docs/requirements.md
//! [decisions on open questions]: https://github.com/idjag/idjag/blob/main/docs/requirements.md#decisions
//! [threat model]: https://github.com/idjag/idjag/blob/main/docs/threat-model.md
//! [the flow]: https://github.com/idjag/idjag/blob/main/docs/flow.md
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod client;
#[cfg(feature = "oauth2")]
pub mod compat;
mod config;
pub mod discovery;
pub mod dpop;
mod error;
mod exchange;
mod form;
pub mod http;
mod provider;
mod redeem;
mod renewal;
mod response;
mod subject;
mod target;
mod transport;

pub use auth::{ClientAuth, ClientCredentials};
pub use client::IdJagClient;
pub use config::{ClientConfig, TokenTypeCheck, UnexpectedRefreshToken};
pub use error::{
    ClientError, DiscoveryError, IdJagProblem, InputError, ReauthReason, ResponseProblem, Stage,
    StepUp,
};
pub use exchange::ReceivedIdJag;
pub use provider::{CacheKey, CallError, ProviderConfig, ResourceReply, TokenProvider};
pub use redeem::{AccessTokenGrant, TokenType};
pub use renewal::RenewedIdToken;
pub use subject::{MAX_SUBJECT_TOKEN_BYTES, SubjectKey, UserToken};
pub use target::{AccessRequest, IdentityProvider, ResourceAsTarget};
