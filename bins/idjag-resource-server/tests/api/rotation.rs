//! Key rotation at a trusted IdP, as the binary's JWKS cache sees it (threats K01, K02, K07):
//! a new `kid` is fetched once the refetch cooldown allows, an unknown `kid` within the
//! cooldown causes no fetch, and a key the IdP stopped publishing stops verifying once the
//! cache's max age has passed.

use std::time::Duration;

use idjag_core::*;
use serde_json::json;

use crate::support::*;

fn signed(h: &Harness, key: &SigningKey) -> String {
    sign_with(
        key,
        json!({"alg": "ES256", "typ": wire::TYP_ID_JAG, "kid": key.kid().unwrap().as_str()}),
        &h.idp.claims(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k01_k02_k07_a_rotation_at_the_idp_is_picked_up_per_the_cache_rules() {
    let h = Harness::start(Setup {
        jwks_cache: Some("max_age_secs = 4\ncooldown_secs = 3".into()),
        ..Setup::default()
    })
    .await;
    let old = h.idp.key.clone();
    h.grants(&signed(&h, &old)).await;
    assert_eq!(
        h.test_idp.fetches(),
        1,
        "the metadata's jwks_uri fetched once"
    );

    // The IdP publishes a new key beside the old one and signs with it at once.
    let new = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("idp-key-2").unwrap());
    h.test_idp.publish(&[&old, &new]);
    // Within the cooldown, an unknown kid causes no fetch (K02).
    h.invalid_grant(&signed(&h, &new), "unknown_key").await;
    assert_eq!(h.test_idp.fetches(), 1);
    // After it, the first token with the new kid fetches once and passes (K01), and the old
    // key still verifies.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    h.grants(&signed(&h, &new)).await;
    h.grants(&signed(&h, &new)).await;
    h.grants(&signed(&h, &old)).await;
    assert_eq!(h.test_idp.fetches(), 2, "exactly one refetch");

    // The IdP stops publishing the old key: once the cached set is older than its max age (and
    // the cooldown allows a fetch), tokens it signs are refused (K07).
    h.test_idp.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(4200)).await;
    h.invalid_grant(&signed(&h, &old), "unknown_key").await;
    h.grants(&signed(&h, &new)).await;
    assert_eq!(h.test_idp.fetches(), 3);
}
