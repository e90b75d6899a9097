//! `idjag-gateway demo` (feature `demo`): the whole ID-JAG flow on loopback, in one command.
//!
//! [`run`] starts a [`Topology`] (the embedded IdP with development users and a policy, a
//! resource AS, the rmcp "notes" MCP server that accepts only that AS's access tokens, and
//! the gateway in front of it), then plays an agent and prints each step: the sign-in, the
//! token exchange at the IdP, the redemption at the resource AS, the call the MCP server
//! receives, and the gateway's audit line. Every step checks its outcome; [`run`] fails on
//! the first surprise, so `demo` exits non-zero unless the whole flow behaved.
//!
//! Then a bridged server: the "wiki", which knows nothing of ID-JAG and takes a static API
//! key, with a guardrail (a search for passwords is blocked) and an approval (`publish` is
//! held until the demo, as administrator, approves it through the admin API; the approved
//! call runs once).
//!
//! Then the gateway as its routes' own authorization server: a standard OAuth MCP client
//! registers (RFC 7591), signs alice in with the authorization code flow and PKCE (the
//! browser picks her on idjag-idp's development login page) and calls a tool through the
//! ID-JAG upstream with the gateway's token; an EMA client gets an ID-JAG for the gateway
//! from the IdP, redeems it at the gateway (RFC 7523) and reaches the bridged wiki.
//!
//! With `--serve` ([`serve()`]) nothing is played: the same stack, with the gateway's
//! authorization server, stays up on six consecutive loopback ports (from
//! [`DEFAULT_BASE_PORT`], or `--port`) until SIGINT or SIGTERM, and prints every URL, the
//! clients and their secrets and a ready ID token per user; `--info` writes the same facts as
//! JSON ([`StackInfo`]) for scripts and the SDK interop clients.
//!
//! The users: alice (group `eng` → team engineering: every tool but `delete_*`), bob (group
//! `sales` → team sales: `list_notes` only) and carol (group `eng`, but the IdP's policy
//! does not let her reach the notes server at all).

mod agent;
pub mod browser;
mod echo;
mod flow;
mod info;
pub mod login;
mod notes;
mod serve;
mod topology;
mod wiki;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use agent::{Agent, PROTOCOL_VERSION, Reply};
pub use browser::{Browser, Landing, OAuthApp, Page};
pub use echo::{EchoServer, echo};
pub use flow::{FlowEvent, FlowLog, Place, claims_for_display};
pub use info::{
    EmaClientInfo, GatewayAsInfo, GatewayClientInfo, GatewayInfo, INFO_VERSION, IdpInfo,
    McpServerInfo, ResourceAsInfo, RouteInfo, StackInfo, UserInfo,
};
pub use login::{LoginHooks, Tamper};
pub use notes::{Note, NoteBook, NotesServer};
pub use serve::{DEFAULT_BASE_PORT, SERVED_ID_TOKEN_LIFETIME, ServeOptions, serve};
pub use topology::{
    ConfigHook, EMA_CLIENT, GATEWAY_AT_AS, GATEWAY_CLIENT, MEMORY_STORE, PUBLIC_CLIENT,
    PUBLIC_CLIENT_REDIRECT, SCOPES, Topology, TopologyOptions, UpstreamKind,
};
pub use wiki::WikiLog;

use crate::observe::audit::{AuditRecord, AuditSink};
use crate::observe::sinks::{LineSink, MemorySink, Tee};

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A server could not be started.
    #[error("setup failed: {0}")]
    Setup(String),
    /// An HTTP exchange failed.
    #[error("HTTP request failed: {0}")]
    Http(String),
    /// A step did not give the expected outcome.
    #[error("step {step} failed: {what}")]
    Step {
        /// The step.
        step: usize,
        /// What was expected.
        what: String,
    },
}

impl DemoError {
    pub(crate) fn setup(error: impl std::fmt::Display) -> Self {
        Self::Setup(error.to_string())
    }

    pub(crate) fn io(error: std::io::Error) -> Self {
        Self::Setup(error.to_string())
    }

    pub(crate) fn http(error: reqwest::Error) -> Self {
        Self::Http(error.without_url().to_string())
    }
}

