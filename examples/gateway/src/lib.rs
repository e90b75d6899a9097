//! # idjag-gateway
//!
//! The reference MCP gateway of idjag: one governed front door for an organisation's MCP
//! servers. An agent signs the user in once at the enterprise IdP and sends that IdP token
//! with each MCP request; the gateway validates it, resolves who is calling, checks what they
//! may do down to the tool, obtains a short-lived, audience-restricted token for the upstream
//! MCP server through the ID-JAG flow (`draft-ietf-oauth-identity-assertion-authz-grant-04`,
//! MCP Enterprise-Managed Authorization), forwards the call, streams the answer back and
//! records it. The user sees no consent screen; the agent holds no standing credential for
//! any downstream tool.
//!
//! ```text
//! cargo run --release -p idjag-gateway -- demo                       # the whole flow on loopback
//! cargo run --release -p idjag-gateway -- check-config -c gateway.toml
//! cargo run --release -p idjag-gateway -- serve -c gateway.toml
//! ```
//!
//! ## Example: a gateway from a configuration file
//!
//! ```no_run
//! use idjag_gateway::{Config, Gateway};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_path("examples/gateway/gateway.toml")?;
//! let listen = config.server.listen.clone();
//! let gateway = Gateway::builder(config).build()?;
//! for warning in gateway.warnings() {
//!     eprintln!("warning: {warning}");
//! }
//! let listener = tokio::net::TcpListener::bind(listen).await?;
//! gateway
//!     .serve(listener, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! ## Contents
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the one TOML file (see the commented `examples/gateway/gateway.toml`) |
//! | [`inbound`] | the IdP token on each request: bearer rules, validation, identity cache |
//! | [`identity`] | user, teams (IdP groups through `[teams]`), agent |
//! | [`authz`] | per team or user, per upstream, allow and deny lists of tools (deny wins) |
//! | [`jsonrpc`] | reading the client's message; the gateway's JSON-RPC errors |
//! | [`proxy`] | the Streamable HTTP reverse proxy and its order of checks |
//! | [`headers`] | what crosses in each direction |
//! | [`sse`] | SSE event by event, `tools/list` filtering, final events |
//! | [`session`] | `Mcp-Session-Id` bound to the user who created it |
//! | [`upstream`] | the upstream credential seam and the ID-JAG mode |
//! | [`bridge`] | bridging modes for servers without ID-JAG: client credentials, static key, header templates, passthrough |
//! | [`guardrails`] | per-tool argument rules (JSON pointer, patterns, sizes) |
//! | [`approval`] | calls held for an administrator's approval, run once when approved |
//! | [`revocation`] | offboarding: revoked users and clients, their streams closed |
//! | [`admin`] | the administrator API under `/admin/` |
//! | [`metrics`] | Prometheus `/metrics` |
//! | [`audit`] | one JSON line per MCP request (and per admin action) |
//! | [`server`] | accept loop, connection limits, header-read timeout, graceful shutdown |
//! | [`inspect`] | `inspect`: a claim-by-claim verdict on an ID-JAG, ID token or access token |
//! | [`cli`] | `serve`, `check-config`, `inspect`, `demo` |
//! | `demo` (feature `demo`, on by default) | the one-command demo and its topology |
//!
//! Routes: `/mcp/{name}` per upstream, `/.well-known/oauth-protected-resource/mcp/{name}`
//! (RFC 9728: the route is the resource, the IdP its authorization server), `/healthz`
//! (alive), `/readyz` (IdP keys loaded and every upstream's credential setup discovered;
//! 503 while not, and during shutdown), `/metrics` (Prometheus; `[metrics]`) and the admin
//! API under `/admin/` (only with `[admin]`).
//!
//! ## Decisions (SPEC §9 and where the issue is silent)
//!
//! - **Inbound tokens.** An OIDC ID token must be issued to the gateway's own client id at
//!   the IdP (`[idp.client] id`): the gateway presents it as the token-exchange subject, and
//!   the IdP requires exactly that audience (SPEC TX-08). An RFC 9068 IdP access token
//!   (`typ` `at+jwt`) must name the route's resource or the gateway's public URL. Both are
//!   accepted by default; the ID-JAG mode needs the ID token (an access token cannot be a
//!   token-exchange subject, TX-05), and says so with a JSON-RPC error.
//! - **Agent.** `azp`, else the ID token's `aud` (the OIDC client the user signed in
//!   through); `client_id` for access tokens.
//! - **Policy refusals** of a JSON-RPC request (tool not allowed, the IdP's `access_denied`)
//!   are JSON-RPC errors with HTTP 200, so the client's session survives, with `data.reason`
//!   and, for the IdP, `data.oauth_error` ("blocked by your organization's policy", never a
//!   fallback to another credential). Refused notifications, GET and DELETE get 403. A
//!   missing scope is 403 with `WWW-Authenticate: Bearer error="insufficient_scope"` (SPEC
//!   MCP-05, SECURITY-CASES G16).
//! - **No access rule for a user** on an upstream means no access at all (not even
//!   `initialize`).
//! - **Sessions**: an unknown id and another user's id both get 404.
//! - **Upstream `401`**: one credential refresh and one retry (the upstream's bearer check
//!   refused the request, so it was not processed); nothing else is ever retried.
//! - **SSE and token expiry**: by default the stream ends with `event: close`
//!   (`{"reason":"token_expired"}`) when the inbound token expires
//!   (`server.sse_on_token_expiry`); at shutdown, `{"reason":"shutdown"}`.
//! - **Batches** (2025-03-26 only) are refused: each message needs its own decision and
//!   audit line. `Mcp-Method`/`Mcp-Name` (2026-07-28) must match the body.
//! - **Request ids**: the client's `X-Request-Id` when it is one id of 1 to 128 characters
//!   of `A-Za-z0-9._:-` (so a trace can be followed from the agent through the gateway to
//!   the upstream), else the gateway's own (128 random bits). It goes upstream, back to the
//!   client and into the audit line.
//! - **Bridging** (upstreams without ID-JAG): the mode is per upstream, after the same
//!   inbound authentication and authorization. Secrets of the bridging modes and the admin
//!   token come from the environment or a file, never the configuration file; a missing one
//!   fails `check-config` and `serve`. Passthrough is allowed only as its own mode, with a
//!   warning at start-up. A static key or template refused by the upstream (`401`) is not
//!   retried (the same key would be refused again).
//! - **Guardrails** come after the access rules (a tool the caller may not use is refused
//!   as such, not as a guardrail), argument rules before approval (a call the rules block is
//!   never held). Patterns are literal text with `*`, no regular expressions: linear-time,
//!   nothing to misconfigure.
//! - **Approvals** are bound to the user, the upstream, the tool and the SHA-256 of the
//!   canonical arguments, live in memory (a restart forgets them) and expire; an approved
//!   call runs once.
//! - **Admin API** on the same listener under `/admin/`, bearer admin token (constant-time
//!   compare); off without `[admin]`. Keep `/admin/` off the public edge.
//! - **Revocation** is checked right after inbound authentication and ends open streams
//!   (`event: close`, `{"reason":"revoked"}`); cached validations and upstream tokens of the
//!   principal are dropped (the shared ID-JAG token provider is keyed by user token, so it
//!   is cleared whole).
//! - **Metrics** are unauthenticated by default, like `/healthz` (labels hold no user, token
//!   or argument); `[metrics] require_admin_token` asks for the admin token.
//! - **`Content-Length` with `Transfer-Encoding`**: hyper frames by the chunked encoding,
//!   drops the length and closes the connection (RFC 9112 §6.3), so nothing can be smuggled;
//!   the gateway never sees both headers and cannot answer 400 (SECURITY-CASES G08 asks for
//!   400; the tests pin hyper's behaviour instead).
//!
//! ## Security
//!
//! - No upstream request is sent before authentication, revocation, session, body, message,
//!   policy, guardrail and approval checks pass; the upstream gets a credential the gateway
//!   holds for that upstream only, never the inbound token (SECURITY-CASES G03; except the
//!   explicit, warned `passthrough` mode), and an allow-list of headers (G06, G07).
//! - Tokens are read from the `Authorization` header only (G04, G05), bounded in size before
//!   any decoding (G09), validated by the core validators against the one trusted IdP with
//!   keys from the shared remote JWKS cache (unknown `kid`: one refresh, cooled down; stale
//!   keys within a window when the IdP is down; fail closed after, G22, G23) and a bounded
//!   leeway (G24).
//! - Limits everywhere: connections, in-flight requests and streams (503, G12), head size
//!   (431) and read time (G10), body size (413) and time (408, G11), SSE event size, the
//!   size of filtered answers; upstream connect and read timeouts without a total deadline
//!   (SSE may run long).
//! - `Origin` must be allowed when present (G13); `MCP-Protocol-Version` must be supported
//!   (G15).
//! - Secrets and tokens never reach a log line, an audit line, an error body or a `Debug`
//!   output (G26): secret types print `[redacted]`, identities come from verified claims,
//!   session ids are kept as digests, tool arguments are recorded per the configured rule.
//! - The `demo` feature compiles in `idjag-idp`'s development users, which mint ID tokens
//!   without a login: build production binaries with `--no-default-features`.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod admin;
pub mod approval;
pub mod audit;
pub mod authz;
pub mod bridge;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
mod gateway;
pub mod guardrails;
pub mod headers;
pub mod identity;
pub mod inbound;
pub mod inspect;
pub mod jsonrpc;
pub mod metrics;
pub mod proxy;
mod reply;
pub mod revocation;
pub mod server;
pub mod session;
pub mod sse;
pub mod upstream;

pub use config::Config;
pub use gateway::{BuildError, Gateway, GatewayBuilder};
