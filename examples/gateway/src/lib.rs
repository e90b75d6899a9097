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
//! cargo run --release -p idjag-gateway --features demo -- demo   # the whole flow on loopback
//! cargo run --release -p idjag-gateway -- check-config -c gateway.toml
//! cargo run --release -p idjag-gateway -- serve -c gateway.toml
//! ```
//!
//! ## Example: a gateway from a configuration file
//!
//! ```no_run
//! use idjag_gateway::{Config, Gateway, Plan};
//! use idjag_ops::listener::Shutdown;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let path = "examples/gateway/gateway.toml";
//! let config = Config::load(path)?; // the file, with IDJAG_GATEWAY__… overrides
//! let plan = Plan::from_config(&config)?; // every value parsed, every secret read
//! let gateway = Gateway::builder(plan) // opens [store]
//!     .reload_from(path, idjag_gateway::plan_file) // SIGHUP and file changes
//!     .build()
//!     .await?;
//! for warning in gateway.warnings() {
//!     eprintln!("warning: {warning}");
//! }
//! let shutdown = Shutdown::new();
//! shutdown.trigger_on_signals();
//! gateway.watch(Default::default(), shutdown.clone());
//! let (public, admin) = gateway.bind().await?;
//! gateway.serve(public, admin, shutdown).await;
//! # Ok(()) }
//! ```
//!
//! ## Contents
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the one TOML file, section by section: serde shapes and defaults only (see the commented `examples/gateway/gateway.toml`); environment overrides |
//! | [`plan`] | the one planning pass: every value parsed, every secret read, errors naming their key; the [`Plan`] the gateway runs |
//! | [`protocol`] | MCP over HTTP as plain functions: headers, JSON-RPC messages and errors, SSE framing, request ids |
//! | [`observe`] | one audit line per request (client address, trace id) to `idjag-ops`'s sinks, Prometheus metrics, token requests with spans and outcomes |
//! | [`inbound`] | the IdP token on each request: bearer rules, validation, identity cache; identity and teams |
//! | [`policy`] | access rules down to the tool, guardrails, approvals and revocations (on idjag-store) |
//! | [`upstream`] | the credential seam, the ID-JAG mode, the bridging modes, one HTTP client per transport setting, stdio upstreams' child processes |
//! | [`server`] | what every request gets on either listener (`idjag-ops`): client context, one audit line, bounded bodies |
//! | [`proxy`] | the Streamable HTTP reverse proxy: its order of checks, the per-request context, SSE, sessions |
//! | [`admin`] | the administrator API under `/admin/`: approvals, revocations, on the shared store; the admin page and each held call's status page |
//! | [`Gateway`] | the gateway built from a [`Plan`]: the store opened, public and admin routes, health, RFC 9728 metadata, serving, reload |
//! | `demo` (feature `demo`, off by default) | the one-command demo and its topology |
//! | [`cli`] | `serve`, `check-config [--print]`, `approvals` (list, show, approve, reject) and, with the `demo` feature, `demo` |
//!
//! Dependencies run one way, leaves first: `config` → `protocol` → `observe` → `inbound` →
//! `policy` → `upstream` → `server` → `plan` → `proxy` → `admin` → `gateway` → `demo` →
//! `cli`. A module uses only modules to its left (`scripts/module_order.py` checks it), so
//! configuration shapes know nothing of the runtime, and the plan is the one place where the
//! two meet.
//!
//! Public listener (`[server]`): `/mcp/{name}` per upstream and
//! `/.well-known/oauth-protected-resource/mcp/{name}` (RFC 9728: the route is the resource,
//! the IdP its authorization server), nothing else. Admin listener (`[admin]`, its own
//! address): `/healthz` (alive), `/readyz` (the store answering and the local copy of the
//! revocations within its staleness bound, IdP keys loaded, every upstream's credential setup
//! discovered, audit sinks healthy; 503 `not ready: <failing checks>` while not, and during
//! shutdown), `/metrics` (Prometheus; `[metrics]`) and, with an admin token, the admin API
//! under `/admin/`. Operations (TLS, reload, environment overrides, telemetry, audit sinks,
//! systemd): `docs/operations.md`; connecting Okta, Entra ID, Keycloak or Auth0:
//! `docs/gateway-idps.md`.
//!
//! ## Decisions (where the specifications leave a choice)
//!
//! - **Inbound tokens.** An OIDC ID token must be issued to the gateway's own client id at
//!   the IdP (`[idp.client] id`): the gateway presents it as the token-exchange subject, and
//!   the IdP requires exactly that audience (requirement TX-08). An RFC 9068 IdP access token
//!   (`typ` `at+jwt`) must name the route's resource or the gateway's public URL. Both are
//!   accepted by default; the ID-JAG mode needs the ID token (an access token cannot be a
//!   token-exchange subject, TX-05), and says so with a JSON-RPC error.
//! - **Agent.** `azp`, else the ID token's `aud` (the OIDC client the user signed in
//!   through); `client_id` for access tokens.
//! - **Policy refusals** of a JSON-RPC request (tool not allowed, the IdP's `access_denied`)
//!   are JSON-RPC errors with HTTP 200, so the client's session survives, with `data.reason`
//!   and, for the IdP, `data.oauth_error` ("blocked by your organization's policy", never a
//!   fallback to another credential). Refused notifications, GET and DELETE get 403. A
//!   missing scope is 403 with `WWW-Authenticate: Bearer error="insufficient_scope"` (requirement
//!   MCP-05, threat G16).
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
//! - **Configuration** is planned once ([`plan`]): every value is parsed and every secret
//!   read before anything is built, an error names its key, and the gateway is built from
//!   the plan alone, so what `check-config` accepts is what `serve` runs.
//! - **Stdio upstreams** (`[upstream.stdio]`): a command run as child processes over MCP's
//!   stdio transport, behind the same steps; the child's environment starts empty (an
//!   allow-list, configured values and the mode's credential in one variable), one process
//!   per user by default, every MCP session of the user mapped onto it; see
//!   [`upstream::stdio`].
//! - **Upstream HTTP clients** are shared: one per transport setting (today the connect and
//!   read timeouts), not one per route, so a thousand routes cost one client each distinct
//!   setting; token requests to the IdP and the authorization servers share one more.
//! - **Guardrails** come after the access rules (a tool the caller may not use is refused
//!   as such, not as a guardrail), argument rules before approval (a call the rules block is
//!   never held). Patterns are literal text with `*`, no regular expressions: linear-time,
//!   nothing to misconfigure.
//! - **State** (revocations, approvals, session bindings) lives in idjag-store (`[store]`):
//!   by default the embedded durable store (`idjag-gateway.redb` in the working directory),
//!   so a single node forgets nothing across restarts; several instances share one Redis
//!   and agree. No token or secret is stored (digests of session ids and principals). A
//!   configuration reload keeps the running store (`[store]` changes need a restart).
//! - **Approvals** are bound to the user and the agent, the upstream, the tool, the SHA-256
//!   of the arguments' RFC 8785 form computed from the exact text sent (non-I-JSON arguments
//!   are refused, `arguments_not_canonical`) and the version of the planned policy for that
//!   tool; they expire, and an approved call runs once, on whichever instance it lands.
//! - **Admin API** on the admin listener under `/admin/`, bearer admin token (constant-time
//!   compare); not mounted without `[admin]` and a token; never on the public listener.
//! - **Revocation** is checked right after inbound authentication, against a local copy of
//!   the store's revocations (no network per request), and ends open streams (`event:
//!   close`, `{"reason":"revoked"}`) on every instance; cached validations and upstream
//!   tokens of the principal are dropped on every instance (the shared ID-JAG token provider
//!   is keyed by user token, so it is cleared whole). When the copy is older than `[store]
//!   max_staleness_secs` the gateway fails closed: 503, JSON-RPC code -32036, reason
//!   `revocation_state_stale`, and streams end with that reason, until the store answers.
//! - **Metrics** are unauthenticated by default, like `/healthz` (labels hold no user, token
//!   or argument); `[metrics] require_admin_token` asks for the admin token.
//! - **`Content-Length` with `Transfer-Encoding`**: hyper frames by the chunked encoding,
//!   drops the length and closes the connection (RFC 9112 §6.3), so nothing can be smuggled;
//!   the gateway never sees both headers and cannot answer 400 (threat G08 asks for
//!   400; the tests pin hyper's behaviour instead).
//!
//! ## Security
//!
//! - No upstream request is sent before authentication, revocation, session, body, message,
//!   policy, guardrail and approval checks pass, and none when they cannot be answered (the
//!   store down, the revocations stale: 503); the upstream gets a credential the gateway
//!   holds for that upstream only, never the inbound token (threat G03; except the
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
//! - The `demo` feature (off by default) compiles in `idjag-idp`'s development users, which
//!   mint ID tokens without a login: production builds leave it off, and their `--help` has
//!   no `demo` command.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admin;
pub mod authorization_server;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
#[cfg_attr(docsrs, doc(cfg(feature = "demo")))]
pub mod demo;
mod gateway;
pub mod inbound;
pub mod observe;
pub mod plan;
pub mod policy;
pub mod protocol;
pub mod proxy;
pub mod server;
pub mod upstream;

pub use config::{Config, ConfigError, LoadError};
pub use gateway::{BuildError, Gateway, GatewayBuilder, Planner, plan_file};
pub use plan::{Plan, Warning};
