//! The admin page: calls held for approval, for people, on the admin API's listener under
//! `/admin/page` (`[approvals] page = true`, needs `[admin]`), server-rendered HTML without
//! any script; and each held call's status page for the user who made it,
//! `/approval-status/{id}`, linked from URL-mode elicitation.
//!
//! | request | what |
//! |---|---|
//! | `GET /admin/page` | signed in: the pending calls (who, which agent, which tool, the arguments as the audit log records them) with approve and reject buttons, then the decided ones; else the sign-in form |
//! | `POST /admin/page/login` | `token=<admin token>`: a sign-in (session cookie), then `303` to the list |
//! | `POST /admin/page/approvals/{id}/approve`, `/reject` | `csrf=<token>`: the decision, then `303` to the list |
//! | `POST /admin/page/logout` | `csrf=<token>`: ends the sign-in |
//! | `GET /approval-status/{id}` | the call's state, upstream and tool (no user, no arguments) |
//!
//! # Security
//!
//! - Sign-in is by the admin token only (compared in constant time); a sign-in is a random
//!   256-bit id in a cookie `HttpOnly`, `SameSite=Strict`, `Path=/admin/page`, `Secure`
//!   unless the admin URL is plain `http` on loopback, with `Max-Age` the sign-in's
//!   lifetime; the gateway keeps only its SHA-256, and forgets it at sign-out or expiry.
//! - Cross-site request forgery: every state-changing `POST` carries the sign-in's
//!   synchronizer token (`csrf`, compared in constant time; 403 without it), and any `POST`
//!   whose `Sec-Fetch-Site` is present and neither `same-origin` nor `none`, or whose
//!   `Origin` is present and not the admin URL's or the request's own (`null`, what browsers
//!   send under `no-referrer`, only with `Sec-Fetch-Site: same-origin`), is refused (403).
//! - Clickjacking and injection: every answer has `Content-Security-Policy: default-src
//!   'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
//!   `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//!   no-referrer` and `Cache-Control: no-store`; every value shown is HTML-escaped.

mod html;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::header::{
    CACHE_CONTROL, CONTENT_TYPE, COOKIE, HOST, LOCATION, ORIGIN, REFERRER_POLICY, SET_COOKIE,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use idjag_core::ClientSecret;
use serde::Deserialize;

use crate::admin::approvals::{Refused, decide_call};
use crate::policy::approval::HeldCall;
use crate::proxy::GatewayState;
use crate::proxy::review::SignIn;

/// The sign-in cookie.
pub const COOKIE_NAME: &str = "idjag-admin";

/// The page's `Content-Security-Policy`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The page routes (answering 404 unless the page is on).
pub(crate) fn router() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/admin/page", get(home))
        .route("/admin/page/style.css", get(style))
        .route("/admin/page/login", post(login))
        .route("/admin/page/logout", post(logout))
        .route("/admin/page/approvals/{id}/{decision}", post(decide))
}

/// The status pages (on the gateway's public listener).
pub(crate) fn status_router() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/approval-status/style.css", get(status_style))
        .route("/approval-status/{id}", get(status))
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn page(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(response.headers_mut());
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secure_headers(response.headers_mut());
    response
}

fn see_other(location: &'static str) -> Response {
    let mut response = plain(StatusCode::SEE_OTHER, "");
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(location));
    response
}

fn css(text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    secure_headers(response.headers_mut());
    response
}

/// Whether the page is on.
fn enabled(state: &GatewayState) -> bool {
    state.admin.is_some() && state.review.page().is_some()
}

/// The sign-in cookie's value.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 128)
}

async fn current(state: &GatewayState, headers: &HeaderMap) -> Option<(String, SignIn)> {
    let id = session_id(headers)?;
    let sign_in = state.review.signed_in(&id, state.clock.now_unix()).await?;
    Some((id, sign_in))
}

/// The origin of a URL (`scheme://host[:port]`).
fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization())
}

/// Whether a `POST` may come from where it says it comes from: `Sec-Fetch-Site`, when
/// present (browsers set it; scripts cannot), must be `same-origin` or `none`; `Origin`, when
/// present, must be the admin URL's origin or the request's own, except `null`, which
/// browsers send for a same-origin form under `Referrer-Policy: no-referrer` (Fetch,
/// "serializing a request origin") and which is accepted only with `Sec-Fetch-Site:
/// same-origin`.
fn same_origin(state: &GatewayState, headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").map(HeaderValue::as_bytes);
    if site.is_some_and(|site| !matches!(site, b"same-origin" | b"none")) {
        return false;
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == "null" {
        return site == Some(b"same-origin".as_slice());
    }
    if origin_of(&state.review.plan.admin_url).as_deref() == Some(origin) {
        return true;
    }
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// The fields of a form body (`application/x-www-form-urlencoded`).
fn field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn forbidden() -> Response {
    plain(
        StatusCode::FORBIDDEN,
        "forbidden: cross-site request refused",
    )
}

/// A notice shown after a decision: one of a fixed set.
#[derive(Deserialize)]
pub(crate) struct Notice {
    #[serde(default)]
    done: Option<String>,
}

fn notice_text(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "approved" => "Approved: the agent's identical retry runs once.",
        "rejected" => "Rejected.",
        "already_decided" => "That call was already decided.",
        "not_found" => "That call is unknown or has expired.",
        "unavailable" => "The store did not answer; try again.",
        "signed_out" => "Signed out.",
        _ => return None,
    })
}

