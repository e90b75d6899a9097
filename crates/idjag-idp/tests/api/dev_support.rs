//! The development OpenID provider on 127.0.0.1:0 (`DevOidcProvider::router` in place of the
//! issuer's router), a browser-like HTTP client that does not follow redirects, and helpers
//! to drive the login page and the code flow.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use idjag_core::*;
use idjag_idp::dev::{DEV_LOG_TARGET, DevClient, DevOidcProvider, DevUser};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use crate::support::*;

/// The chat agent signs users in here (confidential, the same secret as for token exchange).
pub(crate) const AGENT_REDIRECT: &str = "https://agent.example/callback";
pub(crate) const AGENT_LOOPBACK_REDIRECT: &str = "http://127.0.0.1:8080/cb?x=1";
pub(crate) const OTHER_REDIRECT: &str = "https://other.example/cb";
/// A public client with a loopback redirect URI (any port).
pub(crate) const CLI: &str = "cli";
pub(crate) const CLI_REDIRECT: &str = "http://127.0.0.1/callback";
/// RFC 7636 appendix B.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub(crate) const STATE: &str = "st-8e1f/+ =&";
pub(crate) const NONCE: &str = "n-0c2d9a";
/// A hostile display name, email and group.
pub(crate) const SCRIPT_NAME: &str = "<script>alert(\"pwned\")</script>";
pub(crate) const SCRIPT_EMAIL: &str = "x@example.com\"><b onmouseover=alert(1)>";
pub(crate) const SCRIPT_GROUP: &str = "<img src=x onerror=alert(1)>";

pub(crate) struct Dev {
    pub(crate) h: Harness,
    pub(crate) dev: DevOidcProvider,
    pub(crate) browser: reqwest::Client,
    dev_seen: Mutex<usize>,
}

/// A page or redirect from the authorization endpoint.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

/// The hidden fields of a login page.
#[derive(Debug, Clone)]
pub(crate) struct LoginForm {
    pub(crate) request: String,
    pub(crate) csrf: String,
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).expect("the hidden field is there") + marker.len();
    let end = body[start..].find('"').unwrap();
    body[start..start + end].to_owned()
}

impl Page {
    pub(crate) fn login_form(&self) -> LoginForm {
        assert_eq!(self.status, 200, "{}", self.body);
        LoginForm {
            request: hidden(&self.body, "request"),
            csrf: hidden(&self.body, "csrf"),
        }
    }

    /// The `303` redirect's target and its query parameters.
    pub(crate) fn redirect(&self) -> (Url, HashMap<String, String>) {
        assert_eq!(self.status, 303, "{}", self.body);
        let location = Url::parse(self.headers["location"].to_str().unwrap()).unwrap();
        let query = location.query_pairs().into_owned().collect();
        (location, query)
    }

    /// A redirected refusal: exactly these `error` and `error_description`, the state, `iss`.
    pub(crate) fn assert_redirected_error(
        &self,
        base: &str,
        redirect_uri: &str,
        error: &str,
        description: &str,
        state: Option<&str>,
    ) {
        let (location, query) = self.redirect();
        assert!(
            location
                .as_str()
                .starts_with(redirect_uri.split('?').next().unwrap()),
            "{location}"
        );
        assert_eq!(
            query.get("error").map(String::as_str),
            Some(error),
            "{query:?}"
        );
        assert_eq!(
            query.get("error_description").map(String::as_str),
            Some(description)
        );
        assert_eq!(query.get("state").map(String::as_str), state);
        assert_eq!(query.get("iss").map(String::as_str), Some(base));
        assert!(!query.contains_key("code"));
        assert_eq!(self.headers["cache-control"], "no-store");
    }

    /// An error page: this status, no redirect, the description on the page.
    pub(crate) fn assert_error_page(&self, status: u16, description: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert!(self.headers.get("location").is_none());
        assert_eq!(self.headers["content-type"], "text/html; charset=utf-8");
        assert!(self.body.contains(description), "{}", self.body);
        assert!(self.body.contains("DEVELOPMENT IdP"));
    }
}

/// An authorization request under construction.
#[derive(Debug, Clone)]
pub(crate) struct AuthRequest {
    params: Vec<(String, String)>,
}