/// The audit log in a file (JSON lines), through idjag-ops' audit pipeline.
pub(crate) struct FileAudit {
    audit: Arc<idjag_ops::audit::Audit>,
    sink: Arc<dyn AuditSink>,
}

impl FileAudit {
    pub(crate) async fn start(path: &std::path::Path) -> Result<Self, DemoError> {
        use idjag_ops::audit::{Audit, AuditConfig, FileSink, SinkConfig};
        let config = AuditConfig::with_sinks(vec![SinkConfig::File(FileSink::new(path))]);
        let audit = Arc::new(Audit::start(&config).await.map_err(DemoError::setup)?);
        let sink = Arc::new(LineSink::new(audit.clone(), config.on_full));
        Ok(Self { audit, sink })
    }

    /// The gateway's sink writing to the file.
    pub(crate) fn sink(&self) -> Arc<dyn AuditSink> {
        self.sink.clone()
    }

    /// Waits (at most 5 s) until every line is written.
    pub(crate) async fn flush(&self) {
        self.audit.flush(std::time::Duration::from_secs(5)).await;
    }
}

/// Options of [`run`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DemoOptions {
    /// Also write the audit log to this file (JSON lines).
    pub audit_log: Option<PathBuf>,
}

/// What a successful run did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DemoSummary {
    /// MCP requests the agents sent to the gateway.
    pub mcp_requests: usize,
    /// Token exchanges at the IdP.
    pub token_exchanges: u64,
    /// Redemptions at the resource AS.
    pub redemptions: u64,
    /// The audit records.
    pub audit: Vec<AuditRecord>,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

struct Script<'a> {
    out: &'a mut (dyn Write + Send),
    topology: &'a Topology,
    memory: MemorySink,
    printed_audit: usize,
    step: usize,
    sent: usize,
    inbound: Vec<[u8; 32]>,
}

impl Script<'_> {
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    fn say_error(&mut self, reply: &Reply) {
        let error = reply.error().map(Value::to_string).unwrap_or_default();
        let _ = writeln!(self.out, "    JSON-RPC error: {error}");
    }

    fn step(&mut self, title: &str) {
        self.step += 1;
        let _ = writeln!(self.out, "\n[{}] {title}", self.step);
    }

    fn check(&self, ok: bool, what: &str) -> Result<(), DemoError> {
        if ok {
            Ok(())
        } else {
            Err(DemoError::Step {
                step: self.step,
                what: what.to_owned(),
            })
        }
    }

    /// Prints what the IdP, the AS and the MCP server saw, and the new audit lines.
    fn show_flow(&mut self) -> Vec<FlowEvent> {
        let events = self.topology.flow.drain();
        for e in &events {
            let who = match e.place {
                Place::Idp => "IdP          token exchange (RFC 8693)",
                Place::ResourceAs => "Resource AS  JWT-bearer grant (RFC 7523)",
                Place::McpServer => "MCP server   received",
            };
            let _ = writeln!(self.out, "    {who} -> HTTP {}: {}", e.status, e.summary);
        }
        let records = self.memory.records();
        for record in &records[self.printed_audit..] {
            let line = serde_json::to_string(record).unwrap_or_default();
            let _ = writeln!(self.out, "    audit        {line}");
        }
        self.printed_audit = records.len();
        events
    }

    fn agent(&mut self, user: Option<&str>) -> Result<Agent, DemoError> {
        let token = user.map(|u| self.topology.id_token(u)).transpose()?;
        if let Some(token) = &token {
            self.remember(token);
        }
        Agent::new(&self.topology.route_url, token.as_ref())
    }

    fn remember(&mut self, token: &idjag_core::IdToken) {
        self.inbound
            .push(Sha256::digest(format!("Bearer {}", token.secret()).as_bytes()).into());
    }

    fn done(&mut self, agent: &Agent) {
        self.sent += agent.sent;
    }
}

