//! The embedded store's durability: reopen after drop, and `kill -9` of a writing process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idjag_core::TestClock;
use idjag_core::crypto::AeadAlgorithm;
use idjag_store::*;
use serde_json::json;

const NOW: i64 = 1_700_000_000;
const LATER: i64 = 1_800_000_000;
/// A fixed sealing key for the child and the parent (tests only).
const KEY: [u8; 32] = [0x5a; 32];

fn open(path: &Path, clock: &TestClock) -> Arc<dyn Store> {
    Arc::new(EmbeddedStore::open(path, clock.shared()).expect("open"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_is_there_after_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let clock = TestClock::at_unix(NOW);
    let sealer = Sealer::new(AeadAlgorithm::Aes256Gcm, &KEY).unwrap();
    let approval_id;
    let family;
    {
        let store = open(&path, &clock);
        let markers = SingleUseMarkers::new(store.clone(), MarkerKind::IdJag, 100);
        let key = idjag_core::server::ReplayKey::new("https://idp", "j1");
        markers.record(key, "c1", LATER).await.unwrap();
        RevocationSet::new(store.clone())
            .revoke(Principal::Client("agent".into()), LATER)
            .await
            .unwrap();
        let approvals = Approvals::new(store.clone(), Duration::from_secs(600), 10, clock.shared());
        let Gate::Held { id, .. } = approvals
            .gate([4; 32], &json!({"tool": "t"}))
            .await
            .unwrap()
        else {
            panic!()
        };
        approvals.decide(&id, true).await.unwrap();
        approval_id = id;
        SessionBindings::new(store.clone(), Duration::from_secs(600), clock.shared())
            .bind("up", b"sess", [9; 32])
            .await
            .unwrap();
        family = RefreshFamilies::new(store.clone())
            .start("rt-0", &json!({"sub": "a"}), LATER)
            .await
            .unwrap();
        SealedTokens::new(store.clone(), sealer.clone())
            .put("h", b"idp-token", None)
            .await
            .unwrap();
        KeyScheduleStore::new(store.clone(), sealer.clone())
            .save(
                None,
                &[ScheduledKey::new(
                    "k1",
                    idjag_core::Algorithm::Es256,
                    idjag_core::SecretBytes::new(vec![1; 8]),
                    1,
                    2,
                )],
            )
            .await
            .unwrap();
        // The second open of a file in use is refused.
        assert!(matches!(
            EmbeddedStore::open(&path, clock.shared()),
            Err(EmbeddedOpenError::AlreadyOpen)
        ));
    }
    let store = open(&path, &clock);
    let markers = SingleUseMarkers::new(store.clone(), MarkerKind::IdJag, 100);
    let key = idjag_core::server::ReplayKey::new("https://idp", "j1");
    assert_eq!(
        markers.record(key, "c1", LATER).await,
        Ok(idjag_core::server::Replay::Seen { same_holder: true })
    );
    let replica =
        RevocationReplica::start(store.clone(), clock.shared(), ReplicaOptions::default()).await;
    assert_eq!(
        replica.is_revoked(&Principal::Client("agent".into())),
        Ok(true)
    );
    let approvals = Approvals::new(store.clone(), Duration::from_secs(600), 10, clock.shared());
    assert_eq!(
        approvals.gate([4; 32], &json!({})).await,
        Ok(Gate::Proceed { id: approval_id })
    );
    assert_eq!(
        SessionBindings::new(store.clone(), Duration::from_secs(600), clock.shared())
            .check("up", b"sess", &[9; 32])
            .await,
        Ok(SessionCheck::Owned)
    );
    assert!(matches!(
        RefreshFamilies::new(store.clone()).rotate::<serde_json::Value>("rt-0", "rt-1").await,
        Ok(Rotation::Rotated { family: f, generation: 1, .. }) if f == family
    ));
    assert_eq!(
        SealedTokens::new(store.clone(), sealer.clone())
            .get("h")
            .await
            .unwrap()
            .unwrap()
            .secret(),
        b"idp-token"
    );
    let (keys, _) = KeyScheduleStore::new(store, sealer)
        .load()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys[0].kid, "k1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_swept_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let clock = TestClock::at_unix(NOW);
    let mut options = EmbeddedOptions::default();
    options.sweep_interval = Duration::from_millis(50);
    let store = EmbeddedStore::open_with(&path, clock.shared(), options).unwrap();
    for i in 0..200u32 {
        store
            .insert_if_absent(
                Namespace::DpopReplay,
                &i.to_be_bytes(),
                b"v",
                Some((NOW + 10) * 1000),
                Some(Quota::new(b"k", 1000)),
            )
            .await
            .unwrap();
    }
    store
        .put(Namespace::Revocations, b"stays", b"v", None)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(11));
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(store);
    // Read the tables directly: only the unexpiring entry is left, and no quota member.
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    use redb::ReadableTableMetadata;
    let entries = txn
        .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("entries"))
        .unwrap();
    assert_eq!(entries.len().unwrap(), 1);
    let members = txn
        .open_table(redb::TableDefinition::<&[u8], ()>::new("quota-members"))
        .unwrap();
    assert_eq!(members.len().unwrap(), 0);
    let expiries = txn
        .open_table(redb::TableDefinition::<&[u8], ()>::new("expiries"))
        .unwrap();
    assert_eq!(expiries.len().unwrap(), 0);
}

