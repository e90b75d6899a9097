//! Caps in the shared store (G37, G38): per user, agent and upstream, the most calls waiting
//! for approval and the most MCP sessions. Over a cap: 429 with `Retry-After`, a JSON-RPC
//! error under the request's id and its own audit reason; nothing held, no one notified; the
//! place comes back when the call is decided or the session deleted; gateway processes on
//! one Redis share the count.

use std::time::{Duration, Instant};

use http::Method;
use idjag_gateway::observe::audit::Outcome;
use idjag_gateway::observe::sinks::MemorySink;
use idjag_test_support::redis::RedisServer;
use serde_json::{Value, json};

use crate::approvals::receiver;
use crate::instances::*;
use crate::support::*;

const ADMIN_TOKEN: &str = "admin-token-for-caps-0123456789";

fn token(t: &Topology, user: &str) -> String {
    t.id_token(user).unwrap().secret().to_owned()
}

/// The notes route on an upstream with sessions, `publish` needing approval, the admin API,
/// `[limits]` from `limits` and `[approvals]` from `approvals`.
async fn capped(recorder: Recorder, limits: &str, approvals: &str) -> (Topology, MemorySink) {
    let blocks = config_blocks(&format!(
        r#"
[admin]
listen = "127.0.0.1:1"
tls = "off"
plain_http_reason = "tests"
token_file = "{file}"
approval_ttl = "10m"

[approvals]
{approvals}

[[upstream]]
name = "notes"
url = "http://127.0.0.1:9/mcp"
credential = {{ mode = "passthrough" }}

[upstream.tools.publish]
approval = true

{limits}
"#,
        file = secret_file(ADMIN_TOKEN).display()
    ));
    start_with(session_upstream(recorder), move |c| {
        if let (Some(admin), Some(blocks)) = (c.admin.as_mut(), blocks.admin.as_ref()) {
            admin.api = blocks.api.clone();
        }
        c.approvals = blocks.approvals.clone();
        c.upstreams[0].tools = blocks.upstreams[0].tools.clone();
        c.limits = blocks.limits.clone();
    })
    .await
}

fn limited(id: i64, reason: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"error":{"code":-32037,
        "message":"Too many requests; retry later","data":{"reason":reason}}})
}

async fn publish(t: &Topology, user: &str, id: i64, doc: &str) -> reqwest::Response {
    send(
        &t.route_url,
        Some(&token(t, user)),
        &tools_call(id, "publish", json!({ "doc": doc })),
    )
    .await
}

