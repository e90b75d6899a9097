//! Requesting-app threats not covered elsewhere: threat C03 (DPoP downgrade) and threat C06 (no
//! secret in `Debug`; the log capture is its own test binary, `tests/logging.rs`). Threat C01 is in
//! `wire`, threat C02 in `leg1`, threat C04 in `discovery`, threat C05 in `provider`. Threat C07
//! (the MCP conformance scenario) runs with idjag-mcp's conformance client.

use std::sync::Arc;

use idjag_client::auth::PrivateKeyJwt;
use idjag_client::dpop::DpopKey;
use idjag_client::*;
use idjag_core::jose::base64url;
use idjag_core::{
    AccessToken, Algorithm, ClientId, ClientSecret, Confirmation, OAuthErrorCode,
    OAuthErrorResponse, RefreshToken, SigningKey, VerifyingKey,
};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::support::*;

fn decode(segment: &str) -> Value {
    serde_json::from_slice(&base64url::decode(segment).unwrap()).unwrap()
}

/// Checks a DPoP proof's signature with the key in its own header and returns (header, claims).
fn open_proof(proof: &str) -> (Value, Value) {
    let parts: Vec<_> = proof.split('.').collect();
    assert_eq!(parts.len(), 3);
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    let key = VerifyingKey::from_jwk(&header["jwk"]).unwrap();
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    assert!(key.verify(
        signing_input.as_bytes(),
        &base64url::decode(parts[2]).unwrap()
    ));
    (header, claims)
}

#[tokio::test]
async fn c03_dpop_requested_but_the_id_jag_lacks_cnf_jkt_is_a_downgrade() {
    let w = World::new().await;
    w.mount_happy_path().await; // the IdP ignores the proof and issues an unbound ID-JAG
    let client = w.client().with_dpop(dpop_key(&w));
    let error = client
        .access_token(&w.subject(), &w.request())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::MalformedResponse {
            stage: Stage::IdentityProvider,
            problem: ResponseProblem::IdJag(IdJagProblem::ConfirmationMissing)
        }
    ));
    assert_eq!(w.ras_requests().await.len(), 0);
}

#[tokio::test]
async fn c03_cnf_jkt_of_another_key_is_refused() {
    let w = World::new().await;
    let mut claims = w.claims();
    claims.cnf = Some(Confirmation::jkt(dpop_key(&w).thumbprint()));
    w.mount_idp(ok(exchange_body(&w.sign(&claims)))).await;
    w.mount_ras(ok(redeem_body("at-1"))).await;
    let error = w
        .client()
        .with_dpop(dpop_key(&w))
        .access_token(&w.subject(), &w.request())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::MalformedResponse {
            problem: ResponseProblem::IdJag(IdJagProblem::ConfirmationMismatch),
            ..
        }
    ));
    assert_eq!(w.ras_requests().await.len(), 0);
}

#[tokio::test]
async fn c03_a_bound_id_jag_is_redeemed_with_proofs_on_both_legs() {
    let w = World::new().await;
    let key = dpop_key(&w);
    let mut claims = w.claims();
    claims.cnf = Some(Confirmation::jkt(key.thumbprint()));
    w.mount_idp(ok(exchange_body(&w.sign(&claims)))).await;
    w.mount_ras(ok(
        json!({"access_token": "at-1", "token_type": "DPoP", "expires_in": 300}),
    ))
    .await;
    let client = w.client().with_dpop(key.clone());
    let grant = client
        .access_token(&w.subject(), &w.request())
        .await
        .unwrap();
    assert_eq!(grant.token_type(), TokenType::Dpop);
    assert_eq!(
        grant.authorization_header().unwrap().to_str().unwrap(),
        "DPoP at-1"
    );

    for (request, endpoint) in [
        (&w.idp_requests().await[0], w.idp_token_endpoint()),
        (&w.ras_requests().await[0], w.ras_token_endpoint()),
    ] {
        let (header, proof) = open_proof(header(request, "dpop").expect("a DPoP header"));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(
            header["jwk"].get("d").is_none(),
            "no private key in the proof"
        );
        assert_eq!(proof["htm"], "POST");
        assert_eq!(proof["htu"], endpoint.as_str());
        assert_eq!(proof["iat"], T0);
        assert!(proof["jti"].as_str().is_some_and(|j| j.len() >= 22));
        assert!(proof.get("ath").is_none());
    }

    // A bound ID-JAG is never handed to a client without the key.
    let issued = client.exchange(&w.subject(), &w.request()).await.unwrap();
    for other in [w.client(), w.client().with_dpop(dpop_key(&w))] {
        let error = other.redeem(&issued, &w.request()).await.unwrap_err();
        assert!(matches!(
            error,
            ClientError::InvalidInput(InputError::DpopKeyMissing)
        ));
    }
}

