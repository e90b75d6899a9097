//! The development authorization endpoint: the authorization request (`GET`, answered with
//! the login page) and the login choice (`POST`, answered with a redirect carrying the code).

use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, ORIGIN, PRAGMA,
    REFERRER_POLICY,
};
use http::{Method, Request, Response, StatusCode};
use idjag_core::server::{FormBody, is_form_content_type};
use idjag_core::{ClientId, NumericDate, ScopeSet};
use url::Url;

use super::error::DevAuthorizeError;
use super::page::{LoginPage, error_page, html_response};
use super::provider::{
    DEV_CODE_LIFETIME, DEV_LOG_TARGET, DEV_LOGIN_LIFETIME, DEV_SCOPES, DevOidcProvider,
};
use super::state::{CodeGrant, Pending, digest, digests_equal};

/// Longest accepted authorization-request query: 8 KiB.
const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Longest accepted login-form body: 4 KiB.
pub(super) const MAX_FORM_BYTES: usize = 4 * 1024;
/// Longest `state` and `nonce` kept and echoed: 512 bytes each.
const MAX_ECHO_BYTES: usize = 512;

/// Where a refusal goes once the client and its redirect URI are verified.
struct Back {
    client_id: ClientId,
    redirect: Url,
    state: Option<String>,
}

type Outcome = Result<Response<Vec<u8>>, DevAuthorizeError>;

impl DevOidcProvider {
    /// Handles one request to the authorization endpoint, framework-agnostic: `GET` is an
    /// authorization request (OpenID Connect Core §3.1.2.1) answered with the login page;
    /// `POST` is the login page's choice, answered with a `303` redirect to the client carrying
    /// `code`, `state` and `iss` (RFC 9207). Refusals follow RFC 6749 §4.1.2.1: an error page
    /// until the client and its redirect URI are verified, a redirect with `error` after.
    pub fn handle_authorize<B: AsRef<[u8]>>(&self, request: &Request<B>) -> Response<Vec<u8>> {
        let mut back = None;
        let outcome = match *request.method() {
            Method::GET => self.authorization_request(request.uri().query(), &mut back),
            Method::POST => {
                self.login_choice(request.headers(), request.body().as_ref(), &mut back)
            }
            _ => Err(DevAuthorizeError::MethodNotAllowed),
        };
        outcome.unwrap_or_else(|error| self.refuse(error, back.as_ref()))
    }

