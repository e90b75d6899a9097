//! The audit log: one JSON line per MCP request (threat G26): the identity chain, never a
//! token.
//!
//! Fields, in order: `time` (RFC 3339, UTC, milliseconds), `request_id` (also sent upstream
//! and to the client as `X-Request-Id`), `http_method`, `client_address` (the socket peer, or
//! the client behind `[server] trusted_proxies`), `trace_id` (the request's OpenTelemetry
//! trace, also in its log lines), `path` (for requests outside `/mcp/`), `upstream`, `user` (`sub`),
//! `issuer`, `teams`, `agent`, `method` (JSON-RPC), `tool`, `arguments` (per
//! [`ArgumentMode`](crate::config::ArgumentMode)), `decision` (`allow`, `deny` or `error`),
//! `reason` (a stable code), `status` (HTTP status to the client), `upstream_status`,
//! `latency_ms` (until the response head), `approval_id` (a call held for approval).
//! Administrator actions are audit lines too, with `method` `admin` and reason
//! `approval_granted`, `approval_rejected`, `revoked` or `revocation_lifted`. Absent values
//! are `null`. No field ever holds a token, a secret or a session id: identities come from
//! verified claims, and tool arguments are recorded only as the configured rule allows.
//!
//! Each request writes its line exactly once, also when the client goes away mid-request
//! (`reason` `client_closed`): [`AuditEntry`] writes on drop. Requests outside the MCP routes
//! (discovery, the admin API, unknown paths, refused bodies) get theirs from
//! [`crate::server::audit_other_requests`]; only health probes and answered metric scrapes
//! are not audited (they carry no identity and decide nothing).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// The decision recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Forwarded upstream.
    Allow,
    /// Refused by the gateway (authentication, policy, limits).
    Deny,
    /// Accepted but failed (upstream or credential failure).
    Error,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// When the request arrived (RFC 3339, UTC).
    pub time: String,
    /// The gateway's request id.
    pub request_id: String,
    /// `POST`, `GET` or `DELETE`.
    pub http_method: String,
    /// The client's address (see `[server] trusted_proxies`).
    pub client_address: Option<IpAddr>,
    /// The request's trace id (32 hex digits).
    pub trace_id: Option<String>,
    /// The path, for requests outside the MCP routes (`None` for `/mcp/{name}`).
    pub path: Option<String>,
    /// The upstream's name.
    pub upstream: Option<String>,
    /// The user (`sub`).
    pub user: Option<String>,
    /// The IdP.
    pub issuer: Option<String>,
    /// The user's teams.
    pub teams: Vec<String>,
    /// The agent.
    pub agent: Option<String>,
    /// The JSON-RPC method.
    pub method: Option<String>,
    /// The tool of a `tools/call`.
    pub tool: Option<String>,
    /// The recorded arguments.
    pub arguments: Option<Value>,
    /// The decision.
    pub decision: Outcome,
    /// Why.
    pub reason: String,
    /// The HTTP status sent to the client.
    pub status: u16,
    /// The upstream's HTTP status.
    pub upstream_status: Option<u16>,
    /// Milliseconds until the response head.
    pub latency_ms: f64,
    /// The approval a held, approved or rejected call is bound to.
    pub approval_id: Option<String>,
}

/// Where audit records go.
pub trait AuditSink: fmt::Debug + Send + Sync {
    /// Records one line. Never waits for a sink.
    fn record(&self, record: &AuditRecord);

    /// Whether requests may proceed: `false` when the sinks cannot take lines and the
    /// configuration says to fail closed then (`[audit] on_full = "fail_closed"`).
    fn accepting(&self) -> bool {
        true
    }
}

/// The client address and trace id of the request being handled, set by
/// [`crate::server::client_context`] for every request on either listener.
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    /// The client's address.
    pub client_address: Option<IpAddr>,
    /// The trace id.
    pub trace_id: Option<String>,
}

