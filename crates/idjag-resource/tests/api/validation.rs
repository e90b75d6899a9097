//! Threats V01 to V35, each through the HTTP token endpoint on 127.0.0.1:0:
//! status, error code, generic description, no token minted, no replay entry written, one
//! audit event with the reason (see `Harness::refused`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use idjag_core::*;
use idjag_resource::ReplayPolicy;
use serde_json::{Value, json};

use crate::support::*;

fn replace_signature(token: &str, signature: &[u8]) -> String {
    let input = token.rsplit_once('.').unwrap().0;
    format!("{input}.{}", b64(signature))
}

fn signature_of(token: &str) -> Vec<u8> {
    idjag_core::jose::base64url::decode(token.rsplit_once('.').unwrap().1).unwrap()
}

#[tokio::test]
async fn v01_alg_none_in_any_case_with_an_empty_signature_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": wire::TYP_ID_JAG});
        let token = format!(
            "{}.{}.",
            b64(header.to_string()),
            b64(Value::Object(h.idp.claims()).to_string())
        );
        h.invalid_grant(&token, "malformed").await;
        // With a signature segment, `none` is still not an algorithm.
        let token = format!("{token}AAAA");
        h.invalid_grant(&token, "unsupported_alg").await;
    }
}

#[tokio::test]
async fn v02_empty_signature_or_two_segments_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    let valid = h.idp.id_jag();
    let (input, _) = valid.rsplit_once('.').unwrap();
    h.invalid_grant(&format!("{input}."), "malformed").await;
    h.invalid_grant(input, "malformed").await;
}

#[tokio::test]
async fn v03_hs256_keyed_with_the_issuers_public_key_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    let jwk = h.idp.key.public_jwk();
    let crypto::PublicKeyMaterial::Ec { x, y, .. } = h.idp.key.public_material().clone() else {
        unreachable!()
    };
    // SubjectPublicKeyInfo of a P-256 key, DER and PEM.
    let mut der = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    der.push(4);
    der.extend_from_slice(&x);
    der.extend_from_slice(&y);
    use base64::Engine as _;
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    for key in [der.clone(), pem.into_bytes(), jwk.to_string().into_bytes()] {
        let header = json!({"alg": "HS256", "typ": wire::TYP_ID_JAG, "kid": "idp-key-1"});
        let input = format!(
            "{}.{}",
            b64(header.to_string()),
            b64(Value::Object(h.idp.claims()).to_string())
        );
        let token = format!("{input}.{}", b64(hmac_sha256(&key, input.as_bytes())));
        h.invalid_grant(&token, "unsupported_alg").await;
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An IdP key set with an EC P-256 key (`idp-key-1`), an RSA key (`idp-rsa`) and a P-384
/// key (`idp-p384`), and the signing keys.
struct MixedKeys {
    rsa: SigningKey,
    p384: SigningKey,
}

fn mixed_setup() -> (Setup, MixedKeys, Arc<std::sync::Mutex<Option<Idp>>>) {
    let rsa = SigningKey::generate(Algorithm::Rs256)
        .unwrap()
        .with_kid(Kid::new("idp-rsa").unwrap());
    let p384 = SigningKey::generate(Algorithm::Es384)
        .unwrap()
        .with_kid(Kid::new("idp-p384").unwrap());
    let slot = Arc::new(std::sync::Mutex::new(None));
    (Setup::default(), MixedKeys { rsa, p384 }, slot)
}

async fn mixed_harness() -> (Harness, MixedKeys) {
    let (mut setup, keys, _) = mixed_setup();
    // The harness's IdP key is made inside `start`; give it a fixed key set instead, with the
    // harness IdP's key generated here under the same kid.
    let es = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("idp-key-1").unwrap());
    setup.idp_keys = Some(Arc::new(
        KeySet::new([
            es.verifying_key().unwrap(),
            keys.rsa.verifying_key().unwrap(),
            keys.p384.verifying_key().unwrap(),
        ])
        .unwrap(),
    ));
    let mut h = Harness::start(setup).await;
    h.idp.key = es;
    (h, keys)
}

