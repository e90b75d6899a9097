//! The Streamable HTTP reverse proxy: one route per upstream, `/mcp/{name}`.
//!
//! Each request goes through these steps, in this order; the first that fails answers, and
//! nothing is sent upstream before step 11:
//!
//! 1. a concurrency permit (503 `Retry-After: 1` when none is left; SSE streams hold theirs
//!    until they end, so memory stays bounded);
//! 2. `Origin`, when present, must be an allowed origin (403; DNS-rebinding protection);
//! 3. the route must name a configured upstream (404) and the method be POST, GET or
//!    DELETE (405);
//! 4. no single-valued MCP header (`Mcp-Session-Id`, `Last-Event-ID`,
//!    `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) sent twice (400, reason
//!    `repeated_header`): the value checked is the value forwarded;
//! 5. inbound authentication (401 with `WWW-Authenticate` and the route's RFC 9728
//!    metadata, or 400 for a malformed header) — see [`crate::inbound`]; a revoked user or
//!    client gets 403 (reason `revoked`), and every request 503 (reason
//!    `revocation_state_stale`) while the local copy of the revocations is past its
//!    staleness bound — see [`crate::policy::revocation`];
//!    then the caller's per-principal limits (user, agent, upstream: rate, requests in
//!    flight, open GET streams), 429 with `Retry-After` — see [`crate::policy::fairness`];
//! 6. `Mcp-Session-Id`, when present, must be bound to this user, on any instance (404; 503
//!    `store_unavailable` when the store cannot tell) — see [`session`];
//! 7. the POST body, within the size limit (413) and the body timeout (408);
//! 8. one JSON-RPC 2.0 message, read by the strict reader of
//!    [`crate::protocol::jsonrpc`] (400 with the reader's code, its reason in the audit
//!    line), consistent with the 2026-07-28 `Mcp-Method` and `Mcp-Name` headers when they
//!    are present (400, that revision's `HeaderMismatch` `-32020` under the request's `id`);
//!    then `MCP-Protocol-Version`, when present, a supported version (400 under the
//!    request's `id`: MCP 2026-07-28's `UnsupportedProtocolVersionError` `-32022` for a
//!    request declaring its version in `_meta`, else `-32000` as the MCP SDKs' servers
//!    answer);
//! 9. authorization — see [`crate::policy::access`]: a refused request gets a JSON-RPC error (HTTP 200
//!    for a request with an `id`, so the client's session survives; 403 otherwise; 403 with
//!    `insufficient_scope` for a missing scope); then, for a `tools/call`, the tool's
//!    argument rules ([`crate::policy::guardrails`]: a JSON-RPC error naming the rule) and, for an
//!    approval-required tool, the approval gate ([`crate::policy::approval`]: held calls get a
//!    JSON-RPC error with the approval id; an approved call runs once; 503
//!    `store_unavailable` when the store cannot answer);
//! 10. the upstream credential — see [`crate::upstream`];
//! 11. the upstream call: allow-listed headers, the mode's credential headers and
//!     `X-Request-Id` (the client's when it is a valid id, else a new one); a `401`
//!     refreshes the credential and retries once (the upstream's bearer check refused it,
//!     so the request was not processed); nothing else is retried
//!     (a `tools/call` never runs twice); a connection failure or a 5xx is a 502 JSON-RPC
//!     error, a timeout a 504;
//! 12. the answer, streamed: SSE event by event ([`stream`]), JSON as it comes, except
//!     `tools/list` answers, filtered to the tools the caller may use.
//!
//! Every request writes one audit line ([`crate::observe::audit`]).

//!
//! | module | job |
//! |---|---|
//! | `handler` | the axum handler ([`handle`]): permit, request id, audit line; steps 2 to 8 |
//! | `body` | the POST body and its one JSON-RPC message (steps 7, 8) |
//! | `context` | the per-request context: one request once its caller and message are known (steps 9, 10) |
//! | `forward` | the upstream call and the answer (steps 11, 12) |
//! | `stdio` | step 11 for a stdio upstream: the caller's process, its answer as an HTTP response |
//! | `refusal` | the answers the gateway gives itself: JSON-RPC errors, bearer challenges |
//! | [`stream`] | SSE forwarding: event by event, filtering, final events |
//! | [`review`] | notifications of held calls, admin page sign-ins, URL-mode elicitation |
//! | [`session`] | `Mcp-Session-Id` bound to the user who created it |
//! | [`state`] | [`GatewayState`]: everything shared across requests |

mod body;
mod context;
mod forward;
mod handler;
pub(crate) mod refusal;
pub mod review;
pub mod session;
pub mod state;
mod stdio;
pub mod stream;

pub use handler::handle;
pub use state::GatewayState;
