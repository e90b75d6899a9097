//! The administrator API, under `/admin/` on the gateway's listener, on only when `[admin]`
//! is configured (else 404). Every request needs `Authorization: Bearer <admin token>`
//! (the token from `token_env` or `token_file`, compared in constant time; 401 otherwise).
//! Put the path behind your network policy too: it is the gateway's control plane.
//!
//! | request | what |
//! |---|---|
//! | `GET /admin/approvals` | calls held for approval (pending, approved, rejected, consumed), `{"approvals": [...]}` |
//! | `POST /admin/approvals/{id}/approve` | approves a pending call: the agent's identical retry runs once |
//! | `POST /admin/approvals/{id}/reject` | rejects it |
//! | `GET /admin/revocations` | revocations in force |
//! | `POST /admin/revocations` | `{"user": "<sub>"}` or `{"client": "<client id>"}`, optional `"ttl_seconds"`: revokes at once |
//! | `DELETE /admin/revocations` | the same body: lifts a revocation (404 if none) |
//!
//! Answers are JSON; errors `{"error": "<code>"}` with 400, 401, 404 or 409, and 503
//! (`store_unavailable`, `Retry-After: 1`) when the store cannot answer. Each decision and
//! revocation writes an audit line (`method` `admin`).
//!
//! Approvals and revocations live in the store ([`crate::plan::StorePlan`]): with several
//! instances sharing one, the admin API of any instance sees and changes them all. A
//! revocation is enforced by this instance before the answer, and by the others as it
//! reaches them (a notification, within `[store] max_staleness_secs` at worst).

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use idjag_core::ClientSecret;
use idjag_core::server::{bearer_token, json_response};
use serde_json::{Value, json};

use crate::observe::audit::AuditEntry;
use crate::protocol::request_id::request_id;
use crate::proxy::GatewayState;

mod approvals;
pub(crate) mod revocations;

/// The largest admin request body: a revocation is a few dozen bytes.
pub const MAX_ADMIN_BODY_BYTES: usize = 4096;

/// The `/admin/` routes. Bodies are read before the token is checked, so they are capped
/// (413 above [`MAX_ADMIN_BODY_BYTES`]).
pub(crate) fn router() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/admin/approvals", get(approvals::list))
        .route("/admin/approvals/{id}/{decision}", post(approvals::decide))
        .route(
            "/admin/revocations",
            get(revocations::list)
                .post(revocations::revoke)
                .delete(revocations::lift),
        )
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES))
}

pub(crate) fn answer(status: StatusCode, body: &Value) -> Response {
    let (parts, body) = json_response(status, body).into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}

pub(crate) fn error(status: StatusCode, code: &str) -> Response {
    answer(status, &json!({ "error": code }))
}

/// 503: the store did not answer.
pub(crate) fn unavailable(e: &idjag_store::StoreError) -> Response {
    tracing::warn!(error = %e, "admin request: the store did not answer");
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

/// Whether the request carries the admin token (constant-time compare).
pub(crate) fn authorized(state: &GatewayState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(admin) = &state.admin else {
        return Err(Box::new(error(StatusCode::NOT_FOUND, "not_found")));
    };
    match bearer_token(headers) {
        Ok(token) if ClientSecret::new(token).ct_eq(admin.token.value()) => Ok(()),
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

pub(crate) fn audit_entry(
    state: &GatewayState,
    headers: &HeaderMap,
    http_method: &str,
) -> AuditEntry {
    let mut entry = AuditEntry::new(
        state.audit.clone(),
        state.clock.now(),
        &request_id(headers),
        http_method,
    );
    entry.method("admin");
    entry
}
