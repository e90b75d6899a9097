//! `GET`, `POST` and `DELETE /admin/revocations`: list, revoke at once, lift, on the store
//! every instance shares.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::admin::{answer, audit_entry, authorized, error, unavailable};
use crate::observe::audit::{AuditEntry, Outcome};
use crate::policy::revocation::Principal;
use crate::proxy::GatewayState;

pub(crate) async fn list(State(state): State<Arc<GatewayState>>, headers: HeaderMap) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return *response;
    }
    match state.revocations.list().await {
        Ok(list) => answer(StatusCode::OK, &json!({ "revocations": list })),
        Err(e) => unavailable(&e),
    }
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

fn parse(body: &Bytes) -> Result<(Principal, Option<u64>), Box<Response>> {
    let request: RevocationRequest = serde_json::from_slice(body)
        .map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, "invalid_request")))?;
    let who = match (request.user, request.client) {
        (Some(user), None) if !user.is_empty() => Principal::User(user),
        (None, Some(client)) if !client.is_empty() => Principal::Client(client),
        _ => return Err(Box::new(error(StatusCode::BAD_REQUEST, "invalid_request"))),
    };
    Ok((who, request.ttl_seconds))
}

fn record_who(audit: &mut AuditEntry, who: &Principal) {
    match who {
        Principal::User(user) => audit.subject(Some(user), None, None),
        Principal::Client(client) => audit.subject(None, None, Some(client)),
        _ => {}
    }
}

pub(crate) async fn revoke(
    State(state): State<Arc<GatewayState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return *response;
    }
    let (who, ttl) = match parse(&body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let ttl = match (ttl, &state.admin) {
        (Some(seconds), _) if seconds > 0 => seconds,
        (_, Some(admin)) => admin.revocation_ttl.as_secs(),
        (_, None) => 0,
    };
    let until = state
        .clock
        .now_unix()
        .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2));
    let mut audit = audit_entry(&state, &headers, "POST");
    record_who(&mut audit, &who);
    if let Err(e) = state.revocations.revoke(who.clone(), until).await {
        // Possibly stored, possibly not: the administrator retries (revoking twice is
        // harmless).
        audit.finish(Outcome::Error, "store_unavailable", 503);
        return unavailable(&e);
    }
    // Defence in depth (every request checks the revocations first): drop what is cached
    // for the principal here at once; other instances do it as the revocation reaches them.
    state.forget(&who);
    // The gateway's own sign-ins: their refresh-token families and stored IdP tokens.
    let sign_ins = match &state.authorization_server {
        Some(server) => server.revoke(&who).await,
        None => 0,
    };
    tracing::warn!(?who, until, sign_ins, "revoked by an administrator");
    audit.finish(Outcome::Allow, "revoked", 201);
    answer(
        StatusCode::CREATED,
        &json!({ "revoked": who, "until": until, "sign_ins_ended": sign_ins }),
    )
}

pub(crate) async fn lift(
    State(state): State<Arc<GatewayState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return *response;
    }
    let (who, _) = match parse(&body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let mut audit = audit_entry(&state, &headers, "DELETE");
    record_who(&mut audit, &who);
    match state.revocations.lift(&who).await {
        Ok(true) => {
            audit.finish(Outcome::Allow, "revocation_lifted", 200);
            answer(StatusCode::OK, &json!({ "lifted": who }))
        }
        Ok(false) => {
            audit.finish(Outcome::Deny, "not_found", 404);
            error(StatusCode::NOT_FOUND, "not_found")
        }
        Err(e) => {
            audit.finish(Outcome::Error, "store_unavailable", 503);
            unavailable(&e)
        }
    }
}
