//! Governance (issue 8): argument guardrails, the approval round trip through the admin
//! API, offboarding (revocation on the next request and on an open stream), `/metrics` and
//! request ids.

use std::time::Duration;

use idjag_gateway::observe::audit::Outcome;
use idjag_gateway::observe::sinks::MemorySink;
use serde_json::{Value, json};

use crate::support::*;

const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

/// The notes route on a recording echo upstream, with the admin API, argument rules on
/// `echo` and approval on `publish`.
async fn governed(recorder: Recorder) -> (Topology, MemorySink) {
    governed_with(recording_echo(recorder)).await
}

async fn governed_with(upstream: UpstreamKind) -> (Topology, MemorySink) {
    let blocks = config_blocks(&format!(
        r#"
[admin]
listen = "127.0.0.1:1"
tls = "off"
plain_http_reason = "tests"
token_file = "{file}"
approval_ttl = "10m"

[[upstream]]
name = "notes"
url = "http://127.0.0.1:9/mcp"
credential = {{ mode = "passthrough" }}

[upstream.tools.echo]
max_argument_bytes = 200

[[upstream.tools.echo.rules]]
name = "no-system-paths"
pointer = "/path"
deny = ["/etc/*", "*/.ssh/*"]

[[upstream.tools.echo.rules]]
name = "short-text"
pointer = "/text"
max_bytes = 40

[upstream.tools.publish]
approval = true
"#,
        file = secret_file(ADMIN_TOKEN).display()
    ));
    start_with(upstream, move |c| {
        if let (Some(admin), Some(blocks)) = (c.admin.as_mut(), blocks.admin.as_ref()) {
            admin.api = blocks.api.clone();
        }
        c.upstreams[0].tools = blocks.upstreams[0].tools.clone();
    })
    .await
}

fn token(t: &Topology, user: &str) -> String {
    t.id_token(user).unwrap().secret().to_owned()
}

async fn call(t: &Topology, user: &str, id: i64, tool: &str, arguments: Value) -> Value {
    let reply = send(
        &t.route_url,
        Some(&token(t, user)),
        &tools_call(id, tool, arguments),
    )
    .await;
    assert_eq!(reply.status(), 200);
    messages(reply).await.pop().unwrap()
}