fn sign_with(key: &SigningKey, header: Value, claims: &serde_json::Map<String, Value>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string()),
        b64(Value::Object(claims.clone()).to_string())
    );
    format!("{input}.{}", b64(key.sign(input.as_bytes()).unwrap()))
}

/// Signs the default claims with `key` under a header naming `alg` and `kid`.
fn signed_as(h: &Harness, key: &SigningKey, alg: &str, kid: &str) -> String {
    let header = json!({"alg": alg, "typ": wire::TYP_ID_JAG, "kid": kid});
    sign_with(key, header, &h.idp.claims())
}

#[tokio::test]
async fn v04_rs256_with_an_ec_kid_and_es256_with_an_rsa_kid_are_rejected() {
    let (h, keys) = mixed_harness().await;
    for (key, alg, kid) in [
        (&keys.rsa, "RS256", "idp-key-1"),
        (&h.idp.key, "ES256", "idp-rsa"),
    ] {
        let reply = h.redeem(&signed_as(&h, key, alg, kid)).await;
        h.refused(&reply, 400, "invalid_grant", "unknown_key");
    }
    // The RSA key under its own algorithm works: the set is fine, the pairing was not.
    h.granted(
        &h.redeem(&signed_as(&h, &keys.rsa, "RS256", "idp-rsa"))
            .await,
    );
}

#[tokio::test]
async fn v05_es256_with_a_p384_key_and_es384_with_a_p256_key_are_rejected() {
    let (h, keys) = mixed_harness().await;
    let cases = [
        (&keys.p384, "ES256", "idp-p384", "unknown_key"),
        (&h.idp.key, "ES384", "idp-key-1", "unknown_key"),
        // A P-384 signature under the P-256 key: the wrong length fails as a bad signature.
        (&keys.p384, "ES256", "idp-key-1", "bad_signature"),
    ];
    for (key, alg, kid, reason) in cases {
        let reply = h.redeem(&signed_as(&h, key, alg, kid)).await;
        h.refused(&reply, 400, "invalid_grant", reason);
    }
}

fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut value = if trimmed.is_empty() { vec![0] } else { trimmed };
    if value[0] & 0x80 != 0 {
        value.insert(0, 0);
    }
    let mut out = vec![0x02, value.len() as u8];
    out.extend(value);
    out
}

#[tokio::test]
async fn v06_der_encoded_and_wrong_length_es256_signatures_fail_as_bad_signatures() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    let raw = signature_of(&token);
    let mut body = der_integer(&raw[..32]);
    body.extend(der_integer(&raw[32..]));
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    let mut long = raw.clone();
    long.push(0);
    for signature in [der, raw[..63].to_vec(), long] {
        let forged = replace_signature(&token, &signature);
        h.invalid_grant(&forged, "bad_signature").await;
    }
    // The untouched token is fine.
    h.grants(&token).await;
}

#[tokio::test]
async fn v07_psychic_signatures_with_special_r_and_s_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let mut n_minus_1 = n.clone();
    n_minus_1[31] -= 1;
    let mut one = vec![0u8; 32];
    one[31] = 1;
    let values = [vec![0u8; 32], one, n_minus_1, n];
    let token = h.idp.id_jag();
    for r in &values {
        for s in &values {
            let signature = [r.as_slice(), s.as_slice()].concat();
            let forged = replace_signature(&token, &signature);
            h.invalid_grant(&forged, "bad_signature").await;
        }
    }
}

#[tokio::test]
async fn v09_wrong_typ_values_are_rejected_and_media_type_forms_accepted() {
    let h = Harness::start(Setup::default()).await;
    let with_typ = |typ: Option<Value>| {
        h.idp.with_header(|hd| match typ {
            Some(t) => {
                hd.insert("typ".into(), t);
            }
            None => {
                hd.remove("typ");
            }
        })
    };
    for typ in [
        None,
        Some(json!("JWT")),
        Some(json!("at+jwt")),
        Some(json!("dpop+jwt")),
        Some(json!("oauth-id-jag+jwt ")),
        Some(json!("application/jwt")),
    ] {
        let reply = h.redeem(&with_typ(typ)).await;
        h.refused(&reply, 400, "invalid_grant", "wrong_typ");
    }
    for typ in [json!(1), json!(["oauth-id-jag+jwt"])] {
        let reply = h.redeem(&with_typ(Some(typ))).await;
        h.refused(&reply, 400, "invalid_grant", "bad_header");
    }
    for typ in ["application/oauth-id-jag+jwt", "OAUTH-ID-JAG+JWT"] {
        h.grants(&with_typ(Some(json!(typ)))).await;
    }
}

