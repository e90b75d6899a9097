//! `idjag-gateway` end to end, over real sockets on loopback: the demo topology (the
//! embedded IdP, a resource AS, an MCP server and the gateway) started in process, every
//! gateway case of the threat catalogue named after its id, the governance features, the
//! planning pass and its golden files, and the binary.
//!
//! | module      | what                                                                |
//! |-------------|---------------------------------------------------------------------|
//! | `authorization_server` | the gateway's own authorization server: sign-in, codes, refresh, registration, metadata documents, ID-JAG ingress, egress renewal; G27 to G35 |
//! | `demo`      | a full `demo` run; its audit log (one line per MCP request, fields, no secret) |
//! | `inbound`   | G01, G02, G04, G05, G09 (token size), G22, G23, G24                 |
//! | `http`      | G06, G07, G08, G09 (body, head), G10, G11, G12, G13, G15, G25      |
//! | `mcp`       | G03, G14, G16, G17, G18, G26; RBAC allow, deny, `tools/list` filtering |
//! | `streaming` | SSE event by event, G19, G20, G21                                   |
//! | `bridging`  | each bridging mode's exact credential; missing secrets; G31 (passthrough audience) |
//! | `approvals` | the `approvals` command on the binary, the admin page (sign-in, CSRF, Origin, headers, escaping), the status page, the webhook, URL-mode elicitation |
//! | `browser`   | the admin page in headless Chromium: sign in, approve, the retry runs once; a forged POST refused; screenshots |
//! | `sign_in_pages` | the sign-in flow's pages in headless Chromium: the IdP's login page to the client's redirect URI with code and `state`; every error page (text, no script, policy, no secret, no console error); screenshots |
//! | `governance`| guardrails, the approval round trip, revocation, metrics, request ids |
//! | `faults`    | resource AS down; every request answered and audited once           |
//! | `plan`      | the planning pass: errors naming their key, warnings, shared HTTP clients |
//! | `golden`    | the normalized plan of each shipped configuration, against its golden file |
//! | `cli`       | the binary: `demo`, `check-config` (and its store ping), `serve` and SIGTERM |
//! | `serve`     | `demo --serve` as a process: the info file, metadata, a trade at the IdP, a route's 401, SIGTERM |
//! | `limits`    | G34: per user, agent and upstream limits (429, `Retry-After`, audit line) |
//! | `caps`      | G37, G38: per-principal caps in the store on calls waiting for approval and on sessions (429, freed by a decision or a DELETE, shared by processes on one Redis) |
//! | `smuggling` | G27 to G29 through the gateway (smuggled bodies reach nothing upstream; the differential property test), G32 (repeated single-valued headers), G33 (`tools/list` answers under any media type, spelling or coding) |
//! | `stdio`     | stdio upstreams with real npm MCP servers: policy, per-user processes, their environment, idle and crash lifecycle, plan errors |
//! | `shared_state` | gateway processes sharing a real Redis (sessions, revocations, approvals across instances; store faults) or an embedded store across `kill -9` |
//!
//! Every case applies, with these scale-downs, each explained in its test:
//! - G12 asks for 10 000 idle SSE streams; the test holds the gateway at a limit of 8 (each
//!   stream costs four sockets in one process, on a shared 2-core machine) and proves that the
//!   limit, not memory, bounds the streams: the ninth request gets 503 and nothing reaches the
//!   upstream.
//! - G23 asks for key rotation under 1 000 requests/s; the test rotates under continuous load
//!   from 8 concurrent clients (what a debug build on this machine sustains) and counts 401s
//!   and key fetches.
//! - G24 runs the gateway's inbound authenticator with an injected clock (the full gateway
//!   also asks the IdP, whose clock is real).

mod chromium;
mod instances;
mod support;

mod approvals;
mod authorization_server;
mod bridging;
mod browser;
mod caps;
mod cli;
mod demo;
mod differential;
mod faults;
mod golden;
mod governance;
mod http_layer;
mod inbound;
mod limits;
mod mcp;
mod operations;
mod plan;
mod serve;
mod shared_state;
mod sign_in_pages;
mod smuggling;
mod stdio;
mod streaming;
