//! `GET /oauth/authorize` and `GET /oauth/callback`: the authorization code flow with PKCE,
//! the user's sign-in delegated to the IdP.
//!
//! `/oauth/authorize`, in this order:
//!
//! 1. the query: at most 8 KiB, no parameter twice (RFC 6749 §3.1);
//! 2. `client_id`: a known client on the allow-list, else an **error page** (the client
//!    cannot be trusted with a redirect);
//! 3. `redirect_uri`: one of the client's (exact; loopback on any port, RFC 8252 §7.3),
//!    or the only one when absent, else an **error page**;
//! 4. from here on errors go back to the client (RFC 6749 §4.1.2.1) with `state` and `iss`:
//!    `response_type` `code` (`unsupported_response_type`), `code_challenge` present and
//!    `code_challenge_method` `S256` (`invalid_request`: `plain` is refused, RFC 9700
//!    §2.1.1), `resource` naming exactly one route (`invalid_target`, RFC 8707), `scope`
//!    (`invalid_scope`), `state` at most 1 KiB;
//! 5. the login state (client, redirect URI, challenge, resource, scope, a fresh `nonce`
//!    and PKCE verifier for the IdP, a deadline, the digest of a browser-binding cookie) is
//!    kept in the store, sealed, until the deadline; the `state` sent to the IdP is only its
//!    random id (32 hex digits: IdPs limit `state`'s length), and the browser goes there.
//!
//! `/oauth/callback`: the state must name a stored login, be in time, match the browser's
//! cookie and be used once (single-use marker in the store), else an **error page**; then the IdP's
//! error, the code exchange, the ID token (inbound validator: issuer, signature, `aud` the
//! gateway's client id, time), the `nonce` (constant-time) and revocation are checked, each
//! failure going back to the client as `access_denied` (or `temporarily_unavailable`). On
//! success the user's IdP tokens are sealed in the store under a fresh sign-in id and the
//! client gets a single-use code bound to itself, its redirect URI, its PKCE challenge and
//! the resource.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use idjag_core::server::{Replay, ReplayKey};
use idjag_core::{OAuthErrorCode, ScopeSet};
use serde::{Deserialize, Serialize};

use crate::authorization_server::clients::ClientRefusal;
use crate::authorization_server::pages::{ErrorPage, redirect, redirect_error};
use crate::authorization_server::vault::SignIn;
use crate::authorization_server::{
    AuthorizationServer, CodeGrant, Inner, ct_eq, pkce_syntax, random_id, s256,
};
use crate::observe::audit::{AuditEntry, Outcome};
use crate::protocol::request_id::request_id;

/// Longest query accepted.
const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Longest client `state`.
const MAX_STATE_BYTES: usize = 1024;
/// The browser-binding cookie's name prefix (the login id follows).
const COOKIE_PREFIX: &str = "idjag_login_";

/// The error pages of the flow.
pub(crate) mod page {
    use super::{ErrorPage, StatusCode};

    pub(crate) const MALFORMED: ErrorPage = ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Sign-in request not understood",
        "The application sent a sign-in request the gateway cannot read (a parameter is missing, repeated or too long).",
    );
    pub(crate) const UNKNOWN_CLIENT: ErrorPage = ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "unknown_client",
        "Unknown application",
        "The application asking you to sign in is not registered with this gateway.",
    );
    pub(crate) const NOT_ALLOWED: ErrorPage = ErrorPage::new(
        StatusCode::FORBIDDEN,
        "client_not_allowed",
        "Application not allowed",
        "Your organization has not allowed this application to connect through the gateway.",
    );
    pub(crate) const DOCUMENT: ErrorPage = ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "client_metadata_invalid",
        "Application could not be verified",
        "The application's metadata document could not be fetched or is not valid, so the gateway cannot tell who it is.",
    );
    pub(crate) const REDIRECT_URI: ErrorPage = ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "redirect_uri_mismatch",
        "Sign-in cannot continue",
        "The application asked to return to an address it has not registered.",
    );
    pub(crate) const STATE: ErrorPage = ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "invalid_state",
        "Sign-in could not be completed",
        "This sign-in response does not belong to a sign-in started in this browser, or it was already used. Start again from the application.",
    );
    pub(crate) const EXPIRED: ErrorPage = ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "login_expired",
        "Sign-in took too long",
        "The sign-in expired. Start again from the application.",
    );
    pub(crate) const UNAVAILABLE: ErrorPage = ErrorPage::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "Sign-in is unavailable",
        "The gateway cannot reach your organization's identity provider right now. Try again in a moment.",
    );
}

/// A query with every parameter once (RFC 6749 §3.1), or `None`.
fn parse_query(raw: Option<&str>) -> Option<HashMap<String, String>> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY_BYTES {
        return None;
    }
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if params
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return None;
        }
    }
    Some(params)
}