fn text_of(reply: &Reply) -> String {
    reply
        .result()
        .and_then(|r| r.pointer("/content/0/text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn tool_names(reply: &Reply) -> Vec<String> {
    reply
        .result()
        .and_then(|r| r.get("tools"))
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the demo, printing to `out`. See the [module docs](self).
pub async fn run(
    options: DemoOptions,
    out: &mut (dyn Write + Send),
) -> Result<DemoSummary, DemoError> {
    let started = Instant::now();
    let memory = MemorySink::default();
    let mut sinks: Vec<Arc<dyn AuditSink>> = vec![Arc::new(memory.clone())];
    let mut file_sink = None;
    if let Some(path) = &options.audit_log {
        let audit = FileAudit::start(path).await?;
        sinks.push(audit.sink());
        file_sink = Some(audit);
    }
    let mut topology = Topology::start(TopologyOptions {
        audit: Some(Arc::new(Tee(sinks))),
        authorization_server: true,
        ..TopologyOptions::default()
    })
    .await?;
    let result = script(&mut Script {
        out,
        topology: &topology,
        memory: memory.clone(),
        printed_audit: 0,
        step: 0,
        sent: 0,
        inbound: Vec::new(),
    })
    .await;
    topology.shutdown().await?;
    if let Some(audit) = &file_sink {
        audit.flush().await;
    }
    let sent = result?;
    let summary = DemoSummary {
        mcp_requests: sent,
        token_exchanges: topology.gateway.exchange_count(),
        redemptions: topology.gateway.redemption_count(),
        audit: memory.records(),
        elapsed: started.elapsed(),
    };
    let _ = writeln!(
        out,
        "\nDone in {:.2} s: {} MCP requests through the gateway, {} audit lines, {} token exchanges, {} redemptions.{}",
        summary.elapsed.as_secs_f64(),
        summary.mcp_requests,
        summary.audit.len(),
        summary.token_exchanges,
        summary.redemptions,
        options
            .audit_log
            .as_ref()
            .map(|p| format!(" Audit log: {}", p.display()))
            .unwrap_or_default(),
    );
    let mcp_lines = summary
        .audit
        .iter()
        .filter(|r| {
            let method = r.method.as_deref().unwrap_or_default();
            // The authorization server's own lines (oauth/...) are not MCP requests.
            method != "admin" && !method.starts_with("oauth/") && r.path.is_none()
        })
        .count();
    if mcp_lines != summary.mcp_requests {
        return Err(DemoError::Step {
            step: 0,
            what: format!(
                "{mcp_lines} audit lines for {} requests",
                summary.mcp_requests
            ),
        });
    }
    Ok(summary)
}

async fn script(s: &mut Script<'_>) -> Result<usize, DemoError> {
    let t = s.topology;
    s.say("idjag-gateway demo: MCP Enterprise-Managed Authorization with ID-JAG, on loopback\n");
    s.say(&format!("  IdP (idjag-idp, dev users)       {}", t.idp));
    s.say(&format!(
        "  Resource AS (idjag-resource)     {}",
        t.resource_as
    ));
    s.say(&format!(
        "  MCP server \"notes\" (rmcp)        {}  (accepts only the AS's access tokens)",
        t.mcp_url
    ));
    s.say(&format!(
        "  Gateway (idjag-gateway)          {}",
        t.route_url
    ));
    s.say("  Users: alice (eng), bob (sales), carol (eng; the IdP's policy refuses her)");
    s.say(
        "  Gateway policy: engineering may use every tool but delete_*; sales may only list_notes",
    );

    s.step("alice signs in at the IdP; the agent holds her ID token");
    let token = t.id_token("alice")?;
    let claims = claims_for_display(token.secret()).unwrap_or_default();
    s.say(&format!(
        "    ID token: iss={} sub={} aud={} groups={}",
        claims.get("iss").and_then(Value::as_str).unwrap_or("-"),
        claims.get("sub").and_then(Value::as_str).unwrap_or("-"),
        claims.get("aud").and_then(Value::as_str).unwrap_or("-"),
        claims
            .get("groups")
            .map(Value::to_string)
            .unwrap_or_default(),
    ));
    s.remember(&token);
    let mut alice = Agent::new(&t.route_url, Some(&token))?;

    s.step("alice's agent calls initialize through the gateway");
    let reply = alice.initialize().await?;
    let events = s.show_flow();
    let server = reply
        .result()
        .and_then(|r| r.pointer("/serverInfo/name"))
        .and_then(Value::as_str);
    s.check(
        reply.status == 200 && server == Some("notes"),
        "initialize answered by the notes server",
    )?;
    s.check(alice.session().is_some(), "a session id")?;
    let places: Vec<Place> = events.iter().map(|e| e.place).collect();
    s.check(
        places == [Place::Idp, Place::ResourceAs, Place::McpServer],
        "one token exchange, one redemption, one upstream call",
    )?;
    s.say("    -> the gateway exchanged alice's ID token for an ID-JAG, redeemed it for an access token, and called the server with it");
    let reply = alice.notify("notifications/initialized").await?;
    s.check(reply.status == 202, "notifications/initialized accepted")?;
    s.show_flow();

    s.step("tools/list through the gateway (the token is cached: no new exchange)");
    let reply = alice.request("tools/list", json!({})).await?;
    let events = s.show_flow();
    let tools = tool_names(&reply);
    s.say(&format!(
        "    alice sees {tools:?}; delete_all_notes is hidden by the gateway policy"
    ));
    s.check(
        tools == ["list_notes", "add_note"] || tools == ["add_note", "list_notes"],
        "two visible tools",
    )?;
    s.check(
        events.iter().all(|e| e.place == Place::McpServer),
        "no new token exchange",
    )?;

    s.step("tools/call add_note (write) as alice");
    let reply = alice
        .call_tool("add_note", json!({ "text": "Ship the gateway" }))
        .await?;
    s.show_flow();
    let text = text_of(&reply);
    s.say(&format!("    result: {text}"));
    s.check(
        text == "Note 1 added by alice.",
        "the note is added, with alice as its author",
    )?;

    s.step("tools/call list_notes (read) as alice");
    let reply = alice.call_tool("list_notes", json!({})).await?;
    s.show_flow();
    let text = text_of(&reply);
    s.say(&format!("    result: {text}"));
    s.check(
        text.contains("Ship the gateway (by alice)"),
        "the note is listed",
    )?;

    s.step("alice calls delete_all_notes: denied by the gateway, nothing sent upstream");
    let reply = alice.call_tool("delete_all_notes", json!({})).await?;
    let events = s.show_flow();
    let reason = reply.error_reason();
    s.say_error(&reply);
    s.check(
        reason == Some("tool_denied") && events.is_empty(),
        "refused by the gateway alone",
    )?;
    s.check(
        t.notes.lock().map(|n| n.len()).unwrap_or(0) == 1,
        "the note is still there",
    )?;
    s.done(&alice);

    s.step("bob (team sales) signs in and calls add_note: denied by the gateway's tool policy");
    let mut bob = s.agent(Some("bob"))?;
    let reply = bob.initialize().await?;
    s.check(reply.status == 200, "bob may initialize")?;
    let reply = bob
        .call_tool("add_note", json!({ "text": "Discount everything" }))
        .await?;
    s.show_flow();
    let reason = reply.error_reason();
    s.say_error(&reply);
    s.check(
        reason == Some("tool_not_allowed"),
        "add_note refused for sales",
    )?;
    s.done(&bob);

    s.step("carol signs in; the IdP's policy refuses the token exchange");
    let mut carol = s.agent(Some("carol"))?;
    let reply = carol.initialize().await?;
    let events = s.show_flow();
    let error = reply.error().cloned().unwrap_or_default();
    s.say_error(&reply);
    s.check(
        error.pointer("/data/oauth_error").and_then(Value::as_str) == Some("access_denied"),
        "blocked by the IdP with access_denied",
    )?;
    s.check(
        events.iter().all(|e| e.place == Place::Idp) && !events.is_empty(),
        "no redemption and no upstream call",
    )?;
    s.done(&carol);

    s.step("an agent without a token: 401 with the gateway's RFC 9728 metadata");
    let mut anonymous = s.agent(None)?;
    let reply = anonymous.initialize().await?;
    s.show_flow();
    let challenge = reply
        .header("www-authenticate")
        .unwrap_or_default()
        .to_owned();
    s.say(&format!(
        "    HTTP {} WWW-Authenticate: {challenge}",
        reply.status
    ));
    s.check(
        reply.status == 401 && challenge.contains("resource_metadata="),
        "a bearer challenge",
    )?;
    s.done(&anonymous);

    s.step("alice searches the wiki, a server without ID-JAG: the gateway sends its API key");
    let token = t.id_token("alice")?;
    s.remember(&token);
    let mut wiki = Agent::new(&t.wiki_route_url, Some(&token))?;
    let reply = wiki
        .call_tool("search", json!({ "query": "gateway" }))
        .await?;
    s.show_flow();
    let text = text_of(&reply);
    s.say(&format!("    result: {text}"));
    let seen = t.wiki.requests();
    s.check(
        text.starts_with("2 pages match") && seen == [(true, false)],
        "the wiki got its key (x-api-key) and no Authorization header",
    )?;
    s.say("    -> same sign-in, same policy and audit; upstream credential: static key from a secret file");

    s.step("a guardrail blocks a search for passwords before it reaches the wiki");
    let reply = wiki
        .call_tool("search", json!({ "query": "admin password" }))
        .await?;
    s.show_flow();
    s.say_error(&reply);
    let rule = reply
        .error()
        .and_then(|e| e.pointer("/data/rule"))
        .and_then(Value::as_str);
    s.check(
        reply.error_reason() == Some("argument_blocked")
            && rule == Some("no-credential-hunting")
            && t.wiki.requests().len() == 1,
        "blocked by the rule, nothing sent upstream",
    )?;

    s.step("publish needs an administrator's approval: held, approved, then run exactly once");
    let page = json!({ "page": "Launch plan" });
    let reply = wiki.call_tool("publish", page.clone()).await?;
    s.show_flow();
    s.say_error(&reply);
    let approval = reply
        .error()
        .and_then(|e| e.pointer("/data/approval_id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    s.check(
        reply.error_reason() == Some("approval_held") && !approval.is_empty(),
        "held with an approval id",
    )?;
    let decided = reqwest::Client::new()
        .post(format!(
            "{}/admin/approvals/{approval}/approve",
            t.admin_url
        ))
        .bearer_auth(t.admin_token.secret())
        .send()
        .await
        .map_err(DemoError::http)?;
    s.say(&format!(
        "    admin POST /admin/approvals/{approval}/approve -> HTTP {}",
        decided.status().as_u16()
    ));
    s.check(decided.status().is_success(), "approved")?;
    let reply = wiki.call_tool("publish", page.clone()).await?;
    s.show_flow();
    s.say(&format!("    retry: {}", text_of(&reply)));
    s.check(
        text_of(&reply) == "Page \"Launch plan\" published",
        "the approved call runs",
    )?;
    let reply = wiki.call_tool("publish", page).await?;
    s.show_flow();
    s.say_error(&reply);
    s.check(
        reply.error_reason() == Some("approval_held") && t.wiki.requests().len() == 2,
        "a second identical call is held again: the approval ran once",
    )?;
    s.done(&wiki);

    s.step(
        "a standard OAuth MCP client signs in through the gateway, its own authorization server",
    );
    // As the MCP SDKs do: RFC 9728 metadata names the gateway; RFC 7591 registration;
    // authorization code + PKCE, the user picking herself on the IdP's development login page.
    let redirect = "http://127.0.0.1/callback";
    let app = OAuthApp::register(&t.gateway_url, redirect).await?;
    let landing = Browser::new()
        .sign_in(
            &app.authorization_url(&t.gateway_url, &t.route_url, "demo-state"),
            "alice",
            redirect,
        )
        .await?;
    let code = landing.param("code").unwrap_or_default();
    s.check(
        !code.is_empty() && landing.param("state").as_deref() == Some("demo-state"),
        "a code back at the client, with its state",
    )?;
    let (status, tokens) = app.redeem(&t.gateway_url, &code).await?;
    s.check(
        status == 200 && tokens["refresh_token"].is_string(),
        "the gateway's access and refresh tokens",
    )?;
    let access = tokens["access_token"].as_str().unwrap_or_default();
    s.say(&format!(
        "    registered client {}..., signed in as alice at the IdP, code redeemed at {}/oauth/token",
        app.client_id.chars().take(16).collect::<String>(),
        t.gateway_url
    ));
    let mut oauth = Agent::with_bearer(&t.route_url, Some(access))?;
    let reply = oauth.initialize().await?;
    s.check(reply.error().is_none(), "initialize")?;
    let reply = oauth.call_tool("list_notes", json!({})).await?;
    s.show_flow();
    s.say(&format!("    result: {}", text_of(&reply)));
    s.check(
        reply.error().is_none()
            && s.memory.records().last().and_then(|r| r.agent.as_deref())
                == Some(app.client_id.as_str()),
        "the tool answers through the ID-JAG upstream; the audit line names the MCP client",
    )?;
    s.say("    -> the gateway's token never leaves it: the upstream got a token of the resource AS, obtained with alice's IdP sign-in kept sealed in the gateway");
    s.done(&oauth);

    s.step("an EMA client brings an ID-JAG from the IdP, redeems it at the gateway, and reaches the wiki");
    let id_token = t
        .users
        .id_token(
            "alice",
            &idjag_core::ClientId::new(EMA_CLIENT).map_err(DemoError::setup)?,
        )
        .map_err(DemoError::setup)?;
    s.remember(&id_token);
    let http = reqwest::Client::new();
    let exchanged: Value = http
        .post(format!("{}/token", t.idp))
        .basic_auth(EMA_CLIENT, Some(t.ema_secret.secret()))
        .form(&[
            ("grant_type", idjag_core::wire::GRANT_TYPE_TOKEN_EXCHANGE),
            ("requested_token_type", idjag_core::wire::TOKEN_TYPE_ID_JAG),
            ("audience", t.gateway_url.as_str()),
            ("resource", t.wiki_route_url.as_str()),
            ("subject_token", id_token.secret()),
            ("subject_token_type", idjag_core::wire::TOKEN_TYPE_ID_TOKEN),
        ])
        .send()
        .await
        .map_err(DemoError::http)?
        .json()
        .await
        .map_err(DemoError::http)?;
    s.show_flow();
    let jag = exchanged["access_token"].as_str().unwrap_or_default();
    s.check(!jag.is_empty(), "an ID-JAG for the gateway")?;
    let redeemed: Value = http
        .post(format!("{}/oauth/token", t.gateway_url))
        .basic_auth(EMA_CLIENT, Some(t.ema_secret.secret()))
        .form(&[
            ("grant_type", idjag_core::wire::GRANT_TYPE_JWT_BEARER),
            ("assertion", jag),
        ])
        .send()
        .await
        .map_err(DemoError::http)?
        .json()
        .await
        .map_err(DemoError::http)?;
    let access = redeemed["access_token"].as_str().unwrap_or_default();
    s.check(
        !access.is_empty(),
        "the gateway's access token for the wiki route",
    )?;
    s.say("    IdP token exchange (RFC 8693) -> ID-JAG for the gateway; gateway JWT-bearer grant (RFC 7523) -> its access token");
    let mut ema = Agent::with_bearer(&t.wiki_route_url, Some(access))?;
    let reply = ema
        .call_tool("search", json!({ "query": "gateway" }))
        .await?;
    s.show_flow();
    s.check(
        text_of(&reply).starts_with("2 pages match")
            && s.memory.records().last().and_then(|r| r.agent.as_deref()) == Some(EMA_CLIENT),
        "the bridged wiki answers; the audit line names the EMA client",
    )?;
    s.say(&format!("    result: {}", text_of(&reply)));
    s.done(&ema);

    s.step("the MCP server never saw a user's IdP token");
    let seen = t.flow.upstream_authorizations();
    s.check(
        !seen.is_empty() && s.inbound.iter().all(|token| !seen.contains(token)),
        "only gateway-obtained tokens upstream",
    )?;
    s.say(&format!(
        "    {} upstream calls, each with an access token of the resource AS",
        seen.len()
    ));
    Ok(s.sent)
}
