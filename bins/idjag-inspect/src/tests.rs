//! Unit tests: each recognisable catalogue case, and the verdicts of valid tokens.

use idjag_core::{Algorithm, NumericDate, SigningKey, TestClock};
use serde_json::json;

use super::*;

const NOW: i64 = 1_800_000_000;

fn new_key() -> SigningKey {
    SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid()
}

fn id_jag_claims() -> Value {
    json!({
        "iss": "https://idp.example", "sub": "alice", "aud": "https://as.example",
        "client_id": "agent", "jti": "j1", "iat": NOW - 10, "exp": NOW + 290,
        "resource": "https://mcp.example/mcp", "scope": "notes.read"
    })
}

fn sign(key: &SigningKey, typ: Option<&str>, claims: &Value) -> String {
    key.sign_jwt(typ, claims).unwrap().secret().to_owned()
}

fn unsigned(header: &str, claims: &str) -> String {
    format!(
        "{}.{}.",
        base64url::encode(header),
        base64url::encode(claims)
    )
}

fn jwks(key: &SigningKey) -> Jwks {
    let set = json!({ "keys": [key.public_jwk()] });
    Jwks::Document(set.to_string().into_bytes())
}

async fn run(token: &str, jwks: Option<&Jwks>) -> Report {
    inspect(token, jwks, TestClock::at_unix(NOW).shared()).await
}

fn failed(report: &Report) -> Vec<&'static str> {
    report
        .checks
        .iter()
        .filter(|c| c.outcome == Verdict::Fail)
        .map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn a_valid_id_jag_passes_every_check_and_verifies() {
    let key = new_key();
    let token = sign(&key, Some(wire::TYP_ID_JAG), &id_jag_claims());
    let report = run(&token, Some(&jwks(&key))).await;
    assert_eq!(report.kind, InspectedKind::IdJag);
    assert!(
        report.valid && report.signature_verified,
        "{}",
        report.to_text()
    );
    let text = report.to_text();
    assert!(text.contains("VALID: every check passed"));
    for id in [
        "IDJAG-01", "IDJAG-02", "IDJAG-03", "IDJAG-06", "IDJAG-08", "JWT-01",
    ] {
        assert!(text.contains(id), "{id}");
    }
    // Never the token or its signature.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!text.contains(&token) && !text.contains(signature));
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(signature));
}

#[tokio::test]
async fn valid_access_and_id_tokens_are_recognised() {
    let key = new_key();
    let at = json!({
        "iss": "https://idp.example", "sub": "alice", "aud": "https://gw.example/mcp/notes",
        "client_id": "agent", "jti": "a1", "iat": NOW, "exp": NOW + 300, "scope": "x"
    });
    let report = run(&sign(&key, Some(wire::TYP_ACCESS_TOKEN), &at), None).await;
    assert_eq!(report.kind, InspectedKind::AccessToken);
    assert!(report.valid, "{}", report.to_text());
    assert!(!report.signature_verified);
    assert!(report.to_text().contains("the signature was not verified"));
    let id = json!({
        "iss": "https://idp.example", "sub": "alice", "aud": "mcp-gateway",
        "iat": NOW, "exp": NOW + 300, "nonce": "n"
    });
    let report = run(&sign(&key, None, &id), Some(&jwks(&key))).await;
    assert_eq!(report.kind, InspectedKind::IdToken);
    assert!(
        report.valid && report.signature_verified,
        "{}",
        report.to_text()
    );
}

#[tokio::test]
async fn each_recognisable_catalogue_case_fails_with_its_rule() {
    let key = new_key();
    let other = new_key();
    let mut two_audiences = id_jag_claims();
    two_audiences["aud"] = json!(["https://as.example", "https://evil.example"]);
    let mut expired = id_jag_claims();
    expired["exp"] = json!(NOW - 600);
    expired["iat"] = json!(NOW - 900);
    let mut no_jti = id_jag_claims();
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut bad_resource = id_jag_claims();
    bad_resource["resource"] = json!("not a uri");
    // The claims changed after signing: the signature no longer matches.
    let good = sign(&key, Some(wire::TYP_ID_JAG), &id_jag_claims());
    let mut forged = id_jag_claims();
    forged["sub"] = json!("mallory");
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64url::encode(forged.to_string()),
        parts[2]
    );
    let cases: Vec<(&str, String, Option<Jwks>, &str)> = vec![
        (
            "alg none",
            unsigned(
                r#"{"alg":"none","typ":"oauth-id-jag+jwt"}"#,
                &id_jag_claims().to_string(),
            ),
            None,
            "JWT-01",
        ),
        (
            "wrong typ (an ID-JAG typed as an access token)",
            sign(&key, Some(wire::TYP_ACCESS_TOKEN), &{
                let mut c = id_jag_claims();
                c.as_object_mut().unwrap().remove("jti");
                c
            }),
            None,
            "JWT-10",
        ),
        (
            "untyped token with client_id",
            sign(&key, None, &id_jag_claims()),
            None,
            "JWT-10",
        ),
        (
            "aud array of two",
            sign(&key, Some(wire::TYP_ID_JAG), &two_audiences),
            None,
            "IDJAG-06",
        ),
        (
            "expired",
            sign(&key, Some(wire::TYP_ID_JAG), &expired),
            None,
            "IDJAG-17",
        ),
        (
            "missing jti",
            sign(&key, Some(wire::TYP_ID_JAG), &no_jti),
            None,
            "IDJAG-08",
        ),
        (
            "bad resource",
            sign(&key, Some(wire::TYP_ID_JAG), &bad_resource),
            None,
            "IDJAG-09",
        ),
        (
            "duplicate members",
            unsigned(
                r#"{"alg":"ES256","typ":"oauth-id-jag+jwt"}"#,
                r#"{"iss":"https://idp.example","aud":"a","aud":"b"}"#,
            ),
            None,
            "JWT-05",
        ),
        (
            "crit header",
            unsigned(
                r#"{"alg":"ES256","typ":"oauth-id-jag+jwt","crit":["exp"]}"#,
                &id_jag_claims().to_string(),
            ),
            None,
            "JWT-02",
        ),
        (
            "bad signature",
            tampered.clone(),
            Some(jwks(&key)),
            "IDJAG-02",
        ),
        (
            "unknown kid",
            sign(&other, Some(wire::TYP_ID_JAG), &id_jag_claims()),
            Some(jwks(&key)),
            "IDJAG-02",
        ),
        ("not a JWT", "abc.def".to_owned(), None, "JWT-05"),
        ("JWE", "a.b.c.d.e".to_owned(), None, "JWT-05"),
    ];
    for (name, token, jwks, id) in cases {
        let report = run(&token, jwks.as_ref()).await;
        assert!(
            !report.valid || !report.signature_verified && jwks.is_some(),
            "{name}"
        );
        assert!(
            failed(&report).contains(&id),
            "{name}: {:?}\n{}",
            failed(&report),
            report.to_text()
        );
        assert!(report.to_text().contains("INVALID"), "{name}");
    }
}

#[tokio::test]
async fn an_expiry_within_the_leeway_is_a_warning() {
    let key = new_key();
    let mut claims = id_jag_claims();
    claims["exp"] = json!(NOW - 5);
    let report = run(&sign(&key, Some(wire::TYP_ID_JAG), &claims), None).await;
    assert!(report.valid);
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.outcome == Verdict::Warn && c.detail.contains("within"))
    );
    let _ = NumericDate::from_unix(NOW);
}
