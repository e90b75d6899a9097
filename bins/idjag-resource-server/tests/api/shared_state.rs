//! Shared state across instances and restarts (`tests/configs/replica.toml`): two processes on
//! one real `redis-server` redeem an ID-JAG exactly once; Redis stopped mid-traffic gives the
//! documented refusal (503 `temporarily_unavailable`, `Retry-After: 1`), accepts no replay,
//! and full service comes back without restarting the servers; with the embedded store, a
//! `kill -9` and a restart keep every single-use marker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use idjag_core::*;
use idjag_test_support::process::{
    RedisServer, ServerProcess, TestDir, free_port, pem_key, render,
};
use serde_json::Value;

use crate::support::*;

/// The issuer the replicas share (a load balancer's URL in production).
const ISSUER: &str = "https://as.chat.example";

/// Replicas of one resource server on one store, and the IdP they trust.
struct Replicas {
    servers: Vec<ServerProcess>,
    signer: Idp,
    _test_idp: TestIdp,
    http: reqwest::Client,
    _dir: TestDir,
}

impl Replicas {
    async fn start(count: usize, store: &str) -> Self {
        let test_idp = TestIdp::start().await;
        let signer = Idp {
            issuer: test_idp.base.clone(),
            key: SigningKey::generate(Algorithm::Es256)
                .unwrap()
                .with_kid(Kid::new("idp-key-1").unwrap()),
            audience: ISSUER.into(),
        };
        test_idp.publish(&[&signer.key]);
        let dir = TestDir::new();
        let (_, as_pem) = pem_key(Algorithm::Es256);
        let template = include_str!("../configs/replica.toml");
        let mut servers = Vec::new();
        for i in 0..count {
            let port = free_port();
            let admin_port = free_port();
            dir.write(&format!("r{i}/as.pem"), &as_pem);
            let text = render(
                template,
                &[
                    ("PORT", &port.to_string()),
                    ("ADMIN_PORT", &admin_port.to_string()),
                    ("ISSUER", ISSUER),
                    ("IDP", &test_idp.base),
                    ("STORE", store),
                ],
            );
            let config = dir.write(&format!("r{i}/resource-server.toml"), text);
            let env = env();
            servers.push(
                tokio::task::spawn_blocking(move || {
                    ServerProcess::start(
                        std::path::Path::new(binary()),
                        &config,
                        port,
                        Some(admin_port),
                        &env,
                    )
                })
                .await
                .unwrap(),
            );
        }
        Self {
            servers,
            signer,
            _test_idp: test_idp,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _dir: dir,
        }
    }

    async fn redeem(&self, replica: usize, token: &str) -> Reply {
        redeem_at(&self.http, &self.servers[replica].base(), token).await
    }

