//! The remote JWKS source against threats K01–K09, with a wiremock IdP and the
//! injected clock.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{IDP, NOW, RAS, claims, sign_raw_with};
use idjag_core::remote::{FetchError, RemoteJwks, RemoteJwksConfig};
use idjag_core::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn key(kid: &str) -> SigningKey {
    SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new(kid).unwrap())
}

fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// An ID-JAG signed by `key`, issued at the test clock's current time.
fn token_at(key: &SigningKey, now: i64) -> String {
    let header =
        json!({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": key.kid().unwrap().as_str()});
    let mut claims = claims();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 300);
    sign_raw_with(key, &header.to_string(), &claims.to_string())
}

struct Idp {
    server: MockServer,
    clock: TestClock,
    jwks: Arc<RemoteJwks>,
    validator: IdJagValidator,
}

impl Idp {
    async fn start(config: RemoteJwksConfig) -> Self {
        let server = MockServer::start().await;
        let clock = TestClock::at_unix(NOW);
        let jwks = Arc::new(
            RemoteJwks::from_jwks_uri(
                Issuer::new(IDP).unwrap(),
                &format!("{}/jwks", server.uri()),
                clock.shared(),
            )
            .unwrap()
            .with_config(config)
            .unwrap(),
        );
        let validator = IdJagValidator::new(
            TrustedIssuers::new().with(Issuer::new(IDP).unwrap(), jwks.clone()),
            Audience::new(RAS).unwrap(),
            AlgorithmSet::from([Algorithm::Es256]),
            clock.shared(),
        );
        Self {
            server,
            clock,
            jwks,
            validator,
        }
    }

    async fn serve(&self, body: Value) {
        self.server.reset().await;
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&self.server)
            .await;
    }

    async fn serve_response(&self, response: ResponseTemplate) {
        self.server.reset().await;
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    async fn requests(&self) -> usize {
        self.server.received_requests().await.unwrap().len()
    }

    fn token(&self, key: &SigningKey) -> String {
        token_at(key, self.clock.now_unix())
    }

    async fn validate(&self, token: &str) -> Result<Verified<IdJagClaims>, ValidationError> {
        self.validator.validate_async(token).await
    }
}

fn config() -> RemoteJwksConfig {
    let mut config = RemoteJwksConfig::default();
    config.timeout = Duration::from_millis(500);
    config
}

#[tokio::test]
async fn the_first_token_fetches_the_keys_once() {
    let idp = Idp::start(config()).await;
    let k1 = key("k1");
    idp.serve(jwks(&[&k1])).await;
    assert!(idp.validate(&idp.token(&k1)).await.is_ok());
    assert!(idp.validate(&idp.token(&k1)).await.is_ok());
    assert_eq!(idp.requests().await, 1);
    assert_eq!(idp.jwks.fetch_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k01_a_new_kid_causes_exactly_one_refetch_across_1000_concurrent_requests() {
    let idp = Arc::new(Idp::start(config()).await);
    let (k1, k2) = (key("k1"), key("k2"));
    idp.serve(jwks(&[&k1])).await;
    assert!(idp.validate(&idp.token(&k1)).await.is_ok());

    idp.serve(jwks(&[&k1, &k2])).await;
    idp.clock.advance(Duration::from_secs(31));
    let new_token = Arc::new(idp.token(&k2));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (idp, new_token) = (idp.clone(), new_token.clone());
            tokio::spawn(async move { idp.validate(&new_token).await.is_ok() })
        })
        .collect();
    for task in tasks {
        assert!(
            task.await.unwrap(),
            "every request with the new kid is accepted"
        );
    }
    assert_eq!(
        idp.requests().await,
        1,
        "one refetch after the server was reset"
    );
    assert_eq!(idp.jwks.fetch_count(), 2);
}

#[tokio::test]
async fn k02_an_unknown_kid_within_the_cooldown_does_not_refetch() {
    let idp = Idp::start(config()).await;
    let (k1, stranger) = (key("k1"), key("stranger"));
    idp.serve(jwks(&[&k1])).await;
    assert!(idp.validate(&idp.token(&k1)).await.is_ok());
    for _ in 0..5 {
        assert_eq!(
            idp.validate(&idp.token(&stranger)).await.unwrap_err(),
            ValidationError::Key(KeyLookupError::UnknownKid)
        );
    }
    assert_eq!(idp.jwks.fetch_count(), 1);
    idp.clock.advance(Duration::from_secs(31));
    assert_eq!(
        idp.validate(&idp.token(&stranger)).await.unwrap_err(),
        ValidationError::Key(KeyLookupError::UnknownKid)
    );
    assert_eq!(
        idp.jwks.fetch_count(),
        2,
        "one refetch once the cooldown passed"
    );
}

#[tokio::test]
async fn k03_failed_refreshes_keep_the_last_good_set_until_the_stale_limit() {
    let k1 = key("k1");
    let failures = [
        ResponseTemplate::new(500),
        ResponseTemplate::new(200)
            .set_delay(Duration::from_secs(2))
            .set_body_json(jwks(&[&k1])),
        ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
        ResponseTemplate::new(200).set_body_json(json!({"keys": []})),
        ResponseTemplate::new(200).set_body_string("x".repeat(300 * 1024)),
    ];
    for (i, failure) in failures.into_iter().enumerate() {
        let idp = Idp::start(config()).await;
        idp.serve(jwks(&[&k1])).await;
        assert!(idp.validate(&idp.token(&k1)).await.is_ok());

        idp.serve_response(failure).await;
        idp.clock.advance(Duration::from_secs(601)); // past max_age: a refresh is due
        assert!(
            idp.validate(&idp.token(&k1)).await.is_ok(),
            "case {i}: stale keys still serve"
        );
        assert!(
            idp.jwks.last_error().is_some(),
            "case {i}: the refresh failed"
        );
        assert_eq!(idp.jwks.fetch_count(), 2, "case {i}");

        idp.clock.advance(Duration::from_secs(3600)); // past max_age + stale_if_error
        assert_eq!(
            idp.validate(&idp.token(&k1)).await.unwrap_err(),
            ValidationError::Key(KeyLookupError::KeysUnavailable),
            "case {i}: fail closed"
        );
    }
}

#[tokio::test]
async fn k03_failure_reasons_are_reported() {
    let idp = Idp::start(config()).await;
    idp.serve_response(ResponseTemplate::new(503)).await;
    assert_eq!(idp.jwks.refresh_now().await, Err(FetchError::Status(503)));
    idp.clock.advance(Duration::from_secs(31));
    idp.serve_response(ResponseTemplate::new(200).set_body_string("x".repeat(300 * 1024)))
        .await;
    assert_eq!(
        idp.jwks.refresh_now().await,
        Err(FetchError::TooLarge(256 * 1024))
    );
    idp.clock.advance(Duration::from_secs(31));
    idp.serve(json!({"keys": []})).await;
    assert_eq!(idp.jwks.refresh_now().await, Err(FetchError::InvalidKeySet));
}

#[tokio::test]
async fn k04_unusable_keys_are_dropped_and_the_rest_stay_usable() {
    let idp = Idp::start(config()).await;
    let good = key("good");
    let with_private = key("private");
    let mut private_jwk = with_private.public_jwk();
    private_jwk["d"] = json!("AAAA");
    let mut enc = key("enc").public_jwk();
    enc["use"] = json!("enc");
    let mut ops = key("ops").public_jwk();
    ops["key_ops"] = json!(["encrypt"]);
    let dup_a = key("dup");
    let dup_b = key("dup");
    let small_rsa = json!({"kty": "RSA", "kid": "small", "n": jose::base64url::encode([0xc5u8; 128]), "e": "AQAB"});
    let mut e_one = SigningKey::generate(Algorithm::Rs256)
        .unwrap()
        .with_kid(Kid::new("e1").unwrap())
        .public_jwk();
    e_one["e"] = json!("AQ");
    idp.serve(json!({"keys": [
        private_jwk, enc, ops, dup_a.public_jwk(), dup_b.public_jwk(), small_rsa, e_one, good.public_jwk()
    ]}))
    .await;
    assert!(idp.validate(&idp.token(&good)).await.is_ok());
    for unusable in [&with_private, &dup_a, &dup_b] {
        assert_eq!(
            idp.validate(&idp.token(unusable)).await.unwrap_err(),
            ValidationError::Key(KeyLookupError::UnknownKid)
        );
    }
}

#[test]
fn k04_the_import_report_names_each_refused_key() {
    let good = key("good");
    let mut enc = key("enc").public_jwk();
    enc["use"] = json!("enc");
    let document = json!({"keys": [enc, {"kty": "oct", "k": "AAAA"}, good.public_jwk(), {"kty": "EC", "crv": "P-521"}]});
    let import = KeySet::from_jwks_json(document.to_string().as_bytes()).unwrap();
    assert_eq!(import.keys.len(), 1);
    let reasons: Vec<_> = import
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (0, KeyError::WrongUse),
            (1, KeyError::UnsupportedKeyType),
            (3, KeyError::UnsupportedCurve)
        ]
    );
}

