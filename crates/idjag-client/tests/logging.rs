//! Threat C06: a full flow, logged at `TRACE` level by every crate, shows no token
//! or secret (requirements EMA-13, EMA-16).
//!
//! Its own binary: it reads idjag-test-support's process-wide capture whole (every event of
//! every thread, the HTTP client's included), which in the shared `api` binary would mix in the
//! events of tests running beside it.

#[allow(dead_code, unreachable_pub, unused_imports)]
#[path = "api/support.rs"]
mod support;

use idjag_client::auth::PrivateKeyJwt;
use idjag_client::*;
use idjag_core::{Algorithm, ClientId, Confirmation, RefreshToken, SigningKey};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn c06_a_full_flow_at_trace_level_logs_no_secret() {
    // The only test of this binary, so the global capture sees every event of the flow.
    idjag_test_support::logs::install();

    let w = World::new().await;
    let key = dpop_key(&w);
    let mut claims = w.claims();
    claims.cnf = Some(Confirmation::jkt(key.thumbprint()));
    let id_jag = w.sign(&claims);
    w.mount_idp(ok(exchange_body(&id_jag))).await;
    w.mount_ras(ok(
        json!({"access_token": "at-s3cret-1", "token_type": "DPoP", "expires_in": 300}),
    ))
    .await;
    let signer = PrivateKeyJwt::new(
        SigningKey::generate(Algorithm::Es256).unwrap(),
        w.clock.shared(),
    );
    let mut claims_pk = claims.clone();
    claims_pk.client_id = ClientId::new("agent-42").unwrap();
    let request = w.request_with(ClientCredentials::private_key_jwt(
        ClientId::new("agent-42").unwrap(),
        signer,
    ));
    let provider = TokenProvider::new(w.client().with_dpop(key));
    let subject = w
        .subject()
        .with_refresh_token(RefreshToken::new("rt-s3cret"));

    // Leg 2 with private_key_jwt fails on client_id; then a good run; then failures.
    let _ = provider.access_token(&subject, &request).await;
    provider.access_token(&subject, &w.request()).await.unwrap();
    w.ras.reset().await;
    w.mount_ras(oauth_error(
        400,
        json!({"error": "invalid_grant", "error_description": "nope"}),
    ))
    .await;
    provider.clear();
    let _ = provider.access_token(&subject, &w.request()).await;
    w.idp.reset().await;
    w.mount_idp(oauth_error(400, json!({"error": "access_denied"})))
        .await;
    let _ = provider.access_token(&subject, &w.request()).await;

    let logs = idjag_test_support::logs::text();
    for expected in [
        "token request",
        "ID-JAG issued",
        "access token issued",
        "token request refused",
        "jti_sha256",
    ] {
        assert!(
            logs.contains(expected),
            "missing {expected:?} in logs:\n{logs}"
        );
    }
    let mut sent: Vec<String> = vec![w.id_token.secret().to_owned(), id_jag.clone()];
    for r in w
        .idp_requests()
        .await
        .iter()
        .chain(w.ras_requests().await.iter())
    {
        if let Some(proof) = header(r, "dpop") {
            sent.push(proof.to_owned());
        }
        for (name, value) in form(r) {
            if name == "client_assertion" {
                sent.push(value);
            }
        }
    }
    let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
    assert_no_secret(&logs, &sent);
    assert!(
        !logs.contains("aWRwLWNsaWVudDppZHAtczNjcmV0"),
        "Basic credentials in logs"
    );
}