tokio::task_local! {
    /// The context of the request this task is handling.
    pub static CLIENT_CONTEXT: ClientContext;
    /// Whether the request this task is handling has written its audit line.
    pub static AUDITED: std::cell::Cell<bool>;
}

impl ClientContext {
    /// The current request's context (empty outside a request).
    pub fn current() -> Self {
        CLIENT_CONTEXT.try_with(Clone::clone).unwrap_or_default()
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The record of one request, filled in as it is processed and written exactly once: by
/// [`AuditEntry::finish`], or on drop if the request was abandoned.
pub struct AuditEntry {
    pub(crate) record: AuditRecord,
    started: Instant,
    sink: Arc<dyn AuditSink>,
    written: bool,
}

impl fmt::Debug for AuditEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEntry")
            .field("record", &self.record)
            .finish()
    }
}

impl AuditEntry {
    /// A new entry for a request that arrived at `time`.
    pub fn new(
        sink: Arc<dyn AuditSink>,
        time: SystemTime,
        request_id: &str,
        http_method: &str,
    ) -> Self {
        let context = ClientContext::current();
        Self {
            record: AuditRecord {
                time: rfc3339(time),
                request_id: request_id.to_owned(),
                http_method: http_method.to_owned(),
                client_address: context.client_address,
                trace_id: context.trace_id,
                path: None,
                upstream: None,
                user: None,
                issuer: None,
                teams: Vec::new(),
                agent: None,
                method: None,
                tool: None,
                arguments: None,
                decision: Outcome::Deny,
                reason: "client_closed".to_owned(),
                status: 499,
                upstream_status: None,
                latency_ms: 0.0,
                approval_id: None,
            },
            started: Instant::now(),
            sink,
            written: false,
        }
    }

    /// Sets the path (requests outside `/mcp/{name}`).
    pub fn path(&mut self, path: &str) {
        self.record.path = Some(path.to_owned());
    }

    /// Sets the upstream.
    pub fn upstream(&mut self, name: &str) {
        self.record.upstream = Some(name.to_owned());
    }

    /// Sets the verified caller: user (`sub`), IdP, teams and agent.
    pub fn caller(&mut self, user: &str, issuer: &str, teams: &[String], agent: Option<&str>) {
        self.record.user = Some(user.to_owned());
        self.record.issuer = Some(issuer.to_owned());
        self.record.teams = teams.to_vec();
        self.record.agent = agent.map(str::to_owned);
    }

    /// Sets the JSON-RPC method, tool and recorded arguments.
    pub fn message(&mut self, method: Option<&str>, tool: Option<&str>, arguments: Option<Value>) {
        self.record.method = method.map(str::to_owned);
        self.record.tool = tool.map(str::to_owned);
        self.record.arguments = arguments;
    }

    /// Sets the approval id.
    pub fn approval(&mut self, id: &str) {
        self.record.approval_id = Some(id.to_owned());
    }

    /// Sets the user, IdP and agent alone (admin actions).
    pub fn subject(&mut self, user: Option<&str>, issuer: Option<&str>, agent: Option<&str>) {
        self.record.user = user.map(str::to_owned);
        self.record.issuer = issuer.map(str::to_owned);
        self.record.agent = agent.map(str::to_owned);
    }

    /// Sets the JSON-RPC method field alone (`admin` for admin actions).
    pub fn method(&mut self, method: &str) {
        self.record.method = Some(method.to_owned());
    }

    /// Sets the upstream status.
    pub fn upstream_status(&mut self, status: u16) {
        self.record.upstream_status = Some(status);
    }

    /// Writes the line.
    pub fn finish(mut self, decision: Outcome, reason: &str, status: u16) {
        self.record.decision = decision;
        self.record.reason = reason.to_owned();
        self.record.status = status;
        self.write();
    }

    fn write(&mut self) {
        if self.written {
            return;
        }
        self.written = true;
        let _ = AUDITED.try_with(|audited| audited.set(true));
        self.record.latency_ms =
            (self.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
        self.sink.record(&self.record);
    }
}

impl Drop for AuditEntry {
    fn drop(&mut self) {
        self.write();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
