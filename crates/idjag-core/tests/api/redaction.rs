//! No secret reaches `Debug` (threats C06, X20).

use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use idjag_core::crypto::{EcCurve, PrivateKeyMaterial, RsaPrivateComponents};
use idjag_core::server::{
    ClientAuthenticator, FormBody, InMemoryReplayCache, PresentedCredentials, SecretHash,
    StaticClientRegistry,
};
use idjag_core::*;

const SECRET: &str = "TOP-SECRET-VALUE-0xC0FFEE";

fn assert_redacted(label: &str, debug: String) {
    assert!(!debug.contains(SECRET), "{label} leaked: {debug}");
    assert!(
        !debug.contains("VE9QLVNFQ1JFVC1WQUxVRS0weEMwRkZFRQ"),
        "{label} leaked base64: {debug}"
    );
}

#[test]
fn every_secret_bearing_type_redacts_its_debug_output() {
    let bytes = SecretBytes::new(SECRET.as_bytes());
    assert_redacted("ClientSecret", format!("{:?}", ClientSecret::new(SECRET)));
    assert_redacted("IdJag", format!("{:?}", IdJag::new(SECRET)));
    assert_redacted("AccessToken", format!("{:?}", AccessToken::new(SECRET)));
    assert_redacted("RefreshToken", format!("{:?}", RefreshToken::new(SECRET)));
    assert_redacted("IdToken", format!("{:?}", IdToken::new(SECRET)));
    assert_redacted("SubjectToken", format!("{:?}", SubjectToken::new(SECRET)));
    assert_redacted(
        "ClientAssertion",
        format!("{:?}", ClientAssertion::new(SECRET)),
    );
    assert_redacted("CompactJwt", format!("{:?}", CompactJwt::new(SECRET)));
    assert_redacted("SecretBytes", format!("{bytes:?}"));
    assert_eq!(
        format!("{:?}", ClientSecret::new(SECRET)),
        "ClientSecret([redacted])"
    );

    let private = [
        PrivateKeyMaterial::Pkcs8(bytes.clone()),
        PrivateKeyMaterial::Ec {
            curve: EcCurve::P256,
            d: bytes.clone(),
            x: vec![],
            y: vec![],
        },
        PrivateKeyMaterial::Ed25519 {
            seed: bytes.clone(),
            x: vec![],
        },
        PrivateKeyMaterial::Rsa(Box::new(RsaPrivateComponents {
            n: vec![],
            e: vec![],
            d: bytes.clone(),
            p: bytes.clone(),
            q: bytes.clone(),
            dp: bytes.clone(),
            dq: bytes.clone(),
            qi: bytes.clone(),
        })),
    ];
    for material in private {
        assert_redacted("PrivateKeyMaterial", format!("{material:?}"));
    }
    assert_redacted(
        "SecretHash",
        format!("{:?}", SecretHash::of(&ClientSecret::new(SECRET))),
    );
    assert_redacted(
        "FormBody",
        format!(
            "{:?}",
            FormBody::parse(format!("client_secret={SECRET}&subject_token={SECRET}").as_bytes())
                .unwrap()
        ),
    );

    let response = TokenResponse::new(AccessToken::new(SECRET), "Bearer");
    assert_redacted("TokenResponse", format!("{response:?}"));
}

#[test]
fn signing_keys_never_print_key_material() {
    for alg in Algorithm::ALL {
        let backend = crypto::default_backend();
        let material = backend.generate(alg).unwrap();
        let PrivateKeyMaterial::Pkcs8(der) = &material else {
            panic!("generated keys are PKCS#8")
        };
        let key = SigningKey::from_material_with(alg, None, &material, backend).unwrap();
        let debug = format!("{key:?} {material:?}");
        let hex: String = der.secret().iter().map(|b| format!("{b:02x}")).collect();
        let tail = &der.secret()[der.secret().len() - 16..];
        assert!(!debug.contains(&hex[hex.len() - 32..]), "{debug}");
        assert!(!debug.contains(&jose::base64url::encode(tail)), "{debug}");
        assert!(!debug.contains(&format!("{tail:?}")[1..20]), "{debug}");
        assert_eq!(
            format!("{key:?}"),
            format!(
                "SigningKey {{ alg: {alg:?}, kid: None, backend: \"{}\", .. }}",
                backend.name()
            )
        );
    }
}

#[tokio::test]
async fn credentials_and_authentication_errors_never_print_secrets() {
    let mut headers = HeaderMap::new();
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("client:{SECRET}"))
    );
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&basic).unwrap());
    let form = FormBody::parse(b"grant_type=x").unwrap();
    let credentials = PresentedCredentials::from_request(&headers, &form).unwrap();
    assert!(matches!(credentials, PresentedCredentials::Basic { .. }));
    assert_redacted("PresentedCredentials", format!("{credentials:?}"));
    let clock = TestClock::at_unix(0);
    let auth = ClientAuthenticator::new(
        Arc::new(StaticClientRegistry::new()),
        Issuer::new("https://as.example").unwrap(),
        clock.shared(),
        Arc::new(InMemoryReplayCache::new(10, clock.shared())),
    );
    let err = auth.authenticate(&headers, &form).await.unwrap_err();
    assert_redacted("ClientAuthError", format!("{err:?} {err}"));
    let assertion_form = FormBody::parse(
        format!("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={SECRET}.x.y").as_bytes(),
    )
    .unwrap();
    let err = auth
        .authenticate(&HeaderMap::new(), &assertion_form)
        .await
        .unwrap_err();
    assert_redacted("ClientAuthError", format!("{err:?} {err}"));
}