    fn authorization_request(&self, query: Option<&str>, back: &mut Option<Back>) -> Outcome {
        let query = query.unwrap_or_default();
        if query.len() > MAX_QUERY_BYTES {
            return Err(DevAuthorizeError::Malformed);
        }
        let form = FormBody::parse(query.as_bytes()).map_err(|_| DevAuthorizeError::Malformed)?;
        let client_id = form
            .get("client_id")
            .ok_or(DevAuthorizeError::MissingClientId)?;
        let client = ClientId::new(client_id)
            .ok()
            .and_then(|id| self.client(&id))
            .ok_or(DevAuthorizeError::UnknownClient)?;
        let redirect_uri = form
            .get("redirect_uri")
            .ok_or(DevAuthorizeError::MissingRedirectUri)?;
        if !client.matches_redirect_uri(redirect_uri) {
            return Err(DevAuthorizeError::RedirectUriMismatch);
        }
        let redirect =
            Url::parse(redirect_uri).map_err(|_| DevAuthorizeError::RedirectUriMismatch)?;
        let back = back.insert(Back {
            client_id: client.client_id().clone(),
            redirect,
            state: None,
        });

        // From here on, refusals are redirected to the client.
        let state = bounded(&form, "state")?;
        back.state = state.clone();
        if form.contains("request") {
            return Err(DevAuthorizeError::RequestObjectNotSupported);
        }
        if form.contains("request_uri") {
            return Err(DevAuthorizeError::RequestUriNotSupported);
        }
        match form.get("response_type") {
            None => return Err(DevAuthorizeError::MissingResponseType),
            Some("code") => {}
            Some(_) => return Err(DevAuthorizeError::UnsupportedResponseType),
        }
        if !matches!(form.get("response_mode"), None | Some("query")) {
            return Err(DevAuthorizeError::UnsupportedResponseMode);
        }
        let scope = form
            .get("scope")
            .ok_or(DevAuthorizeError::MissingOpenidScope)?;
        let scope = ScopeSet::parse(scope).map_err(|_| DevAuthorizeError::UnsupportedScope)?;
        if !scope.contains("openid") {
            return Err(DevAuthorizeError::MissingOpenidScope);
        }
        if scope.iter().any(|s| !DEV_SCOPES.contains(&s.as_str())) {
            return Err(DevAuthorizeError::UnsupportedScope);
        }
        let code_challenge = form
            .get("code_challenge")
            .ok_or(DevAuthorizeError::MissingCodeChallenge)?;
        if form.get("code_challenge_method") != Some("S256") {
            return Err(DevAuthorizeError::CodeChallengeMethodNotS256);
        }
        if !is_s256_challenge(code_challenge) {
            return Err(DevAuthorizeError::MalformedCodeChallenge);
        }
        let nonce = bounded(&form, "nonce")?;
        if form
            .get("prompt")
            .is_some_and(|p| p.split(' ').any(|v| v == "none"))
        {
            return Err(DevAuthorizeError::LoginRequired);
        }

        let request_id =
            idjag_core::random::hex_id(16).map_err(|_| DevAuthorizeError::ServerError)?;
        let csrf = idjag_core::random::url_safe(32).map_err(|_| DevAuthorizeError::ServerError)?;
        let now = self.now();
        let pending = Pending {
            client_id: back.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            state,
            nonce,
            code_challenge: code_challenge.to_owned(),
            scope: scope.clone(),
            csrf: digest(&csrf),
            expires_at: now.saturating_add(DEV_LOGIN_LIFETIME.as_secs() as i64),
        };
        self.state()
            .insert_pending(request_id.clone(), pending, now)
            .map_err(|_| DevAuthorizeError::TemporarilyUnavailable)?;

        let issuer = self.issuer().issuer().as_str();
        let origin = back.redirect.origin().ascii_serialization();
        let page = LoginPage {
            issuer,
            action: self.authorization_endpoint().as_str(),
            client_id: back.client_id.as_str(),
            redirect_origin: &origin,
            scope: &scope.to_string(),
            request_id: &request_id,
            csrf: &csrf,
            users: self.users().users().collect(),
        };
        tracing::info!(
            target: DEV_LOG_TARGET,
            endpoint = "authorize",
            decision = "login_page",
            client_id = back.client_id.as_str(),
            "dev login page shown"
        );
        Ok(html_response(StatusCode::OK, page.render(), true))
    }

