//! # idjag-idp
//!
//! IdP-side issuance of Identity Assertion JWT Authorization Grants (ID-JAG,
//! `draft-ietf-oauth-identity-assertion-authz-grant-04`) through RFC 8693 token exchange, for
//! the MCP Enterprise-Managed Authorization extension. It embeds into an existing OpenID
//! provider: the host brings its clients ([`ClientRegistry`](idjag_core::server::ClientRegistry)),
//! signing keys ([`SigningKeys`]), subject tokens ([`SubjectTokenValidator`]) and policy
//! ([`Policy`], or the declarative [`TomlPolicy`]); this crate brings the token-exchange rules,
//! policy enforcement, issuance, key rotation, metadata and the audit trail.
//!
//! - [`IdJagIssuer`]: the issuer. [`IdJagIssuer::handle`] is the framework-agnostic token
//!   endpoint (`http::Request` in, `http::Response` out); [`IdJagIssuer::router`] (feature
//!   `axum`, on by default) mounts it with the JWKS and metadata endpoints.
//! - [`subject`]: subject-token validators (OIDC ID tokens, refresh tokens, your SAML).
//! - [`policy`]: the [`Policy`] trait and [`TomlPolicy`] (see `examples/policy.toml`).
//! - [`keys`]: [`SigningKeys`] with rotation (next, current, retired).
//! - [`audit`]: one `tracing` event per decision on the target `idjag::audit`.
//! - `dev` (feature `dev`, off by default; tests and demos only, never a production build):
//!   ID tokens for test users, an in-memory refresh-token store, and a development OpenID
//!   provider with a login page, so the whole flow runs offline (see below).
//!
//! ## Example: an IdP in an axum app
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use idjag_core::server::{RegisteredClient, StaticClientRegistry};
//! use idjag_core::{ClientId, ClientSecret, Issuer};
//! use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let clients = StaticClientRegistry::new().with(RegisteredClient::with_secret(
//!     ClientId::new("chat-agent")?,
//!     &ClientSecret::new(std::env::var("CHAT_AGENT_SECRET")?),
//! ));
//! let policy = TomlPolicy::from_path("policy.toml")?;
//! let idp = IdJagIssuer::builder(
//!     Issuer::new("https://idp.example")?,
//!     SigningKeys::generate_es256()?,
//!     Arc::new(clients),
//!     Arc::new(policy),
//! )
//! .build()?;
//!
//! // The host's own routes (login, userinfo, ...) beside the token exchange, JWKS and
//! // metadata endpoints: POST /token, GET /jwks,
//! // GET /.well-known/oauth-authorization-server, GET /.well-known/openid-configuration.
//! let app = Router::new()
//!     .route("/login", get(|| async { "the host's login page" }))
//!     .merge(idp.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Example: a complete exchange, in process
//!
//! ```
//! use std::sync::Arc;
//! use idjag_core::server::{RegisteredClient, StaticClientRegistry};
//! use idjag_core::{ClientId, ClientSecret, Issuer, TestClock};
//! use idjag_idp::dev::{DevUser, DevUsers};
//! use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = TestClock::at_unix(1_700_000_000);
//! let agent = ClientId::new("chat-agent")?;
//! let clients = StaticClientRegistry::new()
//!     .with(RegisteredClient::with_secret(agent.clone(), &ClientSecret::new("s3cret")));
//! let policy = TomlPolicy::from_toml_str(r#"
//!     [[audience]]
//!     issuer = "https://auth.chat.example"
//!     resources = ["https://mcp.chat.example/mcp"]
//!     client_ids = { "chat-agent" = "f53f191f9311af35" }
//!     [[allow]]
//!     clients = ["chat-agent"]
//!     audience = "https://auth.chat.example"
//!     scopes = ["chat.read", "chat.history"]
//! "#)?;
//! let idp = IdJagIssuer::builder(
//!     Issuer::new("https://idp.example")?,
//!     SigningKeys::generate_es256()?,
//!     Arc::new(clients),
//!     Arc::new(policy),
//! )
//! .clock(clock.shared())
//! .build()?;
//!
//! // The user signed in at the IdP; the client holds their ID token.
//! let users = DevUsers::new(&idp).with_user(DevUser::new("alice")?);
//! let id_token = users.id_token("alice", &agent)?;
//!
//! let body = format!(
//!     "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
//!      &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid-jag\
//!      &audience=https%3A%2F%2Fauth.chat.example\
//!      &resource=https%3A%2F%2Fmcp.chat.example%2Fmcp\
//!      &scope=chat.read+chat.admin\
//!      &subject_token={}\
//!      &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
//!      &client_id=chat-agent&client_secret=s3cret",
//!     id_token.secret()
//! );
//! let request = http::Request::post("https://idp.example/token")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(body.into_bytes())?;
//! let response = idp.handle(request).await;
//! assert_eq!(response.status(), 200);
//! let json: serde_json::Value = serde_json::from_slice(response.body())?;
//! assert_eq!(json["scope"], "chat.read"); // chat.admin is not allowed: narrowed
//!
//! // The resource AS validates the ID-JAG with the IdP's published keys.
//! let validator = idp.id_jag_validator(idjag_core::Audience::new("https://auth.chat.example")?);
//! let verified = validator.validate(json["access_token"].as_str().unwrap())?;
//! assert_eq!(verified.claims().client_id.as_str(), "f53f191f9311af35");
//! # Ok(())
//! # }
//! ```
//!
//! ## Development IdP: sign in offline (feature `dev`)
//!
//! `dev::DevOidcProvider` puts a development OpenID provider in front of the issuer, so a
//! gateway or an app can sign users in by the OpenID Connect code flow with no external IdP:
//! `GET /authorize` shows a login page listing the development users (name, email, groups) to
//! pick from, with no password; the token endpoint adds the `authorization_code` grant (PKCE
//! `S256` required, single-use 60 s codes bound to client, redirect URI and verifier) and the
//! `refresh_token` grant (rotation, with a fresh ID token) beside the unchanged token exchange;
//! `/userinfo` and one discovery document at both well-known paths complete it. Clients are
//! registered in code (`dev::DevClient`: id, optional secret, exact redirect URIs). **Never
//! in production**: anyone who reaches the login page can sign in as any listed user, and the
//! page says so. The `dev` module documents every rule and refusal.
//!
//! ```no_run
//! # #[cfg(feature = "dev")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use idjag_core::server::StaticClientRegistry;
//! use idjag_core::{ClientId, ClientSecret, Issuer};
//! use idjag_idp::dev::{DevClient, DevOidcProvider, DevUser, DevUsers};
//! use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
//!
//! // The gateway signs users in here, then exchanges their ID tokens for ID-JAGs.
//! let gateway = DevClient::confidential(ClientId::new("gateway")?, &ClientSecret::new("s3cret"))?
//!     .with_redirect_uri("http://127.0.0.1:8080/oauth/callback")?;
//! let idp = IdJagIssuer::builder(
//!     Issuer::new("http://127.0.0.1:9000")?,
//!     SigningKeys::generate_es256()?,
//!     Arc::new(StaticClientRegistry::new().with(gateway.registered_client())),
//!     Arc::new(TomlPolicy::from_path("policy.toml")?),
//! )
//! .build()?;
//! let users = DevUsers::new(&idp)
//!     .with_user(DevUser::new("alice")?.with_name("Alice").with_email("alice@example.com"))
//!     .with_user(DevUser::new("bob")?.with_groups(&["sales"]));
//! let dev = DevOidcProvider::builder(users).client(gateway).build()?;
//!
//! // In place of `idp.router()`: discovery, /authorize, /token, /userinfo, /jwks.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
//! axum::serve(listener, dev.router()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Processing order
//!
//! 1. `POST` (405), body within the limit (413), form content type, strict form parsing:
//!    repeated parameters (only `resource` may repeat), bad escapes (`invalid_request`).
//! 2. `grant_type` token exchange (`unsupported_grant_type`; an ID-JAG presented as a
//!    JWT-bearer grant gets `invalid_grant`, requirement TX-25).
//! 3. Client authentication, exactly one method: `client_secret_basic`,
//!    `client_secret_post` or `private_key_jwt` (`invalid_client`, 401 with
//!    `WWW-Authenticate` after Basic); public clients are refused (requirement TX-21).
//! 4. Parameters: `requested_token_type` id-jag, one `audience` (not this IdP),
//!    `resource`s, `scope`, `authorization_details`, subject token and type, no actor token.
//! 5. DPoP proof, when sent (`invalid_dpop_proof`); a valid one adds `cnf.jkt`.
//! 6. Subject token, by its type's validator.
//! 7. Policy, then a check that the grant does not exceed the request.
//! 8. Issuance, the response, and one audit event.
//!
//! ## Decisions on open questions
//!
//! - **Subject-token error code** (decision D-02): a refused subject token (bad signature,
//!   expired, another client's, wrong kind, revoked, unknown) is `invalid_grant`, as in
//!   the threat model (threats X03 to X07, our test plan) and the ID-JAG draft's own example.
//!   RFC 6749 §5.2 defines `invalid_grant` for exactly this ("invalid, expired, revoked, ...
//!   or issued to another client"), and clients treat it as "sign the user in again", the
//!   right recovery; `invalid_request` would signal a malformed request. Deployments that
//!   want the letter of RFC 8693 §2.2.2 set
//!   [`SubjectTokenErrorCode::InvalidRequest`] with
//!   [`IdJagIssuerBuilder::subject_token_error_code`]. An unsupported subject token *type*
//!   (SAML without a validator) is always `invalid_request`.
//! - **Audience and resource** (decision D-02): an unknown, unconfigured or unavailable
//!   `audience`, this IdP itself as `audience`, and a malformed, unregistered or disallowed
//!   `resource` are `invalid_target` (RFC 8693 §2.2.2; threats X09, X12). Unknown
//!   audiences and audiences the client may not reach get the same answer, so the list of
//!   resource ASes does not leak (requirement MD-05). A user or client that no rule allows, or a
//!   deny rule, gets `access_denied`.
//! - **Audience aliases** (decision D-06): matched exactly; the ID-JAG `aud` is always the
//!   canonical issuer (threat X10).
//! - **`resource`** (decision D-03): optional and may repeat; every value must be a registered
//!   (audience, resource) pair (EMA §7.6.1). Without one, the ID-JAG has no `resource`.
//! - **Scope**: narrowed to what policy allows, the response always states the granted
//!   `scope`; nothing allowed is `invalid_scope` (threat X11).
//! - **Actor tokens** (decision D-17): refused with `invalid_request`, since no processing is
//!   defined and ignoring one would drop a delegation the client asked for.
//! - **Step-up** (decision D-14): `insufficient_user_authentication` with `max_age` and
//!   `acr_values` members in the error body (RFC 9470 names).
//! - **DPoP** (decision D-11): a `DPoP` header on the token exchange is validated (RFC 9449
//!   §4.3, `htm` POST, `htu` the token endpoint, `iat` within 60 s, single-use `jti`) and
//!   binds the ID-JAG with `cnf.jkt` (requirements TX-23, IDJAG-16). Server nonces are not used.
//! - **Lifetime**: 300 s by default, at most one hour. `expires_in` states it.
//! - **Email**: left out of ID-JAGs unless the audience's policy asks for it (EMA §7.4.3
//!   over requirement IDJAG-13).
//! - **Client assertions**: `aud` must be this issuer as a single value
//!   (draft-ietf-oauth-rfc7523bis); the token endpoint URL is accepted only when enabled.
//! - **Metadata**: `response_types_supported` is always present (RFC 8414 §2 requires it):
//!   `[]`, or `["code"]` with the host's sign-in endpoint given through
//!   [`IdJagIssuerBuilder::authorization_endpoint`], which clients that discover the IdP may
//!   need (the TypeScript MCP SDK refuses metadata without `authorization_endpoint`).
//!
//! ## Security
//!
//! - Every refusal is an RFC 6749 §5.2 body with a fixed, generic `error_description`;
//!   no token, secret, claim or parameter value is ever echoed, logged or put in an error's
//!   `Display` (threat X20; the test `x20_tracing_never_sees_secrets_or_tokens`
//!   proves it).
//! - Subject ID tokens must be this IdP's own, unexpired, of the ID-token kind (an ID-JAG or
//!   an access token is refused by `typ`, RFC 8725 §3.12), and issued to the authenticated
//!   client (`aud`, and `azp` when present).
//! - The issuer never grants more than was asked, whatever the policy answers.
//! - ID-JAGs carry a 128-bit random `jti`, `typ: oauth-id-jag+jwt` and the signing key's
//!   `kid`; keys are published before they sign and after they stop ([`keys`]).
//! - The token endpoint answers `Cache-Control: no-store` and never a refresh token.
//! - The `dev` helpers (feature `dev`) mint ID tokens without a login, and the development
//!   provider's login page signs anyone in as any listed user: tests and demos only, never in a
//!   production build. Its types are named `Dev*`, its events go to their own `tracing` target
//!   (`idjag::dev`), and its pages carry a banner saying it is a development IdP.
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