#[tokio::test]
async fn v10_any_crit_header_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    for crit in [json!(["exp"]), json!(["x-unknown"]), json!([])] {
        let token = h.idp.with_header(|hd| {
            hd.insert("crit".into(), crit);
        });
        h.invalid_grant(&token, "bad_header").await;
    }
}

#[tokio::test]
async fn v11_cty_b64_and_zip_headers_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    for (member, value) in [
        ("cty", json!("JWT")),
        ("cty", json!("text/plain")),
        ("b64", json!(false)),
        ("zip", json!("DEF")),
    ] {
        let token = h.idp.with_header(|hd| {
            hd.insert(member.into(), value);
        });
        h.invalid_grant(&token, "bad_header").await;
    }
}

#[tokio::test]
async fn v12_jwe_and_json_serialisation_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    let jwe_header =
        json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "typ": wire::TYP_ID_JAG, "cty": "JWT"});
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64(jwe_header.to_string()),
        b64([7u8; 256]),
        b64([1u8; 12]),
        b64(h.idp.id_jag()),
        b64([2u8; 16])
    );
    h.invalid_grant(&jwe, "malformed").await;
    let token = h.idp.id_jag();
    let parts: Vec<&str> = token.split('.').collect();
    let json_serialisation =
        json!({"payload": parts[1], "protected": parts[0], "signature": parts[2]}).to_string();
    h.invalid_grant(&json_serialisation, "malformed").await;
}

/// A loopback server that counts every request it gets.
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let (listener, base) = bind().await;
    let router = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { r#"{"keys":[]}"# }
    });
    serve(listener, router);
    (base, hits)
}

#[tokio::test]
async fn v13_embedded_jwk_jku_x5u_and_x5c_are_never_used_or_fetched() {
    let h = Harness::start(Setup::default()).await;
    let (trap, hits) = counting_server().await;
    let attacker = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("attacker").unwrap());
    let cases = [
        ("jwk", attacker.public_jwk(), None, "bad_signature"),
        (
            "jwk",
            attacker.public_jwk(),
            Some("attacker"),
            "unknown_key",
        ),
        (
            "jku",
            json!(format!("{trap}/jwks.json")),
            None,
            "bad_signature",
        ),
        (
            "jku",
            json!("http://169.254.169.254/latest/meta-data/"),
            None,
            "bad_signature",
        ),
        (
            "x5u",
            json!(format!("{trap}/cert.pem")),
            Some("attacker"),
            "unknown_key",
        ),
        (
            "x5c",
            json!([b64([0x30u8, 0x82, 0x01])]),
            None,
            "bad_signature",
        ),
    ];
    for (member, value, kid, reason) in cases {
        let mut header = json!({"alg": "ES256", "typ": wire::TYP_ID_JAG});
        header[member] = value;
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let token = sign_with(&attacker, header, &h.idp.claims());
        h.invalid_grant(&token, reason).await;
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no outbound call");
}

#[tokio::test]
async fn v14_hostile_kids_are_rejected_without_harm() {
    let h = Harness::start(Setup::default()).await;
    let cases = [
        (json!("../../../../dev/null"), "unknown_key"),
        (json!("' OR '1'='1"), "unknown_key"),
        (json!("k".repeat(10 * 1024)), "bad_header"),
        (json!("a\u{0}b"), "bad_header"),
        (json!(42), "bad_header"),
        (Value::Null, "bad_header"),
    ];
    for (kid, reason) in cases {
        let token = h.idp.with_header(|hd| {
            hd.insert("kid".into(), kid);
        });
        h.invalid_grant(&token, reason).await;
    }
}