    /// Every audit line of every replica, once there are at least `count` in all (the sinks
    /// write asynchronously).
    fn audit(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<Value> = self.servers.iter().flat_map(ServerProcess::audit).collect();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

async fn redeem_at(http: &reqwest::Client, base: &str, token: &str) -> Reply {
    send(
        http.post(format!("{base}/token")).body(form(&[
            ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
            ("assertion", token),
        ])),
        &[
            ("content-type", wire::MEDIA_TYPE_FORM),
            ("authorization", &basic(CLIENT, SECRET)),
        ],
    )
    .await
}

/// The admin listener's `/readyz` once it answers `status` (within 10 s).
async fn readiness(http: &reqwest::Client, server: &ServerProcess, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = send(http.get(format!("{}/readyz", server.admin_base())), &[]).await;
        if reply.status == status {
            return reply.text();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz: {} {}",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A Redis `[store.backend]` with this command timeout (a short one makes the outage test
/// quick; a race of 100 requests on a busy machine needs a longer one).
fn redis_store(redis: &RedisServer, command_timeout_ms: u64) -> String {
    format!(
        "kind = \"redis\"\nurl = \"{}\"\nconnect_timeout_ms = 300\ncommand_timeout_ms = {command_timeout_ms}",
        redis.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_id_jag_raced_100_times_over_two_instances_on_one_redis_yields_exactly_one_token() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let r = Arc::new(Replicas::start(2, &redis_store(&redis, 2000)).await);
    // Warm both up (JWKS fetched, connections open), then race.
    for i in 0..2 {
        assert_eq!(r.redeem(i, &r.signer.id_jag()).await.status, 200);
    }
    let token = r.signer.id_jag();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..100 {
        let (r, token) = (r.clone(), token.clone());
        tasks.spawn(async move { r.redeem(n % 2, &token).await });
    }
    let mut statuses = BTreeMap::new();
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        let key = (
            reply.status,
            reply.json["error"].as_str().unwrap_or("").to_owned(),
        );
        *statuses.entry(key).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        BTreeMap::from([
            ((200, String::new()), 1),
            ((400, "invalid_grant".to_owned()), 99)
        ])
    );
    let audit = r.audit(102);
    assert_eq!(
        audit.len(),
        102,
        "one audit line per request, across both instances"
    );
    assert_eq!(
        audit.iter().filter(|l| l["decision"] == "granted").count(),
        3
    );
    assert_eq!(
        audit.iter().filter(|l| l["reason"] == "replayed").count(),
        99
    );
    // Both instances took part in the race.
    for server in &r.servers {
        assert!(server.audit().len() > 10, "{}", server.audit().len());
    }
}

/// The phase of the outage test.
const UP: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const RECOVERING: u8 = 3;
const RECOVERED: u8 = 4;

#[derive(Debug, Clone)]
struct Outcome {
    phase: u8,
    token: usize,
    replay: bool,
    status: u16,
    error: String,
    retry_after: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopped_mid_traffic_refuses_fails_closed_and_recovers_without_a_restart() {
    let mut redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let r = Arc::new(Replicas::start(2, &redis_store(&redis, 500)).await);
    let pids: Vec<u32> = r.servers.iter().map(ServerProcess::pid).collect();

    // Before the outage: 20 ID-JAGs redeemed.
    let tokens: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut accepted = Vec::new();
    for n in 0..20 {
        let token = r.signer.id_jag();
        assert_eq!(r.redeem(n % 2, &token).await.status, 200);
        tokens.lock().unwrap().push(token);
        accepted.push(n);
    }

    // Traffic for the whole test: a fresh ID-JAG on one instance and a replay of an earlier
    // one on the other, again and again.
    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::new(Mutex::new(Vec::new()));
    let traffic = {
        let (r, phase, stop, outcomes, tokens) = (
            r.clone(),
            phase.clone(),
            stop.clone(),
            outcomes.clone(),
            tokens.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let fresh = r.signer.id_jag();
                let index = {
                    let mut all = tokens.lock().unwrap();
                    all.push(fresh.clone());
                    all.len() - 1
                };
                let replayed = n % index.max(1);
                let old = tokens.lock().unwrap()[replayed].clone();
                for (token, id, replay, replica) in [
                    (fresh, index, false, n % 2),
                    (old, replayed, true, (n + 1) % 2),
                ] {
                    let at = phase.load(Ordering::SeqCst);
                    let reply = r.redeem(replica, &token).await;
                    let after = phase.load(Ordering::SeqCst);
                    outcomes.lock().unwrap().push(Outcome {
                        // A request that spans a phase change belongs to neither.
                        phase: if at == after { at } else { STOPPING },
                        token: id,
                        replay,
                        status: reply.status,
                        error: reply.json["error"].as_str().unwrap_or("").to_owned(),
                        retry_after: reply.header("retry-after").map(str::to_owned),
                    });
                }
                n += 1;
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(800)).await;
    phase.store(STOPPING, Ordering::SeqCst);
    let mut redis = tokio::task::spawn_blocking(move || {
        redis.kill();
        redis
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    phase.store(DOWN, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for server in &r.servers {
        // The readiness check pings the store every 2 s.
        let ready = readiness(&r.http, server, 503).await;
        assert_eq!(ready, "not ready: store\n");
    }
    phase.store(STOPPING, Ordering::SeqCst);
    let redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    phase.store(RECOVERING, Ordering::SeqCst);
    // Both instances serve again by themselves: five grants in a row each, so that every
    // pooled connection to Redis has been re-established before the recovered phase starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..2 {
        let mut in_a_row = 0;
        loop {
            let reply = r.redeem(i, &r.signer.id_jag()).await;
            in_a_row = if reply.status == 200 { in_a_row + 1 } else { 0 };
            if in_a_row == 5 {
                break;
            }
            if reply.status == 200 {
                continue;
            }
            assert!(
                Instant::now() < deadline,
                "instance {i} did not recover: {}",
                reply.text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    phase.store(RECOVERED, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    traffic.await.unwrap();

    let outcomes = outcomes.lock().unwrap().clone();
    // In the order they happened: no ID-JAG is ever granted twice (no replay accepted, in any
    // phase), and outside the outage a replay of a granted ID-JAG is refused as such.
    let mut granted: std::collections::BTreeSet<usize> = accepted.iter().copied().collect();
    let mut replays_refused = 0;
    for o in &outcomes {
        let seen_before = granted.contains(&o.token);
        if o.status == 200 {
            assert!(!seen_before, "a replayed grant was accepted: {o:?}");
            granted.insert(o.token);
        }
        if matches!(o.phase, UP | RECOVERED) {
            if o.replay && seen_before {
                assert_eq!(
                    (o.status, o.error.as_str()),
                    (400, "invalid_grant"),
                    "{o:?}"
                );
                replays_refused += 1;
            } else if !o.replay {
                assert_eq!(o.status, 200, "{o:?}");
            }
        }
    }
    assert!(replays_refused > 0);

    // While Redis is down: only the documented refusal.
    let down: Vec<&Outcome> = outcomes.iter().filter(|o| o.phase == DOWN).collect();
    assert!(
        down.len() >= 4,
        "traffic while Redis was down: {}",
        down.len()
    );
    for o in &down {
        assert_eq!(
            (o.status, o.error.as_str(), o.retry_after.as_deref()),
            (503, "temporarily_unavailable", Some("1")),
            "{o:?}"
        );
    }
    assert!(outcomes.iter().any(|o| o.phase == RECOVERED && !o.replay));
    // The markers written before the outage survived it (Redis persisted them): replays of
    // those ID-JAGs after the restart are refused.
    for n in [0, 7, 19] {
        let token = tokens.lock().unwrap()[n].clone();
        let reply = r.redeem(n % 2, &token).await;
        assert_eq!(
            (reply.status, reply.json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    for server in &r.servers {
        assert_eq!(readiness(&r.http, server, 200).await, "ready\n");
    }
    // No restart of the servers, and the refusals are in the audit as such.
    assert_eq!(
        pids,
        r.servers.iter().map(ServerProcess::pid).collect::<Vec<_>>()
    );
    assert!(
        r.audit(0)
            .iter()
            .any(|l| l["reason"] == "replay_store_unavailable"),
        "the outage's refusals are audited"
    );
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_embedded_store_a_kill_9_and_a_restart_keep_every_single_use_marker() {
    let dir = TestDir::new();
    let path = dir.path().join("state.redb");
    let store = format!("kind = \"embedded\"\npath = \"{}\"", path.display());
    let mut r = Replicas::start(1, &store).await;
    let tokens: Vec<String> = (0..10).map(|_| r.signer.id_jag()).collect();
    for token in &tokens {
        assert_eq!(r.redeem(0, token).await.status, 200);
    }
    let pid = r.servers[0].pid();
    tokio::task::block_in_place(|| {
        r.servers[0].kill9();
        r.servers[0].restart();
    });
    assert_ne!(pid, r.servers[0].pid());
    for token in &tokens {
        let reply = r.redeem(0, token).await;
        assert_eq!(
            (reply.status, reply.json["error"].as_str()),
            (400, Some("invalid_grant")),
            "a replay after the restart"
        );
    }
    assert_eq!(r.redeem(0, &r.signer.id_jag()).await.status, 200);
    let audit = r.audit(21);
    assert_eq!(
        audit.iter().filter(|l| l["reason"] == "replayed").count(),
        10
    );
}
