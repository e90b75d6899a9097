//! `POST /oauth/token`, `POST /oauth/revoke` and `POST /oauth/register`.
//!
//! The token endpoint reads the request as every idjag token endpoint does (`POST`, body
//! limit, one form content type, a strict form: idjag-core's `read_form_request`), then by
//! `grant_type`:
//!
//! - **`authorization_code`**: client authentication (public clients by `client_id`;
//!   secrets by Basic or POST; `private_key_jwt` for metadata documents with keys), then the
//!   code is redeemed **first** (single use: any later presentation is `invalid_grant`, and
//!   the sign-in it produced is ended, RFC 6749 §4.1.2), then checked: issued to this
//!   client, the same `redirect_uri`, `BASE64URL(SHA-256(code_verifier))` equal to the
//!   challenge (constant time), `resource` (if sent) the same route. Every failure is
//!   `invalid_grant` (`invalid_target` for the resource) and ends the sign-in.
//! - **`refresh_token`**: the token's family is looked up, its client checked (another
//!   client's token revokes the family), then the token rotated: presenting a token that is
//!   no longer current revokes the whole family and ends the sign-in (RFC 9700 §4.14.2).
//!   Revoked users and agents are refused; the user's IdP ID token is renewed at the IdP
//!   when it has expired, and when the IdP refuses the user must sign in again
//!   (`invalid_grant`). `scope` may narrow, `resource` must stay the same route.
//! - **JWT-bearer** (RFC 7523) with an ID-JAG the IdP issued for this authorization server:
//!   idjag-resource's redemption, every check in its order, single use of each ID-JAG
//!   through the store (threat G31).
//!
//! Errors are RFC 6749 §5.2 JSON with `Cache-Control: no-store`; no token or secret is
//! ever part of an error, a log line or an audit line.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use idjag_core::server::{AuthenticatedClient, FormBody, FormRequestError, read_form_request};
use idjag_core::{OAuthErrorCode, ScopeSet, wire};
use idjag_store::{Redemption, Rotation};
use serde_json::json;

use crate::authorization_server::pages::{json, oauth_error};
use crate::authorization_server::{
    AuthorizationServer, CodeGrant, FamilyGrant, Inner, SpentCode, ct_eq, pkce_syntax, s256,
};
use crate::observe::audit::{AuditEntry, Outcome};
use crate::protocol::request_id::request_id;
use crate::upstream::CredentialError;

/// Largest request body of the token, revocation and registration endpoints.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A refused request: its answer and the audit reason.
struct Refused {
    response: Response,
    reason: String,
}

fn refused(status: StatusCode, code: OAuthErrorCode, reason: &str, description: &str) -> Refused {
    Refused {
        response: oauth_error(status, code, description, None),
        reason: reason.to_owned(),
    }
}

fn invalid_grant(reason: &str, description: &str) -> Refused {
    refused(
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::InvalidGrant,
        reason,
        description,
    )
}

fn form_refused(e: &FormRequestError) -> Refused {
    let mut r = refused(
        e.status(),
        e.oauth_error(),
        e.reason_code(),
        "the request is not a valid form POST",
    );
    if e.status() == StatusCode::METHOD_NOT_ALLOWED {
        r.response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
    }
    r
}

fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn entry(inner: &Inner, headers: &HeaderMap, step: &str) -> AuditEntry {
    let mut entry = AuditEntry::new(
        inner.audit.clone(),
        inner.clock.now(),
        &request_id(headers),
        "POST",
    );
    entry.method(step);
    entry
}

fn finish(entry: AuditEntry, result: Result<(Response, &str), Refused>) -> Response {
    let response = match result {
        Ok((response, reason)) => {
            entry.finish(Outcome::Allow, reason, response.status().as_u16());
            response
        }
        Err(refused) => {
            entry.finish(
                Outcome::Deny,
                &refused.reason,
                refused.response.status().as_u16(),
            );
            refused.response
        }
    };
    cors(response)
}

async fn authenticate(
    inner: &Inner,
    headers: &HeaderMap,
    form: &FormBody,
) -> Result<AuthenticatedClient, Refused> {
    inner
        .authenticator
        .authenticate(headers, form)
        .await
        .map_err(|e| Refused {
            response: oauth_error(
                e.status(),
                e.oauth_error(),
                "client authentication failed",
                e.www_authenticate(inner.issuer.as_str()),
            ),
            reason: format!("client_{}", e.reason_code()),
        })
}

