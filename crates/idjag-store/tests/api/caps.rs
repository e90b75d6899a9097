//! Caps: per-group bounds on live entries (held calls and MCP sessions per principal), on
//! every backend. Each test names the exact outcome of each insertion.

use std::time::Duration;

use idjag_store::*;
use serde_json::json;

use crate::support::Fixture;

const NS: Namespace = Namespace::Sessions;

fn alice() -> Cap<'static> {
    Cap::new(b"user:alice", 2)
}

async fn insert(f: &Fixture, key: &[u8], caps: &[Cap<'_>]) -> Result<bool, StoreError> {
    f.store
        .insert_capped(NS, key, b"v", f.now_ms() + 60_000, None, caps)
        .await
}

async fn caps_count_live_entries_and_free_as_they_leave(f: Fixture) {
    let s = &f.store;
    assert_eq!(insert(&f, b"a1", &[alice()]).await, Ok(true));
    assert_eq!(insert(&f, b"a2", &[alice()]).await, Ok(true));
    // The same key again is present, not a third entry.
    assert_eq!(insert(&f, b"a2", &[alice()]).await, Ok(false));
    assert_eq!(
        insert(&f, b"a3", &[alice()]).await,
        Err(StoreError::CapReached {
            namespace: NS,
            index: 0
        })
    );
    assert_eq!(s.get(NS, b"a3").await, Ok(None));
    // Another group has its own cap; the first cap reached is named.
    assert_eq!(
        insert(&f, b"b1", &[Cap::new(b"user:bob", 2)]).await,
        Ok(true)
    );
    assert_eq!(
        insert(&f, b"b2", &[Cap::new(b"user:bob", 2), alice()]).await,
        Err(StoreError::CapReached {
            namespace: NS,
            index: 1
        })
    );
    assert_eq!(s.get(NS, b"b2").await, Ok(None));
    // Renewing an entry (put, compare-and-swap Set) keeps it counted.
    let later = f.now_ms() + 120_000;
    s.put(NS, b"a1", b"v", Some(later)).await.unwrap();
    assert_eq!(
        s.compare_and_swap(NS, b"a2", Some(b"v"), Swap::Set(b"w", Some(later)))
            .await,
        Ok(true)
    );
    assert_eq!(
        insert(&f, b"a3", &[alice()]).await,
        Err(StoreError::CapReached {
            namespace: NS,
            index: 0
        })
    );
    // Remove frees a place...
    assert_eq!(s.remove(NS, b"a1").await, Ok(true));
    assert_eq!(insert(&f, b"a3", &[alice()]).await, Ok(true));
    // ...and so do Release (the entry stays, uncounted), take and compare-and-swap Delete.
    assert_eq!(
        s.compare_and_swap(NS, b"a2", Some(b"w"), Swap::Release(b"done", Some(later)))
            .await,
        Ok(true)
    );
    assert_eq!(s.get(NS, b"a2").await.unwrap().unwrap().value, b"done");
    assert_eq!(insert(&f, b"a4", &[alice()]).await, Ok(true));
    assert_eq!(s.take(NS, b"a3").await.unwrap().unwrap().value, b"v");
    assert_eq!(insert(&f, b"a5", &[alice()]).await, Ok(true));
    assert_eq!(
        s.compare_and_swap(NS, b"a4", Some(b"v"), Swap::Delete)
            .await,
        Ok(true)
    );
    assert_eq!(insert(&f, b"a6", &[alice()]).await, Ok(true));
    assert_eq!(
        insert(&f, b"a7", &[alice()]).await,
        Err(StoreError::CapReached {
            namespace: NS,
            index: 0
        })
    );
    // A released entry deleted later does not free a place twice.
    assert_eq!(s.remove(NS, b"a2").await, Ok(true));
    assert_eq!(
        insert(&f, b"a7", &[alice()]).await,
        Err(StoreError::CapReached {
            namespace: NS,
            index: 0
        })
    );
}

async fn expired_entries_leave_their_caps(f: Fixture) {
    let s = &f.store;
    let cap = Cap::new(b"user:carol", 1);
    let soon = f.now_ms() + 1_000;
    assert_eq!(
        s.insert_capped(NS, b"c1", b"v", soon, None, &[cap]).await,
        Ok(true)
    );
    assert_eq!(
        insert(&f, b"c2", &[cap]).await,
        Err(StoreError::CapReached {
            namespace: NS,
            index: 0
        })
    );
    f.advance(Duration::from_millis(1_600)).await;
    assert_eq!(insert(&f, b"c2", &[cap]).await, Ok(true));
    // The expired key inserted again counts anew, once.
    assert_eq!(
        insert(&f, b"c1", &[Cap::new(b"user:carol", 2)]).await,
        Ok(true)
    );
    assert_eq!(
        insert(&f, b"c3", &[Cap::new(b"user:carol", 2)]).await,
        Err(StoreError::CapReached {
            namespace: NS,
            index: 0
        })
    );
}

async fn caps_are_refused_where_they_are_not_kept(f: Fixture) {
    let exp = f.now_ms() + 60_000;
    assert_eq!(
        f.store
            .insert_capped(Namespace::IdJagReplay, b"k", b"v", exp, None, &[alice()])
            .await,
        Err(StoreError::NotCappable {
            namespace: Namespace::IdJagReplay
        })
    );
    let many = [alice(); idjag_store::store::MAX_CAPS + 1];
    assert_eq!(insert(&f, b"k", &many).await, Err(StoreError::InvalidSize));
    assert_eq!(f.store.get(NS, b"k").await, Ok(None));
}

async fn concurrent_inserts_over_a_cap_let_exactly_the_cap_in(f: Fixture) {
    const CAP: u32 = 5;
    let exp = f.now_ms() + 60_000;
    let tasks: Vec<_> = (0u32..40)
        .map(|i| {
            let s = f.store.clone();
            tokio::spawn(async move {
                s.insert_capped(
                    NS,
                    &i.to_be_bytes(),
                    b"v",
                    exp,
                    None,
                    &[Cap::new(b"user:dave", CAP)],
                )
                .await
            })
        })
        .collect();
    let (mut stored, mut capped) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => stored += 1,
            Err(StoreError::CapReached { index: 0, .. }) => capped += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((stored, capped), (CAP, 40 - CAP));
}

async fn held_calls_are_capped_per_principal_until_decided(f: Fixture) {
    let approvals = Approvals::new(
        f.store.clone(),
        Duration::from_secs(60),
        1000,
        f.clock.shared(),
    );
    let caps = [Cap::new(b"user:alice", 2), Cap::new(b"agent:a", 3)];
    let details = json!({});
    let mut held = Vec::new();
    for call in [[1u8; 32], [2; 32]] {
        let Ok(Gate::Held { id, new: true }) = approvals.gate_capped(call, &details, &caps).await
        else {
            panic!("held");
        };
        held.push(id);
    }
    // A call already held is found, not counted again.
    assert_eq!(
        approvals.gate_capped([1u8; 32], &details, &caps).await,
        Ok(Gate::Held {
            id: held[0].clone(),
            new: false
        })
    );
    assert_eq!(
        approvals.gate_capped([3u8; 32], &details, &caps).await,
        Ok(Gate::CapReached { index: 0 })
    );
    assert_eq!(approvals.list().await.unwrap().len(), 2);
    // Bob shares the agent: its third place is his, then the agent's cap is reached.
    let bob = [Cap::new(b"user:bob", 2), Cap::new(b"agent:a", 3)];
    assert!(matches!(
        approvals.gate_capped([4u8; 32], &details, &bob).await,
        Ok(Gate::Held { new: true, .. })
    ));
    assert_eq!(
        approvals.gate_capped([5u8; 32], &details, &bob).await,
        Ok(Gate::CapReached { index: 1 })
    );
    // A decision frees the place, approved or rejected; consuming it changes nothing.
    approvals.decide(&held[0], true).await.unwrap();
    approvals.decide(&held[1], false).await.unwrap();
    assert!(matches!(
        approvals.gate_capped([1u8; 32], &details, &caps).await,
        Ok(Gate::Proceed { .. })
    ));
    for call in [[6u8; 32], [7; 32]] {
        assert!(matches!(
            approvals.gate_capped(call, &details, &caps).await,
            Ok(Gate::Held { new: true, .. })
        ));
    }
    assert_eq!(
        approvals.gate_capped([8u8; 32], &details, &caps).await,
        Ok(Gate::CapReached { index: 0 })
    );
}

async fn concurrent_new_holds_over_a_cap_hold_exactly_the_cap(f: Fixture) {
    const CAP: u32 = 3;
    let approvals = Approvals::new(
        f.store.clone(),
        Duration::from_secs(60),
        1000,
        f.clock.shared(),
    );
    let tasks: Vec<_> = (0u8..20)
        .map(|i| {
            let a = approvals.clone();
            tokio::spawn(async move {
                a.gate_capped([i; 32], &json!({}), &[Cap::new(b"user:erin", CAP)])
                    .await
            })
        })
        .collect();
    let (mut held, mut capped) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(Gate::Held { new: true, .. }) => held += 1,
            Ok(Gate::CapReached { index: 0 }) => capped += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((held, capped), (CAP, 20 - CAP));
    assert_eq!(approvals.list().await.unwrap().len(), CAP as usize);
}

async fn sessions_are_capped_per_principal_until_removed(f: Fixture) {
    let sessions = SessionBindings::new(f.store.clone(), Duration::from_secs(60), f.clock.shared());
    let alice = [1u8; 32];
    let caps = [Cap::new(b"user:alice", 2)];
    assert_eq!(
        sessions.bind_capped("notes", b"s1", alice, &caps).await,
        Ok(true)
    );
    assert_eq!(
        sessions.bind_capped("wiki", b"s2", alice, &caps).await,
        Ok(true)
    );
    // Binding an id already hers again is no new session.
    assert_eq!(
        sessions.bind_capped("notes", b"s1", alice, &caps).await,
        Ok(true)
    );
    assert_eq!(
        sessions.bind_capped("notes", b"s3", alice, &caps).await,
        Err(StoreError::CapReached {
            namespace: NS,
            index: 0
        })
    );
    assert_eq!(
        sessions.check("notes", b"s3", &alice).await,
        Ok(SessionCheck::NotFound)
    );
    assert_eq!(sessions.remove("notes", b"s1").await, Ok(true));
    assert_eq!(
        sessions.bind_capped("notes", b"s3", alice, &caps).await,
        Ok(true)
    );
}

crate::on_every_backend!(
    caps_count_live_entries_and_free_as_they_leave,
    expired_entries_leave_their_caps,
    caps_are_refused_where_they_are_not_kept,
    concurrent_inserts_over_a_cap_let_exactly_the_cap_in,
    held_calls_are_capped_per_principal_until_decided,
    concurrent_new_holds_over_a_cap_hold_exactly_the_cap,
    sessions_are_capped_per_principal_until_removed,
);
