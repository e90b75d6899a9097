//! The demo IdP's browser sign-in is idjag-idp's development OpenID provider
//! ([`DevOidcProvider`](idjag_idp::dev::DevOidcProvider): login page, authorization code + PKCE, refresh rotation, userinfo,
//! discovery). [`LoginHooks`] sits in front of its token endpoint so tests can see and bend
//! what it answers: count the logins and renewals, make the next ID token wrong
//! ([`Tamper`]), or end a user's session at the IdP ([`LoginHooks::disable`]).
//! **Development only**, like the provider itself.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, StatusCode};
use idjag_core::ClientId;
use idjag_idp::dev::DevUsers;
use serde_json::{Value, json};

/// Largest token request or response the hooks read.
const MAX_BYTES: usize = 64 * 1024;

/// What the next ID token of a code redemption gets wrong (tests of the gateway's checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tamper {
    /// Another `nonce`.
    Nonce,
    /// Issued to another client.
    Audience,
}

#[derive(Debug, Default)]
struct HookState {
    tamper: Option<Tamper>,
    disabled: Vec<String>,
    logins: u64,
    renewals: u64,
}

/// Test hooks on the development provider's token endpoint. Cloning shares them.
#[derive(Clone)]
pub struct LoginHooks {
    users: DevUsers,
    /// The client an [`Tamper::Audience`] ID token is issued to instead.
    other_client: String,
    state: Arc<Mutex<HookState>>,
}

impl std::fmt::Debug for LoginHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginHooks").finish_non_exhaustive()
    }
}

impl LoginHooks {
    /// Hooks re-signing tampered ID tokens with `users`' issuer key; [`Tamper::Audience`]
    /// names `other_client`.
    pub fn new(users: DevUsers, other_client: &str) -> Self {
        Self {
            users,
            other_client: other_client.to_owned(),
            state: Arc::new(Mutex::new(HookState::default())),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut HookState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The next ID token of a code redemption gets this wrong.
    pub fn tamper(&self, tamper: Option<Tamper>) {
        self.with_state(|s| s.tamper = tamper);
    }

    /// Ends `user`'s session at the IdP: every later refresh of theirs is refused
    /// (`invalid_grant`), as an IdP does after offboarding.
    pub fn disable(&self, user: &str) {
        self.with_state(|s| s.disabled.push(user.to_owned()));
    }

    /// Completed logins (code redemptions) and ID-token renewals (refreshes) so far.
    pub fn counts(&self) -> (u64, u64) {
        self.with_state(|s| (s.logins, s.renewals))
    }

    /// The claims of an ID token (signed by the provider itself: read, not verified).
    fn claims_of(id_token: &str) -> Option<Value> {
        let payload = id_token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Rewrites a successful token response per the hooks; `None`: answer `invalid_grant`.
    fn rewrite(&self, grant: &str, mut body: Value) -> Option<Value> {
        let claims = body["id_token"].as_str().and_then(Self::claims_of)?;
        match grant {
            "authorization_code" => {
                let tamper = self.with_state(|s| {
                    s.logins += 1;
                    s.tamper.take()
                });
                if let Some(tamper) = tamper {
                    let user = claims["sub"].as_str()?;
                    let nonce = claims["nonce"].as_str().map(str::to_owned);
                    let (audience, nonce) = match tamper {
                        Tamper::Nonce => (claims["aud"].as_str()?, Some("not-the-nonce".into())),
                        Tamper::Audience => (self.other_client.as_str(), nonce),
                    };
                    let mut claims = self
                        .users
                        .claims(user, &ClientId::new(audience).ok()?)
                        .ok()?;
                    claims.nonce = nonce;
                    let signed = self.users.sign(&claims).ok()?;
                    body["id_token"] = Value::String(signed.secret().to_owned());
                }
                Some(body)
            }
            _ => {
                let user = claims["sub"].as_str()?.to_owned();
                let ended = self.with_state(|s| {
                    let ended = s.disabled.contains(&user);
                    if !ended {
                        s.renewals += 1;
                    }
                    ended
                });
                (!ended).then_some(body)
            }
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

/// The middleware: on `POST /token` with the `authorization_code` or `refresh_token` grant,
/// the provider answers, then the hooks count, tamper or end the session.
pub(crate) async fn hooks(
    State(hooks): State<LoginHooks>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || request.uri().path() != "/token" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BYTES).await else {
        return json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": "invalid_request"}),
        );
    };
    let grant = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let response = next
        .run(Request::from_parts(parts, Body::from(Bytes::clone(&bytes))))
        .await;
    if !matches!(grant.as_str(), "authorization_code" | "refresh_token")
        || response.status() != StatusCode::OK
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BYTES).await else {
        return json_response(StatusCode::BAD_GATEWAY, &json!({"error": "server_error"}));
    };
    let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    match hooks.rewrite(&grant, answer) {
        Some(answer) => {
            let mut response = json_response(parts.status, &answer);
            *response.headers_mut() = parts.headers;
            response.headers_mut().remove(http::header::CONTENT_LENGTH);
            response
        }
        None => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_grant", "error_description": "the session has ended"}),
        ),
    }
}
