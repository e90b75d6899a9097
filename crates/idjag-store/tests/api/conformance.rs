//! One conformance suite for the primitives and the facades, run on every backend.

use std::sync::Arc;
use std::time::Duration;

use idjag_core::crypto::AeadAlgorithm;
use idjag_core::server::{Replay, ReplayCache, ReplayKey, ReplayStoreError};
use idjag_core::{Algorithm, SecretBytes};
use idjag_store::*;
use serde_json::json;

use crate::support::Fixture;

const NS: Namespace = Namespace::IdJagReplay;
const INDEXED: Namespace = Namespace::Revocations;

async fn insert_if_absent_stores_once(f: Fixture) {
    let s = &f.store;
    let exp = f.now_ms() + 60_000;
    assert_eq!(
        s.insert_if_absent(NS, b"k1", b"v1", Some(exp), None).await,
        Ok(true)
    );
    assert_eq!(
        s.insert_if_absent(NS, b"k1", b"v2", Some(exp), None).await,
        Ok(false)
    );
    let entry = s.get(NS, b"k1").await.unwrap().unwrap();
    assert_eq!(entry.value, b"v1");
    assert_eq!(entry.expires_at, Some(exp));
    // Namespaces are separate key spaces.
    assert_eq!(s.get(Namespace::DpopReplay, b"k1").await, Ok(None));
    assert_eq!(
        s.insert_if_absent(Namespace::DpopReplay, b"k1", b"v3", Some(exp), None)
            .await,
        Ok(true)
    );
    // Without expiry.
    assert_eq!(
        s.insert_if_absent(NS, b"k2", b"v", None, None).await,
        Ok(true)
    );
    assert_eq!(s.get(NS, b"k2").await.unwrap().unwrap().expires_at, None);
}

async fn expired_entries_are_absent(f: Fixture) {
    let s = &f.store;
    let exp = f.now_ms() + 1_500;
    assert_eq!(
        s.insert_if_absent(NS, b"k", b"v1", Some(exp), None).await,
        Ok(true)
    );
    assert_eq!(s.put(INDEXED, b"r", b"x", Some(exp)).await, Ok(()));
    f.advance(Duration::from_millis(2_100)).await;
    assert_eq!(s.get(NS, b"k").await, Ok(None));
    assert_eq!(s.take(NS, b"k").await, Ok(None));
    assert_eq!(s.remove(NS, b"k").await, Ok(false));
    assert_eq!(s.scan(INDEXED, 10).await, Ok(vec![]));
    let exp = f.now_ms() + 60_000;
    assert_eq!(
        s.insert_if_absent(NS, b"k", b"v2", Some(exp), None).await,
        Ok(true)
    );
    assert_eq!(s.get(NS, b"k").await.unwrap().unwrap().value, b"v2");
}

async fn writes_refuse_past_expiry_and_bad_sizes(f: Fixture) {
    let s = &f.store;
    let past = f.now_ms() - 1;
    assert_eq!(
        s.insert_if_absent(NS, b"k", b"v", Some(past), None).await,
        Err(StoreError::InvalidExpiry)
    );
    assert_eq!(
        s.put(NS, b"k", b"v", Some(f.now_ms())).await,
        Err(StoreError::InvalidExpiry)
    );
    assert_eq!(
        s.insert_if_absent(NS, b"k", b"v", None, Some(Quota::new(b"c", 1)))
            .await,
        Err(StoreError::InvalidExpiry)
    );
    assert_eq!(s.get(NS, b"").await, Err(StoreError::InvalidSize));
    assert_eq!(
        s.put(NS, &[1u8; 257], b"v", None).await,
        Err(StoreError::InvalidSize)
    );
    assert_eq!(s.get(NS, b"k").await, Ok(None));
}