/// `POST /oauth/token`. See the [module docs](self).
pub(crate) async fn token(
    State(server): State<AuthorizationServer>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &server.inner;
    let mut audit = entry(inner, &headers, "oauth/token");
    let form = match read_form_request(&method, &headers, &body, MAX_BODY_BYTES, &[]) {
        Ok(form) => form,
        Err(e) => return finish(audit, Err(form_refused(&e))),
    };
    let result = match form.get("grant_type") {
        Some(wire::GRANT_TYPE_JWT_BEARER) if inner.plan.id_jag => {
            return finish(audit, id_jag(inner, &method, &headers, &body).await);
        }
        Some(wire::GRANT_TYPE_AUTHORIZATION_CODE) => {
            code_grant(inner, &headers, &form, &mut audit).await
        }
        Some(wire::GRANT_TYPE_REFRESH_TOKEN) => {
            refresh_grant(inner, &headers, &form, &mut audit).await
        }
        None => Err(refused(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidRequest,
            "grant_type_missing",
            "grant_type is required",
        )),
        Some(_) => Err(refused(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::UnsupportedGrantType,
            "unsupported_grant_type",
            "this grant type is not supported",
        )),
    };
    finish(audit, result)
}

async fn id_jag(
    inner: &Inner,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Response, &'static str), Refused> {
    let Some(server) = inner.id_jag_server() else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::UnsupportedGrantType,
            "id_jag_unavailable",
            "this grant type is not supported",
        ));
    };
    let (parts, body) = server.token(method, headers, body).await.into_parts();
    let response = Response::from_parts(parts, axum::body::Body::from(body));
    if response.status().is_success() {
        Ok((response, "id_jag_redeemed"))
    } else {
        Err(Refused {
            response,
            reason: "id_jag_refused".to_owned(),
        })
    }
}

/// The successful token response.
fn tokens(
    access_token: &str,
    expires_in: i64,
    refresh_token: &str,
    scope: Option<&str>,
) -> Response {
    let mut body = json!({
        "access_token": access_token,
        "token_type": wire::TOKEN_TYPE_BEARER,
        "expires_in": expires_in,
        "refresh_token": refresh_token,
    });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    json(StatusCode::OK, &body)
}

/// Ends a sign-in: its families (through the index), its sealed IdP tokens.
async fn end_sign_in(inner: &Inner, sid: &str) {
    inner.vault.forget(sid).await;
    for family in inner.families_of(sid) {
        let _ = inner.families.revoke(&family).await;
        inner.unindex(&family);
    }
}

fn spent_key(code: &str) -> String {
    format!("spent:{code}")
}

