//! `GET /admin/approvals`, `POST /admin/approvals/{id}/approve` and `/reject`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::admin::{answer, audit_entry, authorized, error};
use crate::observe::audit::{AuditEntry, Outcome};
use crate::policy::approval::{DecideError, HeldCall};
use crate::proxy::GatewayState;

pub(crate) async fn list(State(state): State<Arc<GatewayState>>, headers: HeaderMap) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return *response;
    }
    answer(
        StatusCode::OK,
        &json!({ "approvals": state.approvals.list() }),
    )
}

pub(crate) async fn decide(
    State(state): State<Arc<GatewayState>>,
    Path((id, decision)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return *response;
    }
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return error(StatusCode::NOT_FOUND, "not_found"),
    };
    let mut audit = audit_entry(&state, &headers, "POST");
    audit.approval(&id);
    match state.approvals.decide(&id, approve) {
        Ok(call) => {
            record_call(&mut audit, &call);
            let reason = if approve {
                "approval_granted"
            } else {
                "approval_rejected"
            };
            tracing::info!(approval = %id, reason, "admin decision");
            audit.finish(Outcome::Allow, reason, 200);
            answer(StatusCode::OK, &json!(call))
        }
        Err(e) => {
            let (status, code) = match e {
                DecideError::AlreadyDecided => (StatusCode::CONFLICT, "already_decided"),
                _ => (StatusCode::NOT_FOUND, "not_found"),
            };
            audit.finish(Outcome::Deny, code, status.as_u16());
            error(status, code)
        }
    }
}

fn record_call(audit: &mut AuditEntry, call: &HeldCall) {
    audit.upstream(&call.upstream);
    audit.subject(Some(&call.user), Some(&call.issuer), call.agent.as_deref());
    audit.message(Some("admin"), Some(&call.tool), call.arguments.clone());
}