async fn quotas_bound_each_group(f: Fixture) {
    let s = &f.store;
    let short = f.now_ms() + 1_500;
    let long = f.now_ms() + 60_000;
    let q = |g: &'static [u8]| Some(Quota::new(g, 2));
    assert_eq!(
        s.insert_if_absent(NS, b"a1", b"v", Some(short), q(b"client-a"))
            .await,
        Ok(true)
    );
    assert_eq!(
        s.insert_if_absent(NS, b"a2", b"v", Some(long), q(b"client-a"))
            .await,
        Ok(true)
    );
    // A replay is reported as such, not as a quota problem.
    assert_eq!(
        s.insert_if_absent(NS, b"a2", b"v", Some(long), q(b"client-a"))
            .await,
        Ok(false)
    );
    assert_eq!(
        s.insert_if_absent(NS, b"a3", b"v", Some(long), q(b"client-a"))
            .await,
        Err(StoreError::QuotaExceeded { namespace: NS })
    );
    assert_eq!(s.get(NS, b"a3").await, Ok(None));
    // Another client, and the same client in another namespace, are not affected.
    assert_eq!(
        s.insert_if_absent(NS, b"b1", b"v", Some(long), q(b"client-b"))
            .await,
        Ok(true)
    );
    assert_eq!(
        s.insert_if_absent(
            Namespace::DpopReplay,
            b"a3",
            b"v",
            Some(long),
            q(b"client-a")
        )
        .await,
        Ok(true)
    );
    // Removing an entry does not give its slot back; its expiry does.
    assert_eq!(s.remove(NS, b"a2").await, Ok(true));
    assert_eq!(
        s.insert_if_absent(NS, b"a3", b"v", Some(long), q(b"client-a"))
            .await,
        Err(StoreError::QuotaExceeded { namespace: NS })
    );
    f.advance(Duration::from_millis(2_100)).await;
    let long = f.now_ms() + 60_000;
    assert_eq!(
        s.insert_if_absent(NS, b"a3", b"v", Some(long), q(b"client-a"))
            .await,
        Ok(true)
    );
    assert_eq!(
        s.insert_if_absent(NS, b"a4", b"v", Some(long), q(b"client-a"))
            .await,
        Err(StoreError::QuotaExceeded { namespace: NS })
    );
}

async fn put_take_remove(f: Fixture) {
    let s = &f.store;
    let exp = f.now_ms() + 60_000;
    assert_eq!(s.put(NS, b"k", b"v1", Some(exp)).await, Ok(()));
    assert_eq!(s.put(NS, b"k", b"v2", None).await, Ok(()));
    let e = s.get(NS, b"k").await.unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.expires_at), (&b"v2"[..], None));
    let taken = s.take(NS, b"k").await.unwrap().unwrap();
    assert_eq!(taken.value, b"v2");
    assert_eq!(s.take(NS, b"k").await, Ok(None));
    assert_eq!(s.get(NS, b"k").await, Ok(None));
    assert_eq!(s.put(NS, b"k", b"v3", Some(exp)).await, Ok(()));
    assert_eq!(s.remove(NS, b"k").await, Ok(true));
    assert_eq!(s.remove(NS, b"k").await, Ok(false));
    assert_eq!(s.take(NS, b"missing").await, Ok(None));
}

async fn compare_and_swap_applies_only_on_match(f: Fixture) {
    let s = &f.store;
    let exp = Some(f.now_ms() + 60_000);
    assert_eq!(
        s.compare_and_swap(NS, b"k", None, Swap::Set(b"v1", exp))
            .await,
        Ok(true)
    );
    assert_eq!(
        s.compare_and_swap(NS, b"k", None, Swap::Set(b"v2", exp))
            .await,
        Ok(false)
    );
    assert_eq!(
        s.compare_and_swap(NS, b"k", Some(b"other"), Swap::Set(b"v2", exp))
            .await,
        Ok(false)
    );
    assert_eq!(
        s.compare_and_swap(NS, b"k", Some(b"v1"), Swap::Set(b"v2", None))
            .await,
        Ok(true)
    );
    let e = s.get(NS, b"k").await.unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.expires_at), (&b"v2"[..], None));
    assert_eq!(
        s.compare_and_swap(NS, b"k", Some(b"v1"), Swap::Delete)
            .await,
        Ok(false)
    );
    assert_eq!(
        s.compare_and_swap(NS, b"k", Some(b"v2"), Swap::Delete)
            .await,
        Ok(true)
    );
    assert_eq!(s.get(NS, b"k").await, Ok(None));
    // Indexed namespaces keep their index in step.
    assert_eq!(
        s.compare_and_swap(INDEXED, b"i", None, Swap::Set(b"x", exp))
            .await,
        Ok(true)
    );
    assert_eq!(s.scan(INDEXED, 10).await.unwrap().len(), 1);
    assert_eq!(
        s.compare_and_swap(INDEXED, b"i", Some(b"x"), Swap::Delete)
            .await,
        Ok(true)
    );
    assert_eq!(s.scan(INDEXED, 10).await, Ok(vec![]));
}

