//! State that survives restarts and scales out: gateway processes (`idjag-gateway serve`)
//! sharing one real `redis-server`, or one embedded store across a `kill -9`, in front of the
//! in-process IdP, resource AS and MCP servers.

use std::time::{Duration, Instant, SystemTime};

use http::Method;
use idjag_gateway::demo::Place;
use idjag_test_support::redis::RedisServer;
use serde_json::{Value, json};

use crate::instances::*;
use crate::support::*;

fn token(t: &Topology, user: &str) -> String {
    t.id_token(user).unwrap().secret().to_owned()
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, messages(response).await.pop().unwrap_or_default())
}

fn publish(id: i64, arguments: Value) -> Value {
    tools_call(id, "publish", arguments)
}

fn idp_exchanges(t: &Topology) -> usize {
    t.flow
        .drain()
        .iter()
        .filter(|e| e.place == Place::Idp)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_share_sessions_revocations_and_approvals() {
    let redis = RedisServer::start();
    let recorder = Recorder::default();
    let (t, _) = start(session_upstream(recorder.clone())).await;
    let scratch = Scratch::new("idjag-three");
    let store = redis_store(&redis.url(), 5);
    let a = GatewayProcess::start("a", &t, &store, &scratch.0).await;
    let b = GatewayProcess::start("b", &t, &store, &scratch.0).await;
    let c = GatewayProcess::start("c", &t, &store, &scratch.0).await;
    for g in [&a, &b, &c] {
        g.wait_ready(Duration::from_secs(30)).await;
    }
    let (alice, bob) = (token(&t, "alice"), token(&t, "bob"));

    // G14 across instances: a session created through A is alice's on B and C too; bob's
    // request with it, and an unknown id, get 404 everywhere.
    let created = send(&a.notes(), Some(&alice), &initialize()).await;
    assert_eq!(created.status(), 200);
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    for g in [&a, &b, &c] {
        let with = |token: &str, id: &str| {
            post(&g.notes(), Some(token), &tools_list(2)).header("mcp-session-id", id.to_owned())
        };
        let own = with(&alice, &session).send().await.unwrap();
        assert_eq!(own.status(), 200, "{}", g.name);
        let theirs = with(&bob, &session).send().await.unwrap();
        assert_eq!(theirs.status(), 404, "{}", g.name);
        let unknown = with(&alice, "no-such-session").send().await.unwrap();
        assert_eq!(unknown.status(), 404, "{}", g.name);
    }

    // An open SSE stream of alice on B.
    let mut stream = client()
        .get(b.notes())
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .header("mcp-session-id", &session)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, "data: {}\n\n");

    // Alice revoked through A: B closes her stream and B and C refuse her next requests.
    let revoked_at = Instant::now();
    let revoke = a
        .admin(&t, Method::POST, "/admin/revocations")
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 201);
    let last = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("B closes the stream within the staleness bound")
        .unwrap()
        .unwrap();
    assert_eq!(last, "event: close\ndata: {\"reason\":\"revoked\"}\n\n");
    let closed_after = revoked_at.elapsed();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, None);
    // A (which made it) and B (which closed the stream) refuse at once.
    for g in [&a, &b] {
        let (status, body) = answer(send(&g.notes(), Some(&alice), &tools_list(3)).await).await;
        assert_eq!(
            (status, reason(&body)),
            (403, "revoked".to_owned()),
            "{}",
            g.name
        );
    }
    // C: on its next request after the notification, and within the staleness bound (5 s).
    let mut forwarded_by_c = 0;
    loop {
        let (status, body) = answer(send(&c.notes(), Some(&alice), &tools_list(4)).await).await;
        if status == 403 {
            assert_eq!(reason(&body), "revoked");
            break;
        }
        assert_eq!(status, 200);
        forwarded_by_c += 1;
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "C never refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_after = revoked_at.elapsed();
    for g in [&a, &b, &c] {
        for _ in 0..3 {
            let response = send(&g.notes(), Some(&alice), &tools_list(5)).await;
            assert_eq!(response.status(), 403, "{}", g.name);
        }
        let bob_ok = send(
            &g.wiki(),
            Some(&bob),
            &tools_call(6, "search", json!({"query": "x"})),
        )
        .await;
        assert_eq!(bob_ok.status(), 200, "{}: bob is not revoked", g.name);
    }
    let listed: Value = c
        .admin(&t, Method::GET, "/admin/revocations")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["revocations"][0]["kind"], "user");
    assert_eq!(listed["revocations"][0]["id"], "alice");
    eprintln!(
        "revocation through A: B closed the stream after {closed_after:?}; C refused from \
         {refused_after:?} on ({forwarded_by_c} request(s) forwarded before it heard)"
    );

    // Lifted through B. Every instance dropped alice's cached upstream token when the
    // revocation reached it: each exchanges anew, once.
    let lift = b
        .admin(&t, Method::DELETE, "/admin/revocations")
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(lift.status(), 200);
    for g in [&b, &c, &a] {
        let _ = idp_exchanges(&t);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let response = send(&g.notes(), Some(&alice), &tools_list(7)).await;
            if response.status() == 200 {
                break;
            }
            assert_eq!(response.status(), 403);
            assert!(
                Instant::now() < deadline,
                "{} never heard of the lift",
                g.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(idp_exchanges(&t), 1, "{}: a new exchange", g.name);
        assert_eq!(
            send(&g.notes(), Some(&alice), &tools_list(8))
                .await
                .status(),
            200
        );
        assert_eq!(idp_exchanges(&t), 0, "{}: then cached again", g.name);
    }

    // Approvals: held through A, approved through A, retried on B and C at once: exactly one
    // runs; the other is held anew.
    for round in 0..3 {
        let arguments = json!({"page": format!("round-{round}"), "to": "all"});
        let (status, held) =
            answer(send(&a.wiki(), Some(&bob), &publish(1, arguments.clone())).await).await;
        assert_eq!((status, reason(&held)), (200, "approval_held".to_owned()));
        let id = held["error"]["data"]["approval_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let approved = a
            .admin(&t, Method::POST, &format!("/admin/approvals/{id}/approve"))
            .send()
            .await
            .unwrap();
        assert_eq!(approved.status(), 200);
        let before = t.wiki.requests().len();
        let (url_b, url_c) = (b.wiki(), c.wiki());
        let (call_b, call_c) = (publish(2, arguments.clone()), publish(3, arguments.clone()));
        let (on_b, on_c) = tokio::join!(
            send(&url_b, Some(&bob), &call_b),
            send(&url_c, Some(&bob), &call_c),
        );
        let (on_b, on_c) = (answer(on_b).await, answer(on_c).await);
        let mut reasons = [reason(&on_b.1), reason(&on_c.1)];
        reasons.sort();
        assert_eq!(reasons, ["approval_held", "ok"], "round {round}");
        let held_again = if reason(&on_b.1) == "ok" {
            &on_c.1
        } else {
            &on_b.1
        };
        assert_ne!(held_again["error"]["data"]["approval_id"], id.as_str());
        assert_eq!(
            t.wiki.requests().len(),
            before + 1,
            "round {round}: ran once"
        );
        let listed: Value = c
            .admin(&t, Method::GET, "/admin/approvals")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let record = listed["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .cloned()
            .unwrap();
        assert_eq!(record["status"], "consumed");
        assert_eq!(record["user"], "bob");
    }
    // Each instance's audit log holds what it did, and no token.
    for g in [&a, &b, &c] {
        let text = std::fs::read_to_string(&g.audit).unwrap();
        assert!(!text.contains(&alice) && !text.contains(&bob), "{}", g.name);
        assert!(!text.contains(&session), "{}", g.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_with_sigkill_restarts_with_every_revocation_approval_and_session() {
    let recorder = Recorder::default();
    let (t, _) = start(session_upstream(recorder.clone())).await;
    let scratch = Scratch::new("idjag-durable");
    let file = scratch.0.join("state.redb");
    let mut g = GatewayProcess::start("durable", &t, &embedded_store(&file), &scratch.0).await;
    g.wait_ready(Duration::from_secs(30)).await;
    let (alice, bob) = (token(&t, "alice"), token(&t, "bob"));
    const SECRET_ARGUMENT: &str = "hunter2-do-not-store-0451";

    let created = send(&g.notes(), Some(&alice), &initialize()).await;
    assert_eq!(created.status(), 200);
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let revoke = g
        .admin(&t, Method::POST, "/admin/revocations")
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 201);
    let pending_args = json!({"page": "pending"});
    let approved_args = json!({"page": "approved", "password": SECRET_ARGUMENT, "token": alice});
    let (_, pending) =
        answer(send(&g.wiki(), Some(&alice), &publish(1, pending_args.clone())).await).await;
    let (_, approved) =
        answer(send(&g.wiki(), Some(&alice), &publish(2, approved_args.clone())).await).await;
    let pending_id = pending["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approved_id = approved["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let decision = g
        .admin(
            &t,
            Method::POST,
            &format!("/admin/approvals/{approved_id}/approve"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(decision.status(), 200);

    let pid = g.pid();
    g.restart().await;
    assert_ne!(g.pid(), pid);
    g.wait_ready(Duration::from_secs(30)).await;

    // The revocation: bob is still refused; the list has it.
    let (status, body) = answer(send(&g.notes(), Some(&bob), &tools_list(3)).await).await;
    assert_eq!((status, reason(&body)), (403, "revoked".to_owned()));
    let revocations: Value = g
        .admin(&t, Method::GET, "/admin/revocations")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revocations["revocations"][0]["id"], "bob");
    // The session: still alice's, still no one else's.
    let own = post(&g.notes(), Some(&alice), &tools_list(4))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let carol = post(&g.notes(), Some(&token(&t, "carol")), &tools_list(5))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(carol.status(), 404);
    // The approvals: one pending, one approved; the approved call runs once.
    let listed: Value = g
        .admin(&t, Method::GET, "/admin/approvals")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status_of = |id: &str| {
        listed["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].clone())
    };
    assert_eq!(status_of(&pending_id), Some(json!("pending")));
    assert_eq!(status_of(&approved_id), Some(json!("approved")));
    let before = t.wiki.requests().len();
    let (_, ran) =
        answer(send(&g.wiki(), Some(&alice), &publish(6, approved_args.clone())).await).await;
    assert_eq!(reason(&ran), "ok", "{ran}");
    let (_, again) =
        answer(send(&g.wiki(), Some(&alice), &publish(7, approved_args.clone())).await).await;
    assert_eq!(reason(&again), "approval_held");
    assert_eq!(t.wiki.requests().len(), before + 1);
    let (_, still) =
        answer(send(&g.wiki(), Some(&alice), &publish(8, pending_args.clone())).await).await;
    assert_eq!(
        (reason(&still), &still["error"]["data"]["approval_id"]),
        ("approval_pending".to_owned(), &json!(pending_id))
    );
    g.kill9();

    // Nothing secret in the file: no token, session id, admin token, client secret or
    // redacted argument; what the admin API shows is there (the revoked user's id).
    let raw = std::fs::read(&file).unwrap();
    let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("bob"), "the revocation is in this file");
    assert!(
        contains("\"page\":\"pending\""),
        "held calls keep their recorded arguments"
    );
    for (what, secret) in [
        ("alice's ID token", alice.as_str()),
        ("bob's ID token", bob.as_str()),
        ("the session id", session.as_str()),
        ("the admin token", t.admin_token.secret()),
        ("the IdP client secret", t.secrets()[0].secret()),
        ("the AS client secret", t.secrets()[1].secret()),
        ("a redacted argument", SECRET_ARGUMENT),
    ] {
        assert!(!contains(secret), "{what} is stored in clear");
    }
}

/// One request of the fault test, as the client saw it.
#[derive(Debug)]
struct Sent {
    instance: usize,
    user: &'static str,
    at: SystemTime,
    status: u16,
    reason: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_fail_closed_within_the_staleness_bound_and_recover_without_a_restart() {
    const BOUND: Duration = Duration::from_secs(2);
    let mut redis = RedisServer::start();
    // B reaches Redis through a relay the test can cut: B alone loses its store.
    let relay = Relay::start(redis.port()).await;
    let recorder = Recorder::default();
    let (t, _) = start(session_upstream(recorder.clone())).await;
    let scratch = Scratch::new("idjag-faults");
    let direct = redis_store(&redis.url(), BOUND.as_secs());
    let relayed = redis_store(&relay.url(), BOUND.as_secs());
    let mut gateways = vec![
        GatewayProcess::start("a", &t, &direct, &scratch.0).await,
        GatewayProcess::start("b", &t, &relayed, &scratch.0).await,
        GatewayProcess::start("c", &t, &direct, &scratch.0).await,
    ];
    for g in &gateways {
        g.wait_ready(Duration::from_secs(30)).await;
    }
    let pids: Vec<u32> = gateways.iter().map(GatewayProcess::pid).collect();
    let routes: Vec<String> = gateways.iter().map(GatewayProcess::notes).collect();
    let tokens = [("alice", token(&t, "alice")), ("bob", token(&t, "bob"))];

    // Traffic: alice and bob, round robin over A, B and C, until told to stop.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut n = 0usize;
        while !*stopped.borrow() {
            let instance = n % 3;
            let (user, token) = &tokens[(n / 3) % 2];
            n += 1;
            let at = wall();
            let response = post(
                &routes[instance],
                Some(token),
                &tools_call(1, "list_notes", json!({})),
            )
            .timeout(Duration::from_secs(5))
            .send()
            .await;
            let (status, reason) = match response {
                Ok(r) => {
                    let (status, body) = answer(r).await;
                    (status, crate::instances::reason(&body))
                }
                Err(_) => (0, "transport".to_owned()),
            };
            sent.push(Sent {
                instance,
                user,
                at,
                status,
                reason,
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sent
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. B loses Redis; alice is revoked through A right after.
    relay.cut().await;
    let cut_at = wall();
    let revoke = gateways[0]
        .admin(&t, Method::POST, "/admin/revocations")
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 201);
    let revoked_at = wall();
    tokio::time::sleep(BOUND + Duration::from_millis(1500)).await;
    let (status, body) = gateways[1].readyz().await;
    assert_eq!(status, 503);
    assert_eq!(body, "not ready: store\n");
    // 2. B gets Redis back: it catches up by itself.
    relay.restore();
    let restored_at = wall();
    gateways[1].wait_ready(Duration::from_secs(10)).await;
    let b_back_at = wall();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 3. Redis dies for everyone, then comes back (its append-only file keeps the revocation).
    redis.kill();
    let killed_at = wall();
    tokio::time::sleep(BOUND + Duration::from_millis(1500)).await;
    for g in &gateways {
        assert_eq!(g.readyz().await.0, 503, "{}", g.name);
    }
    redis.restart();
    let redis_back_at = wall();
    for g in &gateways {
        g.wait_ready(Duration::from_secs(15)).await;
    }
    let all_back_at = wall();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.send(true).unwrap();
    let sent = traffic.await.unwrap();
    let end = wall();

    let after = |s: &Sent, t: SystemTime| s.at > t;
    let between = |s: &Sent, from: SystemTime, to: SystemTime| s.at > from && s.at < to;
    let count = |filter: &dyn Fn(&Sent) -> bool| sent.iter().filter(|s| filter(s)).count();

    // Never forwarded for alice past the bound: B may forward her until its copy, last
    // confirmed before the cut, turns stale; A and C stop as soon as they hear.
    let late = |s: &Sent| {
        s.user == "alice" && s.status == 200 && {
            let limit = if s.instance == 1 {
                cut_at + BOUND
            } else {
                revoked_at + BOUND
            };
            s.at > limit
        }
    };
    assert_eq!(
        count(&late),
        0,
        "{:?}",
        sent.iter().filter(|s| late(s)).collect::<Vec<_>>()
    );
    // Once alice was refused by an instance, it never forwarded for her again (bar B's window).
    for instance in [0, 2] {
        let refused = sent
            .iter()
            .find(|s| s.instance == instance && s.user == "alice" && s.status == 403)
            .map(|s| s.at)
            .unwrap();
        assert_eq!(
            count(&|s: &Sent| s.instance == instance
                && s.user == "alice"
                && s.status == 200
                && after(s, refused)),
            0
        );
    }
    // While B was stale: every request to B refused with the documented 503, bob's too.
    let stale_window = |s: &Sent| {
        s.instance == 1 && between(s, cut_at + BOUND + Duration::from_millis(200), restored_at)
    };
    assert!(count(&stale_window) > 0);
    assert_eq!(
        count(&|s: &Sent| stale_window(s)
            && (s.status, s.reason.as_str()) == (503, "revocation_state_stale")),
        count(&stale_window),
        "{:?}",
        sent.iter().filter(|s| stale_window(s)).collect::<Vec<_>>()
    );
    // While Redis was down past the bound: every instance refused everyone with it.
    let all_stale = |s: &Sent| {
        between(
            s,
            killed_at + BOUND + Duration::from_millis(200),
            redis_back_at,
        )
    };
    assert!(count(&all_stale) > 0);
    assert_eq!(
        count(&|s: &Sent| all_stale(s)
            && (s.status, s.reason.as_str()) == (503, "revocation_state_stale")),
        count(&all_stale)
    );
    // Full service again, no restart: bob served and alice refused by every instance.
    for instance in 0..3 {
        let recovered = |s: &Sent| s.instance == instance && between(s, all_back_at, end);
        let bob_ok = count(&|s: &Sent| recovered(s) && s.user == "bob" && s.status == 200);
        let bob_all = count(&|s: &Sent| recovered(s) && s.user == "bob");
        assert!(
            bob_all > 0 && bob_ok == bob_all,
            "instance {instance}: bob {bob_ok}/{bob_all}"
        );
        assert!(
            sent.iter()
                .filter(|s| recovered(s) && s.user == "alice")
                .all(|s| (s.status, s.reason.as_str()) == (403, "revoked"))
        );
    }
    for (g, pid) in gateways.iter_mut().zip(pids) {
        assert!(g.is_running(), "{} was not restarted", g.name);
        assert_eq!(g.pid(), pid);
    }
    // The audit logs count the same refusals: none forwarded for alice past the bound.
    let mut audit_stale = 0;
    for (instance, g) in gateways.iter().enumerate() {
        for line in g.audit_lines() {
            if line["reason"] == "revocation_state_stale" {
                audit_stale += 1;
            }
            if line["user"] == "alice" && line["reason"] == "forwarded" {
                let time = line["time"].as_str().unwrap();
                let limit = if instance == 1 {
                    cut_at + BOUND
                } else {
                    revoked_at + BOUND
                };
                assert!(
                    time <= rfc3339(limit).as_str(),
                    "{}: forwarded for alice at {time}",
                    g.name
                );
            }
        }
    }
    let stale_answers = count(&|s: &Sent| s.reason == "revocation_state_stale");
    assert_eq!(audit_stale, stale_answers);
    eprintln!(
        "fault test: {} requests; B forwarded {} of alice's after the revocation (before its \
         bound), refused {} as stale; {} stale refusals in all; B back {:?} after its link, \
         every instance {:?} after Redis",
        sent.len(),
        count(&|s: &Sent| s.instance == 1
            && s.user == "alice"
            && s.status == 200
            && after(s, revoked_at)),
        count(&|s: &Sent| s.instance == 1
            && s.reason == "revocation_state_stale"
            && before_restore(s, restored_at)),
        stale_answers,
        b_back_at.duration_since(restored_at).unwrap_or_default(),
        all_back_at
            .duration_since(redis_back_at)
            .unwrap_or_default(),
    );
}

/// The wall clock, the one the gateways read (`SystemClock`).
fn wall() -> SystemTime {
    idjag_core::SystemClock::shared().now()
}

fn before_restore(s: &Sent, restored_at: SystemTime) -> bool {
    s.at < restored_at
}

fn rfc3339(time: SystemTime) -> String {
    idjag_gateway::observe::audit::rfc3339(time)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_what_needs_it_gets_503_and_recovers_by_itself() {
    let mut redis = RedisServer::start();
    let store = config_blocks(&redis_store(&redis.url(), 30)).store;
    let recorder = Recorder::default();
    let (t, audit) = start_with(session_upstream(recorder.clone()), move |c| {
        c.store = store.clone();
    })
    .await;
    assert!(t.gateway.store_ready().await);
    let alice = token(&t, "alice");
    let created = send(&t.route_url, Some(&alice), &initialize()).await;
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let with_session = |id: &str| {
        post(&t.route_url, Some(&alice), &tools_list(2)).header("mcp-session-id", id.to_owned())
    };
    let admin = |method: Method, path: &str| {
        client()
            .request(method, format!("{}{path}", t.admin_url))
            .bearer_auth(t.admin_token.secret())
    };

    redis.kill();
    // The revocations are still fresh (30 s): calls that need nothing else are served, and a
    // session this instance confirmed is still alice's.
    assert_eq!(with_session(&session).send().await.unwrap().status(), 200);
    let wiki_calls = t.wiki.requests().len();
    // What needs the store now is refused, nothing forwarded: an unknown session, a call
    // needing approval, the admin API.
    let (status, body) = answer(with_session("never-seen").send().await.unwrap()).await;
    assert_eq!(
        (status, reason(&body)),
        (503, "store_unavailable".to_owned())
    );
    let held = send(
        &t.wiki_route_url,
        Some(&alice),
        &publish(3, json!({"page": "p"})),
    )
    .await;
    assert_eq!(held.headers()["retry-after"], "1");
    let (status, body) = answer(held).await;
    assert_eq!(
        (status, reason(&body)),
        (503, "store_unavailable".to_owned())
    );
    assert_eq!(body["error"]["code"], -32036);
    assert_eq!(body["id"], 3);
    assert_eq!(t.wiki.requests().len(), wiki_calls);
    for (method, path) in [
        (Method::GET, "/admin/approvals"),
        (Method::GET, "/admin/revocations"),
    ] {
        let response = admin(method, path).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "store_unavailable"
        );
    }
    let revoke = admin(Method::POST, "/admin/revocations")
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 503);
    let ready = client()
        .get(format!("{}/readyz", t.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "not ready: store\n");

    // Back, with no restart of the gateway.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.gateway.store_ready().await {
        assert!(Instant::now() < deadline, "the store never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = answer(
        send(
            &t.wiki_route_url,
            Some(&alice),
            &publish(4, json!({"page": "p"})),
        )
        .await,
    )
    .await;
    assert_eq!((status, reason(&body)), (200, "approval_held".to_owned()));
    let (status, _) = answer(with_session("never-seen").send().await.unwrap()).await;
    assert_eq!(status, 404);
    let reasons: Vec<String> = audit.records().into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons.iter().filter(|r| *r == "store_unavailable").count(),
        3,
        "two calls and one revocation: {reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_running_embedded_store() {
    let recorder = Recorder::default();
    let (t, _) = start(session_upstream(recorder.clone())).await;
    let scratch = Scratch::new("idjag-reload-store");
    let file = scratch.0.join("state.redb");
    let mut g = GatewayProcess::start("reloaded", &t, &embedded_store(&file), &scratch.0).await;
    g.wait_ready(Duration::from_secs(30)).await;
    let alice = token(&t, "alice");
    let created = send(&g.notes(), Some(&alice), &initialize()).await;
    assert_eq!(created.status(), 200);
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let revoke = g
        .admin(&t, Method::POST, "/admin/revocations")
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 201);
    let args = json!({"page": "held"});
    let (_, held) = answer(send(&g.wiki(), Some(&alice), &publish(1, args.clone())).await).await;
    assert_eq!(reason(&held), "approval_held", "{held}");
    let held_id = held["error"]["data"]["approval_id"].clone();

    // A rule changes: the wiki's publish is no longer allowed. SIGHUP reloads; the embedded
    // file (which can be open only once) stays open in the running store.
    g.edit_config(|text| text.replace(r#"allow = ["search", "publish"]"#, r#"allow = ["search"]"#));
    let pid = g.pid();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) =
            answer(send(&g.wiki(), Some(&alice), &publish(2, args.clone())).await).await;
        if reason(&body) != "approval_pending" {
            // Refused by the access rules now, before any approval.
            assert!(
                !["ok", "approval_held"].contains(&reason(&body).as_str()),
                "{body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reload never applied: {}",
            g.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(g.is_running(), "{}", g.logs());
    assert_eq!(g.pid(), pid);
    assert!(!g.logs().contains("refused"), "{}", g.logs());
    g.wait_ready(Duration::from_secs(5)).await;

    // Everything in the store before the reload is still there, and the store still takes
    // writes.
    let bob = token(&t, "bob");
    let (status, body) = answer(send(&g.notes(), Some(&bob), &tools_list(3)).await).await;
    assert_eq!((status, reason(&body)), (403, "revoked".to_owned()));
    let own = post(&g.notes(), Some(&alice), &tools_list(4))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let listed: Value = g
        .admin(&t, Method::GET, "/admin/approvals")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == held_id && r["status"] == "pending"),
        "{listed}"
    );
    let revoke = g
        .admin(&t, Method::POST, "/admin/revocations")
        .json(&json!({"user": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 201);
    let (status, body) =
        answer(send(&g.notes(), Some(&token(&t, "carol")), &tools_list(5)).await).await;
    assert_eq!((status, reason(&body)), (403, "revoked".to_owned()));
    let metrics = client()
        .get(format!("{}/metrics", g.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("idjag_config_reloads_total{outcome=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("idjag_gateway_store_healthy 1"),
        "{metrics}"
    );
    g.kill9();
}