/// The login state, kept sealed in the store under its id (the IdP's `state`).
#[derive(Serialize, Deserialize)]
struct LoginState {
    /// Login id (also names the cookie and the single-use marker).
    id: String,
    cid: String,
    ruri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    st: Option<String>,
    cc: String,
    res: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sc: Option<String>,
    /// The nonce sent to the IdP.
    n: String,
    /// The PKCE verifier of the IdP leg.
    pv: String,
    /// Deadline.
    exp: i64,
    /// SHA-256 (base64url) of the browser-binding cookie's value.
    b: String,
}

fn audit(inner: &Inner, headers: &HeaderMap, step: &str) -> AuditEntry {
    let mut entry = AuditEntry::new(
        inner.audit.clone(),
        inner.clock.now(),
        &request_id(headers),
        "GET",
    );
    entry.method(step);
    entry
}

fn refuse(entry: AuditEntry, page: ErrorPage, reason: &str, who: Option<&str>) -> Response {
    let response = page.render(who);
    entry.finish(Outcome::Deny, reason, response.status().as_u16());
    response
}

/// `GET /oauth/authorize`. See the [module docs](self).
pub(crate) async fn authorize(
    State(server): State<AuthorizationServer>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let inner = &server.inner;
    let mut entry = audit(inner, &headers, "oauth/authorize");
    let Some(params) = parse_query(query.as_deref()) else {
        return refuse(entry, page::MALFORMED, "malformed_request", None);
    };
    let Some(client_id) = params.get("client_id") else {
        return refuse(entry, page::MALFORMED, "client_id_missing", None);
    };
    entry.subject(None, None, Some(client_id));
    let client = match inner.clients.find(client_id).await {
        Ok(client) => client,
        Err(refusal) => {
            let page = match refusal {
                ClientRefusal::Unknown => page::UNKNOWN_CLIENT,
                ClientRefusal::NotAllowed => page::NOT_ALLOWED,
                ClientRefusal::Document(_) => page::DOCUMENT,
            };
            return refuse(entry, page, refusal.reason_code(), Some(client_id));
        }
    };
    // A person knows the application by its name (a registered id is an opaque blob).
    let shown = Some(client.display_name());
    if !inner.clients.allows(&client) {
        let refusal = ClientRefusal::NotAllowed;
        return refuse(entry, page::NOT_ALLOWED, refusal.reason_code(), shown);
    }
    let Some(redirect_uri) = client.redirect_uri(params.get("redirect_uri").map(String::as_str))
    else {
        return refuse(entry, page::REDIRECT_URI, "redirect_uri_mismatch", shown);
    };
    let state = params.get("state").map(String::as_str);
    let issuer = inner.issuer.as_str();
    let back = |entry: AuditEntry, code: OAuthErrorCode, reason: &str, description: &str| {
        let response = redirect_error(&redirect_uri, code, description, state, issuer);
        entry.finish(Outcome::Deny, reason, response.status().as_u16());
        response
    };
    if state.is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        return back(
            entry,
            OAuthErrorCode::InvalidRequest,
            "state_too_long",
            "state is too long",
        );
    }
    if params.get("response_type").map(String::as_str) != Some("code") {
        return back(
            entry,
            OAuthErrorCode::UnsupportedResponseType,
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let Some(challenge) = params.get("code_challenge") else {
        return back(
            entry,
            OAuthErrorCode::InvalidRequest,
            "pkce_missing",
            "code_challenge is required (PKCE with S256)",
        );
    };
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return back(
            entry,
            OAuthErrorCode::InvalidRequest,
            "pkce_method_not_s256",
            "code_challenge_method must be S256",
        );
    }
    if !pkce_syntax(challenge, 43, 43) {
        return back(
            entry,
            OAuthErrorCode::InvalidRequest,
            "pkce_challenge_malformed",
            "code_challenge is not an S256 challenge",
        );
    }
    let resource = match params.get("resource") {
        Some(requested) => match inner.route(requested) {
            Some(route) => route.as_str().to_owned(),
            None => {
                return back(
                    entry,
                    OAuthErrorCode::InvalidTarget,
                    "resource_not_a_route",
                    "resource must name one of the gateway's MCP routes",
                );
            }
        },
        None => match inner.routes.as_slice() {
            [only] => only.as_str().to_owned(),
            _ => {
                return back(
                    entry,
                    OAuthErrorCode::InvalidTarget,
                    "resource_missing",
                    "resource is required: the MCP route's URL",
                );
            }
        },
    };
    let scope = match params.get("scope").map(String::as_str) {
        None | Some("") => None,
        Some(scope) => match ScopeSet::parse(scope) {
            Ok(set) => Some(set.to_string()),
            Err(_) => {
                return back(
                    entry,
                    OAuthErrorCode::InvalidScope,
                    "scope_malformed",
                    "scope is malformed",
                );
            }
        },
    };
    let (Some(id), Some(nonce), Some(verifier), Some(binding)) = (
        random_id(16),
        random_id(16),
        idjag_core::random::url_safe(32).ok(),
        idjag_core::random::url_safe(32).ok(),
    ) else {
        return refuse(entry, page::UNAVAILABLE, "random_unavailable", None);
    };
    let login = LoginState {
        id: id.clone(),
        cid: client_id.clone(),
        ruri: redirect_uri.clone(),
        st: state.map(str::to_owned),
        cc: challenge.clone(),
        res: resource,
        sc: scope,
        n: nonce.clone(),
        pv: verifier.clone(),
        exp: inner.clock.now_unix()
            + i64::try_from(inner.plan.login_timeout.as_secs()).unwrap_or(600),
        b: s256(&binding),
    };
    let Ok(plain) = serde_json::to_vec(&login).map(zeroize::Zeroizing::new) else {
        return refuse(entry, page::UNAVAILABLE, "sealing_failed", None);
    };
    if inner.vault.put_login(&id, &plain, login.exp).await.is_err() {
        return refuse(entry, page::UNAVAILABLE, "store_unavailable", None);
    }
    let url = match inner
        .idp
        .authorization_url(&id, &nonce, &s256(&verifier))
        .await
    {
        Ok(url) => url,
        Err(_) => return refuse(entry, page::UNAVAILABLE, "idp_unavailable", None),
    };
    let mut response = redirect(&url);
    let secure = if inner.issuer.as_str().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE_PREFIX}{id}={binding}; Path=/oauth/callback; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        inner.plan.login_timeout.as_secs()
    );
    if let Ok(value) = HeaderValue::try_from(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    entry.finish(Outcome::Allow, "login_started", response.status().as_u16());
    response
}