async fn home(
    State(state): State<Arc<GatewayState>>,
    Query(notice): Query<Notice>,
    headers: HeaderMap,
) -> Response {
    if !enabled(&state) {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let Some((_, sign_in)) = current(&state, &headers).await else {
        return page(StatusCode::OK, html::login(None));
    };
    match state.approvals.list().await {
        Ok(records) => {
            let calls: Vec<HeldCall> = records.iter().map(HeldCall::from_record).collect();
            page(
                StatusCode::OK,
                html::list(
                    &calls,
                    state.clock.now_unix(),
                    &sign_in.csrf,
                    notice_text(notice.done.as_deref()),
                ),
            )
        }
        Err(error) => {
            tracing::warn!(%error, "admin page: the store did not answer");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store did not answer; try again",
            )
        }
    }
}

async fn style(State(state): State<Arc<GatewayState>>) -> Response {
    if !enabled(&state) {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    css(html::STYLE)
}

async fn status_style() -> Response {
    css(html::STYLE)
}

async fn login(
    State(state): State<Arc<GatewayState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Some(admin), Some(settings)) = (&state.admin, state.review.page()) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    if !same_origin(&state, &headers) {
        return forbidden();
    }
    let token = field(&body, "token").unwrap_or_default();
    if token.is_empty() || !ClientSecret::new(token).ct_eq(admin.token.value()) {
        tracing::info!("admin page: sign-in refused");
        return page(
            StatusCode::UNAUTHORIZED,
            html::login(Some("That is not the admin token.")),
        );
    }
    let (Ok(id), Ok(csrf)) = (
        idjag_core::random::hex_id(32),
        idjag_core::random::hex_id(32),
    ) else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "no randomness; try again");
    };
    let ttl = settings.session_ttl.as_secs();
    let expires = state
        .clock
        .now_unix()
        .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2));
    state.review.sign_in(&id, SignIn { csrf, expires }).await;
    tracing::info!("admin page: signed in");
    let secure = if settings.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE_NAME}={id}; Path=/admin/page; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}"
    );
    let mut response = see_other("/admin/page");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

/// The sign-in of a state-changing `POST`, its origin and synchronizer token checked.
async fn checked(
    state: &GatewayState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Response> {
    if !enabled(state) {
        return Err(plain(StatusCode::NOT_FOUND, "not found"));
    }
    if !same_origin(state, headers) {
        return Err(forbidden());
    }
    let Some((id, sign_in)) = current(state, headers).await else {
        return Err(see_other("/admin/page"));
    };
    let presented = field(body, "csrf").unwrap_or_default();
    if presented.is_empty() || !ClientSecret::new(presented).ct_eq(&ClientSecret::new(sign_in.csrf))
    {
        tracing::warn!("admin page: a POST without its sign-in's CSRF token refused");
        return Err(plain(
            StatusCode::FORBIDDEN,
            "forbidden: missing or wrong CSRF token",
        ));
    }
    Ok(id)
}

async fn logout(
    State(state): State<Arc<GatewayState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = match checked(&state, &headers, &body).await {
        Ok(id) => id,
        Err(response) => return response,
    };
    state.review.sign_out(&id).await;
    let mut response = see_other("/admin/page?done=signed_out");
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "idjag-admin=; Path=/admin/page; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

async fn decide(
    State(state): State<Arc<GatewayState>>,
    Path((id, decision)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = checked(&state, &headers, &body).await {
        return response;
    }
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return plain(StatusCode::NOT_FOUND, "not found"),
    };
    let location = match decide_call(&state, &headers, &id, approve).await {
        Ok(_) if approve => "/admin/page?done=approved",
        Ok(_) => "/admin/page?done=rejected",
        Err(Refused::Deny(StatusCode::CONFLICT, _)) => "/admin/page?done=already_decided",
        Err(Refused::Deny(..)) => "/admin/page?done=not_found",
        Err(Refused::Store(_)) => "/admin/page?done=unavailable",
    };
    see_other(location)
}

/// Whether `id` looks like an approval id (`apr_` and 32 hex digits).
fn approval_id(id: &str) -> bool {
    id.strip_prefix("apr_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn status(State(state): State<Arc<GatewayState>>, Path(id): Path<String>) -> Response {
    if !approval_id(&id) {
        return page(StatusCode::NOT_FOUND, html::status(None));
    }
    match state.approvals.get(&id).await {
        Ok(Some(record)) if record.expires > state.clock.now_unix() => {
            let call = HeldCall::from_record(&record);
            page(StatusCode::OK, html::status(Some(&call)))
        }
        Ok(_) => page(StatusCode::NOT_FOUND, html::status(None)),
        Err(error) => {
            tracing::warn!(%error, "status page: the store did not answer");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store did not answer; try again",
            )
        }
    }
}
