//! The per-request context: one MCP request once its route, caller and message are known,
//! and the steps that decide on it (authorization, guardrails and approval, the upstream
//! credential). The upstream call and the answer are in `forward`.

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use idjag_core::challenge::BearerChallenge;
use idjag_core::{OAuthErrorCode, OAuthErrorResponse};
use serde_json::{Value, json};

use crate::inbound::Authenticated;
use crate::observe::audit::AuditEntry;
use crate::policy::access::{AuthzRequest, Decision, DenyReason};
use crate::policy::approval::notify::Notice;
use crate::policy::approval::{CallToGate, Gate, HeldDetails, arguments_digest};
use crate::policy::caps::StoreCaps;
use crate::protocol::jsonrpc::{CheckedBody, Message, MessageKind, code};
use crate::proxy::refusal::{
    Refusal, challenge, credential_refusal, jsonrpc_error, policy_error, rate_limited,
    state_unavailable,
};
use crate::proxy::state::GatewayState;
use crate::upstream::{Credential, Upstream};

/// One MCP request after authentication and body reading: what authorization, the
/// guardrails, the upstream call and the answer work on.
pub(crate) struct RequestContext<'a> {
    /// The shared state.
    pub(crate) state: &'a GatewayState,
    /// The request id (sent upstream, to the client and into the audit line).
    pub(crate) request_id: &'a str,
    /// The route.
    pub(crate) upstream: &'a Upstream,
    /// The HTTP method.
    pub(crate) method: Method,
    /// The client's headers.
    pub(crate) headers: HeaderMap,
    /// The client's `Mcp-Session-Id`, already checked to be the caller's.
    pub(crate) session: Option<HeaderValue>,
    /// Who is calling.
    pub(crate) caller: Authenticated,
    /// The POST body as received and the message the strict reader read from it (`None`
    /// for GET and DELETE): what is forwarded is what was checked.
    pub(crate) checked: Option<CheckedBody>,
    /// The tool arguments as the audit log records them.
    pub(crate) recorded: Option<Value>,
}