async fn scan_is_bounded_and_indexed_only(f: Fixture) {
    let s = &f.store;
    let exp = Some(f.now_ms() + 60_000);
    for i in 0..5u8 {
        s.put(INDEXED, &[b'k', i], &[i], exp).await.unwrap();
    }
    s.insert_if_absent(INDEXED, b"never", b"n", None, None)
        .await
        .unwrap();
    s.put(Namespace::Approvals, b"elsewhere", b"a", exp)
        .await
        .unwrap();
    let mut all = s.scan(INDEXED, 6).await.unwrap();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let keys: Vec<Vec<u8>> = all.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        vec![
            vec![b'k', 0],
            vec![b'k', 1],
            vec![b'k', 2],
            vec![b'k', 3],
            vec![b'k', 4],
            b"never".to_vec()
        ]
    );
    assert_eq!(all[2].1.value, vec![2]);
    assert_eq!(all[2].1.expires_at, exp);
    assert_eq!(all[5].1.expires_at, None);
    assert_eq!(
        s.scan(INDEXED, 5).await,
        Err(StoreError::TooMany {
            namespace: INDEXED,
            limit: 5
        })
    );
    s.take(INDEXED, &[b'k', 0]).await.unwrap();
    s.remove(INDEXED, &[b'k', 1]).await.unwrap();
    assert_eq!(s.scan(INDEXED, 4).await.unwrap().len(), 4);
    assert_eq!(
        s.scan(NS, 10).await,
        Err(StoreError::NotScannable { namespace: NS })
    );
}

async fn publish_reaches_subscribers(f: Fixture) {
    let mut sub = f.store.subscribe(Channel::Revocations);
    let mut other = f.store.subscribe(Channel::KeySchedule);
    // Redis subscribes in the background: publish until the subscription hears it.
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            f.store
                .publish(Channel::Revocations, b"hello")
                .await
                .unwrap();
            match tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
                Ok(Some(Notification::Message(m))) => return m,
                Ok(Some(_)) | Err(_) => continue,
                Ok(None) => panic!("subscription closed"),
            }
        }
    })
    .await
    .expect("a message within 10 s");
    assert_eq!(got, b"hello");
    // Other channels hear nothing of it.
    loop {
        match tokio::time::timeout(Duration::from_millis(100), other.next()).await {
            Ok(Some(Notification::Gap)) => continue,
            Ok(n) => panic!("unexpected {n:?}"),
            Err(_) => break,
        }
    }
}