fn admin(
    t: &Topology,
    method: http::Method,
    path: &str,
    bearer: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = client().request(method, format!("{}{path}", t.admin_url));
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_guardrail_outcome_is_a_json_rpc_error_naming_the_rule_and_never_reaches_the_upstream()
{
    let recorder = Recorder::default();
    let (t, audit) = governed(recorder.clone()).await;
    let ok = call(
        &t,
        "alice",
        1,
        "echo",
        json!({"text": "hi", "path": "/tmp/x"}),
    )
    .await;
    assert_eq!(ok["result"]["content"][0]["text"], "hi");
    assert_eq!(recorder.count(), 1);

    for (arguments, rule, violation) in [
        (
            json!({"path": "/etc/passwd"}),
            "no-system-paths",
            "value_denied",
        ),
        (
            json!({"path": "/home/a/.ssh/id_ed25519"}),
            "no-system-paths",
            "value_denied",
        ),
        // A value wrapped in an object cannot slip past a deny list.
        (
            json!({"path": {"p": "/etc/passwd"}}),
            "no-system-paths",
            "value_unmatchable",
        ),
        (json!({"text": "x".repeat(41)}), "short-text", "too_large"),
        (
            json!({"text": "ok", "pad": "y".repeat(200)}),
            "max_argument_bytes",
            "too_large",
        ),
    ] {
        let error = call(&t, "alice", 7, "echo", arguments.clone()).await;
        assert_eq!(error["id"], 7);
        assert_eq!(error["error"]["code"], -32030, "{arguments}");
        assert_eq!(error["error"]["data"]["reason"], "argument_blocked");
        assert_eq!(error["error"]["data"]["rule"], rule, "{arguments}");
        assert_eq!(
            error["error"]["data"]["violation"], violation,
            "{arguments}"
        );
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{rule:?}"))
        );
    }
    assert_eq!(recorder.count(), 1, "no blocked call reached the upstream");
    let records = audit.records();
    assert_eq!(records.len(), 6);
    for record in &records[1..] {
        assert_eq!(
            (record.decision, record.reason.as_str(), record.status),
            (Outcome::Deny, "argument_blocked", 200)
        );
        assert_eq!(record.upstream_status, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approval_round_trip_runs_an_approved_call_exactly_once() {
    let recorder = Recorder::default();
    let (t, audit) = governed(recorder.clone()).await;
    let held = call(&t, "alice", 1, "publish", json!({"doc": 1, "to": "all"})).await;
    assert_eq!(held["error"]["code"], -32035);
    assert_eq!(held["error"]["data"]["reason"], "approval_held");
    let id = held["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("apr_") && id.len() == 36, "{id}");
    // A retry before the decision finds the same pending call.
    let again = call(&t, "alice", 2, "publish", json!({"to": "all", "doc": 1})).await;
    assert_eq!(again["error"]["data"]["reason"], "approval_pending");
    assert_eq!(again["error"]["data"]["approval_id"], id.as_str());
    assert_eq!(recorder.count(), 0);

    // The admin API needs the admin token.
    let list = "/admin/approvals";
    for bearer in [None, Some("wrong"), Some(&token(&t, "alice")[..])] {
        let response = admin(&t, http::Method::GET, list, bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{bearer:?}");
    }
    let pending: Value = admin(&t, http::Method::GET, list, Some(ADMIN_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pending = pending["approvals"].as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], id.as_str());
    assert_eq!(pending[0]["status"], "pending");
    assert_eq!(
        (
            &pending[0]["user"],
            &pending[0]["tool"],
            &pending[0]["upstream"]
        ),
        (&json!("alice"), &json!("publish"), &json!("notes"))
    );
    assert_eq!(pending[0]["arguments_sha256"].as_str().unwrap().len(), 64);

    let approve = |id: &str| {
        admin(
            &t,
            http::Method::POST,
            &format!("/admin/approvals/{id}/approve"),
            Some(ADMIN_TOKEN),
        )
        .send()
    };
    let approved = approve(&id).await.unwrap();
    assert_eq!(approved.status(), 200);
    assert_eq!(
        approved.json::<Value>().await.unwrap()["status"],
        "approved"
    );
    assert_eq!(approve(&id).await.unwrap().status(), 409);
    assert_eq!(approve("apr_unknown").await.unwrap().status(), 404);

    // An approval for other arguments, or for another user, is not this approval.
    let other_args = call(&t, "alice", 3, "publish", json!({"doc": 2, "to": "all"})).await;
    assert_eq!(other_args["error"]["data"]["reason"], "approval_held");
    let other_id = other_args["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(other_id, id);
    let other_user = call(&t, "carol", 4, "publish", json!({"doc": 1, "to": "all"})).await;
    assert_eq!(other_user["error"]["data"]["reason"], "approval_held");
    assert_eq!(recorder.count(), 0);

    // The approved call runs, once.
    let ran = call(&t, "alice", 5, "publish", json!({"doc": 1, "to": "all"})).await;
    assert!(ran.get("error").is_none(), "{ran}");
    assert_eq!(recorder.count(), 1);
    let replayed = call(&t, "alice", 6, "publish", json!({"doc": 1, "to": "all"})).await;
    assert_eq!(replayed["error"]["data"]["reason"], "approval_held");
    assert_ne!(replayed["error"]["data"]["approval_id"], id.as_str());
    assert_eq!(recorder.count(), 1, "the approval was used up");

    // A rejection is given back.
    let rejected = admin(
        &t,
        http::Method::POST,
        &format!("/admin/approvals/{other_id}/reject"),
        Some(ADMIN_TOKEN),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(rejected.status(), 200);
    let refused = call(&t, "alice", 7, "publish", json!({"doc": 2, "to": "all"})).await;
    assert_eq!(refused["error"]["data"]["reason"], "approval_rejected");
    assert_eq!(recorder.count(), 1);

    // Every hold, approval, rejection and the run are audit lines.
    let reasons: Vec<(String, Option<String>)> = audit
        .records()
        .iter()
        .map(|r| (r.reason.clone(), r.approval_id.clone()))
        .collect();
    // ... and so is every other admin call: the refused ones, the listing.
    let expected = [
        ("approval_held", Some(&id)),
        ("approval_pending", Some(&id)),
        ("unauthenticated", None),
        ("unauthenticated", None),
        ("unauthenticated", None),
        ("served", None),
        ("approval_granted", Some(&id)),
        ("already_decided", Some(&id)),
        ("not_found", None),
        ("approval_held", Some(&other_id)),
        ("approval_held", None),
        ("forwarded", Some(&id)),
        ("approval_held", None),
        ("approval_rejected", Some(&other_id)),
        ("approval_rejected", Some(&other_id)),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:?}");
    for ((reason, approval), (want, want_id)) in reasons.iter().zip(expected) {
        assert_eq!(reason, want);
        if let Some(want_id) = want_id {
            assert_eq!(approval.as_ref(), Some(want_id), "{reason}");
        } else {
            assert!(
                ["not_found", "unauthenticated", "served"].contains(&reason.as_str())
                    || approval.is_some(),
                "{reason}"
            );
        }
    }
    let granted = audit
        .records()
        .into_iter()
        .find(|r| r.reason == "approval_granted")
        .unwrap();
    assert_eq!(granted.method.as_deref(), Some("admin"));
    assert_eq!(granted.user.as_deref(), Some("alice"));
    assert_eq!(granted.tool.as_deref(), Some("publish"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_refuses_the_next_request_closes_open_streams_and_drops_cached_tokens() {
    let recorder = Recorder::default();
    let (t, audit) = governed_with(recording_upstream(recorder.clone(), Duration::ZERO)).await;
    let alice = token(&t, "alice");
    assert_eq!(
        send(&t.route_url, Some(&alice), &initialize())
            .await
            .status(),
        200
    );
    assert_eq!(t.gateway.exchange_count(), 1);
    let mut stream = client()
        .get(&t.route_url)
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {alice}"))
        .send()
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, "data: {}\n\n");

    let revoke = admin(
        &t,
        http::Method::POST,
        "/admin/revocations",
        Some(ADMIN_TOKEN),
    )
    .json(&json!({"user": "alice"}))
    .send()
    .await
    .unwrap();
    assert_eq!(revoke.status(), 201);

    // The open stream gets a final event and ends.
    let last = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(last, "event: close\ndata: {\"reason\":\"revoked\"}\n\n");
    let end = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, None);

    // The next request is refused before anything else; bob is not affected.
    let upstream_calls = recorder.count();
    let refused = send(&t.route_url, Some(&alice), &tools_list(2)).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32030);
    assert_eq!(recorder.count(), upstream_calls);
    assert_eq!(audit.records().pop().unwrap().reason, "revoked");
    let bob = token(&t, "bob");
    assert_eq!(
        send(&t.route_url, Some(&bob), &tools_list(3))
            .await
            .status(),
        200
    );

    let listed: Value = admin(
        &t,
        http::Method::GET,
        "/admin/revocations",
        Some(ADMIN_TOKEN),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(listed["revocations"][0]["kind"], "user");
    assert_eq!(listed["revocations"][0]["id"], "alice");

    // Lifted: alice works again, with a fresh upstream token (the cached one was dropped).
    let lift = || {
        admin(
            &t,
            http::Method::DELETE,
            "/admin/revocations",
            Some(ADMIN_TOKEN),
        )
        .json(&json!({"user": "alice"}))
        .send()
    };
    assert_eq!(lift().await.unwrap().status(), 200);
    assert_eq!(lift().await.unwrap().status(), 404);
    let exchanges = t.gateway.exchange_count();
    assert_eq!(
        send(&t.route_url, Some(&alice), &tools_list(4))
            .await
            .status(),
        200
    );
    assert_eq!(t.gateway.exchange_count(), exchanges + 1);

    // A client (agent) revocation refuses every user of that agent.
    let by_client = admin(
        &t,
        http::Method::POST,
        "/admin/revocations",
        Some(ADMIN_TOKEN),
    )
    .json(&json!({"client": idjag_gateway::demo::GATEWAY_CLIENT, "ttl_seconds": 60}))
    .send()
    .await
    .unwrap();
    assert_eq!(by_client.status(), 201);
    assert_eq!(
        send(&t.route_url, Some(&bob), &tools_list(5))
            .await
            .status(),
        403
    );
    // Malformed admin bodies are 400.
    for body in [
        json!({}),
        json!({"user": "a", "client": "b"}),
        json!({"users": "a"}),
    ] {
        let bad = admin(
            &t,
            http::Method::POST,
            "/admin/revocations",
            Some(ADMIN_TOKEN),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
        assert_eq!(bad.status(), 400, "{body}");
    }
    let reasons: Vec<String> = audit.records().into_iter().map(|r| r.reason).collect();
    assert!(reasons.contains(&"revocation_lifted".to_owned()));
    assert_eq!(
        reasons.iter().filter(|r| *r == "revoked").count(),
        4,
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_admin_body_is_refused_before_the_token_is_checked() {
    let (t, _) = governed(Recorder::default()).await;
    let padding = "x".repeat(idjag_gateway::admin::MAX_ADMIN_BODY_BYTES);
    for bearer in [None, Some(ADMIN_TOKEN)] {
        let response = admin(&t, http::Method::POST, "/admin/revocations", bearer)
            .json(&json!({"user": "alice", "padding": padding}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
    }
    let alice = token(&t, "alice");
    assert_eq!(
        send(&t.route_url, Some(&alice), &initialize())
            .await
            .status(),
        200,
        "nothing was revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_block_the_admin_api_does_not_exist() {
    // The admin listener without a token: the API is not mounted.
    let (t, _) = start_with(UpstreamKind::Echo, |c| {
        if let Some(admin) = c.admin.as_mut() {
            admin.api.token_env = None;
            admin.api.token_file = None;
        }
    })
    .await;
    let response = admin(&t, http::Method::GET, "/admin/approvals", Some(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_upstream_method_and_decision_and_the_token_work() {
    // The registry is the process's: a route name of its own keeps this test's counts apart
    // from the other tests' gateways.
    let name = crate::support::random("notes-metrics");
    let route = name.clone();
    let recorder = Recorder::default();
    let (t, _) = start_with(recording_echo(recorder.clone()), move |c| {
        c.upstreams[0].name = route.clone();
    })
    .await;
    let url = format!("{}/mcp/{name}", t.gateway_url);
    let alice = token(&t, "alice");
    for id in 0..3 {
        send(
            &url,
            Some(&alice),
            &tools_call(id, "echo", json!({"text": "x"})),
        )
        .await;
    }
    send(&url, Some(&alice), &tools_call(9, "delete_note", json!({}))).await;
    send(&url, None, &tools_list(1)).await;
    let text = client()
        .get(format!("{}/metrics", t.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let requests = "idjag_gateway_requests_total";
    let upstream = format!("upstream=\"{name}\"");
    let count = |method: &str, decision: &str| {
        let method = format!("method=\"{method}\"");
        let decision = format!("decision=\"{decision}\"");
        metric(&text, requests, &[&upstream, &method, &decision])
    };
    assert_eq!(count("tools/call", "allow"), Some(3.0), "{text}");
    assert_eq!(count("tools/call", "deny"), Some(1.0), "{text}");
    // The unauthenticated request: its body was never read, so no method.
    assert_eq!(count("none", "deny"), Some(1.0), "{text}");
    assert!(text.contains(&format!(
        "idjag_gateway_request_duration_seconds_bucket{{{upstream},decision=\"allow\""
    )));
    assert!(text.contains(&format!(
        "idjag_gateway_upstream_duration_seconds_count{{{upstream}}} 3"
    )));
    // This gateway's token work, and the process's counters by outcome.
    assert_eq!(
        (t.gateway.exchange_count(), t.gateway.redemption_count()),
        (1, 1)
    );
    for counter in [
        "idjag_gateway_token_exchanges_total",
        "idjag_gateway_redemptions_total",
    ] {
        assert!(metric(&text, counter, &["outcome=\"success\""]).unwrap() >= 1.0);
    }
    assert!(
        metric(
            &text,
            "idjag_gateway_jwks_fetches_total",
            &["outcome=\"success\""]
        )
        .unwrap()
            >= 1.0
    );
    let cache = |result: &str| {
        let result = format!("result=\"{result}\"");
        metric(
            &text,
            "idjag_gateway_credential_cache_total",
            &[&upstream, &result],
        )
    };
    assert_eq!(
        (cache("hit"), cache("miss")),
        (Some(2.0), Some(1.0)),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "idjag_gateway_identity_cache_total",
            &["result=\"hit\""]
        )
        .unwrap()
            >= 3.0
    );
    assert_eq!(recorder.count(), 3);
    // No user, token or argument in any label.
    assert!(!text.contains("alice"));
    assert!(!text.contains(&alice));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_client_request_id_is_propagated_upstream_back_and_into_the_audit_log() {
    let recorder = Recorder::default();
    let (t, audit) = start(recording_echo(recorder.clone())).await;
    let alice = token(&t, "alice");
    let reply = post(&t.route_url, Some(&alice), &initialize())
        .header("x-request-id", "trace-4bf92f35.77:a_1")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.headers()["x-request-id"], "trace-4bf92f35.77:a_1");
    assert_eq!(
        recorder.all()[0].headers["x-request-id"],
        "trace-4bf92f35.77:a_1"
    );
    assert_eq!(audit.records()[0].request_id, "trace-4bf92f35.77:a_1");
    for bad in ["a b", &"x".repeat(129), "a/b", ""] {
        let reply = post(&t.route_url, Some(&alice), &initialize())
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{bad:?}");
        assert_eq!(
            recorder.all().pop().unwrap().headers["x-request-id"],
            id.as_str()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_the_admin_token_or_be_turned_off() {
    let (t, _) = start_with(UpstreamKind::Echo, |c| c.metrics.require_admin_token = true).await;
    let url = format!("{}/metrics", t.admin_url);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
    let ok = client()
        .get(&url)
        .bearer_auth(t.admin_token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let (t, _) = start_with(UpstreamKind::Echo, |c| c.metrics.enabled = false).await;
    let off = client()
        .get(format!("{}/metrics", t.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 404);
}