pub mod audit;
#[cfg(feature = "dev")]
pub mod dev;
mod dpop;
mod error;
mod issuer;
pub mod keys;
pub mod policy;
mod request;
#[cfg(feature = "axum")]
mod router;
pub mod subject;

pub use audit::{AUDIT_TARGET, AuditSubject};
pub use dpop::DpopError;
pub use error::ExchangeError;
pub use issuer::{
    BuildError, DEFAULT_LIFETIME, DEFAULT_MAX_BODY_BYTES, DEFAULT_REPLAY_CAPACITY, IdJagIssuer,
    IdJagIssuerBuilder, IssuedIdJag, MAX_LIFETIME,
};
pub use keys::{
    KeyState, KeyStatus, RotatingKeys, RotationError, RotationTiming, ScheduledSigningKey,
    SigningKeys,
};
pub use policy::{
    AbsentScope, Grant, Policy, PolicyConfigError, PolicyDenial, PolicyRequest, TomlPolicy,
};
pub use request::ExchangeRequestError;
pub use subject::{
    IdTokenSubjectValidator, RefreshTokenRecord, RefreshTokenStore, RefreshTokenSubjectValidator,
    SubjectPrincipal, SubjectTokenError, SubjectTokenErrorCode, SubjectTokenValidator,
};