async fn concurrent_inserts_of_one_key_store_once(f: Fixture) {
    let exp = f.now_ms() + 60_000;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = f.store.clone();
            tokio::spawn(async move {
                s.insert_if_absent(NS, b"one", format!("{i}").as_bytes(), Some(exp), None)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = f.store.clone();
            tokio::spawn(async move { s.take(NS, b"one").await })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_some() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
}

async fn single_use_markers(f: Fixture) {
    let until = f.now_secs() + 300;
    let markers = SingleUseMarkers::new(f.store.clone(), MarkerKind::IdJag, 2);
    let k1 = ReplayKey::new("https://idp.example", "j1");
    assert_eq!(
        markers.record(k1, "client-a", until).await,
        Ok(Replay::First)
    );
    assert_eq!(
        markers.record(k1, "client-a", until).await,
        Ok(Replay::Seen { same_holder: true })
    );
    assert_eq!(
        markers.record(k1, "client-b", until).await,
        Ok(Replay::Seen { same_holder: false })
    );
    // The same jti in the DPoP namespace is another marker.
    let dpop = SingleUseMarkers::new(f.store.clone(), MarkerKind::Dpop, 2);
    assert_eq!(
        dpop.record(k1, "thumbprint", until).await,
        Ok(Replay::First)
    );
    // Through idjag-core's trait: client-a's quota (2) is used up, client-c's is not.
    let cache: &dyn ReplayCache = &markers;
    assert_eq!(
        cache
            .record(
                ReplayKey::new("https://idp.example", "j2"),
                "client-a",
                until
            )
            .await,
        Ok(Replay::First)
    );
    assert_eq!(
        cache
            .record(
                ReplayKey::new("https://idp.example", "j3"),
                "client-a",
                until
            )
            .await,
        Err(ReplayStoreError::Full)
    );
    assert_eq!(
        cache
            .record(
                ReplayKey::new("https://idp.example", "j3"),
                "client-c",
                until
            )
            .await,
        Ok(Replay::First)
    );
}

async fn revocations_reach_the_replica(f: Fixture) {
    let set = RevocationSet::new(f.store.clone());
    let options = ReplicaOptions::with_max_staleness(Duration::from_secs(30))
        .resync_every(Duration::from_millis(200));
    let replica = RevocationReplica::start(f.store.clone(), f.clock.shared(), options).await;
    let alice = Principal::User("alice".into());
    let agent = Principal::Client("agent-7".into());
    assert_eq!(replica.is_revoked(&alice), Ok(false));
    let mut events = replica.events();
    let until = f.now_secs() + 3_600;
    set.revoke(alice.clone(), until).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .unwrap();
    assert_eq!(
        event,
        RevocationEvent::Revoked(Revocation::new(alice.clone(), until))
    );
    assert_eq!(replica.is_revoked(&alice), Ok(true));
    assert_eq!(
        replica.is_any_revoked(&[agent.clone(), alice.clone()]),
        Ok(true)
    );
    assert_eq!(replica.is_revoked(&agent), Ok(false));
    set.revoke(agent.clone(), f.now_secs() + 2).await.unwrap();
    let list = set.list().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].principal, alice);
    assert_eq!(list[1].principal, agent);
    assert!(set.lift(&alice).await.unwrap());
    assert!(!set.lift(&alice).await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), async {
        while replica.is_revoked(&alice) != Ok(false) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the lift reaches the replica");
    // A revocation ends at its time.
    assert_eq!(replica.is_revoked(&agent), Ok(true));
    f.advance(Duration::from_millis(3_000)).await;
    assert_eq!(replica.is_revoked(&agent), Ok(false));
    assert_eq!(set.list().await, Ok(vec![]));
}

async fn replica_fails_closed_when_stale(f: Fixture) {
    let options = ReplicaOptions::with_max_staleness(Duration::from_secs(10))
        .resync_every(Duration::from_secs(3600));
    let replica = RevocationReplica::start(f.store.clone(), f.clock.shared(), options).await;
    let bob = Principal::User("bob".into());
    assert_eq!(replica.is_revoked(&bob), Ok(false));
    // No resynchronisation for longer than the bound (the test clock jumps).
    f.clock.advance(Duration::from_secs(11));
    assert!(matches!(
        replica.is_revoked(&bob),
        Err(StoreError::Stale { age: Some(age) }) if age >= Duration::from_secs(11)
    ));
    replica.resync().await.unwrap();
    assert_eq!(replica.is_revoked(&bob), Ok(false));
}

async fn approvals_run_once(f: Fixture) {
    let approvals = Approvals::new(
        f.store.clone(),
        Duration::from_secs(60),
        3,
        f.clock.shared(),
    );
    let call = [7u8; 32];
    let details = json!({"tool": "delete_note", "user": "alice"});
    let Gate::Held { id, new: true } = approvals.gate(call, &details).await.unwrap() else {
        panic!("first call is held");
    };
    assert!(id.starts_with("apr_") && id.len() == 36, "{id}");
    assert_eq!(
        approvals.gate(call, &details).await,
        Ok(Gate::Held {
            id: id.clone(),
            new: false
        })
    );
    let record = approvals.get(&id).await.unwrap().unwrap();
    assert_eq!(record.status, ApprovalStatus::Pending);
    assert_eq!(record.details, details);
    let approved = approvals.decide(&id, true).await.unwrap();
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(
        approvals.decide(&id, false).await,
        Err(DecideError::AlreadyDecided)
    );
    assert_eq!(
        approvals.decide("apr_unknown", true).await,
        Err(DecideError::NotFound)
    );
    // Another call is held on its own; the approved one runs once.
    assert!(matches!(
        approvals.gate([8u8; 32], &details).await,
        Ok(Gate::Held { new: true, .. })
    ));
    assert_eq!(
        approvals.gate(call, &details).await,
        Ok(Gate::Proceed { id: id.clone() })
    );
    assert_eq!(
        approvals.get(&id).await.unwrap().unwrap().status,
        ApprovalStatus::Consumed
    );
    let Gate::Held {
        id: again,
        new: true,
    } = approvals.gate(call, &details).await.unwrap()
    else {
        panic!("held again after the approval was used");
    };
    assert_ne!(again, id);
    // Rejections stick; the quota of holds (3 within the ttl) is used up.
    approvals.decide(&again, false).await.unwrap();
    assert_eq!(
        approvals.gate(call, &details).await,
        Ok(Gate::Rejected { id: again.clone() })
    );
    assert_eq!(approvals.gate([9u8; 32], &details).await, Ok(Gate::Full));
    let listed: Vec<ApprovalStatus> = approvals
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        listed
            .iter()
            .filter(|s| **s == ApprovalStatus::Pending)
            .count(),
        1
    );
    assert_eq!(listed.len(), 3);
}

