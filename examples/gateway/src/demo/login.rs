//! The demo IdP's browser sign-in: an OIDC authorization endpoint with a login page, and the
//! `authorization_code` and `refresh_token` grants at its token endpoint (every other grant
//! goes to idjag-idp's token exchange). **Development only**: anyone who types a development
//! user's name is that user. It stands in for idjag-idp's own development login until the
//! gateway uses that one; tests bend it to return unusual ID tokens ([`Tamper`]).
//!
//! Checks: `client_id` known, `redirect_uri` exactly registered, `response_type=code`, PKCE
//! S256 required, codes single use and bound to client, redirect URI and verifier; clients
//! authenticate with their secret (Basic or POST); refresh tokens rotate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::response::Response;
use axum::routing::{any, get};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode};
use idjag_core::server::FormBody;
use idjag_core::{Audience, ClientId, ClientSecret};
use idjag_idp::IdJagIssuer;
use idjag_idp::dev::DevUsers;
use serde_json::json;
use sha2::{Digest, Sha256};

/// What the next ID token of the login endpoint gets wrong (tests of the gateway's checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tamper {
    /// Another `nonce`.
    Nonce,
    /// Issued to another client.
    Audience,
}

#[derive(Clone)]
struct LoginClient {
    secret: ClientSecret,
    redirect_uris: Vec<String>,
}

struct Pending {
    user: String,
    client: String,
    redirect_uri: String,
    nonce: Option<String>,
    challenge: String,
    expires: i64,
}

#[derive(Default)]
struct State_ {
    codes: HashMap<String, Pending>,
    refresh: HashMap<[u8; 32], (String, String)>,
    disabled: Vec<String>,
    tamper: Option<Tamper>,
    logins: u64,
    renewals: u64,
}

/// The login endpoint and its grants. Cloning shares it.
#[derive(Clone)]
pub struct DevLogin {
    users: DevUsers,
    issuer: IdJagIssuer,
    clients: Arc<HashMap<String, LoginClient>>,
    state: Arc<Mutex<State_>>,
}

impl std::fmt::Debug for DevLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevLogin").finish_non_exhaustive()
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn s256(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn page(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#eef2f7;margin:0}main{max-width:24rem;margin:12vh auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 2px 12px rgba(0,0,0,.1)}h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .3rem}input[type=text]{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #b8c0cc;border-radius:6px;font-size:1rem}button{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#2457c5;color:#fff;font-size:1rem}.note{color:#5b6270;font-size:.85rem}.error{color:#a12622}";

fn error_page(text: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title><style>{STYLE}</style></head><body><main><h1>Sign-in error</h1><p class=\"error\" id=\"error\">{}</p></main></body></html>",
            escape(text)
        ),
    )
}

impl DevLogin {
    /// A login endpoint for `users` of `issuer`.
    pub fn new(issuer: IdJagIssuer, users: DevUsers) -> Self {
        Self {
            users,
            issuer,
            clients: Arc::new(HashMap::new()),
            state: Arc::new(Mutex::new(State_::default())),
        }
    }

    /// Registers a client with its secret and redirect URIs.
    pub fn with_client(mut self, id: &str, secret: &ClientSecret, redirect_uris: &[&str]) -> Self {
        Arc::make_mut(&mut self.clients).insert(
            id.to_owned(),
            LoginClient {
                secret: secret.clone(),
                redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            },
        );
        self
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State_) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The next ID token gets this wrong.
    pub fn tamper(&self, tamper: Option<Tamper>) {
        self.with_state(|s| s.tamper = tamper);
    }

    /// Refuses every refresh token of `user` from now on (the IdP's offboarding).
    pub fn disable(&self, user: &str) {
        self.with_state(|s| s.disabled.push(user.to_owned()));
    }

    /// Completed logins and ID-token renewals so far.
    pub fn counts(&self) -> (u64, u64) {
        self.with_state(|s| (s.logins, s.renewals))
    }

    /// `/authorize` (GET: the login page; POST: its form) and `/token` (this module's grants,
    /// else the IdP's token exchange); everything else goes to `fallback`.
    pub fn router(&self, fallback: Router) -> Router {
        Router::new()
            .route("/authorize", get(login_page).post(login_submit))
            .route("/token", any(token))
            .fallback_service(fallback)
            .with_state(self.clone())
    }

    fn check(&self, params: &HashMap<String, String>) -> Result<(), &'static str> {
        let client = params
            .get("client_id")
            .and_then(|id| self.clients.get(id))
            .ok_or("unknown client")?;
        let redirect = params.get("redirect_uri").ok_or("redirect_uri missing")?;
        if !client.redirect_uris.iter().any(|r| r == redirect) {
            return Err("redirect_uri not registered");
        }
        if params.get("response_type").map(String::as_str) != Some("code") {
            return Err("response_type must be code");
        }
        if params.get("code_challenge_method").map(String::as_str) != Some("S256")
            || params.get("code_challenge").is_none_or(|c| c.len() != 43)
        {
            return Err("PKCE with S256 is required");
        }
        Ok(())
    }
}

fn query_map(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

const CARRIED: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "scope",
];

async fn login_page(State(login): State<DevLogin>, RawQuery(query): RawQuery) -> Response {
    let params = query_map(query.as_deref());
    if let Err(e) = login.check(&params) {
        return error_page(e);
    }
    let hidden: String = CARRIED
        .iter()
        .filter_map(|name| {
            params.get(*name).map(|v| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    escape(v)
                )
            })
        })
        .collect();
    page(
        StatusCode::OK,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · development IdP</title><style>{STYLE}</style></head><body><main><h1>Sign in</h1>\
<p class=\"note\">Development identity provider: type a development user's name (alice, bob, carol).</p>\
<form method=\"post\" action=\"/authorize\" id=\"login\">{hidden}<label for=\"username\">User name</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
<button type=\"submit\" id=\"sign-in\">Sign in</button></form></main></body></html>"
        ),
    )
}

