//! Concurrency: one ID-JAG raced 100 times, 100 distinct grants at once (threat J05;
//! the replay threat, `docs/threat-model.md#replay`).

use std::collections::BTreeSet;
use std::sync::Arc;

use idjag_resource::ReplayPolicy;

use crate::support::*;

fn decisions(h: &Harness) -> (usize, Vec<String>) {
    let events = h.audit();
    let granted = events
        .iter()
        .filter(|e| e.fields["decision"] == "granted")
        .count();
    let denied = events
        .iter()
        .filter(|e| e.fields["decision"] == "denied")
        .map(|e| e.fields["reason"].clone())
        .collect();
    (granted, denied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_id_jag_redeemed_100_times_in_parallel_yields_exactly_one_token() {
    let h = Arc::new(Harness::start(Setup::default()).await);
    let token = h.idp.id_jag();
    let replies = h.redeem_all(vec![token; 100]).await;
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "exactly one access token");
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json["error"], "invalid_grant");
        assert!(reply.json.get("access_token").is_none());
    }
    assert_eq!(h.replay.len(), 1);
    let (granted, denied) = decisions(&h);
    assert_eq!(granted, 1);
    assert_eq!(denied.len(), 99);
    assert!(denied.iter().all(|r| r == "replayed"), "{denied:?}");
    // The losers' tokens were signed before the atomic commit and then thrown away: the
    // replay store, written last, is what decides which one is released.
    h.decode(ok[0].access_token());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn j05_100_distinct_valid_requests_all_succeed_with_100_audit_events() {
    let h = Arc::new(Harness::start(Setup::default()).await);
    let tokens: Vec<String> = (0..100).map(|_| h.idp.id_jag()).collect();
    let replies = h.redeem_all(tokens).await;
    assert!(replies.iter().all(|r| r.status == 200));
    let jtis: BTreeSet<String> = replies
        .iter()
        .map(|r| h.decode(r.access_token()).jti.into_string())
        .collect();
    assert_eq!(jtis.len(), 100, "100 independent tokens");
    assert_eq!(h.replay.len(), 100);
    assert_eq!(decisions(&h), (100, Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn j05_100_identical_requests_in_reuse_mode_all_succeed() {
    let h = Arc::new(
        Harness::start(Setup::builder(|b| {
            b.replay_policy(ReplayPolicy::AllowSameClient)
        }))
        .await,
    );
    let token = h.idp.id_jag();
    let replies = h.redeem_all(vec![token; 100]).await;
    assert!(replies.iter().all(|r| r.status == 200));
    let jtis: BTreeSet<String> = replies
        .iter()
        .map(|r| h.decode(r.access_token()).jti.into_string())
        .collect();
    assert_eq!(jtis.len(), 100);
    assert_eq!(h.replay.len(), 1);
    assert_eq!(decisions(&h), (100, Vec::new()));
}
