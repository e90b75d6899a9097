//! Development helpers, **for tests and demos only** (feature `dev`; never enable it in a
//! production build). They let the whole ID-JAG flow run on loopback, offline, without an
//! external OpenID provider. Test crates enable them with
//! `idjag-idp = { workspace = true, features = ["dev"] }`.
//!
//! - [`DevUsers`] and [`DevUser`]: ID tokens for configured test users, signed with the
//!   issuer's own key, minted directly (no login at all).
//! - [`MemoryRefreshTokens`]: an in-memory [`RefreshTokenStore`](crate::RefreshTokenStore),
//!   for token exchange with refresh tokens as subject tokens.
//! - [`DevOidcProvider`]: a development OpenID provider in front of the issuer: an
//!   authorization endpoint whose login page lists the development users to pick from, the
//!   `authorization_code` and `refresh_token` grants on the issuer's token endpoint (beside its
//!   token exchange), a userinfo endpoint and OpenID discovery. Its clients are
//!   [`DevClient`]s.
//!
//! # Security
//!
//! These helpers sign users in **without any credential**. [`DevUsers`] mints a valid ID token
//! for any configured user on request, and anyone who can open the [`DevOidcProvider`]'s login
//! page can sign in as any listed user. Never build a production IdP with the `dev` feature,
//! and never expose these endpoints beyond a developer's machine or a test network; a real
//! deployment gets its ID tokens from its OpenID provider's login flow. The login page says so
//! in a banner.
//!
//! The rest is held to production rules, so the flow the tests and demos exercise is the real
//! one: exact redirect URIs, PKCE `S256` only, single-use codes bound to client, redirect URI
//! and verifier, refresh-token rotation with reuse detection, strict page headers, escaped
//! output, typed errors, and no code, token, secret, `state` or `nonce` in any log, error or
//! `Debug` output.
//!
//! # The development authorization endpoint
//!
//! [`DevOidcProvider::router`] serves, at the issuer's URL (used **instead of**
//! [`IdJagIssuer::router`](crate::IdJagIssuer::router)):
//!
//! | Endpoint | |
//! |---|---|
//! | `GET /.well-known/openid-configuration`, `GET /.well-known/oauth-authorization-server` | One discovery document ([`DevOidcProvider::metadata`]) |
//! | `GET /authorize` | Authorization request → the login page |
//! | `POST /authorize` | The login page's choice → `303` to the client with `code`, `state`, `iss` |
//! | `POST /token` | `authorization_code`, `refresh_token`, and the issuer's token exchange |
//! | `GET`/`POST /userinfo` | The user's claims for a bearer access token |
//! | `GET /jwks` | The issuer's keys |
//!
//! **Authorization request** (OpenID Connect Core §3.1.2.1): `client_id` of a registered
//! [`DevClient`]; `redirect_uri` equal to one of its redirect URIs (a public client's loopback
//! `http://127.0.0.1` or `http://[::1]` redirect URI may use any port, RFC 8252 §7.3);
//! `response_type=code`; `scope` with `openid` (and only [`DEV_SCOPES`]);
//! `code_challenge` with `code_challenge_method=S256` (required: `plain` and no PKCE are
//! refused); `state` and `nonce` (optional, at most 512 bytes, echoed and put in the ID token).
//! A refusal is an error page while the client or redirect URI is unverified (RFC 6749
//! §4.1.2.1: never redirect to an unverified URI), and a redirect with `error`,
//! `error_description`, `state` and `iss` after ([`DevAuthorizeError`]).
//!
//! **Login page**: server-rendered HTML without JavaScript; the users (name, email, `sub`,
//! groups) are the buttons of one `POST` form carrying the pending request's id and a CSRF
//! token bound to it (256 random bits, single use, 10 minutes); a Cancel button answers
//! `access_denied`. Headers: `Content-Security-Policy: default-src 'none'; style-src
//! 'sha256-…'; frame-ancestors 'none'; base-uri 'none'`, `X-Frame-Options: DENY`,
//! `Referrer-Policy: no-referrer`, `Cache-Control: no-store`, `X-Content-Type-Options:
//! nosniff`. The login page has no `form-action`: browsers check every redirect that follows
//! the form post against it, and the client may redirect again (a gateway sends the user on to
//! its own client; Chromium then refuses the whole sign-in), so no list of origins can be
//! right. The error page, which has no form, has `form-action 'none'`.
//!
//! **Token endpoint** ([`DevOidcProvider::handle_token`], dispatching on `grant_type`):
//! `authorization_code` with the client's authentication (`client_secret_basic` or
//! `client_secret_post`; a public client sends `client_id` alone), `code` (single use,
//! [`DEV_CODE_LIFETIME`]), the same `redirect_uri` and the PKCE `code_verifier`, answers an ID
//! token (`iss`, `sub`, `aud` = the client id, `exp`, `iat`, `nonce`, `auth_time`, `email`,
//! `name`, `groups`, …), a bearer access token and a refresh token. A code presented twice is
//! refused and revokes the refresh and access tokens issued from it (RFC 6749 §4.1.2; the ID
//! token, self-contained, lives on until its `exp`). `refresh_token` rotates the refresh token
//! (presenting a rotated one revokes its whole family, RFC 9700 §4.14.2) and answers a fresh
//! ID token with the original `auth_time` and no `nonce`, so a gateway can renew a user's ID
//! token from the stored refresh token. Other grant types go to the issuer's token exchange
//! unchanged. Refusals are RFC 6749 §5.2 bodies ([`DevTokenError`]).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use idjag_core::server::StaticClientRegistry;
//! use idjag_core::{ClientId, ClientSecret, Issuer};
//! use idjag_idp::dev::{DevClient, DevOidcProvider, DevUser, DevUsers};
//! use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The gateway signs users in here (code flow), then exchanges their ID tokens: it is a
//! // client of both the development provider and the issuer's token exchange.
//! let gateway = DevClient::confidential(ClientId::new("gateway")?, &ClientSecret::new("s3cret"))?
//!     .with_redirect_uri("http://127.0.0.1:8080/oauth/callback")?;
//! let idp = IdJagIssuer::builder(
//!     Issuer::new("http://127.0.0.1:9000")?,
//!     SigningKeys::generate_es256()?,
//!     Arc::new(StaticClientRegistry::new().with(gateway.registered_client())),
//!     Arc::new(TomlPolicy::from_toml_str("")?),
//! )
//! .build()?;
//! let users = DevUsers::new(&idp).with_user(
//!     DevUser::new("alice")?
//!         .with_name("Alice Liddell")
//!         .with_email("alice@example.com")
//!         .with_groups(&["eng"]),
//! );
//! let dev = DevOidcProvider::builder(users)
//!     .client(gateway)
//!     .client(DevClient::public(ClientId::new("cli")?).with_redirect_uri("http://127.0.0.1/cb")?)
//!     .build()?;
//!
//! let metadata = dev.metadata();
//! assert_eq!(
//!     metadata.authorization_endpoint.as_deref(),
//!     Some("http://127.0.0.1:9000/authorize")
//! );
//! assert!(metadata.supports_grant_type("authorization_code"));
//!
//! // Serve it (in place of `idp.router()`):
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:9000").await?, dev.router()).await?;
//! # #[cfg(feature = "axum")]
//! let _app: axum::Router = dev.router();
//! # Ok(())
//! # }
//! ```
//!
//! Minting an ID token directly, without the login flow:
//!
//! ```
//! use std::sync::Arc;
//! use idjag_core::{ClientId, Issuer, TestClock};
//! use idjag_core::server::StaticClientRegistry;
//! use idjag_idp::dev::{DevUser, DevUsers};
//! use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
//!
//! let clock = TestClock::at_unix(1_700_000_000);
//! let idp = IdJagIssuer::builder(
//!     Issuer::new("https://idp.example")?,
//!     SigningKeys::generate_es256()?,
//!     Arc::new(StaticClientRegistry::new()),
//!     Arc::new(TomlPolicy::from_toml_str("")?),
//! )
//! .clock(clock.shared())
//! .build()?;
//! let users = DevUsers::new(&idp).with_user(DevUser::new("alice")?.with_email("alice@example.com"));
//! let id_token = users.id_token("alice", &ClientId::new("chat-agent")?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod authorize;
mod client;
mod error;
mod page;
mod provider;
mod refresh_store;
#[cfg(feature = "axum")]
mod router;
mod state;
mod token;
mod users;

pub use client::{DevClient, DevClientError};
pub use error::{DevAuthorizeError, DevTokenError};
pub use provider::{
    DEV_ACCESS_TOKEN_LIFETIME, DEV_CLAIMS, DEV_CODE_LIFETIME, DEV_LOG_TARGET, DEV_LOGIN_LIFETIME,
    DEV_MAX_TOKEN_LIFETIME, DEV_REFRESH_TOKEN_LIFETIME, DEV_SCOPES, DevOidcBuildError,
    DevOidcProvider, DevOidcProviderBuilder,
};
pub use refresh_store::MemoryRefreshTokens;
pub use users::{DevError, DevUser, DevUsers};