async fn approval_expires(f: Fixture) {
    let approvals = Approvals::new(
        f.store.clone(),
        Duration::from_secs(1),
        10,
        f.clock.shared(),
    );
    let Gate::Held { id, .. } = approvals.gate([1u8; 32], &json!({})).await.unwrap() else {
        panic!()
    };
    f.advance(Duration::from_millis(2_100)).await;
    assert_eq!(
        approvals.decide(&id, true).await,
        Err(DecideError::NotFound)
    );
    assert!(matches!(
        approvals.gate([1u8; 32], &json!({})).await,
        Ok(Gate::Held { new: true, .. })
    ));
}

async fn concurrent_retries_consume_an_approval_once(f: Fixture) {
    let approvals = Approvals::new(
        f.store.clone(),
        Duration::from_secs(60),
        1000,
        f.clock.shared(),
    );
    let call = [3u8; 32];
    let Gate::Held { id, .. } = approvals.gate(call, &json!({})).await.unwrap() else {
        panic!()
    };
    approvals.decide(&id, true).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let a = approvals.clone();
            tokio::spawn(async move { a.gate(call, &json!({})).await })
        })
        .collect();
    let mut proceeded = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Gate::Proceed { id: used } => {
                assert_eq!(used, id);
                proceeded += 1;
            }
            Gate::Held { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(proceeded, 1);
}

