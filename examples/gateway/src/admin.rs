//! The administrator API, under `/admin/` on the gateway's listener, on only when `[admin]`
//! is configured (else 404). Every request needs `Authorization: Bearer <admin token>`
//! (the token from `token_env` or `token_file`, compared in constant time; 401 otherwise).
//! Put the path behind your network policy too: it is the gateway's control plane.
//!
//! | request | what |
//! |---|---|
//! | `GET /admin/approvals` | calls held for approval (pending, approved, rejected), `{"approvals": [...]}` |
//! | `POST /admin/approvals/{id}/approve` | approves a pending call: the agent's identical retry runs once |
//! | `POST /admin/approvals/{id}/reject` | rejects it |
//! | `GET /admin/revocations` | revocations in force |
//! | `POST /admin/revocations` | `{"user": "<sub>"}` or `{"client": "<client id>"}`, optional `"ttl_seconds"`: revokes at once |
//! | `DELETE /admin/revocations` | the same body: lifts a revocation (404 if none) |
//!
//! Answers are JSON; errors `{"error": "<code>"}` with 400, 401, 404 or 409. Each decision
//! and revocation writes an audit line (`method` `admin`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use idjag_core::ClientSecret;
use idjag_core::server::{bearer_token, json_response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::approval::{DecideError, HeldCall};
use crate::audit::{AuditEntry, Outcome};
use crate::proxy::{Shared, request_id};
use crate::revocation::Revoked;
use crate::upstream::IdentityMatch;

/// The admin API's settings.
#[derive(Clone)]
pub(crate) struct AdminSettings {
    pub(crate) token: ClientSecret,
    pub(crate) revocation_ttl: Duration,
}

impl std::fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSettings")
            .field("token", &self.token)
            .field("revocation_ttl", &self.revocation_ttl)
            .finish()
    }
}

/// The largest admin request body: a revocation is a few dozen bytes.
pub const MAX_ADMIN_BODY_BYTES: usize = 4096;

/// The `/admin/` routes. Bodies are read before the token is checked, so they are capped
/// (413 above [`MAX_ADMIN_BODY_BYTES`]).
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/approvals", get(list_approvals))
        .route("/admin/approvals/{id}/{decision}", post(decide))
        .route(
            "/admin/revocations",
            get(list_revocations).post(revoke).delete(lift),
        )
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES))
}

fn answer(status: StatusCode, body: &Value) -> Response {
    let (parts, body) = json_response(status, body).into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn error(status: StatusCode, code: &str) -> Response {
    answer(status, &json!({ "error": code }))
}

/// Whether the request carries the admin token (constant-time compare).
pub(crate) fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(admin) = &shared.admin else {
        return Err(Box::new(error(StatusCode::NOT_FOUND, "not_found")));
    };
    match bearer_token(headers) {
        Ok(token) if ClientSecret::new(token).ct_eq(&admin.token) => Ok(()),
        _ => {
            let mut response = error(StatusCode::UNAUTHORIZED, "invalid_token");
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"idjag-gateway-admin\""),
            );
            Err(Box::new(response))
        }
    }
}

fn audit_entry(shared: &Shared, headers: &HeaderMap, http_method: &str) -> AuditEntry {
    let mut entry = AuditEntry::new(
        shared.audit.clone(),
        shared.clock.now(),
        &request_id(headers),
        http_method,
    );
    entry.method("admin");
    entry
}

async fn list_approvals(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(response) = authorized(&shared, &headers) {
        return *response;
    }
    answer(
        StatusCode::OK,
        &json!({ "approvals": shared.approvals.list() }),
    )
}

async fn decide(
    State(shared): State<Arc<Shared>>,
    Path((id, decision)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorized(&shared, &headers) {
        return *response;
    }
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return error(StatusCode::NOT_FOUND, "not_found"),
    };
    let mut audit = audit_entry(&shared, &headers, "POST");
    audit.approval(&id);
    match shared.approvals.decide(&id, approve) {
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

async fn list_revocations(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(response) = authorized(&shared, &headers) {
        return *response;
    }
    answer(
        StatusCode::OK,
        &json!({ "revocations": shared.revocations.list() }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationRequest {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

fn parse(body: &Bytes) -> Result<(Revoked, Option<u64>), Box<Response>> {
    let request: RevocationRequest = serde_json::from_slice(body)
        .map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, "invalid_request")))?;
    let who = match (request.user, request.client) {
        (Some(user), None) if !user.is_empty() => Revoked::User(user),
        (None, Some(client)) if !client.is_empty() => Revoked::Client(client),
        _ => return Err(Box::new(error(StatusCode::BAD_REQUEST, "invalid_request"))),
    };
    Ok((who, request.ttl_seconds))
}

fn record_who(audit: &mut AuditEntry, who: &Revoked) {
    match who {
        Revoked::User(user) => audit.subject(Some(user), None, None),
        Revoked::Client(client) => audit.subject(None, None, Some(client)),
    }
}

async fn revoke(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = authorized(&shared, &headers) {
        return *response;
    }
    let (who, ttl) = match parse(&body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let ttl = match (ttl, &shared.admin) {
        (Some(seconds), _) if seconds > 0 => seconds,
        (_, Some(admin)) => admin.revocation_ttl.as_secs(),
        (_, None) => 0,
    };
    let until = shared
        .clock
        .now_unix()
        .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2));
    shared.revocations.revoke(who.clone(), until);
    // Defence in depth (every request checks the revocation list first): drop what is
    // cached for the principal.
    let target = who.clone();
    let matches: IdentityMatch = Arc::new(move |identity| target.matches(identity));
    let inbound_match = matches.clone();
    shared
        .inbound
        .forget(move |identity| inbound_match(identity));
    for upstream in shared.upstreams.values() {
        upstream.credential.forget(&matches);
    }
    tracing::warn!(?who, until, "revoked by an administrator");
    let mut audit = audit_entry(&shared, &headers, "POST");
    record_who(&mut audit, &who);
    audit.finish(Outcome::Allow, "revoked", 201);
    answer(
        StatusCode::CREATED,
        &json!({ "revoked": who, "until": until }),
    )
}

async fn lift(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = authorized(&shared, &headers) {
        return *response;
    }
    let (who, _) = match parse(&body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let mut audit = audit_entry(&shared, &headers, "DELETE");
    record_who(&mut audit, &who);
    if shared.revocations.lift(&who) {
        audit.finish(Outcome::Allow, "revocation_lifted", 200);
        answer(StatusCode::OK, &json!({ "lifted": who }))
    } else {
        audit.finish(Outcome::Deny, "not_found", 404);
        error(StatusCode::NOT_FOUND, "not_found")
    }
}
