//! Threats V01 to V35 through the binary's token endpoint, on loopback: the exact status,
//! OAuth error code and generic body, and one audit line with the reason for each (see
//! `Harness::refused`). The keys of the trusted IdPs come from a loopback IdP's metadata and
//! JWKS, as in production.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use idjag_core::*;
use serde_json::{Value, json};

use crate::support::*;

fn replace_signature(token: &str, signature: &[u8]) -> String {
    let input = token.rsplit_once('.').unwrap().0;
    format!("{input}.{}", b64(signature))
}

fn signature_of(token: &str) -> Vec<u8> {
    idjag_core::jose::base64url::decode(token.rsplit_once('.').unwrap().1).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key(alg: Algorithm, kid: &str) -> SigningKey {
    SigningKey::generate(alg)
        .unwrap()
        .with_kid(Kid::new(kid).unwrap())
}

/// Signs the default claims with `key` under a header naming `alg` and `kid`.
fn signed_as(h: &Harness, key: &SigningKey, alg: &str, kid: &str) -> String {
    let header = json!({"alg": alg, "typ": wire::TYP_ID_JAG, "kid": kid});
    sign_with(key, header, &h.idp.claims())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        h.invalid_grant(&format!("{token}AAAA"), "unsupported_alg")
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v02_empty_signature_or_two_segments_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    let valid = h.idp.id_jag();
    let (input, _) = valid.rsplit_once('.').unwrap();
    h.invalid_grant(&format!("{input}."), "malformed").await;
    h.invalid_grant(input, "malformed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v03_hs256_keyed_with_the_issuers_public_key_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    let jwk = h.idp.key.public_jwk();
    let crypto::PublicKeyMaterial::Ec { x, y, .. } = h.idp.key.public_material().clone() else {
        unreachable!()
    };
    let mut der = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    der.push(4);
    der.extend_from_slice(&x);
    der.extend_from_slice(&y);
    use base64::Engine as _;
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    for secret in [der.clone(), pem.into_bytes(), jwk.to_string().into_bytes()] {
        let header = json!({"alg": "HS256", "typ": wire::TYP_ID_JAG, "kid": "idp-key-1"});
        let input = format!(
            "{}.{}",
            b64(header.to_string()),
            b64(Value::Object(h.idp.claims()).to_string())
        );
        let token = format!("{input}.{}", b64(hmac_sha256(&secret, input.as_bytes())));
        h.invalid_grant(&token, "unsupported_alg").await;
    }
}

/// A harness whose IdP publishes an ES256 (`idp-key-1`), an RS256 (`idp-rsa`) and an ES384
/// (`idp-p384`) key.
async fn mixed() -> (Harness, SigningKey, SigningKey) {
    let h = Harness::start(Setup::default()).await;
    let rsa = key(Algorithm::Rs256, "idp-rsa");
    let p384 = key(Algorithm::Es384, "idp-p384");
    h.test_idp.publish(&[&h.idp.key, &rsa, &p384]);
    (h, rsa, p384)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v04_rs256_with_an_ec_kid_and_es256_with_an_rsa_kid_are_rejected() {
    let (h, rsa, _) = mixed().await;
    let reply = h.redeem(&signed_as(&h, &rsa, "RS256", "idp-key-1")).await;
    h.refused(&reply, 400, "invalid_grant", "unknown_key");
    let reply = h
        .redeem(&signed_as(&h, &h.idp.key, "ES256", "idp-rsa"))
        .await;
    h.refused(&reply, 400, "invalid_grant", "unknown_key");
    h.granted(&h.redeem(&signed_as(&h, &rsa, "RS256", "idp-rsa")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v05_es256_with_a_p384_key_and_es384_with_a_p256_key_are_rejected() {
    let (h, _, p384) = mixed().await;
    for (key, alg, kid, reason) in [
        (&p384, "ES256", "idp-p384", "unknown_key"),
        (&h.idp.key, "ES384", "idp-key-1", "unknown_key"),
        (&p384, "ES256", "idp-key-1", "bad_signature"),
    ] {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        h.invalid_grant(&replace_signature(&token, &signature), "bad_signature")
            .await;
    }
    h.grants(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
            h.invalid_grant(&replace_signature(&token, &signature), "bad_signature")
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v08_wycheproof_jws_vectors_are_all_refused_at_the_binarys_token_endpoint() {
    let dir = std::env::var_os("IDJAG_VECTORS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/vectors/wycheproof")
        });
    let file = match std::fs::read(dir.join("json_web_signature_test.json")) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes).unwrap(),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "Wycheproof vectors not found at {} (CI=true makes this fatal)",
                dir.display()
            )
        }
        Err(_) => {
            eprintln!("SKIPPED: Wycheproof vectors not found at {}", dir.display());
            return;
        }
    };
    let vectors: Vec<String> = file["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["tests"].as_array().unwrap())
        .map(|test| test["jws"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(vectors.len(), 401);
    let h = Harness::start(Setup::default()).await;
    for jws in &vectors {
        let reply = h.redeem(jws).await;
        assert_eq!(reply.status, 400, "{jws}");
        let code = if jws.is_empty() {
            "invalid_request"
        } else {
            "invalid_grant"
        };
        assert_eq!(reply.json["error"], code, "{jws}");
        assert!(reply.json.get("access_token").is_none());
    }
    let lines = h.audit_at_least(401);
    assert_eq!(lines.len(), 401, "one audit line per vector");
    assert!(lines.iter().all(|l| l["decision"] == "denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        h.invalid_grant(&with_typ(typ), "wrong_typ").await;
    }
    for typ in [json!(1), json!(["oauth-id-jag+jwt"])] {
        h.invalid_grant(&with_typ(Some(typ)), "bad_header").await;
    }
    for typ in ["application/oauth-id-jag+jwt", "OAUTH-ID-JAG+JWT"] {
        h.grants(&with_typ(Some(json!(typ)))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v10_any_crit_header_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    for crit in [json!(["exp"]), json!(["x-unknown"]), json!([])] {
        let token = h.idp.with_header(|hd| {
            hd.insert("crit".into(), crit);
        });
        h.invalid_grant(&token, "bad_header").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v13_embedded_jwk_jku_x5u_and_x5c_are_never_used_or_fetched() {
    let h = Harness::start(Setup::default()).await;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { r#"{"keys":[]}"# }
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    let attacker = key(Algorithm::Es256, "attacker");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v14_hostile_kids_are_rejected_without_harm() {
    let h = Harness::start(Setup::default()).await;
    for (kid, reason) in [
        (json!("../../../../dev/null"), "unknown_key"),
        (json!("' OR '1'='1"), "unknown_key"),
        (json!("k".repeat(10 * 1024)), "bad_header"),
        (json!("a\u{0}b"), "bad_header"),
        (json!(42), "bad_header"),
        (Value::Null, "bad_header"),
    ] {
        let token = h.idp.with_header(|hd| {
            hd.insert("kid".into(), kid);
        });
        h.invalid_grant(&token, reason).await;
    }
    // The process is still serving.
    h.grants(&h.idp.id_jag()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v15_no_kid_picks_the_only_key_and_refuses_an_ambiguous_set() {
    let h = Harness::start(Setup::default()).await;
    let no_kid = |h: &Harness| {
        h.idp.with_header(|hd| {
            hd.remove("kid");
        })
    };
    h.grants(&no_kid(&h)).await;

    let h = Harness::start(Setup::default()).await;
    let second = key(Algorithm::Es256, "idp-key-2");
    h.test_idp.publish(&[&h.idp.key, &second]);
    h.invalid_grant(&no_kid(&h), "unknown_key").await;
    h.grants(&h.idp.id_jag()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v16_a_kid_of_one_trusted_issuer_never_verifies_for_another() {
    let h = Harness::start(Setup::default()).await;
    let globex_key = key(Algorithm::Es256, "globex-key");
    h.test_idp.publish_globex(&[&globex_key]);
    // Signed by Acme with Acme's kid, claiming to be Globex.
    h.invalid_grant(&h.idp.set(&[("iss", json!(GLOBEX))]), "unknown_key")
        .await;
    let globex_claims = h.idp.claims_with(&[("iss", json!(GLOBEX))]);
    let token = h.idp.jws(
        &json!({"alg": "ES256", "typ": wire::TYP_ID_JAG}),
        &Value::Object(globex_claims.clone()),
    );
    h.invalid_grant(&token, "bad_signature").await;
    let token = sign_with(
        &globex_key,
        json!({"alg": "ES256", "typ": wire::TYP_ID_JAG, "kid": "globex-key"}),
        &globex_claims,
    );
    h.grants(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v17_untrusted_and_look_alike_issuers_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    let idp = h.idp.issuer.clone();
    let port = idp.rsplit(':').next().unwrap();
    for iss in [
        "https://evil.example".to_owned(),
        format!("{idp}/"),
        idp.replace("127.0.0.1", "127.0.0.01"),
        format!("{idp}/tenant"),
        idp.trim_end_matches(port).to_owned(),
        format!("{idp}1"),
        idp.replace("http://", "https://"),
        "https://GLOBEX.idp.example".to_owned(),
    ] {
        h.invalid_grant(&h.idp.set(&[("iss", json!(iss))]), "untrusted_issuer")
            .await;
        let line = h.audit().pop().unwrap();
        assert!(
            line.get("iss").is_none(),
            "no untrusted string in the audit: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v18_an_id_jag_issued_by_this_server_is_rejected() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.set(&[("iss", json!(h.base))]);
    h.invalid_grant(&token, "self_issued").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        (Some(json!(h.token_url())), "wrong_audience"),
        (Some(json!(format!("{}/", h.base))), "wrong_audience"),
        (Some(json!(h.base.to_uppercase())), "wrong_audience"),
        (Some(json!(other)), "wrong_audience"),
    ] {
        h.invalid_grant(&with_aud(aud), reason).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v22_time_claims_must_be_present_numbers_and_current() {
    let h = Harness::start(Setup::default()).await;
    let now = now();
    let bad_types = [
        json!("9999999999"),
        json!(true),
        json!([now]),
        json!({"t": now}),
        Value::Null,
    ];
    for claim in ["exp", "iat", "nbf"] {
        for value in &bad_types {
            if claim == "nbf" && value.is_null() {
                continue;
            }
            let token = h.idp.with(|c| {
                c.insert(claim.into(), value.clone());
            });
            h.invalid_grant(&token, "bad_claim").await;
        }
    }
    for claim in ["exp", "iat"] {
        h.invalid_grant(&h.idp.without(claim), "bad_claim").await;
    }
    // Beyond the 30 s leeway (a few seconds of margin for a slow machine).
    let token = h
        .idp
        .set(&[("iat", json!(now - 300)), ("exp", json!(now - 40))]);
    h.invalid_grant(&token, "expired").await;
    let token = h.idp.set(&[("nbf", json!(now + 45))]);
    h.invalid_grant(&token, "not_yet_valid").await;
    let token = h.idp.set(&[("nbf", json!(now + 20))]);
    h.grants(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v23_out_of_range_dates_future_iat_long_lifetime_and_old_iat_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    let now = now();
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
        .set(&[("iat", json!(now + 45)), ("exp", json!(now + 345))]);
    h.invalid_grant(&token, "issued_in_future").await;
    let token = h.idp.set(&[("exp", json!(now + 1210))]);
    h.invalid_grant(&token, "lifetime_too_long").await;
    let token = h
        .idp
        .set(&[("iat", json!(now - 700)), ("exp", json!(now + 100))]);
    h.invalid_grant(&token, "too_old").await;
    // A fractional exp is floored to the second (RFC 7519 allows fractions).
    let claims = h.granted(&h.redeem(&raw(&format!("{}.75", now + 200))).await);
    assert_eq!(claims["exp"], now + 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v24_duplicate_json_members_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    let claims = Value::Object(h.idp.claims()).to_string();
    let header = br#"{"alg":"ES256","alg":"none","typ":"oauth-id-jag+jwt","kid":"idp-key-1"}"#;
    h.invalid_grant(&h.idp.jws_raw(header, claims.as_bytes()), "malformed")
        .await;
    let payload = format!("{{\"aud\":\"evil\",{}", &claims[1..]);
    let token = h
        .idp
        .jws_raw(h.idp.header().to_string().as_bytes(), payload.as_bytes());
    h.invalid_grant(&token, "malformed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v25_invalid_utf8_and_lone_surrogates_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    let header = h.idp.header().to_string();
    let claims = Value::Object(h.idp.claims()).to_string();
    let mut bad_utf8 = claims.clone().into_bytes();
    let at = bad_utf8.iter().position(|b| *b == b'a').unwrap();
    bad_utf8[at] = 0xff;
    h.invalid_grant(&h.idp.jws_raw(header.as_bytes(), &bad_utf8), "malformed")
        .await;
    let surrogate = claims.replace("alice@acme", "alice\\ud800");
    h.invalid_grant(
        &h.idp.jws_raw(header.as_bytes(), surrogate.as_bytes()),
        "malformed",
    )
    .await;
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v26_base64url_must_be_strict_but_header_whitespace_is_fine() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    let (input, signature) = token.rsplit_once('.').unwrap();
    assert_eq!(signature.len(), 86);
    let last = signature.as_bytes()[85];
    let value = ALPHABET.iter().position(|c| *c == last).unwrap();
    let noisy = ALPHABET[value | 1] as char;
    for forged in [
        format!("{input}.{signature}=="),
        format!("{input}.{}+{}", &signature[..40], &signature[41..]),
        format!("{input}.{}/{}", &signature[..40], &signature[41..]),
        format!("{input}.{} {}", &signature[..40], &signature[40..]),
        format!("{input}.{}{noisy}", &signature[..85]),
        format!("{}=.{}", input, signature),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v27_payloads_that_are_not_objects_are_rejected() {
    let h = Harness::start(Setup::default()).await;
    for payload in ["null", "[1,2]", "\"a string\"", "42"] {
        let token = h
            .idp
            .jws_raw(h.idp.header().to_string().as_bytes(), payload.as_bytes());
        h.invalid_grant(&token, "malformed").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v28_huge_tokens_and_deep_nesting_fail_fast() {
    let h = Harness::start(Setup {
        server: "max_body_bytes = 2097152".into(),
        tokens: "max_assertion_bytes = 65536".into(),
        ..Setup::default()
    })
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
    h.grants(&h.idp.id_jag()).await;

    // With the default limits a megabyte never reaches the parser: the body limit answers.
    let h = Harness::start(Setup::default()).await;
    for huge in [&megabyte, &dots] {
        let reply = h.redeem(huge).await;
        h.refused(&reply, 413, "invalid_request", "body_too_large");
    }
    let token = format!("{}.{}.{}", "a".repeat(10_000), "b".repeat(10_000), "c");
    h.invalid_grant(&token, "too_large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v29_unicode_variants_of_trusted_strings_are_different_strings() {
    let h = Harness::start(Setup::default()).await;
    let cafe_key = key(Algorithm::Es256, "cafe");
    h.test_idp.publish_cafe(&[&cafe_key]);
    let cafe_token = |iss: &str| {
        sign_with(
            &cafe_key,
            json!({"alg": "ES256", "typ": wire::TYP_ID_JAG, "kid": "cafe"}),
            &h.idp.claims_with(&[("iss", json!(iss))]),
        )
    };
    for iss in [
        "https://cafe\u{301}.idp.example",
        "https://\u{ff43}af\u{e9}.idp.example",
    ] {
        h.invalid_grant(&cafe_token(iss), "untrusted_issuer").await;
    }
    let full_width: String = h
        .base
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(0xff10 + (c as u32 - '0' as u32)).unwrap(),
            other => other,
        })
        .collect();
    h.invalid_grant(&h.idp.set(&[("aud", json!(full_width))]), "wrong_audience")
        .await;
    h.grants(&cafe_token(CAFE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        h.invalid_grant(&h.idp.set(&[("scope", scope)]), "bad_claim")
            .await;
    }
    let token = h.idp.set(&[("scope", json!("chat.read chat.write admin"))]);
    let reply = h.redeem(&token).await;
    assert_eq!(reply.json["scope"], "chat.read chat.write");
    h.granted(&reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v31_resources_must_be_absolute_without_fragment_and_governed_here() {
    let h = Harness::start(Setup::default()).await;
    for resource in [
        json!("mcp.chat.example/mcp"),
        json!("/mcp"),
        json!("https://mcp.chat.example/mcp#frag"),
        json!([]),
        json!(42),
    ] {
        h.invalid_grant(&h.idp.set(&[("resource", resource)]), "bad_claim")
            .await;
    }
    // A resource this server does not govern: invalid_target (RFC 8707 §2).
    for resource in [
        json!("https://evil.example/mcp"),
        json!([RESOURCE, "https://evil.example/mcp"]),
        json!("https://mcp.chat.example/mcp/"),
    ] {
        let reply = h.redeem(&h.idp.set(&[("resource", resource)])).await;
        h.refused(&reply, 400, "invalid_target", "resource_not_registered");
    }
    h.grants(&h.idp.set(&[("resource", json!([RESOURCE]))]))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v32_sender_constrained_grants_are_refused_without_dpop_support() {
    let h = Harness::start(Setup::default()).await;
    let jkt = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    let token = h.idp.set(&[("cnf", jkt)]);
    h.invalid_grant(&token, "cnf_unsupported").await;
    let dpop = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0.e30.c2ln";
    let auth = basic(CLIENT, SECRET);
    let headers = [
        ("content-type", wire::MEDIA_TYPE_FORM),
        ("authorization", auth.as_str()),
        ("dpop", dpop),
    ];
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &token),
    ]);
    h.refused(
        &h.post(&headers, body).await,
        400,
        "invalid_grant",
        "cnf_unsupported",
    );
    let x5t = json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"});
    h.invalid_grant(&h.idp.set(&[("cnf", x5t)]), "cnf_unsupported")
        .await;
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &h.idp.id_jag()),
    ]);
    let reply = h.post(&headers, body).await;
    h.granted(&reply);
    assert_eq!(reply.json["token_type"], "Bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v33_an_expired_token_with_a_bad_signature_reports_the_signature() {
    let h = Harness::start(Setup::default()).await;
    let now = now();
    let token = h
        .idp
        .set(&[("iat", json!(now - 3000)), ("exp", json!(now - 2900))]);
    let mut signature = signature_of(&token);
    signature[5] ^= 1;
    h.invalid_grant(&replace_signature(&token, &signature), "bad_signature")
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v34_re_presentation_in_single_use_mode_is_refused() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    h.grants(&token).await;
    h.invalid_grant(&token, "replayed").await;
    h.refused(
        &redeem_as_other(&h, &token).await,
        400,
        "invalid_grant",
        "client_id_mismatch",
    );
    h.invalid_grant(&token, "replayed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v34_re_presentation_by_the_same_client_is_allowed_when_configured() {
    let h = Harness::start(Setup::tokens("replay = \"allow_same_client\"")).await;
    let token = h.idp.id_jag();
    let first = h.grants(&token).await;
    let second = h.grants(&token).await;
    assert_ne!(first["jti"], second["jti"], "a new access token");
    h.refused(
        &redeem_as_other(&h, &token).await,
        400,
        "invalid_grant",
        "client_id_mismatch",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v35_results_are_never_shared_between_tokens_with_the_same_prefix() {
    let h = Harness::start(Setup::tokens("replay = \"allow_same_client\"")).await;
    let token = h.idp.id_jag();
    let mut signature = signature_of(&token);
    signature[10] ^= 0x40;
    let forged = replace_signature(&token, &signature);
    h.invalid_grant(&forged, "bad_signature").await;
    h.grants(&token).await;
    h.invalid_grant(&forged, "bad_signature").await;
    let (input, _) = token.rsplit_once('.').unwrap();
    let again = format!("{input}.{}", b64(h.idp.key.sign(input.as_bytes()).unwrap()));
    assert_ne!(again, token);
    h.grants(&again).await;
}