#[tokio::test]
async fn k05_redirects_are_not_followed() {
    let idp = Idp::start(config()).await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&[&key("k1")])))
        .expect(0)
        .mount(&elsewhere)
        .await;
    idp.serve_response(
        ResponseTemplate::new(302).insert_header("location", format!("{}/jwks", elsewhere.uri())),
    )
    .await;
    assert_eq!(idp.jwks.refresh_now().await, Err(FetchError::Status(302)));
    elsewhere.verify().await;
}

#[tokio::test]
async fn k06_metadata_with_another_issuer_is_rejected_and_its_jwks_never_fetched() {
    let server = MockServer::start().await;
    let issuer = Issuer::new(server.uri()).unwrap();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": format!("{}/", server.uri()),
            "jwks_uri": format!("{}/jwks", server.uri()),
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let jwks = RemoteJwks::from_issuer(issuer, TestClock::at_unix(NOW).shared()).unwrap();
    assert_eq!(jwks.refresh_now().await, Err(FetchError::IssuerMismatch));
    server.verify().await;
}

#[tokio::test]
async fn metadata_discovery_finds_the_jwks_of_an_exactly_matching_issuer() {
    let server = MockServer::start().await;
    let k1 = key("k1");
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": server.uri(),
            "jwks_uri": format!("{}/keys", server.uri()),
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/keys"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&[&k1])))
        .expect(1)
        .mount(&server)
        .await;
    let jwks = RemoteJwks::from_issuer(
        Issuer::new(server.uri()).unwrap(),
        TestClock::at_unix(NOW).shared(),
    )
    .unwrap();
    assert_eq!(jwks.refresh_now().await, Ok(()));
    assert!(KeySource::find(&jwks, k1.kid(), Algorithm::Es256).is_ok());
}