async fn session_bindings(f: Fixture) {
    let sessions = SessionBindings::new(f.store.clone(), Duration::from_secs(2), f.clock.shared());
    let alice = [1u8; 32];
    let bob = [2u8; 32];
    assert_eq!(sessions.bind("notes", b"sess-1", alice).await, Ok(true));
    assert_eq!(sessions.bind("notes", b"sess-1", alice).await, Ok(true));
    assert_eq!(sessions.bind("notes", b"sess-1", bob).await, Ok(false));
    assert_eq!(
        sessions.check("notes", b"sess-1", &alice).await,
        Ok(SessionCheck::Owned)
    );
    assert_eq!(
        sessions.check("notes", b"sess-1", &bob).await,
        Ok(SessionCheck::NotFound)
    );
    assert_eq!(
        sessions.check("wiki", b"sess-1", &alice).await,
        Ok(SessionCheck::NotFound)
    );
    // Use renews it; idleness ends it.
    f.advance(Duration::from_millis(1_200)).await;
    assert_eq!(
        sessions.check("notes", b"sess-1", &alice).await,
        Ok(SessionCheck::Owned)
    );
    f.advance(Duration::from_millis(1_200)).await;
    assert_eq!(
        sessions.check("notes", b"sess-1", &alice).await,
        Ok(SessionCheck::Owned)
    );
    f.advance(Duration::from_millis(2_200)).await;
    assert_eq!(
        sessions.check("notes", b"sess-1", &alice).await,
        Ok(SessionCheck::NotFound)
    );
    assert_eq!(sessions.bind("notes", b"sess-2", bob).await, Ok(true));
    assert_eq!(sessions.remove("notes", b"sess-2").await, Ok(true));
    assert_eq!(
        sessions.check("notes", b"sess-2", &bob).await,
        Ok(SessionCheck::NotFound)
    );
}

async fn key_schedule_round_trips_with_compare_and_swap(f: Fixture) {
    let sealer = Sealer::generate(AeadAlgorithm::Aes256Gcm).unwrap();
    let schedule = KeyScheduleStore::new(f.store.clone(), sealer.clone());
    assert!(schedule.load().await.unwrap().is_none());
    let k1 = ScheduledKey::new(
        "kid-1",
        Algorithm::Es256,
        SecretBytes::new(vec![1, 2, 3]),
        10,
        10,
    );
    let v1 = schedule
        .save(None, std::slice::from_ref(&k1))
        .await
        .unwrap()
        .expect("first save");
    assert_eq!(
        schedule.save(None, std::slice::from_ref(&k1)).await,
        Ok(None)
    );
    let (keys, version) = schedule.load().await.unwrap().unwrap();
    assert_eq!(version, v1);
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].kid.as_str(), keys[0].alg),
        ("kid-1", Algorithm::Es256)
    );
    assert_eq!(keys[0].pkcs8.secret(), &[1, 2, 3]);
    let k2 = ScheduledKey::new(
        "kid-2",
        Algorithm::EdDsa,
        SecretBytes::new(vec![4; 48]),
        20,
        620,
    );
    let v2 = schedule
        .save(Some(&v1), &[k1, k2.clone()])
        .await
        .unwrap()
        .unwrap();
    // A stale version loses.
    assert_eq!(schedule.save(Some(&v1), &[k2]).await, Ok(None));
    let (keys, version) = schedule.load().await.unwrap().unwrap();
    assert_eq!(version, v2);
    assert_eq!(
        keys.iter().map(|k| k.signs_from).collect::<Vec<_>>(),
        vec![10, 620]
    );
    // Another key cannot open it.
    let other = KeyScheduleStore::new(
        f.store.clone(),
        Sealer::generate(AeadAlgorithm::Aes256Gcm).unwrap(),
    );
    assert_eq!(
        other.load().await.unwrap_err(),
        StoreError::Corrupt {
            namespace: Namespace::KeySchedule
        }
    );
}

async fn auth_codes_redeem_once(f: Fixture) {
    let codes = AuthCodes::new(f.store.clone());
    let exp = f.now_secs() + 60;
    let grant = json!({"client_id": "c1", "code_challenge": "abc"});
    assert_eq!(codes.issue("code-1", &grant, exp).await, Ok(true));
    assert_eq!(codes.issue("code-1", &grant, exp).await, Ok(false));
    assert_eq!(
        codes.redeem::<serde_json::Value>("code-1").await,
        Ok(Redemption::Granted(grant))
    );
    assert_eq!(
        codes.redeem::<serde_json::Value>("code-1").await,
        Ok(Redemption::Reused)
    );
    assert_eq!(
        codes.redeem::<serde_json::Value>("code-2").await,
        Ok(Redemption::Unknown)
    );
    codes.issue("code-3", &json!({}), exp).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = codes.clone();
            tokio::spawn(async move { c.redeem::<serde_json::Value>("code-3").await })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Redemption::Granted(_) => granted += 1,
            Redemption::Reused => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(granted, 1);
}