async fn code_grant(
    inner: &Inner,
    headers: &HeaderMap,
    form: &FormBody,
    audit: &mut AuditEntry,
) -> Result<(Response, &'static str), Refused> {
    let client = authenticate(inner, headers, form).await?;
    let client_id = client.client_id().as_str();
    audit.subject(None, None, Some(client_id));
    let (Some(code), Some(verifier)) = (form.get("code"), form.get("code_verifier")) else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidRequest,
            "code_or_verifier_missing",
            "code and code_verifier are required",
        ));
    };
    if !pkce_syntax(verifier, 43, 128) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidRequest,
            "pkce_verifier_malformed",
            "code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    let unavailable = |_| {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            OAuthErrorCode::TemporarilyUnavailable,
            "store_unavailable",
            "try again later",
        )
    };
    let grant = match inner
        .codes
        .redeem::<CodeGrant>(code)
        .await
        .map_err(unavailable)?
    {
        Redemption::Granted(grant) => grant,
        Redemption::Reused => {
            if let Ok(Redemption::Granted(spent)) =
                inner.codes.redeem::<SpentCode>(&spent_key(code)).await
            {
                end_sign_in(inner, &spent.sid).await;
            }
            return Err(invalid_grant(
                "code_reused",
                "the authorization code was already used",
            ));
        }
        _ => {
            return Err(invalid_grant(
                "code_unknown",
                "the authorization code is invalid or expired",
            ));
        }
    };
    audit.subject(
        Some(&grant.user),
        Some(inner.idp_issuer.as_str()),
        Some(client_id),
    );
    let failure = if grant.client_id != client_id {
        Some(invalid_grant(
            "code_other_client",
            "the authorization code was issued to another client",
        ))
    } else if form
        .get("redirect_uri")
        .is_some_and(|uri| uri != grant.redirect_uri)
    {
        Some(invalid_grant(
            "redirect_uri_mismatch",
            "redirect_uri does not match the authorization request",
        ))
    } else if !ct_eq(&s256(verifier), &grant.challenge) {
        Some(invalid_grant(
            "pkce_verifier_mismatch",
            "code_verifier does not match the code_challenge",
        ))
    } else if form.get("resource").is_some_and(|r| r != grant.resource) {
        Some(refused(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidTarget,
            "resource_mismatch",
            "resource must be the route the code was issued for",
        ))
    } else if inner.revoked(&grant.user, client_id) {
        Some(invalid_grant(
            "revoked",
            "access has been revoked by an administrator",
        ))
    } else {
        None
    };
    if let Some(failure) = failure {
        inner.vault.forget(&grant.sid).await;
        return Err(failure);
    }
    let sign_in = inner
        .vault
        .load(&grant.sid)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| invalid_grant("sign_in_ended", "the sign-in has ended"))?;
    let family_grant = FamilyGrant {
        client_id: grant.client_id.clone(),
        resource: grant.resource.clone(),
        scope: grant.scope.clone(),
        sid: grant.sid.clone(),
        user: grant.user.clone(),
        until: grant.until,
    };
    let refresh_token = idjag_core::random::url_safe(32).map_err(|_| {
        refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::ServerError,
            "random_unavailable",
            "try again later",
        )
    })?;
    let family = inner
        .families
        .start(&refresh_token, &family_grant, grant.until)
        .await
        .map_err(unavailable)?;
    inner.index(&family, &family_grant);
    let now = inner.clock.now_unix();
    let spent_until = now + i64::try_from(inner.plan.code_lifetime.as_secs()).unwrap_or(60) + 1;
    let _ = inner
        .codes
        .issue(
            &spent_key(code),
            &SpentCode {
                family: family.as_str().to_owned(),
                sid: grant.sid.clone(),
            },
            spent_until,
        )
        .await;
    let (access_token, expires_in) =
        inner
            .mint(&family_grant, &sign_in.groups)
            .map_err(|reason| {
                refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    OAuthErrorCode::ServerError,
                    reason,
                    "the token could not be issued",
                )
            })?;
    Ok((
        tokens(
            &access_token,
            expires_in,
            &refresh_token,
            family_grant.scope.as_deref(),
        ),
        "tokens_issued",
    ))
}

