//! The gateway's own authorization server (`[authorization_server]`), end to end on
//! loopback: the demo topology with the IdP's login page, the test playing the browser and
//! the MCP client. Every negative case asserts its exact OAuth error (or error page code)
//! and audit reason; threats G27 to G35 of `docs/threat-model.md` point here.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use idjag_gateway::demo::{Browser, EMA_CLIENT, Landing, OAuthApp, Tamper};
use idjag_gateway::observe::sinks::MemorySink;
use serde_json::{Value, json};

use crate::support::{
    TopologyOptions, UpstreamKind, captured_logs, initialize, logs, messages, send, spawn_router,
    tools_call, tools_list,
};
use idjag_gateway::demo::Topology;

const REDIRECT: &str = "http://127.0.0.1/callback";

pub(crate) async fn start_as(
    configure: impl Fn(&mut idjag_gateway::Config) + Send + Sync + 'static,
    tweak: impl FnOnce(&mut TopologyOptions),
) -> (Topology, MemorySink) {
    let audit = MemorySink::default();
    let mut options = TopologyOptions::with_upstream(UpstreamKind::Notes);
    options.audit = Some(Arc::new(audit.clone()));
    options.configure = Some(Arc::new(configure));
    options.authorization_server = true;
    tweak(&mut options);
    let topology = Topology::start(options).await.expect("topology starts");
    (topology, audit)
}

pub(crate) async fn start() -> (Topology, MemorySink) {
    start_as(|_| {}, |_| {}).await
}

/// The claims of a JWT (unverified: tests only).
pub(crate) fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Signs `user` in through a fresh browser for `app`, to `resource`: where the browser
/// landed.
pub(crate) async fn authorize(t: &Topology, app: &OAuthApp, user: &str, resource: &str) -> Landing {
    Browser::new()
        .sign_in(
            &app.authorization_url(&t.gateway_url, resource, "st-123"),
            user,
            &app.redirect_uri,
        )
        .await
        .unwrap()
}

/// The whole sign-in and code redemption: the token response.
pub(crate) async fn sign_in(t: &Topology, app: &OAuthApp, user: &str) -> Value {
    let landing = authorize(t, app, user, &t.route_url).await;
    assert_eq!(landing.param("state").as_deref(), Some("st-123"));
    assert_eq!(
        landing.param("iss").as_deref(),
        Some(t.gateway_url.as_str())
    );
    let code = landing.param("code").expect("a code");
    let (status, tokens) = app.redeem(&t.gateway_url, &code).await.unwrap();
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

fn audit_reasons(audit: &MemorySink, method: &str) -> Vec<String> {
    audit
        .records()
        .iter()
        .filter(|r| r.method.as_deref() == Some(method))
        .map(|r| r.reason.clone())
        .collect()
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn metadata_names_the_gateway_at_every_path_clients_probe() {
    let (t, _) = start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp/notes",
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration/mcp/notes",
    ] {
        let (status, doc) = get_json(&format!("{}{path}", t.gateway_url)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["issuer"], t.gateway_url, "{path}");
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{}/oauth/authorize", t.gateway_url)
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        assert_eq!(
            doc["registration_endpoint"],
            format!("{}/oauth/register", t.gateway_url)
        );
        assert_eq!(
            doc["grant_types_supported"],
            json!([
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer"
            ])
        );
    }
    let (_, prm) = get_json(&format!(
        "{}/.well-known/oauth-protected-resource/mcp/notes",
        t.gateway_url
    ))
    .await;
    assert_eq!(prm["resource"], t.route_url);
    assert_eq!(prm["authorization_servers"], json!([t.gateway_url]));
    let (status, jwks) = get_json(&format!("{}/oauth/jwks", t.gateway_url)).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    // An unauthenticated MCP request points at that metadata.
    let response = send(&t.route_url, None, &initialize()).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("/.well-known/oauth-protected-resource/mcp/notes"));
}