impl RequestContext<'_> {
    /// The JSON-RPC message (`None` for GET and DELETE).
    pub(crate) fn message(&self) -> Option<&Message> {
        self.checked.as_ref().map(CheckedBody::message)
    }

    /// The body to forward: the checked bytes (empty for GET and DELETE).
    pub(crate) fn body(&self) -> Bytes {
        self.checked
            .as_ref()
            .map_or_else(Bytes::new, |c| c.bytes().clone())
    }

    /// The JSON-RPC id of the message, for error answers.
    pub(crate) fn id(&self) -> Option<&Value> {
        self.message().and_then(|m| m.id.as_ref())
    }

    /// Step 9: the access rules and tool scopes.
    pub(crate) fn authorize(&self) -> Result<(), Refusal> {
        let message = self.message();
        let request = AuthzRequest {
            identity: &self.caller.identity,
            upstream: &self.upstream.name,
            method: message.and_then(|m| m.method.as_deref()),
            tool: message.and_then(|m| m.tool.as_deref()),
            arguments: message.and_then(|m| m.arguments.as_ref()),
        };
        match self.state.authorizer.decide(&request) {
            Decision::Allow => Ok(()),
            Decision::Deny(DenyReason::InsufficientScope(scope)) => {
                let c = BearerChallenge::new()
                    .with_error(OAuthErrorCode::InsufficientScope)
                    .with_scope(scope.clone())
                    .with_resource_metadata(self.upstream.metadata_url.as_str());
                let body = OAuthErrorResponse::new(OAuthErrorCode::InsufficientScope)
                    .with_description("The token lacks a scope this tool needs");
                Err(Refusal::deny(
                    "insufficient_scope",
                    challenge(StatusCode::FORBIDDEN, &c, Some(body)),
                ))
            }
            Decision::Deny(reason) => Err(Refusal::deny(
                reason.code(),
                policy_error(
                    message,
                    "Blocked by the gateway's policy",
                    json!({ "reason": reason.code() }),
                ),
            )),
        }
    }

    /// Step 9, for a `tools/call` of a guarded tool: its argument rules, then the approval
    /// gate (in the store, shared by every instance).
    pub(crate) async fn guard(&self, audit: &mut AuditEntry) -> Result<(), Refusal> {
        let Some(checked) = &self.checked else {
            return Ok(());
        };
        let message = checked.message();
        let Some(tool) = message.tool.as_deref() else {
            return Ok(());
        };
        let Some(guard) = self.upstream.guards.get(tool) else {
            return Ok(());
        };
        if let Err(blocked) = guard.check(message.arguments.as_ref()) {
            tracing::info!(upstream = %self.upstream.name, tool, rule = %blocked.rule, "call blocked by an argument rule");
            return Err(Refusal::deny(
                "argument_blocked",
                policy_error(
                    Some(message),
                    &format!("Blocked by the gateway's argument rule {:?}", blocked.rule),
                    json!({
                        "reason": "argument_blocked",
                        "rule": blocked.rule,
                        "violation": blocked.kind.code(),
                    }),
                ),
            ));
        }
        if !guard.needs_approval() {
            return Ok(());
        }
        let Some(policy_version) = guard.policy_version() else {
            tracing::error!(upstream = %self.upstream.name, tool, "an approval tool without a planned policy version");
            return Err(state_unavailable(
                "approval_unavailable",
                message.id.as_ref(),
            ));
        };
        let arguments_sha256 = match arguments_digest(checked.bytes()) {
            Ok(digest) => digest,
            Err(problem) => {
                return Err(Refusal::deny(
                    "arguments_not_canonical",
                    policy_error(
                        Some(message),
                        "The arguments of a call needing approval must be I-JSON (RFC 7493): \
                         no member named twice, numbers a double holds exactly",
                        json!({ "reason": "arguments_not_canonical", "problem": problem.code() }),
                    ),
                ));
            }
        };
        let call = CallToGate {
            identity: &self.caller.identity,
            upstream: &self.upstream.name,
            tool,
            arguments_sha256,
            policy_version,
            recorded: self.recorded.as_ref(),
        };
        let caps = StoreCaps::pending_approvals(
            self.state.fairness.plan(),
            &self.caller.identity,
            &self.upstream.name,
        );
        let gate = match call.gate_capped(&self.state.approvals, &caps).await {
            Ok(gate) => gate,
            Err(error) => {
                tracing::warn!(%error, "approvals cannot be checked: refusing");
                return Err(state_unavailable("store_unavailable", message.id.as_ref()));
            }
        };
        let held = |reason: &'static str, text: &str, id: Option<String>| {
            let mut data = json!({ "reason": reason });
            if let Some(id) = &id {
                data["approval_id"] = json!(id);
            }
            let response = match message.kind {
                MessageKind::Request => jsonrpc_error(
                    StatusCode::OK,
                    message.id.as_ref(),
                    code::APPROVAL_REQUIRED,
                    text,
                    data,
                ),
                _ => jsonrpc_error(
                    StatusCode::FORBIDDEN,
                    None,
                    code::APPROVAL_REQUIRED,
                    text,
                    data,
                ),
            };
            Refusal::deny(reason, response)
        };
        match gate {
            Gate::Proceed { id } => {
                audit.approval(&id);
                Ok(())
            }
            Gate::Held { id, new } => {
                audit.approval(&id);
                let reason = if new {
                    self.notify(&id, &call);
                    "approval_held"
                } else {
                    "approval_pending"
                };
                if message.kind == MessageKind::Request && self.elicits().await {
                    return Err(Refusal::deny(
                        reason,
                        self.elicitation(message.id.as_ref(), reason, &id),
                    ));
                }
                Err(held(
                    reason,
                    "This call needs an administrator's approval; retry it once approved",
                    Some(id),
                ))
            }
            Gate::Rejected { id } => {
                audit.approval(&id);
                Err(held(
                    "approval_rejected",
                    "An administrator rejected this call",
                    Some(id),
                ))
            }
            // Nothing was held, so no one is notified.
            Gate::CapReached { index } => {
                let limited = caps.limited(index);
                tracing::info!(upstream = %self.upstream.name, tool, reason = limited.reason(), "over a cap on calls waiting for approval");
                Err(rate_limited(&limited, message.id.as_ref()))
            }
            _ => Err(held(
                "approval_queue_full",
                "Too many calls are waiting for approval",
                None,
            )),
        }
    }

    /// The held call as an MCP `URLElicitationRequiredError` (-32042): the user is sent to
    /// the approval's status page, and retries once it says approved.
    fn elicitation(&self, id: Option<&Value>, reason: &str, approval: &str) -> Response {
        let text = "This call needs an administrator's approval: follow its status, \
                    and retry it once approved";
        jsonrpc_error(
            StatusCode::OK,
            id,
            code::URL_ELICITATION_REQUIRED,
            text,
            json!({
                "reason": reason,
                "approval_id": approval,
                "elicitations": [{
                    "mode": "url",
                    "elicitationId": approval,
                    "url": self.state.review.status_url(approval),
                    "message": text,
                }],
            }),
        )
    }

    /// Whether this is an `initialize` whose client declared URL-mode elicitation
    /// (`params.capabilities.elicitation.url`, MCP 2025-11-25).
    pub(crate) fn declares_url_elicitation(&self) -> bool {
        if self.message().and_then(|m| m.method.as_deref()) != Some("initialize") {
            return false;
        }
        // The body passed the strict reader: no member is named twice, so this parse reads
        // the message the gateway checked.
        serde_json::from_slice::<Value>(&self.body()).is_ok_and(|message| {
            message
                .pointer("/params/capabilities/elicitation/url")
                .is_some_and(Value::is_object)
        })
    }

    /// Whether the client's session declared URL-mode elicitation.
    async fn elicits(&self) -> bool {
        match &self.session {
            Some(id) => {
                self.state
                    .review
                    .elicits(&self.upstream.name, id.as_bytes())
                    .await
            }
            None => false,
        }
    }

    /// Tells the webhook of a newly held call.
    fn notify(&self, id: &str, call: &CallToGate<'_>) {
        let Some(notifier) = &self.state.review.notifier else {
            return;
        };
        let Ok(details) = serde_json::from_value::<HeldDetails>(call.details()) else {
            return;
        };
        let expires = self.state.clock.now_unix().saturating_add(
            i64::try_from(self.state.review.approval_ttl.as_secs()).unwrap_or(i64::MAX / 2),
        );
        notifier.spawn(Notice {
            id: id.to_owned(),
            details,
            expires,
            review_url: self.state.review.review_url(),
        });
    }

    /// Step 10: the upstream credential for this caller.
    pub(crate) async fn credential(&self) -> Result<Credential, Refusal> {
        self.upstream
            .credential
            .credential(&self.caller)
            .await
            .map_err(|e| credential_refusal(self.upstream, self.message(), &e))
    }
}