async fn refresh_grant(
    inner: &Inner,
    headers: &HeaderMap,
    form: &FormBody,
    audit: &mut AuditEntry,
) -> Result<(Response, &'static str), Refused> {
    let client = authenticate(inner, headers, form).await?;
    let client_id = client.client_id().as_str();
    audit.subject(None, None, Some(client_id));
    let Some(presented) = form.get("refresh_token") else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidRequest,
            "refresh_token_missing",
            "refresh_token is required",
        ));
    };
    let unavailable = |_| {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            OAuthErrorCode::TemporarilyUnavailable,
            "store_unavailable",
            "try again later",
        )
    };
    let Some((family, grant, _)) = inner
        .families
        .lookup::<FamilyGrant>(presented)
        .await
        .map_err(unavailable)?
    else {
        return Err(invalid_grant(
            "refresh_token_unknown",
            "the refresh token is invalid or expired",
        ));
    };
    audit.subject(
        Some(&grant.user),
        Some(inner.idp_issuer.as_str()),
        Some(client_id),
    );
    if grant.client_id != client_id {
        let _ = inner.families.revoke(&family).await;
        inner.unindex(&family);
        inner.vault.forget(&grant.sid).await;
        return Err(invalid_grant(
            "refresh_token_other_client",
            "the refresh token was issued to another client",
        ));
    }
    let next = idjag_core::random::url_safe(32).map_err(|_| {
        refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::ServerError,
            "random_unavailable",
            "try again later",
        )
    })?;
    match inner
        .families
        .rotate::<FamilyGrant>(presented, &next)
        .await
        .map_err(unavailable)?
    {
        Rotation::Rotated { .. } => {}
        Rotation::Reused { family } => {
            inner.unindex(&family);
            inner.vault.forget(&grant.sid).await;
            return Err(invalid_grant(
                "refresh_token_reused",
                "the refresh token was already used: the sign-in has been revoked",
            ));
        }
        Rotation::Revoked { .. } => {
            return Err(invalid_grant(
                "refresh_family_revoked",
                "the refresh token has been revoked",
            ));
        }
        _ => {
            return Err(invalid_grant(
                "refresh_token_unknown",
                "the refresh token is invalid or expired",
            ));
        }
    }
    let revoke = || async {
        let _ = inner.families.revoke(&family).await;
        inner.unindex(&family);
        inner.vault.forget(&grant.sid).await;
    };
    if form.get("resource").is_some_and(|r| r != grant.resource) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidTarget,
            "resource_mismatch",
            "resource must be the route the sign-in was for",
        ));
    }
    let mut narrowed = grant.clone();
    if let Some(requested) = form.get("scope") {
        let requested = ScopeSet::parse(requested).map_err(|_| {
            refused(
                StatusCode::BAD_REQUEST,
                OAuthErrorCode::InvalidScope,
                "scope_malformed",
                "scope is malformed",
            )
        })?;
        let within = match &grant.scope {
            Some(granted) => ScopeSet::parse(granted).is_ok_and(|g| requested.is_subset(&g)),
            None => true,
        };
        if !within {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                OAuthErrorCode::InvalidScope,
                "scope_widened",
                "scope may only narrow the original grant",
            ));
        }
        narrowed.scope = Some(requested.to_string());
    }
    if inner.revoked(&grant.user, client_id) {
        revoke().await;
        return Err(invalid_grant(
            "revoked",
            "access has been revoked by an administrator",
        ));
    }
    let sign_in = match inner.vault.fresh(&grant.sid).await {
        Ok(sign_in) => sign_in,
        Err(CredentialError::ReauthenticationRequired) => {
            revoke().await;
            return Err(invalid_grant(
                "reauthentication_required",
                "the identity provider session has ended: sign in again",
            ));
        }
        Err(_) => {
            return Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                OAuthErrorCode::TemporarilyUnavailable,
                "idp_unavailable",
                "the identity provider is unavailable: try again later",
            ));
        }
    };
    let (access_token, expires_in) = inner.mint(&narrowed, &sign_in.groups).map_err(|reason| {
        refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::ServerError,
            reason,
            "the token could not be issued",
        )
    })?;
    Ok((
        tokens(&access_token, expires_in, &next, narrowed.scope.as_deref()),
        "tokens_refreshed",
    ))
}

/// `POST /oauth/revoke` (RFC 7009): a refresh token revokes its family and ends the
/// sign-in; one of the gateway's access tokens ends its sign-in (the token itself lives out
/// its short life). Unknown tokens: `200` all the same.
pub(crate) async fn revoke(
    State(server): State<AuthorizationServer>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &server.inner;
    let mut audit = entry(inner, &headers, "oauth/revoke");
    let result = async {
        let form = read_form_request(&method, &headers, &body, MAX_BODY_BYTES, &[])
            .map_err(|e| form_refused(&e))?;
        let client = authenticate(inner, &headers, &form).await?;
        let client_id = client.client_id().as_str();
        audit.subject(None, None, Some(client_id));
        let Some(token) = form.get("token") else {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                OAuthErrorCode::InvalidRequest,
                "token_missing",
                "token is required",
            ));
        };
        let ok = || (json(StatusCode::OK, &json!({})), "revoked");
        if let Ok(Some((family, grant, _))) = inner.families.lookup::<FamilyGrant>(token).await {
            if grant.client_id != client_id {
                return Err(refused(
                    StatusCode::BAD_REQUEST,
                    OAuthErrorCode::UnauthorizedClient,
                    "token_other_client",
                    "the token was issued to another client",
                ));
            }
            let _ = inner.families.revoke(&family).await;
            inner.unindex(&family);
            inner.vault.forget(&grant.sid).await;
            return Ok(ok());
        }
        if let Some(sid) = inner.own_access_token_sid(token, client_id).await {
            end_sign_in(inner, &sid).await;
        }
        Ok(ok())
    }
    .await;
    finish(audit, result)
}

/// `POST /oauth/register` (RFC 7591).
pub(crate) async fn register(
    State(server): State<AuthorizationServer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &server.inner;
    let audit = entry(inner, &headers, "oauth/register");
    let response = inner
        .clients
        .registrar()
        .register(&headers, &body, inner.clock.now_unix());
    let outcome = if response.status() == StatusCode::CREATED {
        Outcome::Allow
    } else {
        Outcome::Deny
    };
    let status = response.status().as_u16();
    audit.finish(
        outcome,
        if outcome == Outcome::Allow {
            "client_registered"
        } else {
            "registration_refused"
        },
        status,
    );
    cors(response)
}