#[tokio::test]
async fn a_registered_client_signs_in_and_calls_a_tool_through_an_id_jag_upstream() {
    let (t, audit) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    assert!(app.client_id.starts_with("dcr."));
    let tokens = sign_in(&t, &app, "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);
    let c = claims(access);
    assert_eq!(c["iss"], t.gateway_url);
    assert_eq!(c["aud"], t.route_url);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["client_id"], app.client_id);
    assert_eq!(c["groups"], json!(["eng"]));
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");

    let response = send(&t.route_url, Some(access), &initialize()).await;
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let reply = crate::support::post(
        &t.route_url,
        Some(access),
        &tools_call(2, "add_note", json!({"text": "from an OAuth client"})),
    )
    .header("mcp-session-id", &session)
    .send()
    .await
    .unwrap();
    assert_eq!(reply.status(), 200);
    let messages = messages(reply).await;
    assert!(messages[0]["result"].is_object(), "{messages:?}");
    assert_eq!(t.notes.lock().unwrap()[0].author, "alice");
    // The upstream got a token of its own authorization server, through the ID-JAG flow.
    assert_eq!(t.gateway.exchange_count(), 1);
    assert_eq!(t.gateway.redemption_count(), 1);
    // The audit line names the MCP client as the agent.
    let record = audit
        .records()
        .into_iter()
        .find(|r| r.tool.as_deref() == Some("add_note"))
        .unwrap();
    assert_eq!(record.agent.as_deref(), Some(app.client_id.as_str()));
    assert_eq!(record.user.as_deref(), Some("alice"));
    assert_eq!(record.reason, "forwarded");
    assert_eq!(audit_reasons(&audit, "oauth/token"), ["tokens_issued"]);
}