    fn login_choice(&self, headers: &HeaderMap, body: &[u8], back: &mut Option<Back>) -> Outcome {
        let mut content_types = headers.get_all(CONTENT_TYPE).iter();
        let form_encoded = match (content_types.next(), content_types.next()) {
            (Some(value), None) => value.to_str().is_ok_and(is_form_content_type),
            _ => false,
        };
        if !form_encoded || body.len() > MAX_FORM_BYTES {
            return Err(DevAuthorizeError::Malformed);
        }
        let form = FormBody::parse(body).map_err(|_| DevAuthorizeError::Malformed)?;
        if self.cross_site(headers) {
            return Err(DevAuthorizeError::CrossSiteRequest);
        }
        let request_id = form
            .get("request")
            .ok_or(DevAuthorizeError::UnknownRequest)?;
        let now = self.now();
        let pending = {
            let mut state = self.state();
            let pending = state
                .pending(request_id, now)
                .ok_or(DevAuthorizeError::UnknownRequest)?;
            let csrf = form
                .get("csrf")
                .ok_or(DevAuthorizeError::MissingCsrfToken)?;
            if !digests_equal(&digest(csrf), &pending.csrf) {
                return Err(DevAuthorizeError::WrongCsrfToken);
            }
            state
                .pending
                .remove(request_id)
                .ok_or(DevAuthorizeError::UnknownRequest)?
        };
        let redirect =
            Url::parse(&pending.redirect_uri).map_err(|_| DevAuthorizeError::UnknownRequest)?;
        let back = back.insert(Back {
            client_id: pending.client_id.clone(),
            redirect,
            state: pending.state.clone(),
        });
        if form.contains("cancel") {
            return Err(DevAuthorizeError::AccessDenied);
        }
        let user = form
            .get("user")
            .and_then(|subject| self.users().user(subject))
            .ok_or(DevAuthorizeError::UnknownUser)?;

        let code = idjag_core::random::url_safe(32).map_err(|_| DevAuthorizeError::ServerError)?;
        let auth_time = NumericDate::from_unix(now).ok_or(DevAuthorizeError::ServerError)?;
        let grant = CodeGrant {
            client_id: pending.client_id,
            redirect_uri: pending.redirect_uri,
            code_challenge: pending.code_challenge,
            nonce: pending.nonce,
            scope: pending.scope,
            subject: user.subject.clone(),
            auth_time,
            expires_at: now.saturating_add(DEV_CODE_LIFETIME.as_secs() as i64),
        };
        self.state()
            .insert_code(digest(&code), grant, now)
            .map_err(|_| DevAuthorizeError::TemporarilyUnavailable)?;
        tracing::info!(
            target: DEV_LOG_TARGET,
            endpoint = "authorize",
            decision = "code_issued",
            client_id = back.client_id.as_str(),
            subject = user.subject.as_str(),
            "dev authorization code issued"
        );
        let mut location = back.redirect.clone();
        {
            let mut query = location.query_pairs_mut();
            query.append_pair("code", &code);
            if let Some(state) = &back.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer().issuer().as_str());
        }
        Ok(see_other(&location))
    }

    /// Whether a login-form post comes from another site: `Sec-Fetch-Site` other than
    /// `same-origin` or `none`, or an `Origin` other than this IdP's (`null` passes: browsers
    /// send it under `Referrer-Policy: no-referrer`). Clients that send neither pass: the CSRF
    /// token is the check that counts.
    fn cross_site(&self, headers: &HeaderMap) -> bool {
        let fetch_site = headers
            .get_all("sec-fetch-site")
            .iter()
            .any(|v| !matches!(v.to_str(), Ok("same-origin" | "none")));
        let own_origin = self.authorization_endpoint().origin().ascii_serialization();
        let origin = headers
            .get_all(ORIGIN)
            .iter()
            .any(|v| v.to_str().map_or(true, |o| o != "null" && o != own_origin));
        fetch_site || origin
    }

    /// The error page for a refusal made before any client is verified.
    #[cfg(feature = "axum")]
    pub(super) fn refusal_page(&self, error: DevAuthorizeError) -> Response<Vec<u8>> {
        self.refuse(error, None)
    }

    fn refuse(&self, error: DevAuthorizeError, back: Option<&Back>) -> Response<Vec<u8>> {
        tracing::info!(
            target: DEV_LOG_TARGET,
            endpoint = "authorize",
            decision = "refused",
            reason = error.reason_code(),
            error = error.error_code(),
            client_id = back.map(|b| b.client_id.as_str()),
            redirected = error.redirects() && back.is_some(),
            "dev authorization refused"
        );
        match back {
            Some(back) if error.redirects() => {
                let mut location = back.redirect.clone();
                {
                    let mut query = location.query_pairs_mut();
                    query.append_pair("error", error.error_code());
                    query.append_pair("error_description", error.description());
                    if let Some(state) = &back.state {
                        query.append_pair("state", state);
                    }
                    query.append_pair("iss", self.issuer().issuer().as_str());
                }
                see_other(&location)
            }
            _ => {
                let page = error_page(
                    self.issuer().issuer().as_str(),
                    error.error_code(),
                    error.description(),
                );
                let mut response = html_response(error.status(), page, false);
                if error == DevAuthorizeError::MethodNotAllowed {
                    response
                        .headers_mut()
                        .insert(ALLOW, HeaderValue::from_static("GET, POST"));
                }
                response
            }
        }
    }
}

/// A parameter that is kept and echoed, so bounded in length.
fn bounded(form: &FormBody, parameter: &'static str) -> Result<Option<String>, DevAuthorizeError> {
    match form.get(parameter) {
        Some(value) if value.len() > MAX_ECHO_BYTES => {
            Err(DevAuthorizeError::ParameterTooLong { parameter })
        }
        value => Ok(value.map(str::to_owned)),
    }
}

/// An S256 `code_challenge`: the base64url SHA-256 of the verifier, 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A `303 See Other` to `location`, never cached, with no referrer.
fn see_other(location: &Url) -> Response<Vec<u8>> {
    let mut response = Response::new(Vec::new());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location.as_str()) {
        headers.insert(LOCATION, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