/// What the child acknowledged, line by line: `<kind> <n>`.
fn parse_ack(line: &str) -> Option<(String, u32)> {
    let mut parts = line.split_whitespace();
    let kind = parts.next()?;
    if !["marker", "revoke", "approve", "token"].contains(&kind) {
        return None; // the test harness's own lines
    }
    let n = parts.next()?.parse().ok()?;
    Some((kind.to_owned(), n))
}

/// The child's writes (run by [`every_acknowledged_write_survives_kill_9`] in a child
/// process of this test binary). Four writers: markers, revocations, approvals, sealed
/// tokens; each prints a line once its write is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: the child process of every_acknowledged_write_survives_kill_9"]
async fn kill_9_child_writer() {
    let Some(path) = std::env::var_os("IDJAG_STORE_KILL9_DB") else {
        panic!("run by every_acknowledged_write_survives_kill_9 only");
    };
    let clock = TestClock::at_unix(NOW);
    let store = open(Path::new(&path), &clock);
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let ack = move |kind: &str, n: u32| {
        use std::io::Write;
        let mut out = out.lock().unwrap();
        writeln!(out, "{kind} {n}").unwrap();
        out.flush().unwrap();
    };
    let sealer = Sealer::new(AeadAlgorithm::Aes256Gcm, &KEY).unwrap();
    let mut tasks = Vec::new();
    for kind in ["marker", "revoke", "approve", "token"] {
        let store = store.clone();
        let ack = ack.clone();
        let clock = clock.clone();
        let sealer = sealer.clone();
        tasks.push(tokio::spawn(async move {
            let markers = SingleUseMarkers::new(store.clone(), MarkerKind::IdJag, u32::MAX);
            let set = RevocationSet::new(store.clone());
            let approvals = Approvals::new(
                store.clone(),
                Duration::from_secs(3600),
                u32::MAX,
                clock.shared(),
            );
            let tokens = SealedTokens::new(store.clone(), sealer);
            for n in 0u32.. {
                match kind {
                    "marker" => {
                        let key = idjag_core::server::ReplayKey::new("https://idp", &n.to_string());
                        markers.record(key, "client", LATER).await.unwrap();
                    }
                    "revoke" => set
                        .revoke(Principal::User(format!("user-{n}")), LATER)
                        .await
                        .unwrap(),
                    "approve" => {
                        let mut call = [0u8; 32];
                        call[..4].copy_from_slice(&n.to_be_bytes());
                        assert!(matches!(
                            approvals.gate(call, &json!({"n": n})).await.unwrap(),
                            Gate::Held { new: true, .. }
                        ));
                    }
                    _ => tokens
                        .put(
                            &format!("handle-{n}"),
                            format!("token-{n}").as_bytes(),
                            None,
                        )
                        .await
                        .unwrap(),
                }
                ack(kind, n);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "embedded::kill_9_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("IDJAG_STORE_KILL9_DB", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child writer");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked: std::collections::HashMap<String, u32> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Let it write a while, then SIGKILL it mid-write.
    while acked.values().sum::<u32>() < 400 {
        assert!(
            Instant::now() < deadline,
            "the child wrote too slowly: {acked:?}"
        );
        let Some(line) = lines.next() else {
            panic!("the child ended: {acked:?}")
        };
        if let Some((kind, n)) = parse_ack(&line.unwrap()) {
            let e = acked.entry(kind).or_default();
            *e = (*e).max(n + 1);
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Whatever else it printed before dying was acknowledged too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some((kind, n)) = parse_ack(&line) {
            let e = acked.entry(kind).or_default();
            *e = (*e).max(n + 1);
        }
    }
    let clock = TestClock::at_unix(NOW);
    let store = open(&path, &clock);
    let markers = SingleUseMarkers::new(store.clone(), MarkerKind::IdJag, u32::MAX);
    for n in 0..acked.get("marker").copied().unwrap_or(0) {
        let key = idjag_core::server::ReplayKey::new("https://idp", &n.to_string());
        assert_eq!(
            markers.record(key, "client", LATER).await,
            Ok(idjag_core::server::Replay::Seen { same_holder: true }),
            "marker {n}"
        );
    }
    let revoked = RevocationSet::new(store.clone()).list().await.unwrap();
    for n in 0..acked.get("revoke").copied().unwrap_or(0) {
        let who = Principal::User(format!("user-{n}"));
        assert!(revoked.iter().any(|r| r.principal == who), "revocation {n}");
    }
    let held = Approvals::new(
        store.clone(),
        Duration::from_secs(3600),
        u32::MAX,
        clock.shared(),
    )
    .list()
    .await
    .unwrap();
    let held_n: std::collections::HashSet<u64> = held
        .iter()
        .filter_map(|r| r.details["n"].as_u64())
        .collect();
    for n in 0..acked.get("approve").copied().unwrap_or(0) {
        assert!(held_n.contains(&u64::from(n)), "approval {n}");
    }
    let tokens = SealedTokens::new(
        store.clone(),
        Sealer::new(AeadAlgorithm::Aes256Gcm, &KEY).unwrap(),
    );
    for n in 0..acked.get("token").copied().unwrap_or(0) {
        assert_eq!(
            tokens
                .get(&format!("handle-{n}"))
                .await
                .unwrap()
                .unwrap()
                .secret(),
            format!("token-{n}").as_bytes(),
            "token {n}"
        );
    }
    assert_eq!(
        acked.len(),
        4,
        "every writer acknowledged something: {acked:?}"
    );
}