impl AuthRequest {
    pub(crate) fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self.params.push((name.into(), value.into()));
        self
    }

    pub(crate) fn remove(mut self, name: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self
    }

    pub(crate) fn query(&self) -> String {
        self.params
            .iter()
            .map(|(n, v)| format!("{}={}", form_encode(n), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub(crate) async fn start_dev() -> Dev {
    let mut provider = None;
    let h = start_serving(
        None,
        |b| b,
        |_, users| {
            let users = users
                .with_user(
                    DevUser::new("alice")
                        .unwrap()
                        .with_name("Alice Liddell")
                        .with_email("alice@example.com")
                        .with_groups(&["staff"])
                        .with_amr(&["pwd"]),
                )
                .with_user(
                    DevUser::new("xss")
                        .unwrap()
                        .with_name(SCRIPT_NAME)
                        .with_email(SCRIPT_EMAIL)
                        .with_groups(&[SCRIPT_GROUP]),
                );
            let dev = DevOidcProvider::builder(users)
                .client(
                    DevClient::confidential(id(AGENT), &ClientSecret::new(AGENT_SECRET))
                        .unwrap()
                        .with_redirect_uri(AGENT_REDIRECT)
                        .unwrap()
                        .with_redirect_uri(AGENT_LOOPBACK_REDIRECT)
                        .unwrap(),
                )
                .client(
                    DevClient::confidential(id(OTHER), &ClientSecret::new(OTHER_SECRET))
                        .unwrap()
                        .with_redirect_uri(OTHER_REDIRECT)
                        .unwrap(),
                )
                .client(
                    DevClient::public(id(CLI))
                        .with_redirect_uri(CLI_REDIRECT)
                        .unwrap(),
                )
                .build()
                .unwrap();
            let router = dev.router();
            provider = Some(dev);
            router
        },
    )
    .await;
    Dev {
        h,
        dev: provider.unwrap(),
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        dev_seen: Mutex::new(0),
    }
}

impl Dev {
    pub(crate) fn authorize_url(&self) -> String {
        format!("{}/authorize", self.h.base)
    }

    /// alice's sign-in at the chat agent: code flow, PKCE S256, state and nonce.
    pub(crate) fn auth_request(&self) -> AuthRequest {
        AuthRequest { params: Vec::new() }
            .set("response_type", "code")
            .set("client_id", AGENT)
            .set("redirect_uri", AGENT_REDIRECT)
            .set("scope", "openid email")
            .set("state", STATE)
            .set("nonce", NONCE)
            .set("code_challenge", CHALLENGE)
            .set("code_challenge_method", "S256")
    }

    async fn page(response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get_raw(&self, query: &str) -> Page {
        let response = self
            .browser
            .get(format!("{}?{query}", self.authorize_url()))
            .send()
            .await
            .unwrap();
        Self::page(response).await
    }

    pub(crate) async fn authorize(&self, request: &AuthRequest) -> Page {
        self.get_raw(&request.query()).await
    }

    pub(crate) async fn post_login(
        &self,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .browser
            .post(self.authorize_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(idjag_test_support::form::body(fields));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::page(request.send().await.unwrap()).await
    }

    /// Picks `user` on the login page of `form`, as a browser does after the page.
    pub(crate) async fn choose(&self, form: &LoginForm, user: &str) -> Page {
        self.post_login(
            &[
                ("request", &form.request),
                ("csrf", &form.csrf),
                ("user", user),
            ],
            &[("sec-fetch-site", "same-origin"), ("origin", "null")],
        )
        .await
    }

    /// Signs `user` in through `request`; the code from the redirect (state checked).
    pub(crate) async fn code_for(&self, request: &AuthRequest, user: &str) -> String {
        let form = self.authorize(request).await.login_form();
        let (_, query) = self.choose(&form, user).await.redirect();
        query["code"].clone()
    }

    /// alice's code at the chat agent.
    pub(crate) async fn code(&self) -> String {
        self.code_for(&self.auth_request(), "alice").await
    }

    /// The chat agent's code redemption (Basic authentication).
    pub(crate) fn redeem(&self, code: &str) -> Form {
        Form {
            params: Vec::new(),
            headers: Vec::new(),
        }
        .set("grant_type", "authorization_code")
        .set("code", code)
        .set("redirect_uri", AGENT_REDIRECT)
        .set("code_verifier", VERIFIER)
        .basic(AGENT, AGENT_SECRET)
    }

    /// The chat agent's refresh (Basic authentication).
    pub(crate) fn refresh(&self, refresh_token: &str) -> Form {
        Form {
            params: Vec::new(),
            headers: Vec::new(),
        }
        .set("grant_type", "refresh_token")
        .set("refresh_token", refresh_token)
        .basic(AGENT, AGENT_SECRET)
    }

    /// An ID-token validator for the chat agent, trusting the IdP's published keys.
    pub(crate) fn id_token_validator(&self, client: &str) -> IdTokenValidator {
        IdTokenValidator::new(
            TrustedIssuers::new().with(self.h.idp.issuer().clone(), self.h.idp.published_keys()),
            Audience::new(client).unwrap(),
            AlgorithmSet::all(),
            self.h.clock.shared(),
        )
    }

    pub(crate) async fn userinfo(&self, access_token: &str) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .browser
            .get(format!("{}/userinfo", self.h.base))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// The development provider's log events since the last call.
    pub(crate) fn take_dev_events(&self) -> Vec<Value> {
        let events: Vec<Value> = self
            .h
            .logs
            .json()
            .into_iter()
            .filter(|e| e["target"] == DEV_LOG_TARGET)
            .collect();
        let mut seen = self.dev_seen.lock().unwrap();
        let new = events[*seen..].to_vec();
        *seen = events.len();
        new
    }

    /// The last development event since the last call is a refusal with this reason.
    pub(crate) fn expect_refused(&self, reason: &str) {
        let events = self.take_dev_events();
        let last = events.last().expect("a dev event");
        assert_eq!(last["fields"]["decision"], "refused", "{events:#?}");
        assert_eq!(last["fields"]["reason"], reason, "{events:#?}");
    }
}