#[tokio::test]
async fn v15_no_kid_picks_the_only_key_and_refuses_an_ambiguous_set() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.with_header(|hd| {
        hd.remove("kid");
    });
    h.grants(&token).await;

    let second = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("idp-key-2").unwrap());
    let first = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("idp-key-1").unwrap());
    let setup = Setup {
        idp_keys: Some(Arc::new(
            KeySet::new([
                first.verifying_key().unwrap(),
                second.verifying_key().unwrap(),
            ])
            .unwrap(),
        )),
        ..Setup::default()
    };
    let mut h = Harness::start(setup).await;
    h.idp.key = first;
    let token = h.idp.with_header(|hd| {
        hd.remove("kid");
    });
    h.invalid_grant(&token, "unknown_key").await;
    h.grants(&h.idp.id_jag()).await;
}

const GLOBEX: &str = "https://globex.idp.example";

#[tokio::test]
async fn v16_a_kid_of_one_trusted_issuer_never_verifies_for_another() {
    let globex_key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("globex-key").unwrap());
    let globex_keys = Arc::new(KeySet::new([globex_key.verifying_key().unwrap()]).unwrap());
    let h = Harness::start(Setup::builder(move |b| {
        b.trust(idjag_resource::TrustedIssuer::new(
            Issuer::new(GLOBEX).unwrap(),
            globex_keys,
        ))
    }))
    .await;
    // Signed by Acme with Acme's kid, claiming to be Globex.
    let token = h.idp.set(&[("iss", json!(GLOBEX))]);
    h.invalid_grant(&token, "unknown_key").await;
    let globex_claims = h.idp.claims_with(&[("iss", json!(GLOBEX))]);
    let token = h.idp.jws(
        &json!({"alg": "ES256", "typ": wire::TYP_ID_JAG}),
        &Value::Object(globex_claims.clone()),
    );
    h.invalid_grant(&token, "bad_signature").await;
    // Globex's own token is fine.
    let token = sign_with(
        &globex_key,
        json!({"alg": "ES256", "typ": wire::TYP_ID_JAG, "kid": "globex-key"}),
        &globex_claims,
    );
    h.grants(&token).await;
}

#[tokio::test]
async fn v17_untrusted_and_look_alike_issuers_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    for iss in [
        "https://evil.example",
        "https://acme.idp.example/",
        "https://ACME.idp.example",
        "https://acme.idp.example/tenant",
        "https://acme.idp",
        "https://acme.idp.example.evil",
        "http://acme.idp.example",
    ] {
        let token = h.idp.set(&[("iss", json!(iss))]);
        h.invalid_grant(&token, "untrusted_issuer").await;
        let event = h.audit().pop().unwrap();
        assert!(
            !event.fields.contains_key("iss"),
            "no untrusted string in the audit log"
        );
    }
}

#[tokio::test]
async fn v18_an_id_jag_issued_by_this_server_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.set(&[("iss", json!(h.base))]);
    h.invalid_grant(&token, "self_issued").await;
    // The builder refuses to trust itself (see token_endpoint.rs).
}

#[tokio::test]
async fn v19_aud_must_be_exactly_our_issuer_as_a_string_or_one_element_array() {
    let h = Harness::start(Setup::default()).await;
    let with_aud = |aud: Option<Value>| {
        h.idp.with(|c| match aud {
            Some(a) => {
                c.insert("aud".into(), a);
            }
            None => {
                c.remove("aud");
            }
        })
    };
    h.grants(&with_aud(Some(json!(h.base)))).await;
    h.grants(&with_aud(Some(json!([h.base])))).await;
    let other = "https://other-as.example";
    for (aud, reason) in [
        (Some(json!([h.base, other])), "bad_claim"),
        (Some(json!([other, h.base])), "bad_claim"),
        (Some(json!([])), "bad_claim"),
        (None, "bad_claim"),
        (Some(Value::Null), "bad_claim"),
        (Some(json!(h.server.token_endpoint())), "wrong_audience"),
        (Some(json!(format!("{}/", h.base))), "wrong_audience"),
        (Some(json!(h.base.to_uppercase())), "wrong_audience"),
        (Some(json!(other)), "wrong_audience"),
    ] {
        let reply = h.redeem(&with_aud(aud)).await;
        h.refused(&reply, 400, "invalid_grant", reason);
    }
}