async fn login_submit(State(login): State<DevLogin>, body: Bytes) -> Response {
    let Ok(form) = FormBody::parse(&body) else {
        return error_page("malformed form");
    };
    let params: HashMap<String, String> = CARRIED
        .iter()
        .chain(["username"].iter())
        .filter_map(|n| form.get(n).map(|v| ((*n).to_owned(), v.to_owned())))
        .collect();
    if let Err(e) = login.check(&params) {
        return error_page(e);
    }
    let user = params.get("username").cloned().unwrap_or_default();
    if login.users.user(&user).is_none() {
        return error_page("unknown user");
    }
    let Ok(code) = idjag_core::random::url_safe(24) else {
        return error_page("unavailable");
    };
    let redirect_uri = params["redirect_uri"].clone();
    let now = login.issuer.clock().now_unix();
    login.with_state(|s| {
        s.codes.insert(
            code.clone(),
            Pending {
                user,
                client: params["client_id"].clone(),
                redirect_uri: redirect_uri.clone(),
                nonce: params.get("nonce").cloned(),
                challenge: params["code_challenge"].clone(),
                expires: now + 60,
            },
        );
    });
    let Ok(mut url) = url::Url::parse(&redirect_uri) else {
        return error_page("bad redirect_uri");
    };
    url.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = params.get("state") {
        url.query_pairs_mut().append_pair("state", state);
    }
    url.query_pairs_mut()
        .append_pair("iss", login.issuer.issuer().as_str());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(value) = HeaderValue::try_from(url.as_str()) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn oauth_error(code: &str) -> Response {
    let mut response = Response::new(Body::from(json!({ "error": code }).to_string()));
    *response.status_mut() = if code == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn client_of(login: &DevLogin, headers: &HeaderMap, form: &FormBody) -> Option<String> {
    let (id, secret) = match headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        Some(encoded) => {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (id, secret) = decoded.split_once(':')?;
            let id: String = url::form_urlencoded::parse(format!("v={id}").as_bytes())
                .next()?
                .1
                .into_owned();
            let secret: String = url::form_urlencoded::parse(format!("v={secret}").as_bytes())
                .next()?
                .1
                .into_owned();
            (id, secret)
        }
        None => (
            form.get("client_id")?.to_owned(),
            form.get("client_secret")?.to_owned(),
        ),
    };
    let client = login.clients.get(&id)?;
    ClientSecret::new(secret)
        .ct_eq(&client.secret)
        .then_some(id)
}

async fn token(State(login): State<DevLogin>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return oauth_error("invalid_request");
    };
    let form = FormBody::parse(&body).ok();
    let grant = form.as_ref().and_then(|f| f.get("grant_type"));
    let form = match (grant, &form) {
        (Some("authorization_code" | "refresh_token"), Some(form)) => form,
        _ => {
            return login
                .issuer
                .handle(http::Request::from_parts(parts, body))
                .await
                .map(Body::from);
        }
    };
    let Some(client) = client_of(&login, &parts.headers, form) else {
        return oauth_error("invalid_client");
    };
    let (user, nonce) = if grant == Some("authorization_code") {
        let pending = login.with_state(|s| s.codes.remove(form.get("code").unwrap_or_default()));
        let Some(pending) = pending else {
            return oauth_error("invalid_grant");
        };
        let now = login.issuer.clock().now_unix();
        let ok = pending.client == client
            && pending.expires > now
            && form.get("redirect_uri") == Some(pending.redirect_uri.as_str())
            && form
                .get("code_verifier")
                .is_some_and(|v| s256(v) == pending.challenge);
        if !ok {
            return oauth_error("invalid_grant");
        }
        login.with_state(|s| s.logins += 1);
        (pending.user, pending.nonce)
    } else {
        let presented = digest(form.get("refresh_token").unwrap_or_default());
        let found = login.with_state(|s| {
            let found = s.refresh.remove(&presented);
            match found {
                Some((user, c)) if c == client && !s.disabled.contains(&user) => {
                    s.renewals += 1;
                    Some(user)
                }
                _ => None,
            }
        });
        let Some(user) = found else {
            return oauth_error("invalid_grant");
        };
        (user, None)
    };
    let tamper = login.with_state(|s| s.tamper.take());
    let Ok(client_id) = ClientId::new(client.as_str()) else {
        return oauth_error("invalid_client");
    };
    let Ok(mut claims) = login.users.claims(&user, &client_id) else {
        return oauth_error("invalid_grant");
    };
    claims.nonce = match tamper {
        Some(Tamper::Nonce) => Some("not-the-nonce".to_owned()),
        _ => nonce,
    };
    if tamper == Some(Tamper::Audience)
        && let Ok(other) = Audience::new("another-client")
    {
        claims.aud = other;
    }
    let (Ok(id_token), Ok(refresh), Ok(access)) = (
        login.users.sign(&claims),
        idjag_core::random::url_safe(32),
        idjag_core::random::url_safe(32),
    ) else {
        return oauth_error("server_error");
    };
    login.with_state(|s| {
        s.refresh.insert(digest(&refresh), (user, client));
    });
    let body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": claims.exp.unix() - claims.iat.unix(),
        "id_token": id_token.secret(),
        "refresh_token": refresh,
        "scope": "openid offline_access",
    });
    let mut response = Response::new(Body::from(body.to_string()));
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
