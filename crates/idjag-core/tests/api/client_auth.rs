//! Client authentication at a token endpoint (threats X01, X02; requirements JB-02, TX-21).

use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use idjag_core::server::{
    ClientAuthErrorKind, ClientAuthMethod, ClientAuthenticator, FormBody, InMemoryReplayCache,
    RegisteredClient, StaticClientRegistry,
};
use idjag_core::*;

const ISSUER: &str = "https://idp.example";
const NOW: i64 = 1_700_000_000;

struct Fixture {
    auth: ClientAuthenticator,
    key: SigningKey,
}

fn fixture() -> Fixture {
    let clock = TestClock::at_unix(NOW);
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let keys = KeySet::new([key.verifying_key().unwrap()]).unwrap();
    let registry = StaticClientRegistry::new()
        .with(RegisteredClient::with_secret(
            ClientId::new("gw client").unwrap(),
            &ClientSecret::new("s3:cr3t"),
        ))
        .with(RegisteredClient::with_private_key_jwt(
            ClientId::new("jwt-client").unwrap(),
            Arc::new(keys),
        ))
        .with(RegisteredClient::public(
            ClientId::new("public-client").unwrap(),
        ));
    let auth = ClientAuthenticator::new(
        Arc::new(registry),
        Issuer::new(ISSUER).unwrap(),
        clock.shared(),
        Arc::new(InMemoryReplayCache::new(1000, clock.shared())),
    );
    Fixture { auth, key }
}

fn basic(user: &str, pass: &str) -> HeaderMap {
    let value = idjag_test_support::form::basic(user, pass);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
    headers
}

fn form(body: &str) -> FormBody {
    FormBody::parse(body.as_bytes()).unwrap()
}

fn assertion(key: &SigningKey, aud: serde_json::Value, jti: &str) -> String {
    let claims = serde_json::json!({
        "iss": "jwt-client", "sub": "jwt-client", "aud": aud, "jti": jti,
        "iat": NOW, "exp": NOW + 60,
    });
    key.sign_jwt(None, &claims).unwrap().secret().to_owned()
}

fn assertion_body(token: &str) -> String {
    let assertion_type: String =
        url::form_urlencoded::byte_serialize(wire::CLIENT_ASSERTION_TYPE_JWT_BEARER.as_bytes())
            .collect();
    format!("client_assertion_type={assertion_type}&client_assertion={token}")
}

fn assertion_form(token: &str) -> FormBody {
    form(&assertion_body(token))
}

#[tokio::test]
async fn basic_credentials_are_form_urldecoded_after_base64() {
    let f = fixture();
    let headers = basic("gw client", "s3:cr3t");
    // The exact header of the RFC 6749 §2.3.1 encoding of id `gw client`, secret `s3:cr3t`.
    assert_eq!(headers[AUTHORIZATION], "Basic Z3crY2xpZW50OnMzJTNBY3IzdA==");
    let client = f
        .auth
        .authenticate(&headers, &form("grant_type=x"))
        .await
        .unwrap();
    assert_eq!(client.client_id().as_str(), "gw client");
    assert_eq!(client.method(), ClientAuthMethod::ClientSecretBasic);
}