#[tokio::test]
async fn v20_client_id_must_equal_the_authenticated_client() {
    let h = Harness::start(Setup::default()).await;
    for (client_id, reason) in [
        (Some(json!(OTHER_CLIENT)), "client_id_mismatch"),
        (Some(json!("Chat-Agent")), "client_id_mismatch"),
        (Some(json!([CLIENT])), "bad_claim"),
        (None, "bad_claim"),
    ] {
        let token = h.idp.with(|c| match client_id {
            Some(id) => {
                c.insert("client_id".into(), id);
            }
            None => {
                c.remove("client_id");
            }
        });
        h.invalid_grant(&token, reason).await;
    }
}

#[tokio::test]
async fn v21_sub_and_jti_must_be_non_empty_strings() {
    let h = Harness::start(Setup::default()).await;
    for (claim, value) in [
        ("sub", None),
        ("sub", Some(json!(""))),
        ("sub", Some(json!(42))),
        ("sub", Some(json!(["alice"]))),
        ("jti", None),
        ("jti", Some(json!(""))),
    ] {
        let token = h.idp.with(|c| match value {
            Some(v) => {
                c.insert(claim.into(), v);
            }
            None => {
                c.remove(claim);
            }
        });
        h.invalid_grant(&token, "bad_claim").await;
    }
}

#[tokio::test]
async fn v22_time_claims_must_be_present_numbers_and_current() {
    let h = Harness::start(Setup::default()).await;
    let bad_types = [
        json!("9999999999"),
        json!(true),
        json!([NOW]),
        json!({"t": NOW}),
        Value::Null,
    ];
    for claim in ["exp", "iat", "nbf"] {
        for value in &bad_types {
            if claim == "nbf" && value.is_null() {
                continue; // an absent nbf is fine
            }
            let token = h.idp.with(|c| {
                c.insert(claim.into(), value.clone());
            });
            h.invalid_grant(&token, "bad_claim").await;
        }
    }
    for claim in ["exp", "iat"] {
        let token = h.idp.without(claim);
        h.invalid_grant(&token, "bad_claim").await;
    }
    // exp in the past beyond the 30 s leeway; nbf in the future beyond it.
    let token = h
        .idp
        .set(&[("iat", json!(NOW - 300)), ("exp", json!(NOW - 31))]);
    h.invalid_grant(&token, "expired").await;
    let token = h.idp.set(&[("nbf", json!(NOW + 31))]);
    h.invalid_grant(&token, "not_yet_valid").await;
    // Within the leeway, both are fine.
    let token = h.idp.set(&[("nbf", json!(NOW + 30))]);
    h.grants(&token).await;
}

#[tokio::test]
async fn v23_out_of_range_dates_future_iat_long_lifetime_and_old_iat_are_rejected() {
    let h = Harness::start(Setup::builder(|b| {
        b.max_id_jag_age(Duration::from_secs(600))
    }))
    .await;
    let raw = |exp: &str| {
        let mut claims = h.idp.claims();
        claims.remove("exp");
        let json = Value::Object(claims).to_string();
        let json = format!("{},\"exp\":{exp}}}", json.trim_end_matches('}'));
        h.idp
            .jws_raw(h.idp.header().to_string().as_bytes(), json.as_bytes())
    };
    h.invalid_grant(&raw("1e400"), "malformed").await;
    for exp in ["-1", "9223372036854775808", "9007199254740992"] {
        h.invalid_grant(&raw(exp), "bad_claim").await;
    }
    let token = h
        .idp
        .set(&[("iat", json!(NOW + 31)), ("exp", json!(NOW + 331))]);
    h.invalid_grant(&token, "issued_in_future").await;
    let token = h.idp.set(&[("exp", json!(NOW + 1201))]);
    h.invalid_grant(&token, "lifetime_too_long").await;
    let token = h
        .idp
        .set(&[("iat", json!(NOW - 700)), ("exp", json!(NOW + 100))]);
    h.invalid_grant(&token, "too_old").await;
    // A fractional exp is floored to the second (RFC 7519 allows fractions).
    let reply = h.redeem(&raw(&format!("{}.75", NOW + 200))).await;
    assert_eq!(h.granted(&reply).exp.unix(), NOW + 200);
}

