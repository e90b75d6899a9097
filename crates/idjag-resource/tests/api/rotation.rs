//! Key rotation under traffic with the shared remote JWKS source (SECURITY-CASES B4.2 K01,
//! K02, K03, K09; SPEC EMA-11).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use idjag_core::remote::RemoteJwks;
use idjag_core::*;
use serde_json::json;
use tokio::task::JoinSet;

use crate::support::*;

/// The IdP's JWKS endpoint on loopback: a document (or an outage) and a request counter.
#[derive(Clone)]
struct JwksEndpoint {
    state: Arc<std::sync::Mutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
    url: String,
}

impl JwksEndpoint {
    async fn start(keys: &[&SigningKey]) -> Self {
        let (listener, base) = bind().await;
        let endpoint = Self {
            state: Arc::new(std::sync::Mutex::new((200, String::new()))),
            hits: Arc::new(AtomicUsize::new(0)),
            url: format!("{base}/jwks.json"),
        };
        endpoint.publish(keys);
        let served = endpoint.clone();
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let served = served.clone();
                async move {
                    served.hits.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = served.state.lock().unwrap().clone();
                    (http::StatusCode::from_u16(status).unwrap(), body)
                }
            }),
        );
        serve(listener, router);
        endpoint
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let keys: Vec<_> = keys.iter().map(|k| k.public_jwk()).collect();
        *self.state.lock().unwrap() = (200, json!({ "keys": keys }).to_string());
    }

    fn fail(&self) {
        *self.state.lock().unwrap() = (500, "<html>down</html>".into());
    }
}

fn key(kid: &str) -> SigningKey {
    SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new(kid).unwrap())
}

/// A fresh ID-JAG at the harness clock's current time, signed with `signer`.
fn fresh(h: &Harness, signer: &SigningKey) -> String {
    let now = h.clock.now_unix();
    let idp = Idp {
        key: signer.clone(),
        ..h.idp.clone()
    };
    idp.with(|c| {
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(now + 300));
    })
}

async fn redeem_all(h: &Arc<Harness>, tokens: Vec<String>) -> Vec<Reply> {
    let mut set = JoinSet::new();
    for token in tokens {
        let h = h.clone();
        set.spawn(async move { h.redeem(&token).await });
    }
    let mut replies = Vec::new();
    while let Some(reply) = set.join_next().await {
        replies.push(reply.unwrap());
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn k01_a_new_kid_is_picked_up_with_exactly_one_fetch_under_traffic() {
    let old = key("2026-10");
    let new = key("2026-11");
    let jwks = JwksEndpoint::start(&[&old]).await;
    let clock = TestClock::at_unix(NOW);
    let remote = Arc::new(
        RemoteJwks::from_jwks_uri(Issuer::new(IDP).unwrap(), &jwks.url, clock.shared()).unwrap(),
    );
    let setup = Setup {
        idp_keys: Some(remote.clone()),
        clock,
        ..Setup::default()
    };
    let h = Arc::new(Harness::start(setup).await);

    // Warm-up: the first grant fetches the set once.
    assert!(redeem_all(&h, vec![fresh(&h, &old)]).await[0].status == 200);
    assert_eq!(
        (remote.fetch_count(), jwks.hits.load(Ordering::SeqCst)),
        (1, 1)
    );

    // K02: the IdP starts signing with a key it has not published yet; within the cooldown
    // an unknown kid causes no fetch and is refused.
    let early = h.redeem(&fresh(&h, &new)).await;
    assert_eq!(early.json["error"], "invalid_grant");
    assert_eq!(remote.fetch_count(), 1);

    // K01/K09: the IdP publishes the new key; 60 requests (old and new kid mixed) arrive at
    // once after the cooldown. One fetch, and every valid token is accepted.
    jwks.publish(&[&old, &new]);
    h.clock.advance(Duration::from_secs(31));
    let tokens: Vec<String> = (0..60)
        .map(|i| fresh(&h, if i % 3 == 0 { &old } else { &new }))
        .collect();
    let replies = redeem_all(&h, tokens).await;
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status != 200).collect();
    assert!(
        refused.is_empty(),
        "no valid token refused: {:?}",
        refused.first().map(|r| r.text())
    );
    assert_eq!(remote.fetch_count(), 2, "exactly one more fetch");
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn k03_an_idp_outage_within_the_stale_window_rejects_no_valid_token() {
    let signer = key("2026-11");
    let jwks = JwksEndpoint::start(&[&signer]).await;
    let clock = TestClock::at_unix(NOW);
    let remote = Arc::new(
        RemoteJwks::from_jwks_uri(Issuer::new(IDP).unwrap(), &jwks.url, clock.shared()).unwrap(),
    );
    let setup = Setup {
        idp_keys: Some(remote.clone()),
        clock,
        ..Setup::default()
    };
    let h = Arc::new(Harness::start(setup).await);
    assert_eq!(h.redeem(&fresh(&h, &signer)).await.status, 200);

    // The IdP goes down. 11 minutes later the cache is past its max age (10 min) but within
    // the stale-if-error window (1 h): traffic goes on.
    jwks.fail();
    h.clock.advance(Duration::from_secs(11 * 60));
    let tokens: Vec<String> = (0..30).map(|_| fresh(&h, &signer)).collect();
    let replies = redeem_all(&h, tokens).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "no valid token refused"
    );
    assert_eq!(
        remote.fetch_count(),
        2,
        "one failed refresh attempt, single flight"
    );
    for minute in [20, 40, 60] {
        h.clock.set_unix(NOW + minute * 60);
        assert_eq!(
            h.redeem(&fresh(&h, &signer)).await.status,
            200,
            "minute {minute}"
        );
    }

    // Past max age + stale window (70 min after the last good fetch): fail closed.
    h.clock.set_unix(NOW + 71 * 60);
    h.sync_audit();
    h.refused(
        &h.redeem(&fresh(&h, &signer)).await,
        400,
        "invalid_grant",
        "keys_unavailable",
    );

    // The IdP comes back: the next attempt after the cooldown recovers.
    jwks.publish(&[&signer]);
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(h.redeem(&fresh(&h, &signer)).await.status, 200);
}
