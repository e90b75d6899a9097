//! # idjag-resource
//!
//! The resource side of the Identity Assertion JWT Authorization Grant (ID-JAG,
//! `draft-ietf-oauth-identity-assertion-authz-grant-04`) and of MCP Enterprise-Managed
//! Authorization: where "no one gets in who does not belong" is decided.
//!
//! - [`ResourceAuthorizationServer`]: the resource authorization server. It redeems ID-JAGs
//!   through the RFC 7523 JWT-bearer grant, in the order of the redemption checks, for RFC 9068
//!   access tokens; it also serves introspection (RFC 7662), RFC 8414 metadata and its JWKS. Its
//!   endpoints are framework-agnostic (`method, headers, body -> http::Response<Vec<u8>>`);
//!   [`ResourceAuthorizationServer::router`] mounts them on axum (feature `axum`).
//! - [`TrustedIssuer`], [`RegisteredResource`] and the policies ([`ReplayPolicy`],
//!   [`AbsentResource`], [`AccessTokenLifetime`], [`SubjectMapping`]).
//! - [`rs`]: for resource servers (an MCP server, any API): [`rs::AccessTokenVerifier`],
//!   [`rs::ProtectedResource`] with its RFC 9728 metadata and challenges, the [`rs::BearerPrincipal`]
//!   of a verified request, and the tower layer [`rs::RequireBearerLayer`] (feature `tower`).
//! - [`audit`]: one structured `tracing` event per grant decision.
//!
//! ## Example: a resource AS and an MCP server's guard
//!
//! ```
//! use std::sync::Arc;
//! use http::{HeaderMap, Method, header};
//! use idjag_core::server::{RegisteredClient, StaticClientRegistry};
//! use idjag_core::*;
//! use idjag_resource::{RegisteredResource, ResourceAuthorizationServer, TrustedIssuer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let idp_key = SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid();
//! let idp = Issuer::new("https://acme.idp.example")?;
//! let mcp = Resource::new("https://mcp.chat.example/mcp")?;
//!
//! // The resource AS: whom it trusts, what it protects, who may redeem.
//! let server = ResourceAuthorizationServer::builder(
//!     Issuer::new("https://auth.chat.example")?,
//!     SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid(),
//! )
//! .trust(TrustedIssuer::new(idp.clone(), Arc::new(KeySet::new([idp_key.verifying_key()?])?)))
//! .resource(RegisteredResource::new(mcp.clone()).with_scopes(ScopeSet::parse("chat.read")?))
//! .clients(StaticClientRegistry::new().with(RegisteredClient::with_secret(
//!     ClientId::new("chat-agent")?,
//!     &ClientSecret::new("s3cret"),
//! )))
//! .build()?;
//! // With axum: `axum::serve(listener, server.router())`.
//!
//! // The IdP's ID-JAG for the client `chat-agent`.
//! let now = SystemClock::shared().now_unix();
//! let mut claims = IdJagClaims::new(
//!     idp, Subject::new("alice")?, server.issuer().to_audience(), ClientId::new("chat-agent")?,
//!     Jti::new("jti-1")?, NumericDate::from_unix(now).unwrap(),
//!     NumericDate::from_unix(now + 300).unwrap(),
//! );
//! claims.scope = Some(ScopeSet::parse("chat.read chat.admin")?);
//! let id_jag = idp_key.sign_jwt(Some(wire::TYP_ID_JAG), &claims)?;
//!
//! // The client redeems it (client_secret_post here).
//! let mut headers = HeaderMap::new();
//! headers.insert(header::CONTENT_TYPE, wire::MEDIA_TYPE_FORM.parse()?);
//! let body = format!(
//!     "grant_type={}&assertion={}&client_id=chat-agent&client_secret=s3cret",
//!     wire::GRANT_TYPE_JWT_BEARER, id_jag.secret()
//! );
//! let response = server.token(&Method::POST, &headers, body.as_bytes()).await;
//! assert_eq!(response.status(), 200);
//! let answer: TokenResponse = serde_json::from_slice(response.body())?;
//! assert_eq!(answer.scope.unwrap().to_string(), "chat.read"); // ID-JAG ∩ local policy
//!
//! // The MCP server verifies it.
//! let verifier = idjag_resource::rs::AccessTokenVerifier::new(
//!     mcp, server.issuer().clone(), Arc::new(server.verification_keys()), SystemClock::shared(),
//! );
//! let verified = verifier.verify(answer.access_token.secret()).await?;
//! assert_eq!(verified.claims().sub.as_str(), "alice");
//! # Ok(()) }
//! ```
//!
//! ## Processing order
//!
//! The token endpoint checks, in the redemption checks order, stopping at the first failure:
//! `POST`, body limit, form content type, strict form parsing; `grant_type` (only jwt-bearer,
//! threat J07); client authentication (one method; public clients refused unless allowed); exactly
//! one `assertion`; the request's `scope`, `resource` and `authorization_details` syntax; the
//! ID-JAG (size, structure, `typ`, `alg` allow-list, trusted `iss`, that issuer's key, signature,
//! `aud`, time window, claim types); `client_id` equal to the authenticated client and the issuer's
//! client list; tenant and subject; `resource`; scope; `authorization_details`; `cnf`; self-issued
//! grants. Then it signs the access token and, last, records the redemption in the replay store:
//! the only write of the whole request, so a refused or abandoned request leaves no state behind
//! (threat J06). A replayed ID-JAG that also fails a later check is reported with that check's
//! reason, and the token signed for a request that then loses the replay race is discarded, never
//! sent. One exception to "no state": a `private_key_jwt` client assertion is spent by client
//! authentication even when the grant is refused afterwards (client assertions are single-use;
//! clients sign one per request).
//!
//! Every refusal is an RFC 6749 §5.2 JSON error with a generic `error_description` per code
//! ([`GrantError`] maps each reason to its code), `Cache-Control: no-store`, and a
//! `WWW-Authenticate: Basic` challenge after failed HTTP client authentication.
//!
//! ## Decisions on open questions
//!
//! - **Re-presenting an ID-JAG** (D-01): single use by default, as EMA §7.4.2 requires:
//!   the (`iss`, `jti`) pair is recorded until `exp` plus the leeway, and any second
//!   presentation is `invalid_grant`. [`ReplayPolicy::AllowSameClient`] allows the core
//!   draft's re-presentation by the same client (ID-JAG -04 §4.4.3) for a fresh token.
//! - **Absent `resource`** (D-03, D-04): accepted; the token is bound to the configured
//!   resource ([`AbsentResource::BindTo`], the default when exactly one resource is
//!   registered) or refused ([`AbsentResource::Refuse`], the default otherwise). A present
//!   `resource` must name registered resources only (requirement EMA-17); a request `resource`
//!   parameter picks one of them (`invalid_target` if it names another, or if several remain and
//!   none is named). The granted resource is echoed as `resource` in the token response.
//! - **Scope** (D-05): the granted scope is requested ∩ ID-JAG ∩ the resource's policy.
//!   A request without `scope` gets what the ID-JAG and the policy allow; a request whose
//!   scopes are partly grantable is narrowed (the response lists the granted scope); a
//!   request of which nothing is grantable is `invalid_scope`. An ID-JAG without `scope`
//!   grants no scope.
//! - **`aud`** (D-06): exactly this server's issuer, as a string or a one-element array;
//!   exact aliases can be added ([`ResourceAuthorizationServerBuilder::audience_alias`]),
//!   never an endpoint URL.
//! - **Access-token lifetime** (D-08): `min(now + lifetime, id_jag.exp + beyond)`;
//!   by default 5 minutes and never beyond the ID-JAG's own `exp`. An ID-JAG so close to its
//!   end that the token would be born expired is refused.
//! - **Client authentication** (D-09): confidential clients only by default
//!   (`client_secret_basic`, `client_secret_post`, `private_key_jwt`, exactly one per
//!   request); public clients only with
//!   [`ResourceAuthorizationServerBuilder::allow_public_clients`]. An empty `code=` sent
//!   beside the grant (Go SDK) counts as omitted.
//! - **DPoP / `cnf`** (D-11, requirement JB-21): not supported. An ID-JAG with `cnf` is refused
//!   (`invalid_grant`, since its proof cannot be checked), the draft `jwt-dpop` grant is
//!   `unsupported_grant_type`, and a `DPoP` header beside an unbound grant is ignored
//!   (the client sees `token_type` `Bearer`, RFC 9449 §5).
//! - **Subject** (redemption check 13, D-16): `sub` by default; `aud_sub` or a host resolver per
//!   issuer ([`SubjectMapping`]); an issuer can be limited to tenants. `sub_id` is never used
//!   to establish trust or identity (requirement JB-13).
//! - **Self-issued grants** (ID-JAG -04 §9.3): the builder refuses to trust this server's
//!   own issuer, and an ID-JAG naming it is `invalid_grant`.
//! - **Metadata without an authorization endpoint** (where the specifications are silent): RFC 8414
//!   §2 lets a server without one omit `authorization_endpoint`, and requires
//!   `response_types_supported`, which is `[]` here. The TypeScript MCP SDK refuses such a
//!   document, so [`AuthorizationEndpoint`] can name the host's own endpoint or mount one that
//!   refuses every request (`unsupported_response_type`, never a redirect). The repository's
//!   `scripts/interop.sh` runs that SDK against `idjag-resource-server`, built on this crate.
//!
//! ## Security
//!
//! Every input is hostile until verified. ID-JAGs are checked by the core validator
//! (no `none`, no HMAC, keys pinned to one algorithm and scoped per issuer, `jku`/`x5u`/`jwk`
//! never followed, strict JSON and base64url, size caps) before any claim is used, and
//! access tokens are minted only from `Verified<IdJagClaims>`. The replay store is written
//! with one atomic check-and-insert, after every other check, so concurrent redemptions of
//! one ID-JAG yield exactly one token. Error bodies never say which check failed, and no
//! token, assertion or secret reaches a log line, an error text or a `Debug` output: the
//! audit events carry hashes and verified identifiers only. Client secrets are stored as
//! hashes and compared in constant time by the core client authenticator.
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
#[cfg(feature = "axum")]
mod axum;
mod config;
mod error;
mod grant;
mod introspect;
mod metadata;
mod mint;
pub mod rs;
mod server;

pub use config::{
    AbsentResource, AccessTokenLifetime, AuditSubjects, RegisteredResource, ReplayPolicy,
    ResolveError, SubjectMapping, SubjectResolver, TrustedIssuer, UngovernedResource,
};
pub use error::{GrantError, generic_description};
pub use metadata::AuthorizationEndpoint;
pub use server::{
    BuildError, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ID_JAG_LIFETIME, DEFAULT_REPLAY_CAPACITY,
    ResourceAuthorizationServer, ResourceAuthorizationServerBuilder,
};