#[tokio::test]
async fn v24_duplicate_json_members_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    let claims = Value::Object(h.idp.claims()).to_string();
    let header = br#"{"alg":"ES256","alg":"none","typ":"oauth-id-jag+jwt","kid":"idp-key-1"}"#;
    let token = h.idp.jws_raw(header, claims.as_bytes());
    h.invalid_grant(&token, "malformed").await;
    let payload = format!("{{\"aud\":\"evil\",{}", &claims[1..]);
    let token = h
        .idp
        .jws_raw(h.idp.header().to_string().as_bytes(), payload.as_bytes());
    h.invalid_grant(&token, "malformed").await;
}

#[tokio::test]
async fn v25_invalid_utf8_and_lone_surrogates_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    let header = h.idp.header().to_string();
    let claims = Value::Object(h.idp.claims()).to_string();
    let mut bad_utf8 = claims.clone().into_bytes();
    let at = bad_utf8.iter().position(|b| *b == b'a').unwrap();
    bad_utf8[at] = 0xff;
    let token = h.idp.jws_raw(header.as_bytes(), &bad_utf8);
    h.invalid_grant(&token, "malformed").await;
    let surrogate = claims.replace("alice@acme", "alice\\ud800");
    let token = h.idp.jws_raw(header.as_bytes(), surrogate.as_bytes());
    h.invalid_grant(&token, "malformed").await;
}

fn b64_value(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        _ => 63,
    }
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[tokio::test]
async fn v26_base64url_must_be_strict_but_header_whitespace_is_fine() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    let (input, signature) = token.rsplit_once('.').unwrap();
    assert_eq!(signature.len(), 86);
    let last = signature.as_bytes()[85];
    let noisy = ALPHABET[usize::from(b64_value(last) | 1)] as char;
    for forged in [
        format!("{input}.{signature}=="),
        format!("{input}.{}+{}", &signature[..40], &signature[41..]),
        format!("{input}.{}/{}", &signature[..40], &signature[41..]),
        format!("{input}.{} {}", &signature[..40], &signature[40..]),
        format!("{input}.{}{noisy}", &signature[..85]),
        format!("{}=.{}", input.replacen('.', "=.", 0), signature),
    ] {
        h.invalid_grant(&forged, "malformed").await;
    }
    let spaced = br#"{ "alg" : "ES256" ,
        "typ" : "oauth-id-jag+jwt" , "kid" : "idp-key-1" }"#;
    let token = h
        .idp
        .jws_raw(spaced, Value::Object(h.idp.claims()).to_string().as_bytes());
    h.grants(&token).await;
}

#[tokio::test]
async fn v27_payloads_that_are_not_objects_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    for payload in ["null", "[1,2]", "\"a string\"", "42"] {
        let token = h
            .idp
            .jws_raw(h.idp.header().to_string().as_bytes(), payload.as_bytes());
        h.invalid_grant(&token, "malformed").await;
    }
}

#[tokio::test]
async fn v28_huge_tokens_and_deep_nesting_fail_fast() {
    let h = Harness::start(Setup::builder(|b| {
        b.max_body_bytes(2 * 1024 * 1024)
            .max_assertion_bytes(64 * 1024)
    }))
    .await;
    let megabyte = format!("{}.{}.{}", "a".repeat(500_000), "b".repeat(500_000), "c");
    h.invalid_grant(&megabyte, "too_large").await;
    let dots = ".".repeat(100_000);
    h.invalid_grant(&dots, "too_large").await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut claims = Value::Object(h.idp.claims()).to_string();
    claims.pop();
    let claims = format!("{claims},\"authorization_details\":{nested}}}");
    let token = h
        .idp
        .jws_raw(h.idp.header().to_string().as_bytes(), claims.as_bytes());
    assert!(token.len() < 64 * 1024);
    h.invalid_grant(&token, "malformed").await;

    // With the default limits a megabyte never reaches the parser: the body limit answers.
    let h = Harness::start(Setup::default()).await;
    for huge in [&megabyte, &dots] {
        let reply = h.redeem(huge).await;
        h.refused(&reply, 413, "invalid_request", "body_too_large");
    }
    let token = format!("{}.{}.{}", "a".repeat(10_000), "b".repeat(10_000), "c");
    h.invalid_grant(&token, "too_large").await;
}

