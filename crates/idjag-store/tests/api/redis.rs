//! Redis across clients and instances, outages, staleness, authentication and TLS, all on
//! real `redis-server` processes.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idjag_core::server::{Replay, ReplayKey};
use idjag_store::*;
use serde_json::json;

use crate::support::{RedisServer, real_time_clock, redis_store};

const NS: Namespace = Namespace::IdJagReplay;

fn two_clients(server: &RedisServer) -> (Arc<dyn Store>, Arc<dyn Store>, idjag_core::TestClock) {
    let clock = real_time_clock();
    let a: Arc<dyn Store> = Arc::new(redis_store(server, &clock));
    let b: Arc<dyn Store> = Arc::new(redis_store(server, &clock));
    (a, b, clock)
}

fn now_ms(clock: &idjag_core::TestClock) -> i64 {
    crate::support::clock_ms(clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_marker_wins_among_100_inserts_from_two_clients() {
    let server = RedisServer::start();
    let (a, b, clock) = two_clients(&server);
    let exp = now_ms(&clock) + 60_000;
    for quota in [None, Some(1_000u32)] {
        let key: &'static [u8] = if quota.is_some() {
            b"with-quota"
        } else {
            b"plain"
        };
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let q = quota.map(|l| Quota::new(b"client", l));
                    s.insert_if_absent(NS, key, b"v", Some(exp), q).await
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() {
                won += 1;
            }
        }
        assert_eq!(won, 1, "quota {quota:?}");
    }
    // The facade across two replicas of the resource AS.
    let ra = SingleUseMarkers::new(a.clone(), MarkerKind::IdJag, 10);
    let rb = SingleUseMarkers::new(b.clone(), MarkerKind::IdJag, 10);
    let key = ReplayKey::new("https://idp.example", "jti-x");
    let until = crate::support::clock_ms(&clock) / 1000 + 300;
    let (x, y) = tokio::join!(ra.record(key, "c", until), rb.record(key, "c", until));
    let mut outcomes = [x.unwrap(), y.unwrap()];
    outcomes.sort_by_key(|r| matches!(r, Replay::First));
    assert_eq!(
        outcomes,
        [Replay::Seen { same_holder: true }, Replay::First]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_is_consumed_once_across_two_clients() {
    let server = RedisServer::start();
    let (a, b, clock) = two_clients(&server);
    let exp = now_ms(&clock) + 60_000;
    for round in 0..5u8 {
        a.put(NS, &[round], b"prize", Some(exp)).await.unwrap();
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { s.take(NS, &[round]).await })
            })
            .collect();
        let mut got = 0;
        for t in tasks {
            if let Some(e) = t.await.unwrap().unwrap() {
                assert_eq!(e.value, b"prize");
                got += 1;
            }
        }
        assert_eq!(got, 1, "round {round}");
    }
    // An authorization code redeemed concurrently at two instances: granted once.
    let (ca, cb) = (AuthCodes::new(a), AuthCodes::new(b));
    ca.issue("code", &json!({"c": 1}), now_ms(&clock) / 1000 + 60)
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        ca.redeem::<serde_json::Value>("code"),
        cb.redeem::<serde_json::Value>("code")
    );
    let granted = [x.unwrap(), y.unwrap()]
        .into_iter()
        .filter(|r| matches!(r, Redemption::Granted(_)))
        .count();
    assert_eq!(granted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_another_instances_replica_by_notification() {
    let server = RedisServer::start();
    let (a, b, clock) = two_clients(&server);
    // Resynchronisation once an hour: only the notification can bring the change in time.
    let options = ReplicaOptions::with_max_staleness(Duration::from_secs(7_200))
        .resync_every(Duration::from_secs(3_600));
    let replica_b = RevocationReplica::start(b.clone(), clock.shared(), options).await;
    let mut events = replica_b.events();
    let alice = Principal::User("alice".into());
    let watcher = {
        let alice = alice.clone();
        let replica = Arc::new(replica_b);
        let r = replica.clone();
        (
            tokio::spawn(async move { r.revoked(&[alice]).await }),
            replica,
        )
    };
    // The pub/sub connection subscribes in the background: revoke until it is heard.
    let set_a = RevocationSet::new(a);
    let until = now_ms(&clock) / 1000 + 600;
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            set_a.revoke(alice.clone(), until).await.unwrap();
            if let Ok(Ok(event)) =
                tokio::time::timeout(Duration::from_millis(300), events.recv()).await
            {
                return event;
            }
        }
    })
    .await
    .expect("the revocation reaches instance B");
    assert_eq!(
        heard,
        RevocationEvent::Revoked(Revocation::new(alice.clone(), until))
    );
    assert_eq!(watcher.1.is_revoked(&alice), Ok(true));
    tokio::time::timeout(Duration::from_secs(2), watcher.0)
        .await
        .expect("the stream watcher resolves")
        .unwrap();
}