async fn held_id(response: reqwest::Response, reason: &str) -> String {
    assert_eq!(response.status(), 200);
    let body = messages(response).await.pop().unwrap();
    assert_eq!(body["error"]["data"]["reason"], reason, "{body}");
    body["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn admin(t: &Topology, method: Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, format!("{}{path}", t.admin_url))
        .bearer_auth(ADMIN_TOKEN)
}

async fn pending(t: &Topology) -> Vec<String> {
    let list: Value = admin(t, Method::GET, "/admin/approvals")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<String> = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "pending")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn metric(text: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with("idjag_gateway_limit_refusals_total{"))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g37_a_call_over_the_users_cap_on_pending_approvals_is_refused_and_nothing_is_held() {
    let (hook, at) = receiver(Vec::new()).await;
    let url_file = secret_file(&at);
    let recorder = Recorder::default();
    let (t, audit) = capped(
        recorder.clone(),
        "[limits.user]\npending_approvals = 1\n",
        &format!(
            "[approvals.webhook]\nurl_file = \"{}\"\n",
            url_file.display()
        ),
    )
    .await;
    // The process-wide recorder is installed by the first `/metrics`: before any refusal.
    let scraped = admin(&t, Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    let first = held_id(publish(&t, "alice", 1, "a").await, "approval_held").await;
    // Alice's second call needing approval: over her cap.
    let refused = publish(&t, "alice", 2, "b").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        limited(2, "limit_user_pending_approvals")
    );
    // Her first call again is the one held, not one more.
    assert_eq!(
        held_id(publish(&t, "alice", 3, "a").await, "approval_pending").await,
        first
    );
    // Carol has her own cap.
    let carols = held_id(publish(&t, "carol", 4, "b").await, "approval_held").await;
    let mut want = vec![first.clone(), carols.clone()];
    want.sort();
    assert_eq!(pending(&t).await, want, "the refused call was not held");

    // A decision gives alice her place back.
    let approved = admin(
        &t,
        Method::POST,
        &format!("/admin/approvals/{first}/approve"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(approved.status(), 200);
    let second = held_id(publish(&t, "alice", 5, "b").await, "approval_held").await;
    assert_eq!(
        publish(&t, "alice", 6, "c").await.status(),
        429,
        "the new hold takes the place"
    );

    // Each held call was notified once; the refused ones never (they have no approval).
    let started = Instant::now();
    while hook.bodies.lock().unwrap().len() < 3 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut notified: Vec<String> = hook
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["approval_id"].as_str().unwrap().to_owned())
        .collect();
    notified.sort();
    let mut held = vec![first, carols, second];
    held.sort();
    assert_eq!(notified, held);
    assert_eq!(recorder.count(), 0, "nothing went upstream");

    let records = audit.records();
    let refusals: Vec<_> = records
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| {
            (
                r.decision,
                r.reason.as_str(),
                r.user.as_deref(),
                r.tool.as_deref(),
                r.approval_id.as_deref(),
            )
        })
        .collect();
    let refusal = (
        Outcome::Deny,
        "limit_user_pending_approvals",
        Some("alice"),
        Some("publish"),
        None,
    );
    assert_eq!(refusals, [refusal, refusal]);
    let metrics = admin(&t, Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(
            &metrics,
            &["principal=\"user\"", "limit=\"pending_approvals\""]
        ),
        Some(2.0),
        "{metrics}"
    );
}

fn session_of(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn delete_session(url: &str, token: &str, session: &str) -> u16 {
    client()
        .delete(url)
        .bearer_auth(token)
        .header("mcp-protocol-version", PROTOCOL)
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g38_an_initialize_over_the_users_cap_on_sessions_gets_429_until_one_is_deleted() {
    let recorder = Recorder::default();
    let (t, audit) = capped(
        recorder.clone(),
        "[limits.user]\nsessions = 2\n[limits.agent]\nsessions = 100\n",
        "",
    )
    .await;
    let (alice, bob) = (token(&t, "alice"), token(&t, "bob"));
    let first = session_of(&send(&t.route_url, Some(&alice), &initialize()).await);
    let second = session_of(&send(&t.route_url, Some(&alice), &initialize()).await);
    assert_ne!(first, second);
    let refused = send(&t.route_url, Some(&alice), &initialize()).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(
        refused.headers().get("mcp-session-id").is_none(),
        "the session over the cap is not handed out"
    );
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        limited(1, "limit_user_sessions")
    );
    // The upstream's session over the cap was ended there (one DELETE with its id), not left
    // to idle.
    let ended: Vec<String> = recorder
        .all()
        .iter()
        .filter(|r| r.method == Method::DELETE)
        .map(|r| r.headers["mcp-session-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ended.len(), 1);
    assert!(ended[0] != first && ended[0] != second);
    // Bob has his own cap.
    session_of(&send(&t.route_url, Some(&bob), &initialize()).await);
    // Alice ends a session: its place comes back, and the id is gone.
    assert_eq!(delete_session(&t.route_url, &alice, &first).await, 200);
    let third = session_of(&send(&t.route_url, Some(&alice), &initialize()).await);
    let gone = post(&t.route_url, Some(&alice), &tools_list(2))
        .header("mcp-session-id", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    for session in [&second, &third] {
        let own = post(&t.route_url, Some(&alice), &tools_list(3))
            .header("mcp-session-id", session.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(own.status(), 200);
    }
    let records = audit.records();
    let record = records.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(
        (
            record.decision,
            record.reason.as_str(),
            record.user.as_deref(),
            record.method.as_deref(),
            record.upstream_status,
        ),
        (
            Outcome::Deny,
            "limit_user_sessions",
            Some("alice"),
            Some("initialize"),
            Some(200),
        ),
        "the upstream was asked; its session was not handed out"
    );
    assert_eq!(records.iter().filter(|r| r.status == 429).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g37_g38_gateway_processes_on_one_redis_share_the_caps() {
    let redis = RedisServer::start();
    let (t, _) = start(session_upstream(Recorder::default())).await;
    let scratch = Scratch::new("idjag-caps");
    let store = format!(
        "[limits.user]\nsessions = 2\npending_approvals = 1\n\n{}",
        // Timeouts well above a loaded CI machine's worst Redis round trip: this test is about
        // the caps, not about a slow store (that is `api::instances`).
        redis_store(&redis.url(), 30)
            .replace("command_timeout_ms = 300", "command_timeout_ms = 3000")
            .replace("connect_timeout_ms = 300", "connect_timeout_ms = 3000")
    );
    let a = GatewayProcess::start("a", &t, &store, &scratch.0).await;
    let b = GatewayProcess::start("b", &t, &store, &scratch.0).await;
    for g in [&a, &b] {
        g.wait_ready(Duration::from_secs(30)).await;
    }
    let alice = token(&t, "alice");

    // Sessions: one through each process; the third, on either, is over the cap.
    let on_a = session_of(&send(&a.notes(), Some(&alice), &initialize()).await);
    session_of(&send(&b.notes(), Some(&alice), &initialize()).await);
    for g in [&a, &b] {
        let refused = send(&g.notes(), Some(&alice), &initialize()).await;
        assert_eq!(refused.status(), 429, "{}", g.name);
        assert_eq!(
            refused.json::<Value>().await.unwrap(),
            limited(1, "limit_user_sessions"),
            "{}",
            g.name
        );
    }
    // The session made through A, deleted through B, frees a place on A.
    assert_eq!(delete_session(&b.notes(), &alice, &on_a).await, 200);
    session_of(&send(&a.notes(), Some(&alice), &initialize()).await);

    // Approvals: held through A; a second call through B is over the cap.
    let call = |id, page: &str| tools_call(id, "publish", json!({ "page": page }));
    let held = held_id(
        send(&a.wiki(), Some(&alice), &call(1, "one")).await,
        "approval_held",
    )
    .await;
    let refused = send(&b.wiki(), Some(&alice), &call(2, "two")).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        limited(2, "limit_user_pending_approvals")
    );
    // Rejected through B: a place on A again.
    let rejected = b
        .admin(&t, Method::POST, &format!("/admin/approvals/{held}/reject"))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 200);
    held_id(
        send(&a.wiki(), Some(&alice), &call(3, "two")).await,
        "approval_held",
    )
    .await;

    // The audit files are written as the lines come: wait for the three refusals.
    let refusals = || {
        let mut reasons: Vec<String> = [&a, &b]
            .iter()
            .flat_map(|g| g.audit_lines())
            .filter(|line| line["status"] == 429)
            .map(|line| line["reason"].as_str().unwrap_or_default().to_owned())
            .collect();
        reasons.sort();
        reasons
    };
    let started = Instant::now();
    while refusals().len() < 3 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reasons = refusals();
    assert_eq!(
        reasons,
        [
            "limit_user_pending_approvals",
            "limit_user_sessions",
            "limit_user_sessions"
        ]
    );
}
