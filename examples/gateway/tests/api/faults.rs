//! Faults (issue 8). Covered elsewhere, by catalogue id: the IdP down with its keys cached
//! (`inbound::g22_...`: valid tokens keep working within the stale window, a new `kid` is
//! refused), key rotation during traffic (`inbound::g23_...`: no valid request refused),
//! upstream refusal, 5xx and timeouts (`mcp::g17_...`: JSON-RPC errors, a `tools/call`
//! never runs twice). Here: the resource AS down, and the accounting under mixed traffic.

use std::collections::HashMap;

use futures::future::join_all;
use idjag_gateway::observe::audit::Outcome;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_resource_as_down_a_tool_call_gets_a_clear_json_rpc_error_and_is_not_retried() {
    let recorder = Recorder::default();
    let (t, audit) = start(recording_echo(recorder.clone())).await;
    // Warm: the AS's metadata is discovered, alice's first token exchanged and redeemed.
    let first = t.id_token("alice").unwrap().secret().to_owned();
    assert_eq!(
        send(&t.route_url, Some(&first), &initialize())
            .await
            .status(),
        200
    );
    // A new sign-in (another token) needs a new exchange and redemption.
    let mut claims = t
        .users
        .claims(
            "alice",
            &idjag_core::ClientId::new(idjag_gateway::demo::GATEWAY_CLIENT).unwrap(),
        )
        .unwrap();
    claims.exp = idjag_core::NumericDate::from_unix(claims.exp.unix() - 1).unwrap();
    let alice = t.users.sign(&claims).unwrap().secret().to_owned();
    assert_ne!(alice, first);
    t.set_resource_as_down(true);
    let reply = send(
        &t.route_url,
        Some(&alice),
        &tools_call(4, "echo", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(reply.status(), 502);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["id"], 4);
    assert_eq!(body["error"]["code"], -32033);
    assert_eq!(body["error"]["data"]["reason"], "credential_unavailable");
    assert_eq!(
        body["error"]["message"],
        "No credential for the MCP server could be obtained"
    );
    // The call never reached the MCP server, and was tried once: one more exchange at the
    // IdP, one redemption attempt.
    assert_eq!(recorder.count(), 1, "only the warm-up");
    assert_eq!(
        (t.gateway.exchange_count(), t.gateway.redemption_count()),
        (2, 2)
    );
    let record = audit.records().pop().unwrap();
    assert_eq!(
        (record.decision, record.reason.as_str(), record.status),
        (Outcome::Error, "credential_unavailable", 502)
    );

    // Back up: the next call goes through.
    t.set_resource_as_down(false);
    let reply = send(
        &t.route_url,
        Some(&alice),
        &tools_call(5, "echo", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(reply.status(), 200);
    assert_eq!(recorder.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mixed_traffic_every_request_is_answered_and_audited_once_and_only_authorized_ones_reach_the_upstream()
 {
    let recorder = Recorder::default();
    let blocks = config_blocks(
        r#"
[[upstream]]
name = "notes"
url = "http://127.0.0.1:9/mcp"
credential = { mode = "passthrough" }
[[upstream.tools.echo.rules]]
name = "no-system-paths"
pointer = "/path"
deny = ["/etc/*"]
[upstream.tools.publish]
approval = true
"#,
    );
    let (t, audit) = start_with(recording_echo(recorder.clone()), move |c| {
        c.upstreams[0].tools = blocks.upstreams[0].tools.clone();
    })
    .await;
    let alice = t.id_token("alice").unwrap().secret().to_owned();
    let bob = t.id_token("bob").unwrap().secret().to_owned();
    let carol = t.id_token("carol").unwrap().secret().to_owned();
    let (signed, signature) = alice.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{first}{}", &signature[1..]);
    let kinds: [(Option<&str>, Value, &str); 8] = [
        (
            Some(&alice),
            tools_call(1, "echo", json!({"text": "hi"})),
            "forwarded",
        ),
        (None, tools_call(1, "echo", json!({})), "no_token"),
        (
            Some(&forged),
            tools_call(1, "echo", json!({})),
            "bad_signature",
        ),
        (
            Some(&alice),
            tools_call(1, "delete_note", json!({})),
            "tool_denied",
        ),
        (
            Some(&bob),
            tools_call(1, "echo", json!({})),
            "tool_not_allowed",
        ),
        (
            Some(&alice),
            tools_call(1, "echo", json!({"path": "/etc/x"})),
            "argument_blocked",
        ),
        (
            Some(&alice),
            tools_call(1, "publish", json!({})),
            "approval",
        ),
        (
            Some(&carol),
            tools_call(1, "echo", json!({})),
            "idp_policy_denied",
        ),
    ];
    let mut sent = Vec::new();
    for round in 0..5 {
        for (i, (token, body, _)) in kinds.iter().enumerate() {
            let id = format!("req-{round}-{i}");
            sent.push((
                id.clone(),
                post(&t.route_url, *token, body).header("x-request-id", id),
            ));
        }
    }
    let answers = join_all(sent.into_iter().map(|(id, request)| async move {
        (id, request.send().await.map(|r| r.status().as_u16()))
    }))
    .await;
    assert_eq!(answers.len(), 40);
    for (id, status) in &answers {
        assert!(status.is_ok(), "{id} unanswered");
    }

    let records = audit.records();
    assert_eq!(records.len(), 40, "one audit line per request");
    let by_id: HashMap<&str, _> = records.iter().map(|r| (r.request_id.as_str(), r)).collect();
    assert_eq!(by_id.len(), 40, "each request audited once");
    for (id, status) in &answers {
        let record = by_id[id.as_str()];
        let kind = id.rsplit('-').next().unwrap().parse::<usize>().unwrap();
        let expected = kinds[kind].2;
        if expected == "approval" {
            assert!(
                ["approval_held", "approval_pending"].contains(&record.reason.as_str()),
                "{id}: {}",
                record.reason
            );
        } else {
            assert_eq!(record.reason, expected, "{id}");
        }
        assert_eq!(record.status, *status.as_ref().unwrap(), "{id}");
    }
    // The upstream saw exactly the forwarded requests, each under its audited id.
    let received = recorder.all();
    let forwarded: Vec<&str> = records
        .iter()
        .filter(|r| r.decision == Outcome::Allow)
        .map(|r| r.request_id.as_str())
        .collect();
    assert_eq!(received.len(), 5);
    assert_eq!(forwarded.len(), 5);
    for request in &received {
        let id = request.headers["x-request-id"].to_str().unwrap();
        assert!(
            forwarded.contains(&id),
            "{id} reached the upstream unauthorized"
        );
    }
}
