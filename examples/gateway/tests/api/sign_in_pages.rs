//! The pages of the sign-in flow in headless Chromium ([`crate::chromium`]), over the
//! topology of `authorization_server`: a client's authorization request reaches the
//! development IdP's login page, the user picks a development user and the browser lands on
//! the client's redirect URI with its code and `state` (or, on Cancel, `access_denied`); and
//! every error page a user can meet, at the gateway and at the IdP, read as a person sees it:
//! its title and text, no script, the exact `Content-Security-Policy`, no token or secret,
//! no console error. One screenshot per page (`sign-in-*.png`, `error-*.png`).

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use base64::Engine as _;
use idjag_gateway::demo::{EMA_CLIENT, GATEWAY_CLIENT, OAuthApp, Topology};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::authorization_server::{claims, start, start_as};
use crate::chromium::{Browser, chromium_or_skip};
use crate::support::spawn_router;

/// The policy of the gateway's pages (`authorization_server::pages`).
const GATEWAY_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                           form-action 'none'; frame-ancestors 'none'";

/// A client id and a client name a person could be tricked by, if they were markup.
const HOSTILE: &str = "<img src=x onerror=alert(1)><b>Evil</b>";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The client's own site: its redirect URI answers a plain page (with an empty icon, so
/// Chromium asks for no `/favicon.ico`). Its base URL.
async fn client_site() -> String {
    spawn_router(Router::new().route(
        "/callback",
        get(|| async {
            Html(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <link rel=\"icon\" href=\"data:,\"><title>Client</title></head><body><h1>Back at the client</h1></body></html>",
            )
        }),
    ))
    .await
}

/// The origin (`scheme://host:port`) of a URL.
fn origin(url: &str) -> String {
    url::Url::parse(url).unwrap().origin().ascii_serialization()
}