/// SIGSTOP/SIGCONT a process.
fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_traffic_fails_closed_then_the_same_clients_recover() {
    let mut server = RedisServer::start();
    let (a, b, clock) = two_clients(&server);
    let options = ReplicaOptions::with_max_staleness(Duration::from_secs(2))
        .resync_every(Duration::from_millis(200));
    let replica = RevocationReplica::start(b.clone(), clock.shared(), options).await;
    let bob = Principal::User("bob".into());
    assert_eq!(replica.is_revoked(&bob), Ok(false));

    // Traffic: each marker is presented three times, on alternating clients.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let exp = now_ms(&clock) + 600_000;
    let traffic = {
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        tokio::spawn(async move {
            let mut accepted: HashMap<u32, u32> = HashMap::new();
            let mut errors: HashMap<String, u32> = HashMap::new();
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for attempt in 0..3u32 {
                    let s = if (i + attempt).is_multiple_of(2) {
                        &a
                    } else {
                        &b
                    };
                    match s
                        .insert_if_absent(NS, &i.to_be_bytes(), b"v", Some(exp), None)
                        .await
                    {
                        Ok(true) => *accepted.entry(i).or_default() += 1,
                        Ok(false) => {}
                        Err(e) => *errors.entry(format!("{e:?}")).or_default() += 1,
                    }
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (accepted, errors, i)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    // While it is down: typed errors, and the replica goes stale after its bound.
    let down = a
        .insert_if_absent(NS, b"during", b"v", Some(exp), None)
        .await;
    assert!(
        matches!(down, Err(StoreError::Unavailable | StoreError::Timeout)),
        "{down:?}"
    );
    assert!(matches!(
        a.ping().await,
        Err(StoreError::Unavailable | StoreError::Timeout)
    ));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    clock.advance(Duration::from_millis(2_500));
    assert!(
        matches!(
            replica.is_revoked(&bob),
            Err(StoreError::Stale { age: Some(_) })
        ),
        "{:?}",
        replica.is_revoked(&bob)
    );
    server.restart();
    // The same objects work again, with no restart of ours.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if a.ping().await.is_ok() && b.ping().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "clients did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (accepted, errors, presented) = traffic.await.unwrap();
    // No marker was ever accepted twice, and the outage produced only typed errors.
    assert!(
        accepted.values().all(|n| *n == 1),
        "a marker was accepted twice"
    );
    assert!(
        presented > 10 && accepted.len() > 10,
        "{presented} {}",
        accepted.len()
    );
    assert!(!errors.is_empty(), "the outage produced no error");
    for kind in errors.keys() {
        assert!(kind == "Unavailable" || kind == "Timeout", "{kind}");
    }
    // Markers acknowledged before the kill survived it (appendfsync always).
    let first = *accepted.keys().min().unwrap();
    assert_eq!(
        b.insert_if_absent(NS, &first.to_be_bytes(), b"v", Some(exp), None)
            .await,
        Ok(false)
    );
    // The replica recovers by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while replica.is_revoked(&bob) != Ok(false) {
        assert!(Instant::now() < deadline, "replica did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
        clock.advance(Duration::from_millis(50));
    }
    // And notifications flow again.
    let mut events = replica.events();
    let set = RevocationSet::new(a.clone());
    let until = now_ms(&clock) / 1000 + 600;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            set.revoke(bob.clone(), until).await.unwrap();
            if let Ok(Ok(RevocationEvent::Revoked(_))) =
                tokio::time::timeout(Duration::from_millis(300), events.recv()).await
            {
                break;
            }
        }
    })
    .await
    .expect("notifications after the restart");
    assert_eq!(replica.is_revoked(&bob), Ok(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_gives_timeouts_then_recovers() {
    let server = RedisServer::start();
    let clock = real_time_clock();
    let mut options = RedisOptions::new(server.url());
    options.command_timeout = Duration::from_millis(200);
    let store = RedisStore::new(options, clock.shared()).unwrap();
    store.ping().await.unwrap();
    let pid = server.pid();
    signal(pid, "-STOP");
    let started = Instant::now();
    let frozen = store.get(NS, b"k").await;
    signal(pid, "-CONT");
    assert_eq!(frozen, Err(StoreError::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.get(NS, b"k").await != Ok(None) {
        assert!(Instant::now() < deadline, "no recovery after SIGCONT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirepass_is_enforced_and_the_password_comes_from_a_file() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret-pass"]);
    let clock = real_time_clock();
    let anonymous = RedisStore::new(RedisOptions::new(server.url()), clock.shared()).unwrap();
    assert_eq!(
        anonymous.ping().await,
        Err(StoreError::AuthenticationFailed)
    );
    let mut wrong = RedisOptions::new(server.url());
    wrong.password = Some(zeroize::Zeroizing::new("nope".into()));
    let wrong = RedisStore::new(wrong, clock.shared()).unwrap();
    assert_eq!(wrong.ping().await, Err(StoreError::AuthenticationFailed));
    assert_eq!(
        wrong.insert_if_absent(NS, b"k", b"v", None, None).await,
        Err(StoreError::AuthenticationFailed)
    );

    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("redis-password");
    std::fs::write(&password_file, "s3cret-pass\n").unwrap();
    let from_file: StoreConfig = toml::from_str(&format!(
        "[backend]\nkind = \"redis\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
        server.url(),
        password_file.display()
    ))
    .unwrap();
    let store = from_file.open_and_ping(clock.shared()).await.unwrap();
    assert_eq!(
        store.insert_if_absent(NS, b"k", b"v", None, None).await,
        Ok(true)
    );

    // An ACL user with its password, from the file too.
    let as_user: StoreConfig = toml::from_str(&format!(
        "[backend]\nkind = \"redis\"\nurl = \"{}\"\nusername = \"default\"\npassword_file = \"{}\"\n",
        server.url(),
        password_file.display()
    ))
    .unwrap();
    let store = as_user.open_and_ping(clock.shared()).await.unwrap();
    assert_eq!(
        store.insert_if_absent(NS, b"k", b"v", None, None).await,
        Ok(false)
    );

    // A password in the URL is refused before any connection.
    let in_url: StoreConfig = toml::from_str(&format!(
        "[backend]\nkind = \"redis\"\nurl = \"redis://:s3cret-pass@127.0.0.1:{}/0\"\n",
        server.port
    ))
    .unwrap();
    let err = in_url.check().unwrap_err();
    assert!(
        matches!(err, ConfigError::Redis(RedisConfigError::PasswordInUrl)),
        "{err:?}"
    );
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect(
            "the openssl command line tool makes the test certificates (apt-get install openssl)",
        );
    assert!(status.success(), "openssl {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=idjag test CA",
            "-days",
            "2",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let p = |f: &str| d.join(f).display().to_string();
    let server = RedisServer::start_with(&[
        "--tls-port",
        "{port}",
        "--tls-cert-file",
        &p("server.pem"),
        "--tls-key-file",
        &p("server.key"),
        "--tls-ca-cert-file",
        &p("ca.pem"),
        "--tls-auth-clients",
        "no",
    ]);
    let clock = real_time_clock();
    let url = format!("rediss://localhost:{}/0", server.port);
    let config: StoreConfig = toml::from_str(&format!(
        "[backend]\nkind = \"redis\"\nurl = \"{url}\"\nca_file = \"{}\"\nconnect_timeout_ms = 2000\ncommand_timeout_ms = 1000\nkey_prefix = \"tls-test:\"\n",
        p("ca.pem")
    ))
    .unwrap();
    let store = config.open_and_ping(clock.shared()).await.unwrap();
    assert_eq!(
        store.insert_if_absent(NS, b"k", b"v", None, None).await,
        Ok(true)
    );
    assert_eq!(store.get(NS, b"k").await.unwrap().unwrap().value, b"v");
    // Without our CA the server is not trusted.
    let untrusted = RedisStore::new(RedisOptions::new(url), clock.shared()).unwrap();
    assert_eq!(untrusted.ping().await, Err(StoreError::Unavailable));
    // TLS material with a plain URL is a configuration error.
    let plain: StoreConfig = toml::from_str(&format!(
        "[backend]\nkind = \"redis\"\nurl = \"redis://localhost:{}/0\"\nca_file = \"{}\"\n",
        server.port,
        p("ca.pem")
    ))
    .unwrap();
    assert!(matches!(
        plain.check(),
        Err(ConfigError::Redis(RedisConfigError::TlsWithoutRediss))
    ));
}
