//! Approvals people can act on: the `approvals` command against the running binary, the
//! admin page (sign-in, cookie, CSRF, Origin, security headers, escaping), the status page,
//! the webhook notification and URL-mode elicitation.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::any;
use idjag_gateway::policy::approval::HeldDetails;
use idjag_gateway::policy::approval::notify::{Delivery, Notice, Notifier};
use serde_json::{Value, json};

use crate::support::*;

pub(crate) const ADMIN_TOKEN: &str = "admin-token-for-approvals-0123456789";
const BIN: &str = env!("CARGO_BIN_EXE_idjag-gateway");
pub(crate) const HOSTILE_TOOL: &str = "<img src=x onerror=alert(1)>";

/// The notes route on a recording echo upstream with sessions, approval on `publish` and on
/// [`HOSTILE_TOOL`], the admin page on, and `extra` appended to `[approvals]`.
pub(crate) async fn reviewed(
    recorder: Recorder,
    extra: &str,
) -> (Topology, idjag_gateway::observe::sinks::MemorySink) {
    let blocks = config_blocks(&format!(
        r#"
[admin]
listen = "127.0.0.1:1"
tls = "off"
plain_http_reason = "tests"
token_file = "{file}"
approval_ttl = "10m"

[approvals]
page = true
{extra}

[[upstream]]
name = "notes"
url = "http://127.0.0.1:9/mcp"
credential = {{ mode = "passthrough" }}

[upstream.tools.publish]
approval = true

[upstream.tools."{HOSTILE_TOOL}"]
approval = true
"#,
        file = secret_file(ADMIN_TOKEN).display()
    ));
    start_with(session_echo(recorder), move |c| {
        if let (Some(admin), Some(blocks)) = (c.admin.as_mut(), blocks.admin.as_ref()) {
            admin.api = blocks.api.clone();
        }
        c.approvals = blocks.approvals.clone();
        c.upstreams[0].tools = blocks.upstreams[0].tools.clone();
    })
    .await
}

/// An upstream that opens a session at `initialize` (`Mcp-Session-Id`) and echoes the rest,
/// recording every request.
fn session_echo(recorder: Recorder) -> UpstreamKind {
    UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(move |request: Request| {
            let recorder = recorder.clone();
            async move {
                let recorded = recorder.record(request).await;
                let message: Value = serde_json::from_slice(&recorded.body).unwrap_or_default();
                let initialize = message["method"] == "initialize";
                let mut response = idjag_gateway::demo::echo(axum::Json(message)).await;
                if initialize {
                    let id = format!("session-{}", recorder.count());
                    response
                        .headers_mut()
                        .insert("mcp-session-id", id.parse().unwrap());
                }
                response
            }
        }),
    ))
}

pub(crate) fn alice(t: &Topology) -> String {
    t.id_token("alice").unwrap().secret().to_owned()
}