#[tokio::test]
async fn v29_unicode_variants_of_trusted_strings_are_different_strings() {
    let cafe_key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("cafe").unwrap());
    let cafe_keys = Arc::new(KeySet::new([cafe_key.verifying_key().unwrap()]).unwrap());
    let nfc = "https://caf\u{e9}.idp.example";
    let h = Harness::start(Setup::builder(move |b| {
        b.trust(idjag_resource::TrustedIssuer::new(
            Issuer::new(nfc).unwrap(),
            cafe_keys,
        ))
    }))
    .await;
    let cafe_token = |iss: &str| {
        sign_with(
            &cafe_key,
            json!({"alg": "ES256", "typ": wire::TYP_ID_JAG, "kid": "cafe"}),
            &h.idp.claims_with(&[("iss", json!(iss))]),
        )
    };
    for iss in [
        "https://cafe\u{301}.idp.example",
        "https://\u{ff41}cme.idp.example",
    ] {
        let token = cafe_token(iss);
        h.invalid_grant(&token, "untrusted_issuer").await;
    }
    let full_width: String = h
        .base
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(0xff10 + (c as u32 - '0' as u32)).unwrap(),
            other => other,
        })
        .collect();
    let token = h.idp.set(&[("aud", json!(full_width))]);
    h.invalid_grant(&token, "wrong_audience").await;
    // The NFC form as configured works.
    h.grants(&cafe_token(nfc)).await;
}

#[tokio::test]
async fn v30_scope_must_be_a_valid_string_and_is_narrowed_to_policy() {
    let h = Harness::start(Setup::default()).await;
    for scope in [
        json!(["chat.read"]),
        json!("chat.read \"x\""),
        json!("chat\\read"),
        json!("chat.read\u{7}"),
        json!("chat.read  chat.history"),
        json!(42),
    ] {
        let token = h.idp.set(&[("scope", json!(scope))]);
        h.invalid_grant(&token, "bad_claim").await;
    }
    let token = h.idp.set(&[("scope", json!("chat.read chat.write admin"))]);
    let reply = h.redeem(&token).await;
    assert_eq!(reply.json["scope"], "chat.read chat.write");
    h.granted(&reply);
}

#[tokio::test]
async fn v31_resources_must_be_absolute_without_fragment_and_all_registered() {
    let h = Harness::start(Setup::default()).await;
    for resource in [
        json!("mcp.chat.example/mcp"),
        json!("/mcp"),
        json!("https://mcp.chat.example/mcp#frag"),
        json!([]),
        json!(42),
    ] {
        let token = h.idp.set(&[("resource", json!(resource))]);
        h.invalid_grant(&token, "bad_claim").await;
    }
    for resource in [
        json!("https://evil.example/mcp"),
        json!([RESOURCE, "https://evil.example/mcp"]),
        json!("https://mcp.chat.example/mcp/"),
    ] {
        let token = h.idp.set(&[("resource", json!(resource))]);
        h.invalid_grant(&token, "resource_not_registered").await;
    }
    let token = h.idp.set(&[("resource", json!([RESOURCE]))]);
    h.grants(&token).await;
}