async fn refresh_families_rotate_and_revoke_on_reuse(f: Fixture) {
    let families = RefreshFamilies::new(f.store.clone());
    let exp = f.now_secs() + 3_600;
    let grant = json!({"sub": "alice", "scope": "notes"});
    let family = families.start("rt-0", &grant, exp).await.unwrap();
    let Rotation::Rotated {
        family: fam,
        grant: g,
        generation,
    } = families
        .rotate::<serde_json::Value>("rt-0", "rt-1")
        .await
        .unwrap()
    else {
        panic!("rotated");
    };
    assert_eq!((fam, g, generation), (family.clone(), grant.clone(), 1));
    assert!(matches!(
        families.rotate::<serde_json::Value>("rt-1", "rt-2").await,
        Ok(Rotation::Rotated { generation: 2, .. })
    ));
    // rt-1 again: reuse, the family is revoked, rt-2 stops working.
    assert_eq!(
        families.rotate::<serde_json::Value>("rt-1", "rt-x").await,
        Ok(Rotation::Reused {
            family: family.clone()
        })
    );
    assert_eq!(
        families.rotate::<serde_json::Value>("rt-2", "rt-3").await,
        Ok(Rotation::Revoked {
            family: family.clone()
        })
    );
    assert_eq!(
        families.rotate::<serde_json::Value>("nope", "x").await,
        Ok(Rotation::Unknown)
    );
    let other = families.start("s-0", &grant, exp).await.unwrap();
    assert_eq!(families.revoke(&other).await, Ok(true));
    assert_eq!(
        families.rotate::<serde_json::Value>("s-0", "s-1").await,
        Ok(Rotation::Revoked { family: other })
    );
}

async fn sealed_tokens_round_trip(f: Fixture) {
    let sealer = Sealer::generate(AeadAlgorithm::ChaCha20Poly1305).unwrap();
    let tokens = SealedTokens::new(f.store.clone(), sealer);
    tokens
        .put("alice@idp", b"idp-refresh-token", Some(f.now_secs() + 60))
        .await
        .unwrap();
    assert_eq!(
        tokens.get("alice@idp").await.unwrap().unwrap().secret(),
        b"idp-refresh-token"
    );
    assert!(tokens.get("bob@idp").await.unwrap().is_none());
    let wrong = SealedTokens::new(
        f.store.clone(),
        Sealer::generate(AeadAlgorithm::ChaCha20Poly1305).unwrap(),
    );
    assert_eq!(
        wrong.get("alice@idp").await.unwrap_err(),
        StoreError::Corrupt {
            namespace: Namespace::SealedTokens
        }
    );
    assert_eq!(tokens.remove("alice@idp").await, Ok(true));
    assert!(tokens.get("alice@idp").await.unwrap().is_none());
    let _: Arc<dyn Store> = f.store.clone();
}

crate::on_every_backend!(
    insert_if_absent_stores_once,
    expired_entries_are_absent,
    writes_refuse_past_expiry_and_bad_sizes,
    quotas_bound_each_group,
    put_take_remove,
    compare_and_swap_applies_only_on_match,
    scan_is_bounded_and_indexed_only,
    publish_reaches_subscribers,
    concurrent_inserts_of_one_key_store_once,
    single_use_markers,
    revocations_reach_the_replica,
    replica_fails_closed_when_stale,
    approvals_run_once,
    approval_expires,
    concurrent_retries_consume_an_approval_once,
    session_bindings,
    key_schedule_round_trips_with_compare_and_swap,
    auth_codes_redeem_once,
    refresh_families_rotate_and_revoke_on_reuse,
    sealed_tokens_round_trip,
);