#[tokio::test]
async fn a_client_with_a_metadata_document_signs_in() {
    let doc_url = Arc::new(std::sync::OnceLock::<String>::new());
    let served = doc_url.clone();
    let base = spawn_router(Router::new().route(
        "/client.json",
        get(move || {
            let url = served.get().cloned().unwrap_or_default();
            async move {
                axum::Json(json!({
                    "client_id": url,
                    "client_name": "CIMD client",
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                }))
            }
        }),
    ))
    .await;
    let url = format!("{base}/client.json");
    doc_url.set(url.clone()).unwrap();
    let (t, audit) = start().await;
    let app = OAuthApp::new(&url, "http://127.0.0.1:45678/callback");
    let tokens = sign_in(&t, &app, "alice").await;
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["client_id"],
        url
    );
    assert_eq!(audit_reasons(&audit, "oauth/authorize"), ["login_started"]);
    assert_eq!(audit_reasons(&audit, "oauth/callback"), ["code_issued"]);
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_revokes_the_family() {
    let (t, audit) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let first = sign_in(&t, &app, "alice").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let (status, second) = app.refresh(&t.gateway_url, r1).await.unwrap();
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    assert_eq!(
        claims(second["access_token"].as_str().unwrap())["sub"],
        "alice"
    );
    // r1 again: reuse, the whole family is revoked...
    let (status, reused) = app.refresh(&t.gateway_url, r1).await.unwrap();
    assert_eq!((status, error_of(&reused)), (400, "invalid_grant"));
    assert_eq!(
        reused["error_description"],
        "the refresh token was already used: the sign-in has been revoked"
    );
    // ...so the current token is dead too.
    let (status, dead) = app.refresh(&t.gateway_url, r2).await.unwrap();
    assert_eq!((status, error_of(&dead)), (400, "invalid_grant"));
    assert_eq!(
        audit_reasons(&audit, "oauth/token"),
        [
            "tokens_issued",
            "tokens_refreshed",
            "refresh_token_reused",
            "refresh_family_revoked"
        ]
    );
    // Another client cannot use (or even try) a refresh token it was not issued.
    let other = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let fresh = sign_in(&t, &app, "alice").await;
    let (status, body) = other
        .refresh(&t.gateway_url, fresh["refresh_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant_and_burns_the_code() {
    let (t, audit) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let landing = authorize(&t, &app, "alice", &t.route_url).await;
    let code = landing.param("code").unwrap();
    let mut wrong = app.clone();
    wrong.verifier = "x".repeat(43);
    let (status, body) = wrong.redeem(&t.gateway_url, &code).await.unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(
        body["error_description"],
        "code_verifier does not match the code_challenge"
    );
    let (status, body) = app.redeem(&t.gateway_url, &code).await.unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(
        audit_reasons(&audit, "oauth/token"),
        ["pkce_verifier_mismatch", "code_reused"]
    );
}

#[tokio::test]
async fn plain_pkce_is_refused_back_at_the_client() {
    let (t, _) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let url = app
        .authorization_url(&t.gateway_url, &t.route_url, "s")
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let landing = Browser::new().follow(&url, REDIRECT).await.unwrap();
    assert_eq!(landing.param("error").as_deref(), Some("invalid_request"));
    assert_eq!(
        landing.param("error_description").as_deref(),
        Some("code_challenge_method must be S256")
    );
    assert_eq!(landing.param("state").as_deref(), Some("s"));
    // No challenge at all: the same.
    let url = app
        .authorization_url(&t.gateway_url, &t.route_url, "s")
        .replace("code_challenge=", "other=");
    let landing = Browser::new().follow(&url, REDIRECT).await.unwrap();
    assert_eq!(landing.param("error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn a_reused_code_is_invalid_grant_and_ends_the_sign_in() {
    let (t, _) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let landing = authorize(&t, &app, "alice", &t.route_url).await;
    let code = landing.param("code").unwrap();
    let (status, tokens) = app.redeem(&t.gateway_url, &code).await.unwrap();
    assert_eq!(status, 200);
    let (status, body) = app.redeem(&t.gateway_url, &code).await.unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(
        body["error_description"],
        "the authorization code was already used"
    );
    // What the code granted is revoked (RFC 6749 §4.1.2).
    let (status, body) = app
        .refresh(&t.gateway_url, tokens["refresh_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
}

#[tokio::test]
async fn a_redirect_uri_mismatch_gets_an_error_page_never_a_redirect() {
    let (t, audit) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let mut evil = app.clone();
    evil.redirect_uri = "https://attacker.example/cb".into();
    let landing = Browser::new()
        .follow(
            &evil.authorization_url(&t.gateway_url, &t.route_url, "s"),
            "https://attacker.example",
        )
        .await
        .unwrap();
    let page = landing.page().expect("an error page");
    assert_eq!(page.status, 400);
    assert!(page.content_type.starts_with("text/html"));
    assert!(
        page.body
            .contains("<code id=\"error-code\">redirect_uri_mismatch</code>")
    );
    assert_eq!(
        audit_reasons(&audit, "oauth/authorize"),
        ["redirect_uri_mismatch"]
    );
    // The code exchange checks the redirect URI too.
    let landing = authorize(&t, &app, "alice", &t.route_url).await;
    let mut other = app.clone();
    other.redirect_uri = "http://127.0.0.1/other".into();
    let (status, body) = other
        .redeem(&t.gateway_url, &landing.param("code").unwrap())
        .await
        .unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(
        body["error_description"],
        "redirect_uri does not match the authorization request"
    );
}

#[tokio::test]
async fn unknown_and_disallowed_clients_get_error_pages() {
    let (t, audit) = start_as(
        |config| {
            let a = config.authorization_server.as_mut().unwrap();
            let mut allowed = idjag_gateway::config::AllowedClients::default();
            allowed.ids = vec![EMA_CLIENT.to_owned()];
            allowed.hosts = vec!["*.trusted.example".to_owned()];
            a.allowed_clients = Some(allowed);
        },
        |_| {},
    )
    .await;
    let unknown = OAuthApp::new("no-such-client", REDIRECT);
    let landing = Browser::new()
        .follow(
            &unknown.authorization_url(&t.gateway_url, &t.route_url, "s"),
            REDIRECT,
        )
        .await
        .unwrap();
    let page = landing.page().unwrap();
    assert_eq!(page.status, 400);
    assert!(
        page.body
            .contains("<code id=\"error-code\">unknown_client</code>")
    );
    assert!(page.body.contains("no-such-client"));
    // Registered, but its redirect host (127.0.0.1) is not on the allow-list.
    let registered = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let landing = Browser::new()
        .follow(
            &registered.authorization_url(&t.gateway_url, &t.route_url, "s"),
            REDIRECT,
        )
        .await
        .unwrap();
    let page = landing.page().unwrap();
    assert_eq!(page.status, 403);
    assert!(
        page.body
            .contains("<code id=\"error-code\">client_not_allowed</code>")
    );
    // Nor at the token endpoint.
    let (status, body) = registered
        .refresh(&t.gateway_url, "whatever")
        .await
        .unwrap();
    assert_eq!((status, error_of(&body)), (401, "invalid_client"));
    assert_eq!(
        audit_reasons(&audit, "oauth/authorize"),
        ["unknown_client", "client_not_allowed"]
    );
}

/// Serves `document` (a function of its own URL) at `/client.json`; the URL.
async fn serve_document(
    document: impl Fn(&str) -> (Vec<(&'static str, String)>, String) + Send + Sync + 'static,
) -> String {
    let url = Arc::new(std::sync::OnceLock::<String>::new());
    let served = url.clone();
    let document = Arc::new(document);
    let base = spawn_router(Router::new().route(
        "/client.json",
        get(move || {
            let (headers, body) = document(served.get().map(String::as_str).unwrap_or(""));
            async move {
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
        }),
    ))
    .await;
    let full = format!("{base}/client.json");
    url.set(full.clone()).unwrap();
    full
}

async fn document_refusal(t: &Topology, client_id: &str) -> String {
    let app = OAuthApp::new(client_id, REDIRECT);
    let landing = Browser::new()
        .follow(
            &app.authorization_url(&t.gateway_url, &t.route_url, "s"),
            REDIRECT,
        )
        .await
        .unwrap();
    let page = landing.page().expect("an error page");
    assert_eq!(page.status, 400);
    assert!(
        page.body
            .contains("<code id=\"error-code\">client_metadata_invalid</code>")
    );
    page.body.clone()
}

#[tokio::test]
async fn a_metadata_document_whose_client_id_differs_from_its_url_is_refused() {
    let url = serve_document(|_| {
        (
            vec![("content-type", "application/json".to_owned())],
            json!({"client_id": "https://someone-else.example/client.json", "redirect_uris": [REDIRECT]}).to_string(),
        )
    })
    .await;
    let (t, audit) = start().await;
    document_refusal(&t, &url).await;
    assert_eq!(
        audit_reasons(&audit, "oauth/authorize"),
        ["metadata_client_id_mismatch"]
    );
}

#[tokio::test]
async fn non_https_and_private_address_metadata_urls_are_refused() {
    // Production settings: no loopback exception.
    let (t, audit) = start_as(
        |config| {
            config
                .authorization_server
                .as_mut()
                .unwrap()
                .client_metadata_documents
                .allow_loopback = false;
        },
        |_| {},
    )
    .await;
    let good_on_loopback = serve_document(|url| {
        (
            vec![("content-type", "application/json".to_owned())],
            json!({"client_id": url, "redirect_uris": [REDIRECT]}).to_string(),
        )
    })
    .await;
    for id in [
        good_on_loopback.as_str(),
        "http://client.example/client.json",
        "https://127.0.0.1/client.json",
        "https://10.1.2.3/client.json",
        "https://169.254.169.254/latest/meta-data/client.json",
        "https://[::1]/client.json",
        "https://100.64.1.1/client.json",
        "https://localhost/client.json",
    ] {
        document_refusal(&t, id).await;
    }
    assert_eq!(
        audit_reasons(&audit, "oauth/authorize"),
        [
            "metadata_url_invalid",
            "metadata_url_invalid",
            "metadata_address_refused",
            "metadata_address_refused",
            "metadata_address_refused",
            "metadata_address_refused",
            "metadata_address_refused",
            "metadata_address_refused"
        ]
    );
}

#[tokio::test]
async fn an_oversized_or_redirecting_metadata_document_is_refused() {
    let big = serve_document(|url| {
        (
            vec![("content-type", "application/json".to_owned())],
            json!({"client_id": url, "redirect_uris": [REDIRECT], "padding": "x".repeat(6000)})
                .to_string(),
        )
    })
    .await;
    let moved = serve_document(|_| {
        (
            vec![("location", "https://elsewhere.example/c.json".to_owned())],
            String::new(),
        )
    })
    .await;
    let (t, audit) = start().await;
    document_refusal(&t, &big).await;
    let _ = moved; // a 200 without JSON content type
    document_refusal(&t, &moved).await;
    assert_eq!(
        audit_reasons(&audit, "oauth/authorize"),
        ["metadata_too_large", "metadata_not_json"]
    );
}

#[tokio::test]
async fn an_idp_callback_with_a_wrong_or_foreign_state_gets_an_error_page() {
    let (t, audit) = start().await;
    let browser = Browser::new();
    let landing = browser
        .follow(
            &format!(
                "{}/oauth/callback?code=abc&state=not-a-sealed-state",
                t.gateway_url
            ),
            REDIRECT,
        )
        .await
        .unwrap();
    let page = landing.page().unwrap();
    assert_eq!(page.status, 400);
    assert!(
        page.body
            .contains("<code id=\"error-code\">invalid_state</code>")
    );
    // A genuine state, but in another browser (no binding cookie): refused too.
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let mine = Browser::new();
    let Landing::Page(login) = mine
        .follow(
            &app.authorization_url(&t.gateway_url, &t.route_url, "s"),
            REDIRECT,
        )
        .await
        .unwrap()
    else {
        panic!("the login page")
    };
    let Landing::Redirected(callback) = mine
        .log_in(
            &login,
            "alice",
            &format!("{}/oauth/callback", t.gateway_url),
        )
        .await
        .unwrap()
    else {
        panic!("a redirect to the callback")
    };
    let stolen = callback.to_string();
    let landing = Browser::new().follow(&stolen, REDIRECT).await.unwrap();
    assert!(landing.page().unwrap().body.contains("invalid_state"));
    // In its own browser it works once...
    let landing = mine.follow(&stolen, REDIRECT).await.unwrap();
    assert!(landing.param("code").is_some());
    // ...and only once (the pending login is gone).
    let landing = mine.follow(&stolen, REDIRECT).await.unwrap();
    assert!(landing.page().unwrap().body.contains("invalid_state"));
    assert_eq!(
        audit_reasons(&audit, "oauth/callback"),
        [
            "login_state_invalid",
            "login_browser_mismatch",
            "code_issued",
            "login_state_invalid"
        ]
    );
}

#[tokio::test]
async fn an_id_token_with_a_wrong_nonce_or_audience_is_refused() {
    let (t, audit) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    t.login.tamper(Some(Tamper::Nonce));
    let landing = authorize(&t, &app, "alice", &t.route_url).await;
    assert_eq!(landing.param("error").as_deref(), Some("access_denied"));
    assert_eq!(
        landing.param("error_description").as_deref(),
        Some("the identity provider's ID token was refused (nonce_mismatch)")
    );
    assert_eq!(landing.param("state").as_deref(), Some("st-123"));
    t.login.tamper(Some(Tamper::Audience));
    let landing = authorize(&t, &app, "alice", &t.route_url).await;
    assert_eq!(landing.param("error").as_deref(), Some("access_denied"));
    assert_eq!(
        landing.param("error_description").as_deref(),
        Some("the identity provider's ID token was refused (wrong_audience)")
    );
    assert_eq!(
        audit_reasons(&audit, "oauth/callback"),
        ["id_token_nonce_mismatch", "id_token_wrong_audience"]
    );
}

#[tokio::test]
async fn a_resource_that_is_not_a_route_is_invalid_target() {
    let (t, _) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    for resource in [
        "https://elsewhere.example/mcp",
        &format!("{}/mcp/nope", t.gateway_url),
        &format!("{}/mcp/notes/", t.gateway_url),
    ] {
        let landing = Browser::new()
            .follow(
                &app.authorization_url(&t.gateway_url, resource, "s"),
                REDIRECT,
            )
            .await
            .unwrap();
        assert_eq!(
            landing.param("error").as_deref(),
            Some("invalid_target"),
            "{resource}"
        );
    }
    // At the token endpoint, a resource other than the code's route.
    let landing = authorize(&t, &app, "alice", &t.route_url).await;
    let (status, body) = app
        .token_request(
            &t.gateway_url,
            &[
                ("grant_type", "authorization_code"),
                ("code", &landing.param("code").unwrap()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &app.verifier),
                ("client_id", &app.client_id),
                ("resource", &t.wiki_route_url),
            ],
        )
        .await
        .unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_target"));
}

/// An ID-JAG of `user` for the gateway's route `resource`, from the IdP (token exchange by
/// the EMA client with its user's ID token).
pub(crate) async fn id_jag(t: &Topology, user: &str, resource: &str) -> String {
    let id_token = t
        .users
        .id_token(user, &idjag_core::ClientId::new(EMA_CLIENT).unwrap())
        .unwrap();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/token", t.idp))
        .basic_auth(EMA_CLIENT, Some(t.ema_secret.secret()))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id-jag",
            ),
            ("audience", t.gateway_url.as_str()),
            ("resource", resource),
            ("subject_token", id_token.secret()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

async fn redeem_id_jag(t: &Topology, jag: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", t.gateway_url))
        .basic_auth(EMA_CLIENT, Some(t.ema_secret.secret()))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jag),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn an_ema_client_reaches_a_bridged_upstream_and_a_replayed_id_jag_is_refused() {
    // alice may use the notes server as a user too (an EMA token carries no IdP groups).
    let (t, audit) = start_as(
        |config| {
            let rule = crate::support::config_blocks(
                "[[upstream]]\nname = \"x\"\nurl = \"https://x.example/mcp\"\ncredential = { mode = \"passthrough\" }\n[[upstream.access]]\nusers = [\"alice\"]\nallow = [\"*\"]\n",
            )
            .upstreams[0]
                .access[0]
                .clone();
            config.upstreams[0].access.push(rule);
        },
        |_| {},
    )
    .await;
    let jag = id_jag(&t, "alice", &t.wiki_route_url).await;
    let (status, tokens) = redeem_id_jag(&t, &jag).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refresh_token").is_none());
    let access = tokens["access_token"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(c["iss"], t.gateway_url);
    assert_eq!(c["aud"], t.wiki_route_url);
    assert_eq!(c["client_id"], EMA_CLIENT);
    let reply = send(
        &t.wiki_route_url,
        Some(access),
        &tools_call(1, "search", json!({"query": "roadmap"})),
    )
    .await;
    assert_eq!(reply.status(), 200);
    let answer = messages(reply).await;
    assert!(answer[0]["result"].is_object(), "{answer:?}");
    assert_eq!(t.wiki.requests(), [(true, false)]);
    // The same ID-JAG again: single use.
    let (status, body) = redeem_id_jag(&t, &jag).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    // A token from an ID-JAG carries no IdP sign-in: an ID-JAG upstream says so.
    let jag = id_jag(&t, "alice", &t.route_url).await;
    let (_, tokens) = redeem_id_jag(&t, &jag).await;
    let reply = send(&t.route_url, tokens["access_token"].as_str(), &initialize()).await;
    let answer = messages(reply).await;
    assert_eq!(answer[0]["error"]["data"]["reason"], "no_idp_sign_in");
    let record = audit
        .records()
        .into_iter()
        .find(|r| r.tool.as_deref() == Some("search"))
        .unwrap();
    assert_eq!(record.agent.as_deref(), Some(EMA_CLIENT));
    assert_eq!(
        audit_reasons(&audit, "oauth/token"),
        ["id_jag_redeemed", "id_jag_refused", "id_jag_redeemed"]
    );
}

#[tokio::test]
async fn the_idp_id_token_is_renewed_for_egress_and_an_ended_idp_session_means_sign_in_again() {
    let (t, _) = start_as(
        |_| {},
        |o| o.id_token_lifetime = Some(Duration::from_secs(20)),
    )
    .await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let landing = authorize(&t, &app, "alice", &t.route_url).await;
    let (status, tokens) = app
        .redeem(&t.gateway_url, &landing.param("code").unwrap())
        .await
        .unwrap();
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    // The stored ID token expires within the renewal margin: the first call renews it.
    let reply = send(&t.route_url, Some(access), &initialize()).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(t.login.counts(), (1, 1));
    // The IdP ends alice's session: the next renewal fails, the gateway says "sign in again".
    let tokens = sign_in(&t, &app, "alice").await;
    t.login.disable("alice");
    let reply = send(&t.route_url, tokens["access_token"].as_str(), &initialize()).await;
    assert_eq!(reply.status(), 401);
    let challenge = reply.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let body: Value = reply.json().await.unwrap();
    assert_eq!(
        body["error_description"],
        "The identity provider session has ended: sign in again"
    );
    let (status, body) = app
        .refresh(&t.gateway_url, tokens["refresh_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
}

#[tokio::test]
async fn revoking_a_user_or_an_agent_ends_their_sign_ins() {
    let (t, _) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let alice = sign_in(&t, &app, "alice").await;
    let sid = claims(alice["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = t.gateway.authorization_server().unwrap();
    assert!(server.vault().load(&sid).await.unwrap().is_some());
    let admin = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/admin/revocations", t.admin_url))
            .bearer_auth(t.admin_token.secret())
            .json(&body)
            .send()
    };
    let answer: Value = admin(json!({"user": "alice"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["sign_ins_ended"], 1);
    assert!(server.vault().load(&sid).await.unwrap().is_none());
    let (status, body) = app
        .refresh(&t.gateway_url, alice["refresh_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let reply = send(&t.route_url, alice["access_token"].as_str(), &initialize()).await;
    assert_eq!(reply.status(), 403);
    // An agent: bob's sign-in through another client is ended by revoking that client.
    let other = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let bob = sign_in(&t, &other, "bob").await;
    let answer: Value = admin(json!({"client": other.client_id}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["sign_ins_ended"], 1);
    let (status, _) = other
        .refresh(&t.gateway_url, bob["refresh_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn rfc_7009_revocation_ends_the_sign_in() {
    let (t, _) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let tokens = sign_in(&t, &app, "alice").await;
    let revoke = |token: String, client: String| {
        reqwest::Client::new()
            .post(format!("{}/oauth/revoke", t.gateway_url))
            .form(&[("token", token), ("client_id", client)])
            .send()
    };
    let other = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let response = revoke(
        tokens["refresh_token"].as_str().unwrap().into(),
        other.client_id.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let response = revoke(
        tokens["refresh_token"].as_str().unwrap().into(),
        app.client_id.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let (status, body) = app
        .refresh(&t.gateway_url, tokens["refresh_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let response = revoke("unknown-token".into(), app.client_id.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn registration_with_an_initial_access_token() {
    let token = crate::support::random("iat");
    let file = crate::support::secret_file(&token);
    let (t, _) = start_as(
        move |config| {
            let a = config.authorization_server.as_mut().unwrap();
            a.registration = idjag_gateway::config::RegistrationMode::Token;
            a.registration_token_file = Some(file.clone());
        },
        |_| {},
    )
    .await;
    let register = |bearer: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(format!("{}/oauth/register", t.gateway_url))
            .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    let response = register(None).await.unwrap();
    assert_eq!(response.status(), 401);
    let response = register(Some("wrong".into())).await.unwrap();
    assert_eq!(response.status(), 401);
    let response = register(Some(token)).await.unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn stored_idp_tokens_cannot_be_read_from_the_store_without_the_key() {
    let store: Arc<dyn idjag_store::Store> = Arc::new(idjag_store::MemoryStore::new(
        idjag_core::SystemClock::shared(),
    ));
    let raw = store.clone();
    let (t, _) = start_as(|_| {}, move |o| o.store = Some(raw.clone())).await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let tokens = sign_in(&t, &app, "alice").await;
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let sign_in = t
        .gateway
        .authorization_server()
        .unwrap()
        .vault()
        .load(&sid)
        .await
        .unwrap()
        .unwrap();
    let key = idjag_store::store::digest(&[sid.as_bytes()]);
    let entry = store
        .get(idjag_store::Namespace::SealedTokens, &key)
        .await
        .unwrap()
        .expect("a sealed entry");
    let raw = String::from_utf8_lossy(&entry.value);
    for secret in [
        sign_in.id_token.as_str(),
        sign_in.refresh_token.as_deref().unwrap(),
        &sign_in.id_token[..20],
        "eyJ",
        "alice",
    ] {
        assert!(!raw.contains(secret), "the store holds {secret:?} in clear");
    }
    // Without the key it does not open.
    let other = idjag_store::SealedTokens::new(
        store.clone(),
        idjag_store::Sealer::generate(idjag_core::crypto::AeadAlgorithm::Aes256Gcm).unwrap(),
    );
    assert!(matches!(
        other.get(&sid).await,
        Err(idjag_store::StoreError::Corrupt {
            namespace: idjag_store::Namespace::SealedTokens
        })
    ));
    // Refresh tokens and codes are kept as digests only.
    assert!(
        store
            .get(
                idjag_store::Namespace::RefreshTokens,
                &idjag_store::store::digest(&[tokens["refresh_token"]
                    .as_str()
                    .unwrap()
                    .as_bytes()])
            )
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn no_token_of_any_kind_reaches_logs_audit_lines_pages_or_error_bodies() {
    let _ = logs();
    let (t, audit) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let mut bodies = Vec::new();
    let landing = authorize(&t, &app, "alice", &t.route_url).await;
    let code = landing.param("code").unwrap();
    let (_, tokens) = app.redeem(&t.gateway_url, &code).await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let sid = claims(&access)["sid"].as_str().unwrap().to_owned();
    let stored = t
        .gateway
        .authorization_server()
        .unwrap()
        .vault()
        .load(&sid)
        .await
        .unwrap();
    let reply = send(&t.route_url, Some(&access), &tools_list(1)).await;
    bodies.push(reply.text().await.unwrap());
    let (_, refreshed) = app.refresh(&t.gateway_url, &refresh).await.unwrap();
    let (_, reused) = app.refresh(&t.gateway_url, &refresh).await.unwrap();
    bodies.push(reused.to_string());
    let (_, again) = app.redeem(&t.gateway_url, &code).await.unwrap();
    bodies.push(again.to_string());
    let reply = send(&t.route_url, Some(&format!("{access}x")), &tools_list(1)).await;
    bodies.push(reply.text().await.unwrap());
    let jag = id_jag(&t, "alice", &t.wiki_route_url).await;
    let (_, ema) = redeem_id_jag(&t, &jag).await;
    let (_, replay) = redeem_id_jag(&t, &jag).await;
    bodies.push(replay.to_string());
    let page = Browser::new()
        .follow(
            &format!("{}/oauth/callback?state={code}", t.gateway_url),
            REDIRECT,
        )
        .await
        .unwrap();
    bodies.push(page.page().unwrap().body.clone());
    let mut secrets = vec![
        code.clone(),
        access.clone(),
        refresh.clone(),
        refreshed["access_token"].as_str().unwrap().to_owned(),
        refreshed["refresh_token"].as_str().unwrap().to_owned(),
        jag.clone(),
        ema["access_token"].as_str().unwrap().to_owned(),
        t.ema_secret.secret().to_owned(),
        app.verifier.clone(),
    ];
    let stored = stored.expect("the sign-in was stored");
    secrets.push(stored.id_token.clone());
    secrets.extend(stored.refresh_token.clone());
    for secret in t.secrets() {
        secrets.push(secret.secret().to_owned());
    }
    let audit_text = format!("{:?}", audit.records());
    let logs = captured_logs();
    for secret in &secrets {
        // A token's signature part is enough to recognise it.
        let needle = secret.rsplit('.').next().unwrap();
        assert!(needle.len() >= 16);
        assert!(!logs.contains(needle), "a secret in the logs");
        assert!(!audit_text.contains(needle), "a secret in the audit log");
        for body in &bodies {
            assert!(!body.contains(needle), "a secret in a body: {body}");
        }
    }
}

#[tokio::test]
async fn a_reload_keeps_the_keys_the_sign_ins_and_their_revocation_index() {
    let (t, _) = start().await;
    let app = OAuthApp::register(&t.gateway_url, REDIRECT).await.unwrap();
    let tokens = sign_in(&t, &app, "alice").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (_, jwks_before) = get_json(&format!("{}/oauth/jwks", t.gateway_url)).await;

    assert_eq!(
        t.gateway.reload().await,
        idjag_ops::reload::ReloadOutcome::Applied { generation: 2 }
    );
    // The same (generated) signing key: the token issued before the reload still serves.
    let (_, jwks_after) = get_json(&format!("{}/oauth/jwks", t.gateway_url)).await;
    assert_eq!(jwks_after, jwks_before);
    let reply = send(&t.route_url, Some(&access), &initialize()).await;
    assert_eq!(reply.status(), 200);
    // The registered client (sealed with the same generated key) and its refresh token.
    let (status, refreshed) = app
        .refresh(&t.gateway_url, tokens["refresh_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(status, 200, "{refreshed}");
    // The revocation index outlived the reload too.
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/admin/revocations", t.admin_url))
        .bearer_auth(t.admin_token.secret())
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["sign_ins_ended"], 1);
}
