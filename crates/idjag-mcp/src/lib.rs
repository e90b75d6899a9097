//! # idjag-mcp
//!
//! MCP Enterprise-Managed Authorization (the `io.modelcontextprotocol/enterprise-managed-authorization`
//! extension) on [rmcp](https://docs.rs/rmcp) 3.x, the official Rust MCP SDK: the client reaches
//! MCP servers with access tokens from the ID-JAG flow, the server accepts only those tokens,
//! with per-tool scopes. A few lines on each side.
//!
//! ## Client
//!
//! The user signed in at the enterprise IdP; the app holds their ID token. Every request to the
//! MCP server carries an access token obtained through the IdP (token exchange for an ID-JAG)
//! and the server's authorization server (JWT-bearer grant), discovered from the server's `401`:
//!
//! ```no_run
//! use std::sync::Arc;
//! use idjag_client::{ClientCredentials, IdJagClient, IdentityProvider, TokenProvider, UserToken};
//! use idjag_core::{ClientId, ClientSecret, IdToken, Issuer};
//! use idjag_mcp::EnterpriseManagedAuthorization;
//! use idjag_mcp::client::{EmaAuthorizer, ResourceAsRegistrations, authorization_error};
//! use rmcp::ServiceExt;
//! use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
//!
//! # async fn run(id_token: IdToken) -> Result<(), Box<dyn std::error::Error>> {
//! // Once per app: the IdP, and our registration at the MCP server's authorization server.
//! let idp = IdentityProvider::new(
//!     Issuer::new("https://acme.idp.example")?,
//!     "https://acme.idp.example/oauth2/token",
//!     ClientCredentials::secret_basic(ClientId::new("repo-agent")?, ClientSecret::new("idp-secret"))?,
//! )?;
//! let authorizer = Arc::new(EmaAuthorizer::new(
//!     Arc::new(TokenProvider::new(IdJagClient::new(idp)?)),
//!     ResourceAsRegistrations::new().with(
//!         Issuer::new("https://auth.repo.example")?,
//!         ClientCredentials::secret_basic(ClientId::new("8d2a1c07e5f94b3a")?, ClientSecret::new("as-secret"))?,
//!     ),
//! ));
//!
//! // Per user: an rmcp transport whose requests carry their access token.
//! let transport = authorizer
//!     .reqwest_client(UserToken::id_token(id_token))?
//!     .into_transport("https://mcp.repo.example/mcp");
//! let capabilities = ClientCapabilities::default().enable_enterprise_managed_authorization();
//! match ClientConfig::new(capabilities, Implementation::new("repo-agent", "1.0.0")).serve(transport).await {
//!     Ok(mcp) => {
//!         mcp.call_tool(CallToolRequestParams::new("whoami")).await?;
//!     }
//!     Err(error) => match authorization_error(&error) {
//!         Some(denied) if denied.is_policy_denial() => { /* the IdP's policy said no */ }
//!         _ => return Err(error.into()),
//!     },
//! }
//! # Ok(()) }
//! ```
//!
//! ## Server
//!
//! An rmcp `StreamableHttpService` in axum that accepts only access tokens its authorization
//! server issued for it, where `delete_repo` needs `repo.admin`, and whose tools see the caller:
//!
//! ```
//! use std::sync::Arc;
//! use idjag_core::{Algorithm, Issuer, KeySet, Resource, ScopeSet, SigningKey, SystemClock};
//! use idjag_mcp::server::{Caller, McpAuth};
//! use idjag_resource::rs::{AccessTokenVerifier, ProtectedResource};
//! use rmcp::handler::server::router::tool::ToolRouter;
//! use rmcp::model::{CallToolResult, ContentBlock};
//! use rmcp::transport::StreamableHttpService;
//! use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
//! use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
//!
//! #[derive(Clone)]
//! struct Repo { tool_router: ToolRouter<Self> }
//!
//! #[tool_router]
//! impl Repo {
//!     #[tool(description = "Deletes the repository.")]
//!     async fn delete_repo(&self, caller: Caller) -> Result<CallToolResult, ErrorData> {
//!         // Only reached with a valid token that holds repo.admin.
//!         Ok(CallToolResult::success(vec![ContentBlock::text(format!("deleted by {}", caller.subject()))]))
//!     }
//! }
//!
//! #[tool_handler]
//! impl ServerHandler for Repo {}
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let as_keys = Arc::new(KeySet::new([SigningKey::generate(Algorithm::Es256)?.verifying_key()?])?);
//! let resource = Resource::new("https://mcp.repo.example/mcp")?;
//! let auth_server = Issuer::new("https://auth.repo.example")?;
//! let verifier = AccessTokenVerifier::new(resource, auth_server.clone(), as_keys, SystemClock::shared());
//! let auth = McpAuth::new(ProtectedResource::new(verifier, vec![auth_server])?)
//!     .with_tool_scope("delete_repo", ScopeSet::parse("repo.admin")?);
//! let service = StreamableHttpService::new(
//!     || Ok(Repo { tool_router: Repo::tool_router() }),
//!     Arc::new(LocalSessionManager::default()),
//!     auth.server_config(), // allows the host `mcp.repo.example`
//! );
//! // POST/GET/DELETE /mcp behind the token check, and the RFC 9728 metadata route.
//! let app: axum::Router = auth.router(service);
//! # Ok(()) }
//! ```
//!
//! `examples/protected_server.rs` and `examples/client.rs` run both sides with a demo IdP and
//! the resource authorization server on loopback. `examples/mcp_server.rs` is that MCP server
//! alone, trusting an external authorization server (such as the `idjag-resource-server`
//! binary) by its issuer, and `examples/rmcp_ema_client.rs` runs rmcp's own EMA helper with
//! `client::rmcp_ema`'s signer against such servers: the repository's `scripts/interop.sh`
//! runs them with the official TypeScript and Python MCP clients.
//!
//! ## Contents
//!
//! - [`capability`]: the extension identifier; declaring and reading it in rmcp's
//!   `ClientCapabilities` and `ServerCapabilities` (requirement EMA-01).
//! - [`client`] (feature `client`, default): [`client::EmaAuthorizer`] and
//!   [`client::EmaAuthClient`], an rmcp `StreamableHttpClient`; [`client::authorization_error`]
//!   and [`client::transport_error`] to read rmcp's errors; `client::rmcp_ema` (feature
//!   `auth-enterprise-managed`): our `private_key_jwt` signer for rmcp's own EMA helper.
//! - [`server`] (feature `server`, default): [`server::McpAuth`], [`server::ToolScopeLayer`],
//!   [`server::Caller`].
//!
//! ## What the client does
//!
//! The first request goes out without a token; the server's `401` names its RFC 9728 metadata.
//! The metadata's `resource` must be the server's URL exactly (requirement MD-08), the
//! authorization server must be one the app is registered with
//! ([`client::ResourceAsRegistrations`]), its RFC 8414 `issuer` must match exactly (requirement
//! MD-07), and it must support the ID-JAG grant profile (requirement MD-12). Then leg 1 at the IdP
//! (audience = that issuer, resource = the server's URL; requirements EMA-02, EMA-03,
//! MCP-01) and leg 2 at the authorization server, both by `idjag-client` with its checks and its
//! cache. The request is sent again with the token (requirement MCP-03). A `401` on a token renews
//! it once; a `403 insufficient_scope` for scopes not yet asked for leads to one new exchange with
//! the union (requirement MCP-05). [`client::EmaAuthClient::authorize`] does the discovery and the
//! flow before any request is sent.
//!
//! ## Decisions on open questions
//!
//! - **Extension negotiation** (decision D-12): the capability is declared and readable, but
//!   informational: authorization happens over HTTP before the first MCP message, so whether
//!   the flow applies is the authorization server's grant profile. A server that lists no
//!   profiles is assumed to support it (the conformance suite's does not list them);
//!   [`client::EmaAuthorizer::with_profile_assumption`] can require the profile.
//! - **Step-up under EMA** (`docs/flow.md#mcp-request`; requirement MCP-05): one new token exchange
//!   with the union of the scopes asked for and those the `403` names, and one more attempt; the
//!   IdP's policy decides, and a second `403` goes to the caller. No interactive step-up.
//! - **`401` with a token**: the token is dropped and renewed once (a new exchange; ID-JAGs are
//!   single-use under EMA §7.4.2, decision D-01), then the `401` goes to the caller.
//! - **`resource`** (decision D-03): always sent, as the server's RFC 9728 identifier.
//! - **Which authorization server** (the mix-up threat, `docs/threat-model.md#mix-up`): the first
//!   one the resource lists that the app is registered with; "any listed" only as an explicit
//!   opt-in.
//! - **The `403` challenge** names the scopes the tool needs (not those already held), with
//!   `error="insufficient_scope"` and `resource_metadata`.
//! - **Bodies the tool-scope check cannot read unambiguously** (not one JSON object, a
//!   repeated member name) are refused with `400` when tool scopes are configured: rmcp and
//!   the check must never see different tools.
//!
//! ## Security
//!
//! - **No token where it does not belong.** Metadata and token endpoints must be `https` (or
//!   `http` on loopback); redirects are never followed, by the discovery client nor by
//!   [`client::mcp_http_client`]. Credentials at an authorization server go only to one the
//!   app registered with. The transport's own `auth_header` is ignored.
//! - **Denials are final.** An IdP policy denial, a needed sign-in or an unknown authorization
//!   server ends the request with a typed [`client::AuthorizationError`]; nothing falls back to
//!   another credential or to an unauthenticated request. Retries are bounded: one renewal
//!   after a `401`, one step-up after a `403`, each resending a request the server refused
//!   before processing it.
//! - **DPoP-bound tokens are refused** rather than sent as `Bearer` (rmcp's transports cannot
//!   send a `DPoP` proof).
//! - **Nothing secret in logs, errors or `Debug`** (requirements EMA-13, EMA-16): events (target
//!   `idjag_mcp`, level `debug`) name resources, issuers and scopes only; a test captures the
//!   whole flow at `TRACE` and finds no token, ID-JAG or secret (threat C06).
//! - **Server**: idjag-resource's verifier (trusted issuer, that issuer's keys, `typ`
//!   `at+jwt`, `aud` = this resource, time window; threats G01, G02, G04, G05) runs before anything
//!   else; tool scopes are checked before rmcp parses the request (threat G16), and a missing
//!   bearer layer fails closed; [`server::Caller`] fails the request when no verified caller is
//!   present; rmcp's `Host` check stays on, set to the resource's host.
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

pub mod capability;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod server;

pub use capability::{EXTENSION_ID, EnterpriseManagedAuthorization};
