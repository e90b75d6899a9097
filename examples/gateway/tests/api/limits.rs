//! Fairness (G34): per-principal limits refuse with 429, `Retry-After` and an audit line,
//! before anything goes upstream, and leave other principals alone.

use idjag_gateway::observe::audit::Outcome;
use idjag_gateway::observe::sinks::MemorySink;
use serde_json::{Value, json};

use crate::support::*;

fn token(t: &Topology, user: &str) -> String {
    t.id_token(user).unwrap().secret().to_owned()
}

async fn start_limited(recorder: Recorder, limits: &str) -> (Topology, MemorySink) {
    let blocks = config_blocks(limits);
    start_with(recording_echo(recorder), move |c| {
        c.limits = blocks.limits.clone();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g34_a_user_over_their_rate_gets_429_with_retry_after_and_an_audit_line() {
    let recorder = Recorder::default();
    let (t, audit) = start_limited(
        recorder.clone(),
        "[limits.user]\nrate = { requests = 1, per = \"1h\", burst = 2 }\n",
    )
    .await;
    let (alice, bob) = (token(&t, "alice"), token(&t, "bob"));
    for id in 1..=2 {
        let reply = send(&t.route_url, Some(&alice), &tools_list(id)).await;
        assert_eq!(reply.status(), 200);
    }
    let refused = send(&t.route_url, Some(&alice), &tools_list(3)).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"jsonrpc":"2.0","id":null,"error":{"code":-32037,
            "message":"Too many requests; retry later","data":{"reason":"limit_user_rate"}}})
    );
    // Bob has his own allowance.
    assert_eq!(
        send(&t.route_url, Some(&bob), &tools_list(4))
            .await
            .status(),
        200
    );
    assert_eq!(
        recorder.count(),
        3,
        "the refused request never went upstream"
    );
    let record = &audit.records()[2];
    assert_eq!(
        (
            record.decision,
            record.reason.as_str(),
            record.status,
            record.user.as_deref(),
            record.upstream.as_deref(),
            record.upstream_status,
        ),
        (
            Outcome::Deny,
            "limit_user_rate",
            429,
            Some("alice"),
            Some("notes"),
            None
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g34_open_streams_are_capped_per_user_and_per_upstream() {
    let recorder = Recorder::default();
    let (t, audit) = start_limited(
        recorder.clone(),
        "[limits.user]\nstreams = 1\n[limits.upstream]\nstreams = 2\n",
    )
    .await;
    let open = |user: &str| {
        client()
            .get(&t.route_url)
            .header("authorization", format!("Bearer {}", token(&t, user)))
            .header("accept", "text/event-stream")
            .send()
    };
    let alice_stream = open("alice").await.unwrap();
    assert_eq!(alice_stream.status(), 200);
    let second = open("alice").await.unwrap();
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");
    // A POST is no stream: alice may still call.
    assert_eq!(
        send(&t.route_url, Some(&token(&t, "alice")), &tools_list(1))
            .await
            .status(),
        200
    );
    let bob_stream = open("bob").await.unwrap();
    assert_eq!(bob_stream.status(), 200);
    // The route holds two streams: carol is refused for the upstream's limit.
    let carol = open("carol").await.unwrap();
    assert_eq!(carol.status(), 429);
    let reasons: Vec<(String, u16)> = audit
        .records()
        .into_iter()
        .map(|r| (r.reason, r.status))
        .collect();
    assert_eq!(
        reasons,
        [
            ("forwarded".to_owned(), 200),
            ("limit_user_streams".to_owned(), 429),
            ("forwarded".to_owned(), 200),
            ("forwarded".to_owned(), 200),
            ("limit_upstream_streams".to_owned(), 429),
        ]
    );
    assert_eq!(recorder.count(), 3);
    drop((alice_stream, bob_stream));
}