pub(crate) async fn call_tool(t: &Topology, id: i64, tool: &str, arguments: Value) -> Value {
    let reply = send(
        &t.route_url,
        Some(&alice(t)),
        &tools_call(id, tool, arguments),
    )
    .await;
    assert_eq!(reply.status(), 200);
    messages(reply).await.pop().unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A client that keeps no cookies and follows no redirects: each test carries its own.
pub(crate) fn browserless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in; returns the cookie (`name=value`).
pub(crate) async fn sign_in(t: &Topology) -> String {
    let response = browserless()
        .post(format!("{}/admin/page/login", t.admin_url))
        .header("origin", &t.admin_url)
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(header(&response, "location"), "/admin/page");
    let cookie = header(&response, "set-cookie").to_owned();
    cookie.split(';').next().unwrap().to_owned()
}

async fn list_page(t: &Topology, cookie: &str) -> String {
    let response = browserless()
        .get(format!("{}/admin/page", t.admin_url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The CSRF token of the page.
fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[start..start + 64].to_owned()
}

fn assert_secure_headers(response: &reqwest::Response) {
    assert_eq!(
        header(response, "content-security-policy"),
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(header(response, "x-frame-options"), "DENY");
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
    assert_eq!(header(response, "cache-control"), "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_signs_in_by_the_admin_token_with_a_strict_cookie_and_strict_headers() {
    let (t, _audit) = reviewed(Recorder::default(), "").await;
    let page = browserless()
        .get(format!("{}/admin/page", t.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_secure_headers(&page);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let login = page.text().await.unwrap();
    assert!(login.contains("action=\"/admin/page/login\""), "{login}");
    assert!(!login.contains("<script"), "{login}");

    let style = browserless()
        .get(format!("{}/admin/page/style.css", t.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&style, "content-type"), "text/css; charset=utf-8");

    // A wrong token, none, and a cross-site sign-in are refused.
    for (token, origin, status) in [
        ("wrong", t.admin_url.as_str(), 401),
        ("", t.admin_url.as_str(), 401),
        (ADMIN_TOKEN, "http://evil.example", 403),
    ] {
        let response = browserless()
            .post(format!("{}/admin/page/login", t.admin_url))
            .header("origin", origin)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{token} {origin}");
        assert_secure_headers(&response);
        assert!(response.headers().get("set-cookie").is_none());
    }

    let response = browserless()
        .post(format!("{}/admin/page/login", t.admin_url))
        .header("origin", &t.admin_url)
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = header(&response, "set-cookie").to_owned();
    let (pair, attributes) = cookie.split_once(';').unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    assert_eq!(name, "idjag-admin");
    assert_eq!(value.len(), 64);
    assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
    // Plain http on loopback: not `Secure` (the browser would drop it).
    assert_eq!(
        attributes,
        " Path=/admin/page; HttpOnly; SameSite=Strict; Max-Age=3600"
    );
    // A second sign-in is another session.
    assert_ne!(sign_in(&t).await, pair);
    let signed_in = list_page(&t, pair).await;
    assert!(signed_in.contains("No call is waiting."), "{signed_in}");
    assert!(!signed_in.contains(ADMIN_TOKEN));

    // Signing out needs the CSRF token too, and ends the session.
    let csrf = csrf_of(&signed_in);
    let out = browserless()
        .post(format!("{}/admin/page/logout", t.admin_url))
        .header("cookie", pair)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(header(&out, "set-cookie").contains("Max-Age=0"));
    let after = list_page(&t, pair).await;
    assert!(after.contains("action=\"/admin/page/login\""), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tool_names_and_arguments_are_escaped_and_decisions_need_the_csrf_token() {
    let recorder = Recorder::default();
    let (t, audit) = reviewed(recorder.clone(), "").await;
    let hostile_text = "</pre><script>alert('x')</script>\"><b onmouseover=\"alert(1)\">";
    let held = call_tool(
        &t,
        1,
        HOSTILE_TOOL,
        json!({ "text": hostile_text, "api_key": "sk-live-secret" }),
    )
    .await;
    assert_eq!(held["error"]["data"]["reason"], "approval_held");
    let id = held["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let cookie = sign_in(&t).await;
    let page = list_page(&t, &cookie).await;
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b "), "{page}");
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&lt;/pre&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{page}"
    );
    // The arguments as the audit rule records them: a sensitive key redacted.
    assert!(!page.contains("sk-live-secret"), "{page}");
    assert!(page.contains("[redacted]"), "{page}");
    assert!(page.contains("alice"));
    let csrf = csrf_of(&page);
    let decide = |body: Vec<(&'static str, String)>, origin: Option<&str>, site: Option<&str>| {
        let mut request = browserless()
            .post(format!("{}/admin/page/approvals/{id}/approve", t.admin_url))
            .header("cookie", &cookie)
            .form(&body);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    let own = Some(t.admin_url.as_str());
    for (body, origin, site, why) in [
        (vec![], own, None, "no CSRF token"),
        (
            vec![("csrf", "0".repeat(64))],
            own,
            None,
            "a wrong CSRF token",
        ),
        (
            vec![("csrf", csrf.clone())],
            Some("http://evil.example"),
            None,
            "another origin",
        ),
        (
            vec![("csrf", csrf.clone())],
            Some("null"),
            None,
            "an opaque origin",
        ),
        (
            vec![("csrf", csrf.clone())],
            Some("null"),
            Some("same-site"),
            "an opaque same-site origin",
        ),
        (
            vec![("csrf", csrf.clone())],
            None,
            Some("cross-site"),
            "a cross-site fetch",
        ),
    ] {
        let refused = decide(body, origin, site).await.unwrap();
        assert_eq!(refused.status(), 403, "{why}");
        assert_secure_headers(&refused);
    }
    // Without a sign-in: back to the sign-in page, nothing decided.
    let anonymous = browserless()
        .post(format!("{}/admin/page/approvals/{id}/approve", t.admin_url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(recorder.count(), 0);
    let pending = list_page(&t, &cookie).await;
    assert!(pending.contains("Pending (1)"), "{pending}");

    // What a browser sends for the page's own form under `Referrer-Policy: no-referrer`.
    let approved = decide(
        vec![("csrf", csrf.clone())],
        Some("null"),
        Some("same-origin"),
    )
    .await
    .unwrap();
    assert_eq!(approved.status(), 303);
    assert_eq!(header(&approved, "location"), "/admin/page?done=approved");
    let again = decide(vec![("csrf", csrf.clone())], own, None)
        .await
        .unwrap();
    assert_eq!(
        header(&again, "location"),
        "/admin/page?done=already_decided"
    );

    let ran = call_tool(
        &t,
        2,
        HOSTILE_TOOL,
        json!({ "text": hostile_text, "api_key": "sk-live-secret" }),
    )
    .await;
    assert!(ran.get("result").is_some(), "{ran}");
    assert_eq!(recorder.count(), 1);
    let decided: Vec<_> = audit
        .records()
        .into_iter()
        .filter(|r| r.reason == "approval_granted")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].approval_id.as_deref(), Some(id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_page_setting_the_page_does_not_exist() {
    let (t, _audit) = start(recording_echo(Recorder::default())).await;
    for path in ["/admin/page", "/admin/page/style.css"] {
        let response = browserless()
            .get(format!("{}{path}", t.admin_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let login = browserless()
        .post(format!("{}/admin/page/login", t.admin_url))
        .form(&[("token", t.admin_token.secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 404);
}

/// A webhook receiver: answers each request with the next status of `answers` (then 200),
/// keeping the bodies.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) bodies: Arc<Mutex<Vec<Value>>>,
}

pub(crate) async fn receiver(answers: Vec<u16>) -> (Receiver, String) {
    let receiver = Receiver::default();
    let kept = receiver.clone();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let app = Router::new().route(
        "/hooks/T000/B000/XXXX",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            let answers = answers.clone();
            async move {
                kept.bodies
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                let status = answers.lock().unwrap().next().unwrap_or(200);
                http::StatusCode::from_u16(status).unwrap().into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/T000/B000/XXXX",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (receiver, url)
}

fn notice() -> Notice {
    let details: HeldDetails = serde_json::from_value(json!({
        "upstream": "notes", "tool": "publish", "user": "alice", "issuer": "http://idp",
        "agent": "chat", "arguments": {"doc": "secret plans"}, "arguments_sha256": "00",
        "policy_version": "00"
    }))
    .unwrap();
    Notice::new("apr_1", details, 1_000, "http://admin/admin/page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_is_retried_on_5xx_and_429_a_bounded_number_of_times_and_not_on_4xx() {
    let url = |u: &str| idjag_core::ClientSecret::new(u);
    let (twice, at) = receiver(vec![503, 429]).await;
    let notifier = Notifier::new(url(&at), 3, Duration::from_secs(5)).unwrap();
    assert_eq!(notifier.deliver(&notice()).await, Delivery::Delivered(3));
    assert_eq!(twice.bodies.lock().unwrap().len(), 3);

    let (down, at) = receiver(vec![500, 500, 500, 500]).await;
    let notifier = Notifier::new(url(&at), 2, Duration::from_secs(5)).unwrap();
    assert_eq!(notifier.deliver(&notice()).await, Delivery::GaveUp);
    assert_eq!(down.bodies.lock().unwrap().len(), 2);

    let (refusing, at) = receiver(vec![400]).await;
    let notifier = Notifier::new(url(&at), 3, Duration::from_secs(5)).unwrap();
    assert_eq!(notifier.deliver(&notice()).await, Delivery::Refused(400));
    assert_eq!(refusing.bodies.lock().unwrap().len(), 1);
    // Its Debug shows no URL (the URL is the webhook's credential).
    assert!(!format!("{notifier:?}").contains("XXXX"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_newly_held_call_is_notified_without_argument_values() {
    let (hook, at) = receiver(vec![502]).await;
    let url_file = secret_file(&at);
    let extra = format!(
        "admin_url = \"https://admin.internal:8443\"\n[approvals.webhook]\nurl_file = \"{}\"\nattempts = 2\n",
        url_file.display()
    );
    let (t, _audit) = reviewed(Recorder::default(), &extra).await;
    let held = call_tool(
        &t,
        1,
        "publish",
        json!({ "doc": "quarterly-secret-figures" }),
    )
    .await;
    let id = held["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A retry while pending is not notified again.
    let pending = call_tool(
        &t,
        2,
        "publish",
        json!({ "doc": "quarterly-secret-figures" }),
    )
    .await;
    assert_eq!(pending["error"]["data"]["reason"], "approval_pending");
    let started = Instant::now();
    while hook.bodies.lock().unwrap().len() < 2 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bodies = hook.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "one failed attempt, one delivered");
    assert_eq!(bodies[0], bodies[1]);
    let body = &bodies[0];
    let expires = body["expires"].as_i64().unwrap();
    assert_eq!(
        body,
        &json!({
            "text": format!(
                "Approval needed: alice ({}) through {} called publish on notes. Review: https://admin.internal:8443/admin/page",
                t.idp.as_str(),
                body["agent"].as_str().unwrap(),
            ),
            "event": "approval_held",
            "approval_id": id,
            "upstream": "notes",
            "tool": "publish",
            "user": "alice",
            "issuer": t.idp.as_str(),
            "agent": body["agent"],
            "expires": expires,
            "review_url": "https://admin.internal:8443/admin/page",
        })
    );
    let text = body.to_string();
    assert!(!text.contains("quarterly-secret-figures") && !text.contains(&alice(&t)));
}

/// `initialize` declaring `capabilities`, returning the session id.
async fn initialize_with(t: &Topology, capabilities: Value) -> String {
    let mut message = initialize();
    message["params"]["capabilities"] = capabilities;
    let response = send(&t.route_url, Some(&alice(t)), &message).await;
    assert_eq!(response.status(), 200);
    header(&response, "mcp-session-id").to_owned()
}

async fn call_in(t: &Topology, session: &str, id: i64, arguments: Value) -> Value {
    let reply = post(
        &t.route_url,
        Some(&alice(t)),
        &tools_call(id, "publish", arguments),
    )
    .header("mcp-session-id", session)
    .send()
    .await
    .unwrap();
    assert_eq!(reply.status(), 200);
    messages(reply).await.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_declared_url_elicitation_is_sent_to_the_status_page() {
    let recorder = Recorder::default();
    let (t, _audit) = reviewed(recorder.clone(), "").await;
    // A client without URL-mode elicitation (form mode only) gets the gateway's error.
    let plain = initialize_with(&t, json!({ "elicitation": {} })).await;
    let held = call_in(&t, &plain, 2, json!({ "doc": 1 })).await;
    assert_eq!(held["error"]["code"], -32035);
    assert!(held["error"]["data"].get("elicitations").is_none());

    let eliciting = initialize_with(&t, json!({ "elicitation": { "form": {}, "url": {} } })).await;
    let held = call_in(&t, &eliciting, 2, json!({ "doc": 2 })).await;
    let id = held["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status_url = format!("{}/approval-status/{id}", t.gateway_url);
    let text = "This call needs an administrator's approval: follow its status, and retry it once approved";
    assert_eq!(
        held,
        json!({
            "jsonrpc": "2.0",
            "id": 2,
            "error": {
                "code": -32042,
                "message": text,
                "data": {
                    "reason": "approval_held",
                    "approval_id": id,
                    "elicitations": [{
                        "mode": "url",
                        "elicitationId": id,
                        "url": status_url,
                        "message": text,
                    }],
                },
            },
        })
    );
    // The status page: state, upstream and tool; no user, no arguments.
    let page = browserless().get(&status_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_secure_headers(&page);
    let page = page.text().await.unwrap();
    assert!(page.contains("Waiting for an administrator"), "{page}");
    assert!(page.contains("<strong>publish</strong> on notes"), "{page}");
    assert!(!page.contains("alice"), "{page}");

    let cookie = sign_in(&t).await;
    let csrf = csrf_of(&list_page(&t, &cookie).await);
    let approved = browserless()
        .post(format!("{}/admin/page/approvals/{id}/approve", t.admin_url))
        .header("cookie", &cookie)
        .header("origin", &t.admin_url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303);
    let page = browserless()
        .get(&status_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Approved: retry the call now"), "{page}");
    let ran = call_in(&t, &eliciting, 3, json!({ "doc": 2 })).await;
    assert!(ran.get("result").is_some(), "{ran}");
    let page = browserless()
        .get(&status_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Approved and already used."), "{page}");
    for unknown in [
        "apr_00000000000000000000000000000000",
        "apr_zz",
        "%3Cscript%3E",
    ] {
        let response = browserless()
            .get(format!("{}/approval-status/{unknown}", t.gateway_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{unknown}");
    }
}

/// The binary serving `config` (its listener at `port`), until dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cli(admin_url: &str, token_file: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("approvals")
        .args(["--admin-url", admin_url, "--token-file"])
        .arg(token_file)
        .args(args)
        .env_remove("IDJAG_GATEWAY_ADMIN_TOKEN")
        .output()
        .unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approvals_command_lists_shows_approves_and_rejects_on_the_running_binary() {
    // The demo topology's IdP and wiki, and a gateway binary of the same configuration on
    // its own port (the wiki's `publish` needs approval).
    let (t, _audit) = start(UpstreamKind::Echo).await;
    let (port, admin_port) = (free_port(), free_port());
    let gateway = format!("http://127.0.0.1:{port}");
    let admin_url = format!("http://127.0.0.1:{admin_port}");
    let config = t
        .config_toml
        .replace(&t.gateway_url, &gateway)
        .replace(
            t.gateway_url.trim_start_matches("http://"),
            &format!("127.0.0.1:{port}"),
        )
        .replace(
            t.admin_url.trim_start_matches("http://"),
            &format!("127.0.0.1:{admin_port}"),
        );
    let path = std::env::temp_dir().join(format!("{}.toml", random("idjag-approvals-cli")));
    std::fs::write(&path, config).unwrap();
    let workdir = std::env::temp_dir().join(random("idjag-approvals-cli-dir"));
    std::fs::create_dir_all(&workdir).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(&workdir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut serving = Serving(child);
    let started = Instant::now();
    loop {
        let ready = client().get(format!("{admin_url}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the gateway binary is not ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token_file = secret_file(t.admin_token.secret());
    let wiki = format!("{gateway}/mcp/wiki");
    let token = alice(&t);
    let publish = |id: i64, page: &str| {
        let body = tools_call(id, "publish", json!({ "page": page }));
        let (wiki, token) = (wiki.clone(), token.clone());
        async move {
            messages(send(&wiki, Some(&token), &body).await)
                .await
                .pop()
                .unwrap()
        }
    };
    let held = publish(1, "Roadmap").await;
    let first = held["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = publish(2, "Salaries\u{1b}[2J").await;
    let second = other["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let list = cli(&admin_url, &token_file, &["list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "2 pending, 2 in all");
    let agent = "mcp-gateway";
    for id in [&first, &second] {
        assert!(
            lines.contains(&format!("{id}  pending   alice  {agent}  wiki/publish").as_str()),
            "{text}"
        );
    }
    let show = cli(&admin_url, &token_file, &["show", &second]);
    let shown = stdout(&show);
    assert!(
        shown.starts_with(&format!(
            "id:        {second}\nstatus:    pending\nuser:      alice\n"
        )),
        "{shown}"
    );
    // The escape sequence in the argument is shown, not sent to the terminal.
    assert!(
        shown.ends_with(
            "arguments: {\n             \"page\": \"Salaries\\u001b[2J\"\n           }\n"
        ),
        "{shown}"
    );
    assert!(!shown.contains('\u{1b}'));

    let approve = cli(&admin_url, &token_file, &["approve", &first]);
    assert!(approve.status.success(), "{}", stderr(&approve));
    assert_eq!(
        stdout(&approve),
        format!("{first}  approved  alice  {agent}  wiki/publish\n")
    );
    let reject = cli(&admin_url, &token_file, &["reject", &second]);
    assert_eq!(
        stdout(&reject),
        format!("{second}  rejected  alice  {agent}  wiki/publish\n")
    );
    let twice = cli(&admin_url, &token_file, &["approve", &second]);
    assert_eq!(twice.status.code(), Some(1));
    assert_eq!(
        stderr(&twice),
        "error: that call was already decided (409 already_decided)\n"
    );

    // The agent's retry runs once; the rejected call stays refused.
    let before = t.wiki.requests().len();
    let ran = publish(3, "Roadmap").await;
    assert!(ran.get("result").is_some(), "{ran}");
    assert_eq!(t.wiki.requests().len(), before + 1);
    let refused = publish(4, "Salaries\u{1b}[2J").await;
    assert_eq!(refused["error"]["data"]["reason"], "approval_rejected");

    // A wrong token: refused, and never echoed.
    let wrong = secret_file("not-the-admin-token-4242");
    let denied = cli(&admin_url, &wrong, &["list"]);
    assert_eq!(denied.status.code(), Some(1));
    assert_eq!(
        stderr(&denied),
        "error: the admin API refused the token (401)\n"
    );
    let json = cli(&admin_url, &token_file, &["--json", "list"]);
    let all: Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut states: Vec<(&str, &str)> = all["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    states.sort();
    let mut expected = vec![(first.as_str(), "consumed"), (second.as_str(), "rejected")];
    expected.sort();
    assert_eq!(states, expected);
    for output in [&list, &show, &approve, &reject, &twice, &denied, &json] {
        for secret in [t.admin_token.secret(), "not-the-admin-token-4242"] {
            assert!(!stdout(output).contains(secret) && !stderr(output).contains(secret));
        }
    }
    let _ = serving.0.kill();
    let mut logs = String::new();
    let _ = serving.0.stderr.take().unwrap().read_to_string(&mut logs);
    assert!(!logs.contains(t.admin_token.secret()), "{logs}");
    let _ = std::fs::remove_file(path);
}
