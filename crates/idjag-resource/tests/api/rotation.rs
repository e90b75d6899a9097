//! Key rotation under traffic with the shared remote JWKS source (threats K01,
//! K02, K03, K09; requirement EMA-11).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use idjag_core::remote::RemoteJwks;
use idjag_core::*;
use serde_json::json;

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

/// A harness whose IdP keys come from `jwks` through the shared remote JWKS source.
async fn remote_harness(jwks: &JwksEndpoint) -> (Arc<Harness>, Arc<RemoteJwks>) {
    let clock = TestClock::at_unix(NOW);
    let remote = Arc::new(
        RemoteJwks::from_jwks_uri(Issuer::new(IDP).unwrap(), &jwks.url, clock.shared()).unwrap(),
    );
    let setup = Setup {
        idp_keys: Some(remote.clone()),
        clock,
        ..Setup::default()
    };
    (Arc::new(Harness::start(setup).await), remote)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn k01_a_new_kid_is_picked_up_with_exactly_one_fetch_under_traffic() {
    let old = key("2026-10");
    let new = key("2026-11");
    let jwks = JwksEndpoint::start(&[&old]).await;
    let (h, remote) = remote_harness(&jwks).await;

    // Warm-up: the first grant fetches the set once.
    assert!(h.redeem_all(vec![fresh(&h, &old)]).await[0].status == 200);
    assert_eq!(
        (remote.fetch_count(), jwks.hits.load(Ordering::SeqCst)),
        (1, 1)
    );

    // threat K02: the IdP starts signing with a key it has not published yet; within the cooldown
    // an unknown kid causes no fetch and is refused.
    let early = h.redeem(&fresh(&h, &new)).await;
    assert_eq!(early.json["error"], "invalid_grant");
    assert_eq!(remote.fetch_count(), 1);

    // threat K01/K09: the IdP publishes the new key; 60 requests (old and new kid mixed) arrive at
    // once after the cooldown. One fetch, and every valid token is accepted.
    jwks.publish(&[&old, &new]);
    h.clock.advance(Duration::from_secs(31));
    let tokens: Vec<String> = (0..60)
        .map(|i| fresh(&h, if i % 3 == 0 { &old } else { &new }))
        .collect();
    let replies = h.redeem_all(tokens).await;
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
    let (h, remote) = remote_harness(&jwks).await;
    assert_eq!(h.redeem(&fresh(&h, &signer)).await.status, 200);

    // The IdP goes down. 11 minutes later the cache is past its max age (10 min) but within
    // the stale-if-error window (1 h): traffic goes on.
    jwks.fail();
    h.clock.advance(Duration::from_secs(11 * 60));
    let tokens: Vec<String> = (0..30).map(|_| fresh(&h, &signer)).collect();
    let replies = h.redeem_all(tokens).await;
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
    h.invalid_grant(&fresh(&h, &signer), "keys_unavailable")
        .await;

    // The IdP comes back: the next attempt after the cooldown recovers.
    jwks.publish(&[&signer]);
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(h.redeem(&fresh(&h, &signer)).await.status, 200);
}

/// An IdP on loopback with RFC 8414 metadata naming `metadata_issuer` and a JWKS.
async fn idp_with_metadata(
    key: &SigningKey,
    metadata_issuer: Option<&str>,
) -> (String, Arc<AtomicUsize>) {
    let (listener, base) = bind().await;
    let hits = Arc::new(AtomicUsize::new(0));
    let metadata = json!({
        "issuer": metadata_issuer.unwrap_or(&base),
        "jwks_uri": format!("{base}/jwks.json"),
    })
    .to_string();
    let jwks = json!({ "keys": [key.public_jwk()] }).to_string();
    let counter = hits.clone();
    let router = axum::Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            axum::routing::get(move || async move { metadata }),
        )
        .route(
            "/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { jwks }
            }),
        );
    serve(listener, router);
    (base, hits)
}

/// A harness that trusts an IdP found through its metadata, and that IdP.
async fn discovered(metadata_issuer: Option<&str>) -> (Harness, Idp, Arc<AtomicUsize>) {
    let signer = key("disco-1");
    let (idp_base, hits) = idp_with_metadata(&signer, metadata_issuer).await;
    let clock = TestClock::at_unix(NOW);
    let trusted = idjag_resource::TrustedIssuer::remote(
        Issuer::new(idp_base.clone()).unwrap(),
        clock.shared(),
    )
    .unwrap();
    let setup = Setup {
        clock,
        ..Setup::builder(move |b| b.trust(trusted))
    };
    let h = Harness::start(setup).await;
    let idp = Idp {
        issuer: idp_base,
        key: signer,
        ..h.idp.clone()
    };
    (h, idp, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_is_trusted_through_its_metadata_and_jwks() {
    let (h, idp, hits) = discovered(None).await;
    h.grants(&idp.id_jag()).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k06_metadata_naming_another_issuer_is_never_followed() {
    let (h, idp, hits) = discovered(Some("https://evil.example")).await;
    h.invalid_grant(&idp.id_jag(), "keys_unavailable").await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "jwks_uri never fetched");
}