#[tokio::test]
async fn dpop_nonce_challenges_are_answered_once() {
    let w = World::new().await;
    let key = dpop_key(&w);
    let mut claims = w.claims();
    claims.cnf = Some(Confirmation::jkt(key.thumbprint()));
    let id_jag = w.sign(&claims);
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = calls.clone();
    w.mount_idp(ResponseTemplate::new(200)).await;
    w.idp.reset().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(move |_: &wiremock::Request| {
            if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                oauth_error(400, json!({"error": "use_dpop_nonce"}))
                    .insert_header("DPoP-Nonce", "n-1")
            } else {
                ok(exchange_body(&id_jag))
            }
        })
        .mount(&w.idp)
        .await;
    let client = w.client().with_dpop(key.clone());
    client.exchange(&w.subject(), &w.request()).await.unwrap();
    let requests = w.idp_requests().await;
    assert_eq!(requests.len(), 2);
    assert!(
        open_proof(header(&requests[0], "dpop").unwrap())
            .1
            .get("nonce")
            .is_none()
    );
    assert_eq!(
        open_proof(header(&requests[1], "dpop").unwrap()).1["nonce"],
        "n-1"
    );

    // A server that keeps asking gets one retry, then the error.
    w.idp.reset().await;
    w.mount_idp(
        oauth_error(400, json!({"error": "use_dpop_nonce"})).insert_header("DPoP-Nonce", "n-2"),
    )
    .await;
    let error = client
        .exchange(&w.subject(), &w.request())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Rejected { error, .. } if error.error.as_str() == "use_dpop_nonce")
    );
    assert_eq!(w.idp_requests().await.len(), 2);
}

#[test]
fn dpop_proofs_for_the_resource_carry_ath() {
    let clock = idjag_core::TestClock::at_unix(T0);
    let key = DpopKey::new(
        SigningKey::generate(Algorithm::EdDsa).unwrap(),
        clock.shared(),
    );
    let url = url::Url::parse("https://mcp.example/mcp?x=1#f").unwrap();
    let proof = key
        .proof(
            &::http::Method::GET,
            &url,
            Some(&AccessToken::new("at-1")),
            None,
        )
        .unwrap();
    let (header, claims) = open_proof(proof.secret());
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["htu"], "https://mcp.example/mcp");
    assert_eq!(claims["htm"], "GET");
    // base64url(SHA-256("at-1"))
    assert_eq!(claims["ath"], "R8PYaIQdcYEdkSc9TeGyiUqSAedmCQuOQImPRh1E3HI");
    assert_eq!(
        idjag_core::VerifyingKey::from_jwk(&header["jwk"])
            .unwrap()
            .thumbprint(),
        key.thumbprint()
    );
}

#[tokio::test]
async fn c06_debug_of_clients_configs_tokens_and_errors_is_redacted() {
    let w = World::new().await;
    w.mount_idp(ok(exchange_body(&w.id_jag()))).await;
    w.mount_ras(ok(redeem_body("at-s3cret-1"))).await;
    let signer = PrivateKeyJwt::new(
        SigningKey::generate(Algorithm::Es256).unwrap(),
        w.clock.shared(),
    );
    let post =
        ClientCredentials::secret_post(ClientId::new("p").unwrap(), ClientSecret::new(RAS_SECRET))
            .unwrap();
    let client = w.client().with_dpop(dpop_key(&w));
    let subject = w
        .subject()
        .with_refresh_token(RefreshToken::new("rt-s3cret"));
    let issued = w
        .client()
        .exchange(&w.subject(), &w.request())
        .await
        .unwrap();
    let grant = w.client().redeem(&issued, &w.request()).await.unwrap();
    let provider = TokenProvider::new(w.client());
    let denied = ClientError::PolicyDenied {
        stage: Stage::IdentityProvider,
        status: 400,
        code: OAuthErrorCode::AccessDenied,
        error: Box::new(OAuthErrorResponse::new(OAuthErrorCode::AccessDenied)),
    };

    let texts = [
        format!("{:?}", World::idp_credentials()),
        format!("{:?}", World::ras_credentials()),
        format!("{post:?}"),
        format!(
            "{:?}",
            ClientCredentials::private_key_jwt(ClientId::new("k").unwrap(), signer)
        ),
        format!("{client:?}"),
        format!("{:?}", w.request()),
        format!("{subject:?}"),
        format!("{issued:?}"),
        format!("{grant:?}"),
        format!("{provider:?}"),
        format!("{denied:?} {denied}"),
        format!("{:?}", CacheKey::new(&client, &subject, &w.request())),
    ];
    for text in &texts {
        assert_no_secret(
            text,
            &[w.id_token.secret(), issued.id_jag().secret(), "-----BEGIN"],
        );
        assert!(!text.contains("\"d\""), "private key material in {text}");
    }
    assert!(
        texts[0].contains("SecretBasic(ClientSecret([redacted]))"),
        "{}",
        texts[0]
    );
    assert!(texts[8].contains("AccessToken([redacted])"), "{}", texts[8]);
}