#[tokio::test]
async fn x01_wrong_secret_missing_auth_and_public_clients_are_invalid_client() {
    let f = fixture();
    let err = f
        .auth
        .authenticate(&basic("gw client", "nope"), &form(""))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::WrongSecret);
    assert_eq!(err.oauth_error(), OAuthErrorCode::InvalidClient);
    assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(
        err.www_authenticate(ISSUER).unwrap(),
        r#"Basic realm="https://idp.example", charset="UTF-8""#
    );

    let err = f
        .auth
        .authenticate(&HeaderMap::new(), &form("grant_type=x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::Missing);
    assert_eq!(err.www_authenticate(ISSUER), None);

    let err = f
        .auth
        .authenticate(&HeaderMap::new(), &form("client_id=public-client"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::PublicClient);
    assert_eq!(err.oauth_error(), OAuthErrorCode::InvalidClient);

    let err = f
        .auth
        .authenticate(&HeaderMap::new(), &form("client_id=nobody&client_secret=x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::UnknownClient);
}

#[tokio::test]
async fn x01_two_methods_in_one_request_are_invalid_request() {
    let f = fixture();
    let err = f
        .auth
        .authenticate(
            &basic("gw client", "s3:cr3t"),
            &form("client_id=gw+client&client_secret=s3%3Acr3t"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::MultipleMethods);
    assert_eq!(err.oauth_error(), OAuthErrorCode::InvalidRequest);

    let token = assertion(&f.key, serde_json::json!(ISSUER), "j-multi");
    let mut body = format!("client_assertion={token}&client_assertion_type=x");
    body.push_str("&client_secret=s");
    let err = f
        .auth
        .authenticate(&HeaderMap::new(), &form(&body))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::MultipleMethods);

    let err = f
        .auth
        .authenticate(&basic("gw client", "s3:cr3t"), &assertion_form(&token))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::MultipleMethods);
}

#[tokio::test]
async fn basic_and_body_client_id_must_agree() {
    let f = fixture();
    let err = f
        .auth
        .authenticate(&basic("gw client", "s3:cr3t"), &form("client_id=other"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::Malformed);
}

#[tokio::test]
async fn private_key_jwt_is_accepted_once() {
    let f = fixture();
    let token = assertion(&f.key, serde_json::json!(ISSUER), "j-1");
    let client = f
        .auth
        .authenticate(&HeaderMap::new(), &assertion_form(&token))
        .await
        .unwrap();
    assert_eq!(client.client_id().as_str(), "jwt-client");
    assert_eq!(client.method(), ClientAuthMethod::PrivateKeyJwt);
    let err = f
        .auth
        .authenticate(&HeaderMap::new(), &assertion_form(&token))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::AssertionReplayed);
    assert_eq!(err.oauth_error(), OAuthErrorCode::InvalidClient);
}

#[tokio::test]
async fn x02_assertion_audience_must_be_the_issuer_alone() {
    let f = fixture();
    for (aud, jti) in [
        (
            serde_json::json!([ISSUER, "https://attacker.example"]),
            "j-a",
        ),
        (
            serde_json::json!(["https://attacker.example", ISSUER]),
            "j-b",
        ),
        (serde_json::json!("https://idp.example/oauth2/token"), "j-c"),
        (serde_json::json!("https://idp.example/"), "j-d"),
    ] {
        let token = assertion(&f.key, aud.clone(), jti);
        let err = f
            .auth
            .authenticate(&HeaderMap::new(), &assertion_form(&token))
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind, ClientAuthErrorKind::Assertion(_)),
            "{aud}: {err:?}"
        );
        assert_eq!(err.oauth_error(), OAuthErrorCode::InvalidClient);
    }
}

#[tokio::test]
async fn an_assertion_signed_by_another_key_or_for_another_client_fails() {
    let f = fixture();
    let other = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(f.key.kid().unwrap().clone());
    let token = assertion(&other, serde_json::json!(ISSUER), "j-2");
    let err = f
        .auth
        .authenticate(&HeaderMap::new(), &assertion_form(&token))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ClientAuthErrorKind::Assertion(ValidationError::BadSignature)
    );

    // Naming a secret client in the body does not let an assertion through.
    let token = assertion(&f.key, serde_json::json!(ISSUER), "j-3");
    let body = form(&format!("client_id=gw+client&{}", assertion_body(&token)));
    let err = f
        .auth
        .authenticate(&HeaderMap::new(), &body)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::MethodNotAllowed);
}

#[tokio::test]
async fn a_wrong_assertion_type_is_malformed() {
    let f = fixture();
    let token = assertion(&f.key, serde_json::json!(ISSUER), "j-4");
    let err = f
        .auth
        .authenticate(
            &HeaderMap::new(),
            &form(&format!(
                "client_assertion={token}&client_assertion_type=jwt"
            )),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ClientAuthErrorKind::Malformed);
}