#[tokio::test]
async fn k07_a_removed_key_stops_verifying_after_the_cache_max_age() {
    let idp = Idp::start(config()).await;
    let (old, new) = (key("old"), key("new"));
    idp.serve(jwks(&[&old, &new])).await;
    assert!(idp.validate(&idp.token(&old)).await.is_ok());
    idp.serve(jwks(&[&new])).await;
    idp.clock.advance(Duration::from_secs(599));
    assert!(
        idp.validate(&idp.token(&old)).await.is_ok(),
        "cached until max_age"
    );
    idp.clock.advance(Duration::from_secs(2));
    assert_eq!(
        idp.validate(&idp.token(&old)).await.unwrap_err(),
        ValidationError::Key(KeyLookupError::UnknownKid)
    );
    assert!(idp.validate(&idp.token(&new)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k08_reloads_never_overlap_so_an_older_one_cannot_overwrite_a_newer_one() {
    let idp = Arc::new(Idp::start(config()).await);
    let (v1, v2) = (key("v1"), key("v2"));
    idp.serve_response(
        ResponseTemplate::new(200)
            .set_delay(Duration::from_millis(300))
            .set_body_json(jwks(&[&v1])),
    )
    .await;
    let slow = {
        let idp = idp.clone();
        tokio::spawn(async move { idp.jwks.refresh_now().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    idp.serve(jwks(&[&v2])).await; // the IdP publishes a newer set meanwhile
    let concurrent = idp.jwks.refresh_now().await;
    assert_eq!(slow.await.unwrap(), Ok(()));
    assert_eq!(
        concurrent,
        Ok(()),
        "the concurrent refresh joined the one in flight"
    );
    assert_eq!(idp.jwks.fetch_count(), 1);
    // The next refresh, after the cooldown, moves forward to the newer set and nothing moves it back.
    idp.clock.advance(Duration::from_secs(31));
    assert_eq!(idp.jwks.refresh_now().await, Ok(()));
    assert!(KeySource::find(idp.jwks.as_ref(), v2.kid(), Algorithm::Es256).is_ok());
    assert_eq!(
        KeySource::find(idp.jwks.as_ref(), v1.kid(), Algorithm::Es256)
            .unwrap_err()
            .error,
        KeyLookupError::UnknownKid
    );
}

#[tokio::test]
async fn k09_a_key_published_just_before_signing_is_picked_up() {
    let idp = Idp::start(config()).await;
    let (current, next) = (key("current"), key("next"));
    idp.serve(jwks(&[&current])).await;
    assert!(idp.validate(&idp.token(&current)).await.is_ok());
    idp.clock.advance(Duration::from_secs(120)); // well inside max_age
    idp.serve(jwks(&[&current, &next])).await; // the IdP rotates and signs at once
    assert!(idp.validate(&idp.token(&next)).await.is_ok());
    assert_eq!(idp.jwks.fetch_count(), 2);
}

#[tokio::test]
async fn v13_jku_and_x5u_in_a_token_are_never_fetched() {
    let idp = Idp::start(config()).await;
    let attacker = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&attacker)
        .await;
    let k1 = key("k1");
    idp.serve(jwks(&[&k1])).await;
    let evil = key("evil");
    for member in ["jku", "x5u"] {
        let header = json!({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": "evil", member: format!("{}/keys", attacker.uri())});
        let token = sign_raw_with(&evil, &header.to_string(), &claims().to_string());
        assert_eq!(
            idp.validate(&token).await.unwrap_err(),
            ValidationError::Key(KeyLookupError::UnknownKid)
        );
    }
    attacker.verify().await;
}

#[test]
fn plain_http_is_refused_except_on_loopback() {
    let clock = TestClock::at_unix(NOW).shared();
    let issuer = Issuer::new(IDP).unwrap();
    assert_eq!(
        RemoteJwks::from_jwks_uri(issuer.clone(), "http://idp.example/jwks", clock.clone())
            .unwrap_err(),
        FetchError::Endpoint(endpoint::EndpointError::NotHttps)
    );
    assert!(RemoteJwks::from_jwks_uri(issuer, "http://127.0.0.1:9/jwks", clock).is_ok());
}