/// The value of the cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// `GET /oauth/callback`. See the [module docs](self).
pub(crate) async fn callback(
    State(server): State<AuthorizationServer>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let inner = &server.inner;
    let mut entry = audit(inner, &headers, "oauth/callback");
    let Some(params) = parse_query(query.as_deref()) else {
        return refuse(entry, page::MALFORMED, "malformed_request", None);
    };
    let id = params
        .get("state")
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    let login = match id {
        Some(id) => match inner.vault.get_login(id).await {
            Ok(plain) => plain.and_then(|plain| serde_json::from_slice::<LoginState>(&plain).ok()),
            Err(_) => return refuse(entry, page::UNAVAILABLE, "store_unavailable", None),
        },
        None => None,
    };
    let Some(login) = login.filter(|login| Some(&login.id) == id) else {
        return refuse(entry, page::STATE, "login_state_invalid", None);
    };
    entry.subject(None, None, Some(&login.cid));
    let now = inner.clock.now_unix();
    if now >= login.exp {
        return refuse(entry, page::EXPIRED, "login_expired", Some(&login.cid));
    }
    let bound = cookie(&headers, &format!("{COOKIE_PREFIX}{}", login.id))
        .is_some_and(|value| ct_eq(&s256(value), &login.b));
    if !bound {
        return refuse(
            entry,
            page::STATE,
            "login_browser_mismatch",
            Some(&login.cid),
        );
    }
    let marker = ReplayKey::new(&format!("{}#login", inner.issuer.as_str()), &login.id);
    match inner
        .markers
        .record(marker, "gateway-login", login.exp + 60)
        .await
    {
        Ok(Replay::First) => inner.vault.drop_login(&login.id).await,
        Ok(_) => return refuse(entry, page::STATE, "login_state_reused", Some(&login.cid)),
        Err(_) => return refuse(entry, page::UNAVAILABLE, "store_unavailable", None),
    }
    let issuer = inner.issuer.as_str();
    let back = |mut entry: AuditEntry,
                code: OAuthErrorCode,
                reason: &str,
                description: &str,
                user: Option<&str>| {
        let mut response =
            redirect_error(&login.ruri, code, description, login.st.as_deref(), issuer);
        clear_cookie(&mut response, &login.id);
        if user.is_some() {
            entry.subject(user, Some(inner.idp_issuer.as_str()), Some(&login.cid));
        }
        entry.finish(Outcome::Deny, reason, response.status().as_u16());
        response
    };
    if let Some(error) = params.get("error") {
        let reason = if error == "access_denied" {
            "idp_access_denied"
        } else {
            "idp_error"
        };
        return back(
            entry,
            OAuthErrorCode::AccessDenied,
            reason,
            "the sign-in at the identity provider did not complete",
            None,
        );
    }
    let Some(code) = params.get("code") else {
        return back(
            entry,
            OAuthErrorCode::AccessDenied,
            "idp_code_missing",
            "the identity provider sent no authorization code",
            None,
        );
    };
    let tokens = match inner.idp.exchange(code, &login.pv).await {
        Ok(tokens) => tokens,
        Err(crate::authorization_server::idp::IdpError::Refused(_)) => {
            return back(
                entry,
                OAuthErrorCode::AccessDenied,
                "idp_code_refused",
                "the identity provider refused the sign-in",
                None,
            );
        }
        Err(_) => {
            return back(
                entry,
                OAuthErrorCode::TemporarilyUnavailable,
                "idp_unavailable",
                "the identity provider is unavailable",
                None,
            );
        }
    };
    let verified = match inner.inbound.validate_id_token(&tokens.id_token).await {
        Ok(verified) => verified,
        Err(e) => {
            return back(
                entry,
                OAuthErrorCode::AccessDenied,
                &format!("id_token_{}", e.reason_code()),
                &format!(
                    "the identity provider's ID token was refused ({})",
                    e.reason_code()
                ),
                None,
            );
        }
    };
    let claims = verified.claims();
    let nonce_ok = claims.nonce.as_deref().is_some_and(|n| ct_eq(n, &login.n));
    if !nonce_ok {
        return back(
            entry,
            OAuthErrorCode::AccessDenied,
            "id_token_nonce_mismatch",
            "the identity provider's ID token was refused (nonce_mismatch)",
            None,
        );
    }
    let user = claims.sub.as_str().to_owned();
    if inner.revoked(&user, &login.cid) {
        return back(
            entry,
            OAuthErrorCode::AccessDenied,
            "revoked",
            "access has been revoked by an administrator",
            Some(&user),
        );
    }
    // The groups are copied into the gateway's tokens: held to the inbound rules (no
    // overage marker, at most `[inbound] max_groups`), refused rather than cut short.
    let groups = match inner.inbound.groups_of_id_token(claims) {
        Ok(groups) => groups,
        Err(e) => {
            return back(
                entry,
                OAuthErrorCode::AccessDenied,
                e.reason_code(),
                "the identity provider's groups for this user cannot be used",
                Some(&user),
            );
        }
    };
    let until =
        now + i64::try_from(inner.plan.refresh_token_lifetime.as_secs()).unwrap_or(24 * 3600);
    let (Some(sid), Ok(issued)) = (random_id(16), idjag_core::random::url_safe(32)) else {
        return back(
            entry,
            OAuthErrorCode::ServerError,
            "random_unavailable",
            "the gateway could not complete the sign-in",
            Some(&user),
        );
    };
    let sign_in = SignIn {
        id_token: tokens.id_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        id_expires_at: claims.exp.unix(),
        user: user.clone(),
        groups,
        until,
    };
    let grant = CodeGrant {
        client_id: login.cid.clone(),
        redirect_uri: login.ruri.clone(),
        challenge: login.cc.clone(),
        resource: login.res.clone(),
        scope: login.sc.clone(),
        sid: sid.clone(),
        user: user.clone(),
        until,
    };
    let code_exp = now + i64::try_from(inner.plan.code_lifetime.as_secs()).unwrap_or(60);
    let stored = inner.vault.store(&sid, &sign_in).await.is_ok()
        && matches!(inner.codes.issue(&issued, &grant, code_exp).await, Ok(true));
    if !stored {
        return back(
            entry,
            OAuthErrorCode::TemporarilyUnavailable,
            "store_unavailable",
            "the gateway could not complete the sign-in",
            Some(&user),
        );
    }
    let Ok(mut url) = url::Url::parse(&login.ruri) else {
        return refuse(entry, page::REDIRECT_URI, "redirect_uri_invalid", None);
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("code", &issued);
        if let Some(state) = &login.st {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    let mut response = redirect(&url);
    clear_cookie(&mut response, &login.id);
    entry.subject(
        Some(&user),
        Some(inner.idp_issuer.as_str()),
        Some(&login.cid),
    );
    entry.finish(Outcome::Allow, "code_issued", response.status().as_u16());
    response
}

fn clear_cookie(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::try_from(format!(
        "{COOKIE_PREFIX}{id}=; Path=/oauth/callback; Max-Age=0; HttpOnly; SameSite=Lax"
    )) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_with_a_repeated_parameter_are_refused() {
        assert!(parse_query(Some("a=1&b=2")).is_some());
        assert!(parse_query(Some("a=1&a=2")).is_none());
        assert!(parse_query(Some(&"a".repeat(MAX_QUERY_BYTES + 1))).is_none());
        assert_eq!(parse_query(None).map(|p| p.len()), Some(0));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            "a=1; idjag_login_x=v; idjag_login_xy=w".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, "idjag_login_x"), Some("v"));
        assert_eq!(cookie(&headers, "idjag_login_xy"), Some("w"));
        assert_eq!(cookie(&headers, "idjag_login_"), None);
    }
}
