//! `GET /admin/approvals`, `POST /admin/approvals/{id}/approve` and `/reject`, on the store
//! every instance shares: a call held on one instance is listed and decided on any.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::admin::{answer, audit_entry, authorized, error, unavailable};
use crate::observe::audit::{AuditEntry, Outcome};
use crate::policy::approval::{DecideError, HeldCall};
use crate::proxy::GatewayState;

pub(crate) async fn list(State(state): State<Arc<GatewayState>>, headers: HeaderMap) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return *response;
    }
    match state.approvals.list().await {
        Ok(records) => {
            let calls: Vec<HeldCall> = records.iter().map(HeldCall::from_record).collect();
            answer(StatusCode::OK, &json!({ "approvals": calls }))
        }
        Err(e) => unavailable(&e),
    }
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
    match state.approvals.decide(&id, approve).await {
        Ok(record) => {
            let call = HeldCall::from_record(&record);
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
        Err(DecideError::Store(e)) => {
            audit.finish(Outcome::Error, "store_unavailable", 503);
            unavailable(&e)
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
    let Some(details) = call.held_details() else {
        return;
    };
    audit.upstream(&details.upstream);
    audit.subject(
        Some(&details.user),
        Some(&details.issuer),
        details.agent.as_deref(),
    );
    audit.message(Some("admin"), Some(&details.tool), details.arguments);
}