/// Where the browser is: the URL without its query, and the query's pairs in order.
fn landed(browser: &mut Browser) -> (String, Vec<(String, String)>) {
    let href = browser.eval("location.href");
    let mut url = url::Url::parse(href.as_str().unwrap()).unwrap();
    let pairs = url.query_pairs().into_owned().collect();
    url.set_query(None);
    (url.to_string(), pairs)
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The `'sha256-…'` source of the page's one inline style.
fn style_hash(browser: &mut Browser) -> String {
    let style = browser.eval("document.querySelector('style').textContent");
    let digest = sha2::Sha256::digest(style.as_str().unwrap().as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The secrets of the topology: none may appear in any page.
fn secrets(t: &Topology) -> Vec<String> {
    let mut secrets: Vec<String> = t.secrets().iter().map(|s| s.secret().to_owned()).collect();
    secrets.push(t.ema_secret.secret().to_owned());
    secrets.push(t.admin_token.secret().to_owned());
    secrets
}

/// Whether `text` holds something shaped like a JWT: `eyJ` (a JSON header's encoding) and
/// two more base64url segments after dots.
fn has_jwt(text: &str) -> bool {
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices("eyJ").any(|(at, _)| {
        let mut segments = text[at..].split('.');
        let whole = |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.chars().all(base64url));
        whole(segments.next())
            && whole(segments.next())
            && segments.next().is_some_and(|s| s.starts_with(base64url))
    })
}

/// What every page must be, whatever it says: `status`, exactly `csp`, no script or active
/// content of any kind, no token or secret in its markup, nothing logged as an error.
fn assert_sound(browser: &mut Browser, status: u64, csp: &str, secrets: &[String]) {
    let (received, headers) = browser.document_response();
    assert_eq!(received, status);
    let header = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(header("content-security-policy"), [csp]);
    assert_eq!(header("content-type"), ["text/html; charset=utf-8"]);
    assert_eq!(header("cache-control"), ["no-store"]);
    assert_eq!(header("x-frame-options"), ["DENY"]);
    assert_eq!(header("referrer-policy"), ["no-referrer"]);
    assert_eq!(
        browser.eval(
            "document.querySelectorAll('script, iframe, frame, object, embed, img, link, base, meta[http-equiv]').length"
        ),
        json!(0)
    );
    assert_eq!(
        browser.eval(
            "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes]).filter(a => a.name.startsWith('on')).length"
        ),
        json!(0),
        "an inline event handler"
    );
    let html = browser.eval("document.documentElement.outerHTML");
    let html = html.as_str().unwrap();
    for secret in secrets {
        assert!(!html.contains(secret.as_str()), "a secret in the page");
    }
    assert!(!has_jwt(html), "a token in the page: {html}");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
}

/// The texts of the gateway's error page, in order: heading, what happened, the
/// application (when named), the error code, the hint.
fn gateway_page(browser: &mut Browser) -> Vec<String> {
    let shown = browser.eval("[...document.querySelectorAll('main > *')].map(e => e.innerText)");
    serde_json::from_value(shown).unwrap()
}

const HINT: &str =
    "You can close this window. If this keeps happening, tell your administrator the error code.";

/// The texts of the IdP's error page: heading, description, code line; and the banner.
fn idp_error_page(browser: &mut Browser) -> (Vec<String>, String) {
    let shown = browser.eval("[...document.querySelectorAll('.card > *')].map(e => e.innerText)");
    (
        serde_json::from_value(shown).unwrap(),
        browser.text_of(".banner"),
    )
}

const BANNER: &str = "DEVELOPMENT IdP \u{2014} not for production. Anyone who can reach it can \
                      sign in as any of its development users, without a password.";

fn idp_error_csp(browser: &mut Browser) -> String {
    format!(
        "default-src 'none'; style-src {}; form-action 'none'; frame-ancestors 'none'; \
         base-uri 'none'",
        style_hash(browser)
    )
}

#[test]
fn in_chromium_the_idp_login_page_signs_the_user_in_and_the_browser_lands_with_code_and_state() {
    let Some(executable) = chromium_or_skip() else {
        return;
    };
    let runtime = runtime();
    let (t, audit) = runtime.block_on(start());
    let site = runtime.block_on(client_site());
    let redirect = format!("{site}/callback");
    let app = runtime
        .block_on(OAuthApp::register(&t.gateway_url, &redirect))
        .unwrap();
    let mut secrets = secrets(&t);
    secrets.push(app.verifier.clone());
    let mut browser = Browser::launch(&executable);

    browser.goto(&app.authorization_url(&t.gateway_url, &t.route_url, "st-123"));
    // The gateway sent the browser to the IdP, which asks who signs in to the gateway.
    assert_eq!(
        browser.eval("location.origin"),
        json!(origin(t.idp.as_str()))
    );
    assert_eq!(
        browser.eval("document.title"),
        json!("Sign in \u{2014} development IdP")
    );
    assert_eq!(
        browser.text_of("h1"),
        format!("Sign in to {GATEWAY_CLIENT}")
    );
    assert_eq!(
        browser.text_of(".meta"),
        format!(
            "Choose a development user. You will return to {} with scopes offline_access openid.",
            origin(&t.gateway_url)
        )
    );
    assert_eq!(browser.text_of(".banner"), BANNER);
    assert_eq!(
        browser.eval("[...document.querySelectorAll('button.user')].map(b => [b.value, b.querySelector('.name').innerText, b.querySelector('.groups').innerText])"),
        json!([["alice", "alice", "eng"], ["bob", "bob", "sales"], ["carol", "carol", "eng"]])
    );
    assert_eq!(browser.text_of("button.cancel"), "Cancel");
    // No form-action: Chromium checks each redirect after the post against it, and the
    // gateway sends the browser on to its client.
    let csp = format!(
        "default-src 'none'; style-src {}; frame-ancestors 'none'; base-uri 'none'",
        style_hash(&mut browser)
    );
    assert_sound(&mut browser, 200, &csp, &secrets);
    browser.screenshot("sign-in-1-idp-login.png");

    browser.click("button.user[value=alice]");
    let (at, query) = landed(&mut browser);
    assert_eq!(at, redirect);
    let code = query
        .iter()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert_eq!(code.len(), 43, "a 256-bit code");
    assert_eq!(
        query,
        pairs(&[
            ("code", &code),
            ("state", "st-123"),
            ("iss", &t.gateway_url)
        ])
    );
    assert_eq!(browser.text_of("h1"), "Back at the client");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
    browser.screenshot("sign-in-2-back-at-the-client.png");
    // The code is the client's, for alice.
    let (status, tokens) = runtime.block_on(app.redeem(&t.gateway_url, &code)).unwrap();
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["sub"],
        "alice"
    );

    // Cancel at the IdP: back at the client with access_denied and the same state.
    browser.goto(&app.authorization_url(&t.gateway_url, &t.route_url, "st-456"));
    browser.click("button.cancel");
    let (at, query) = landed(&mut browser);
    assert_eq!(at, redirect);
    assert_eq!(
        query,
        pairs(&[
            ("error", "access_denied"),
            (
                "error_description",
                "the sign-in at the identity provider did not complete"
            ),
            ("state", "st-456"),
            ("iss", &t.gateway_url),
        ])
    );
    let reasons = |method: &str| {
        audit
            .records()
            .iter()
            .filter(|r| r.method.as_deref() == Some(method))
            .map(|r| r.reason.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        reasons("oauth/authorize"),
        ["login_started", "login_started"]
    );
    assert_eq!(
        reasons("oauth/callback"),
        ["code_issued", "idp_access_denied"]
    );
    drop(browser);
    drop(t);
    runtime.shutdown_background();
}

/// Serves a metadata document on loopback whose `client_id` is not its own URL: its URL.
async fn document_naming_another_client() -> String {
    let base = spawn_router(Router::new().route(
        "/client.json",
        get(|| async {
            axum::Json(json!({
                "client_id": "https://someone-else.example/client.json",
                "client_name": HOSTILE,
                "redirect_uris": ["http://127.0.0.1/callback"],
            }))
        }),
    ))
    .await;
    format!("{base}/client.json")
}

/// Registers a public client (RFC 7591) named [`HOSTILE`] with `redirect_uri`: its id.
async fn register_hostile(gateway_url: &str, redirect_uri: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{gateway_url}/oauth/register"))
        .json(&json!({
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "none",
            "client_name": HOSTILE,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

#[test]
fn in_chromium_every_sign_in_error_page_says_what_happened_with_no_script_and_no_secret() {
    let Some(executable) = chromium_or_skip() else {
        return;
    };
    let runtime = runtime();
    // Clients on loopback are allowed; others only by id.
    let (t, audit) = runtime.block_on(start_as(
        |config| {
            let a = config.authorization_server.as_mut().unwrap();
            let mut allowed = idjag_gateway::config::AllowedClients::default();
            allowed.ids = vec![EMA_CLIENT.to_owned()];
            allowed.hosts = vec!["127.0.0.1".to_owned()];
            a.allowed_clients = Some(allowed);
        },
        |_| {},
    ));
    let secrets = secrets(&t);
    let site = runtime.block_on(client_site());
    let redirect = format!("{site}/callback");
    let mut browser = Browser::launch(&executable);
    let mut visit = |app: &OAuthApp, shot: &str, status: u64| {
        browser.goto(&app.authorization_url(&t.gateway_url, &t.route_url, "s"));
        assert_sound(&mut browser, status, GATEWAY_CSP, &secrets);
        browser.screenshot(shot);
        gateway_page(&mut browser)
    };

    let unknown = OAuthApp::new(HOSTILE, &redirect);
    assert_eq!(
        visit(&unknown, "error-unknown-client.png", 400),
        [
            "Unknown application",
            "The application asking you to sign in is not registered with this gateway.",
            &format!("Application: {HOSTILE}"),
            "Error code: unknown_client",
            HINT,
        ]
    );

    let outside = runtime.block_on(register_hostile(
        &t.gateway_url,
        "https://app.untrusted.example/callback",
    ));
    let disallowed = OAuthApp::new(&outside, "https://app.untrusted.example/callback");
    assert_eq!(
        visit(&disallowed, "error-client-not-allowed.png", 403),
        [
            "Application not allowed",
            "Your organization has not allowed this application to connect through the gateway.",
            &format!("Application: {HOSTILE}"),
            "Error code: client_not_allowed",
            HINT,
        ]
    );

    let registered = runtime.block_on(register_hostile(&t.gateway_url, &redirect));
    let mismatched = OAuthApp::new(&registered, "https://attacker.example/callback");
    assert_eq!(
        visit(&mismatched, "error-redirect-uri-mismatch.png", 400),
        [
            "Sign-in cannot continue",
            "The application asked to return to an address it has not registered.",
            &format!("Application: {HOSTILE}"),
            "Error code: redirect_uri_mismatch",
            HINT,
        ]
    );

    let document = runtime.block_on(document_naming_another_client());
    let refused = OAuthApp::new(&document, "http://127.0.0.1/callback");
    assert_eq!(
        visit(&refused, "error-client-metadata-invalid.png", 400),
        [
            "Application could not be verified",
            "The application's metadata document could not be fetched or is not valid, so the gateway cannot tell who it is.",
            &format!("Application: {document}"),
            "Error code: client_metadata_invalid",
            HINT,
        ]
    );

    browser.goto(&format!(
        "{}/oauth/callback?code=abc&state=not-a-sealed-state",
        t.gateway_url
    ));
    assert_sound(&mut browser, 400, GATEWAY_CSP, &secrets);
    assert_eq!(
        gateway_page(&mut browser),
        [
            "Sign-in could not be completed",
            "This sign-in response does not belong to a sign-in started in this browser, or it was already used. Start again from the application.",
            "Error code: invalid_state",
            HINT,
        ]
    );
    browser.screenshot("error-invalid-state.png");
    assert_eq!(
        browser.eval("document.title"),
        json!("Sign-in could not be completed \u{b7} idjag gateway")
    );

    // The IdP's own refusals: a client it does not know...
    browser.goto(&format!(
        "{}/authorize?client_id={}",
        t.idp,
        url::form_urlencoded::byte_serialize(HOSTILE.as_bytes()).collect::<String>()
    ));
    let csp = idp_error_csp(&mut browser);
    assert_sound(&mut browser, 400, &csp, &secrets);
    assert_eq!(
        idp_error_page(&mut browser),
        (
            vec![
                "This sign-in request was refused".to_owned(),
                "The client is not registered at this development IdP.".to_owned(),
                "Error invalid_request. Go back to the application and start again.".to_owned(),
            ],
            BANNER.to_owned()
        )
    );
    browser.screenshot("error-idp-unknown-client.png");

    // ...and a login form whose request or CSRF token is not the one it was given.
    let app = OAuthApp::new(&registered, &redirect);
    for (field, value, status, description, shot) in [
        (
            "request",
            "0".repeat(32),
            400,
            "This sign-in request expired or was already answered.",
            "error-idp-unknown-request.png",
        ),
        (
            "csrf",
            "forged".to_owned(),
            403,
            "The sign-in form's CSRF token does not match its request.",
            "error-idp-wrong-csrf.png",
        ),
    ] {
        browser.goto(&app.authorization_url(&t.gateway_url, &t.route_url, "s"));
        assert_eq!(
            browser.text_of("h1"),
            format!("Sign in to {GATEWAY_CLIENT}")
        );
        browser.eval(&format!(
            "document.querySelector('input[name={field}]').value = {}",
            json!(value)
        ));
        browser.click("button.user[value=alice]");
        let csp = idp_error_csp(&mut browser);
        assert_sound(&mut browser, status, &csp, &secrets);
        assert_eq!(
            idp_error_page(&mut browser).0,
            [
                "This sign-in request was refused",
                description,
                "Error invalid_request. Go back to the application and start again.",
            ]
        );
        browser.screenshot(shot);
    }

    let reasons: Vec<String> = audit
        .records()
        .iter()
        .filter(|r| r.method.as_deref() == Some("oauth/authorize"))
        .map(|r| r.reason.clone())
        .collect();
    assert_eq!(
        reasons,
        [
            "unknown_client",
            "client_not_allowed",
            "redirect_uri_mismatch",
            "metadata_client_id_mismatch",
            "login_started",
            "login_started"
        ]
    );
    drop(browser);
    drop(t);
    runtime.shutdown_background();
}