#[tokio::test]
async fn v32_sender_constrained_grants_are_refused_without_dpop_support() {
    let h = Harness::start(Setup::default()).await;
    let jkt = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    let token = h.idp.set(&[("cnf", jkt)]);
    h.invalid_grant(&token, "cnf_unsupported").await;
    // A DPoP header does not help: idjag cannot check proofs, so it never binds.
    let dpop = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0.e30.c2ln";
    let auth = basic(CLIENT, SECRET);
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &token),
    ]);
    let headers = [
        ("content-type", wire::MEDIA_TYPE_FORM),
        ("authorization", auth.as_str()),
        ("dpop", dpop),
    ];
    h.refused(
        &h.post(&headers, body).await,
        400,
        "invalid_grant",
        "cnf_unsupported",
    );
    let x5t = json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"});
    let mtls = h.idp.set(&[("cnf", x5t)]);
    h.invalid_grant(&mtls, "cnf_unsupported").await;
    // An unbound grant with a DPoP header gets a Bearer token (RFC 9449 §5).
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &h.idp.id_jag()),
    ]);
    let reply = h.post(&headers, body).await;
    h.granted(&reply);
    assert_eq!(reply.json["token_type"], "Bearer");
}

#[tokio::test]
async fn v33_an_expired_token_with_a_bad_signature_reports_the_signature() {
    let h = Harness::start(Setup::default()).await;
    let token = h
        .idp
        .set(&[("iat", json!(NOW - 3000)), ("exp", json!(NOW - 2900))]);
    let mut signature = signature_of(&token);
    signature[5] ^= 1;
    let forged = replace_signature(&token, &signature);
    h.invalid_grant(&forged, "bad_signature").await;
    h.invalid_grant(&token, "expired").await;
}

async fn redeem_as_other(h: &Harness, token: &str) -> Reply {
    h.post(
        &[
            ("content-type", wire::MEDIA_TYPE_FORM),
            ("authorization", &basic(OTHER_CLIENT, OTHER_SECRET)),
        ],
        form(&[
            ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
            ("assertion", token),
        ]),
    )
    .await
}

#[tokio::test]
async fn v34_re_presentation_in_single_use_mode_is_refused() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    h.grants(&token).await;
    assert_eq!(h.replay.len(), 1);
    h.invalid_grant(&token, "replayed").await;
    h.refused(
        &redeem_as_other(&h, &token).await,
        400,
        "invalid_grant",
        "client_id_mismatch",
    );
    // Still refused until exp + leeway; after that the ID-JAG itself has expired.
    h.clock.set_unix(NOW + 200);
    h.invalid_grant(&token, "replayed").await;
    h.clock.set_unix(NOW + 331);
    h.invalid_grant(&token, "expired").await;
}

#[tokio::test]
async fn v34_re_presentation_by_the_same_client_is_allowed_when_configured() {
    let h = Harness::start(Setup::builder(|b| {
        b.replay_policy(ReplayPolicy::AllowSameClient)
    }))
    .await;
    let token = h.idp.id_jag();
    let first = h.grants(&token).await;
    h.clock.set_unix(NOW + 100);
    let second = h.grants(&token).await;
    assert_ne!(first.jti, second.jti, "a new access token");
    assert_eq!(
        second.exp.unix(),
        NOW + 300,
        "still capped at the ID-JAG's exp"
    );
    assert_eq!(h.replay.len(), 1, "one entry per ID-JAG");
    h.refused(
        &redeem_as_other(&h, &token).await,
        400,
        "invalid_grant",
        "client_id_mismatch",
    );
}

#[tokio::test]
async fn v35_results_are_never_shared_between_tokens_with_the_same_prefix() {
    // No verification result is cached: each presentation is verified in full, so a forged
    // token sharing header and payload with a valid one fails before and after it.
    let h = Harness::start(Setup::builder(|b| {
        b.replay_policy(ReplayPolicy::AllowSameClient)
    }))
    .await;
    let token = h.idp.id_jag();
    let mut signature = signature_of(&token);
    signature[10] ^= 0x40;
    let forged = replace_signature(&token, &signature);
    h.invalid_grant(&forged, "bad_signature").await;
    h.grants(&token).await;
    h.invalid_grant(&forged, "bad_signature").await;
    // ECDSA signs with fresh randomness: a second valid token with the same prefix and
    // claims verifies on its own merits.
    let (input, _) = token.rsplit_once('.').unwrap();
    let again = format!("{input}.{}", b64(h.idp.key.sign(input.as_bytes()).unwrap()));
    assert_ne!(again, token);
    h.grants(&again).await;
}
