//! `GET`, `POST` and `DELETE /admin/revocations`: list, revoke at once, lift.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::admin::{answer, audit_entry, authorized, error};
use crate::observe::audit::{AuditEntry, Outcome};
use crate::policy::revocation::Revoked;
use crate::proxy::GatewayState;
use crate::upstream::IdentityMatch;

pub(crate) async fn list(State(state): State<Arc<GatewayState>>, headers: HeaderMap) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return *response;
    }
    answer(
        StatusCode::OK,
        &json!({ "revocations": state.revocations.list() }),
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
    state.revocations.revoke(who.clone(), until);
    // Defence in depth (every request checks the revocation list first): drop what is
    // cached for the principal.
    let target = who.clone();
    let matches: IdentityMatch = Arc::new(move |identity| target.matches(identity));
    let inbound_match = matches.clone();
    state
        .inbound
        .forget(move |identity| inbound_match(identity));
    for upstream in state.upstreams.values() {
        upstream.credential.forget(&matches);
    }
    // The gateway's own sign-ins: their refresh-token families and stored IdP tokens.
    let sign_ins = match &state.authorization_server {
        Some(server) => server.revoke(&who).await,
        None => 0,
    };
    tracing::warn!(?who, until, sign_ins, "revoked by an administrator");
    let mut audit = audit_entry(&state, &headers, "POST");
    record_who(&mut audit, &who);
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
    if state.revocations.lift(&who) {
        audit.finish(Outcome::Allow, "revocation_lifted", 200);
        answer(StatusCode::OK, &json!({ "lifted": who }))
    } else {
        audit.finish(Outcome::Deny, "not_found", 404);
        error(StatusCode::NOT_FOUND, "not_found")
    }
}
