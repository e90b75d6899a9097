//! The ID-JAG validator against threats V01 to V35, for the cases the core validator decides.
//! Client binding (threat V20 mismatch), self-issued grants (threat V18), scope intersection
//! (threat V30), resource policy (threat V31), `cnf` proof (threat V32) and re-presentation
//! (threat V34) are decided by the resource AS and tested in `idjag-resource`; threat V08 is
//! `tests/api/wycheproof.rs`.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use idjag_core::jose::base64url;
use idjag_core::*;
use serde_json::json;
use sha2::{Digest, Sha256};

fn malformed(e: JoseError) -> ValidationError {
    ValidationError::Malformed(e)
}

#[test]
fn a_valid_id_jag_is_accepted_with_exactly_its_claims() {
    let f = Fixture::new(Algorithm::Es256);
    let verified = f.validate(&f.token(&claims())).unwrap();
    let c = verified.claims();
    assert_eq!(c.iss, "https://idp.example");
    assert_eq!(c.sub, "alice");
    assert_eq!(c.aud, "https://auth.chat.example");
    assert_eq!(c.client_id, "agent-at-ras");
    assert_eq!(c.jti, "jti-1");
    assert_eq!((c.iat.unix(), c.exp.unix()), (NOW, NOW + 300));
    assert_eq!(
        c.resource.as_deref(),
        Some(&[Resource::new("https://mcp.chat.example/").unwrap()][..])
    );
    assert_eq!(
        c.scope.as_ref().unwrap().to_string(),
        "chat.history chat.read"
    );
    assert!(c.extra.is_empty());
    assert_eq!(verified.alg(), Algorithm::Es256);
    assert_eq!(verified.kid().unwrap(), "idp-key-1");
}

#[test]
fn v01_alg_none_in_any_case_is_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    for alg in ["none", "None", "NONE"] {
        let header = base64url::encode(json!({"alg": alg, "typ": "oauth-id-jag+jwt"}).to_string());
        let payload = base64url::encode(claims().to_string());
        assert_eq!(
            f.validate(&format!("{header}.{payload}.")).unwrap_err(),
            malformed(JoseError::EmptySegment {
                segment: Segment::Signature
            }),
            "{alg} with an empty signature"
        );
        assert_eq!(
            f.validate(&format!("{header}.{payload}.AAAA")).unwrap_err(),
            malformed(JoseError::UnsupportedAlgorithm),
            "{alg} with a signature"
        );
    }
}

#[test]
fn v02_an_empty_signature_or_two_segments_are_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.token(&claims());
    let unsigned = &token[..token.rfind('.').unwrap()];
    assert_eq!(
        f.validate(&format!("{unsigned}.")).unwrap_err(),
        malformed(JoseError::EmptySegment {
            segment: Segment::Signature
        })
    );
    assert_eq!(
        f.validate(unsigned).unwrap_err(),
        malformed(JoseError::SegmentCount)
    );
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner_hash = Sha256::new()
        .chain_update(&inner)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer)
        .chain_update(inner_hash)
        .finalize()
        .to_vec()
}

#[test]
fn v03_hs256_keyed_with_the_issuer_public_key_is_rejected() {
    for alg in [Algorithm::Rs256, Algorithm::Es256] {
        let f = Fixture::new(alg);
        let public_jwk = f.key.public_jwk().to_string();
        for hmac_key in [public_jwk.as_bytes(), f.key.thumbprint().as_bytes()] {
            let header = base64url::encode(
                json!({"alg": "HS256", "typ": "oauth-id-jag+jwt", "kid": "idp-key-1"}).to_string(),
            );
            let input = format!("{header}.{}", base64url::encode(claims().to_string()));
            let token = format!(
                "{input}.{}",
                base64url::encode(hmac_sha256(hmac_key, input.as_bytes()))
            );
            assert_eq!(
                f.validate(&token).unwrap_err(),
                malformed(JoseError::UnsupportedAlgorithm)
            );
        }
    }
}

#[test]
fn v04_an_algorithm_of_another_key_type_is_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    let rsa = SigningKey::generate(Algorithm::Rs256).unwrap();
    let header = json!({"alg": "RS256", "typ": "oauth-id-jag+jwt", "kid": "idp-key-1"}).to_string();
    let token = sign_raw_with(&rsa, &header, &claims().to_string());
    assert_eq!(
        f.validate(&token).unwrap_err(),
        ValidationError::Key(KeyLookupError::AlgorithmMismatch)
    );

    let f = Fixture::new(Algorithm::Rs256);
    let ec = SigningKey::generate(Algorithm::Es256).unwrap();
    let header = json!({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": "idp-key-1"}).to_string();
    let token = sign_raw_with(&ec, &header, &claims().to_string());
    assert_eq!(
        f.validate(&token).unwrap_err(),
        ValidationError::Key(KeyLookupError::AlgorithmMismatch)
    );
}

#[test]
fn v05_an_algorithm_of_another_curve_is_rejected() {
    for (key_alg, header_alg) in [(Algorithm::Es384, "ES256"), (Algorithm::Es256, "ES384")] {
        let f = Fixture::new(key_alg);
        let header =
            json!({"alg": header_alg, "typ": "oauth-id-jag+jwt", "kid": "idp-key-1"}).to_string();
        let token = f.sign_raw(&header, &claims().to_string());
        assert_eq!(
            f.validate(&token).unwrap_err(),
            ValidationError::Key(KeyLookupError::AlgorithmMismatch)
        );
    }
}

fn resign(token: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}",
        &token[..token.rfind('.').unwrap()],
        base64url::encode(signature)
    )
}

fn signature(token: &str) -> Vec<u8> {
    base64url::decode(&token[token.rfind('.').unwrap() + 1..]).unwrap()
}

fn der_integer(v: &[u8]) -> Vec<u8> {
    let v = &v[v.iter().position(|b| *b != 0).unwrap_or(v.len() - 1)..];
    let mut out = vec![0x02];
    if v[0] & 0x80 != 0 {
        out.push(v.len() as u8 + 1);
        out.push(0);
    } else {
        out.push(v.len() as u8);
    }
    out.extend_from_slice(v);
    out
}

#[test]
fn v06_der_encoded_or_wrong_length_es256_signatures_are_rejected_as_bad_signatures() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.token(&claims());
    let raw = signature(&token);
    let mut der = vec![0x30];
    let body = [der_integer(&raw[..32]), der_integer(&raw[32..])].concat();
    der.push(body.len() as u8);
    der.extend(body);
    let mut long = raw.clone();
    long.push(0);
    for bad in [der, raw[..63].to_vec(), long] {
        assert_eq!(
            f.validate(&resign(&token, &bad)).unwrap_err(),
            ValidationError::BadSignature
        );
    }
}

#[test]
fn v07_es256_special_values_are_rejected() {
    let n = base64url::decode("_____wAAAAD__________7zm-q2nF56E87nKwvxjJVE").unwrap();
    let mut n_minus_1 = n.clone();
    *n_minus_1.last_mut().unwrap() -= 1;
    let zero = vec![0u8; 32];
    let mut one = vec![0u8; 32];
    one[31] = 1;
    let values = [zero, one, n_minus_1, n];
    let f = Fixture::new(Algorithm::Es256);
    let token = f.token(&claims());
    for r in &values {
        for s in &values {
            let sig = [r.as_slice(), s.as_slice()].concat();
            assert_eq!(
                f.validate(&resign(&token, &sig)).unwrap_err(),
                ValidationError::BadSignature
            );
        }
    }
}

#[test]
fn v09_typ_must_name_the_id_jag_media_type() {
    let f = Fixture::new(Algorithm::Es256);
    let wrong = ValidationError::WrongType {
        expected: "oauth-id-jag+jwt",
    };
    for typ in [
        json!("JWT"),
        json!("at+jwt"),
        json!("dpop+jwt"),
        json!("oauth-id-jag+jwt "),
    ] {
        let header = json!({"alg": "ES256", "typ": typ, "kid": "idp-key-1"});
        assert_eq!(
            f.validate(&f.sign(&header, &claims())).unwrap_err(),
            wrong,
            "{typ}"
        );
    }
    let no_typ = json!({"alg": "ES256", "kid": "idp-key-1"});
    assert_eq!(f.validate(&f.sign(&no_typ, &claims())).unwrap_err(), wrong);
    for typ in [json!(7), json!(["oauth-id-jag+jwt"])] {
        let header = json!({"alg": "ES256", "typ": typ, "kid": "idp-key-1"});
        assert_eq!(
            f.validate(&f.sign(&header, &claims())).unwrap_err(),
            malformed(JoseError::InvalidHeader { member: "typ" })
        );
    }
    for typ in [
        "application/oauth-id-jag+jwt",
        "OAUTH-ID-JAG+JWT",
        "Application/Oauth-Id-Jag+Jwt",
    ] {
        let header = json!({"alg": "ES256", "typ": typ, "kid": "idp-key-1"});
        assert!(f.validate(&f.sign(&header, &claims())).is_ok(), "{typ}");
    }
}

#[test]
fn v10_crit_in_any_form_is_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    for crit in [json!(["exp"]), json!(["x-unknown"]), json!([])] {
        let mut header = f.header();
        header["crit"] = crit;
        assert_eq!(
            f.validate(&f.sign(&header, &claims())).unwrap_err(),
            malformed(JoseError::ForbiddenHeader { member: "crit" })
        );
    }
}

#[test]
fn v11_cty_b64_and_zip_are_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    for (member, value) in [
        ("cty", json!("JWT")),
        ("cty", json!("json")),
        ("b64", json!(false)),
        ("zip", json!("DEF")),
    ] {
        let mut header = f.header();
        header[member] = value;
        assert_eq!(
            f.validate(&f.sign(&header, &claims())).unwrap_err(),
            malformed(JoseError::ForbiddenHeader { member })
        );
    }
}

#[test]
fn v12_jwe_and_json_serialisations_are_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d";
    assert_eq!(
        f.validate(jwe).unwrap_err(),
        malformed(JoseError::SegmentCount)
    );
    let json_serialised =
        json!({"payload": "e30", "signatures": [{"protected": "e30", "signature": "AA"}]})
            .to_string();
    assert_eq!(
        f.validate(&json_serialised).unwrap_err(),
        malformed(JoseError::SegmentCount)
    );
}

#[test]
fn v13_an_embedded_jwk_is_never_used() {
    let f = Fixture::new(Algorithm::Es256);
    let attacker = SigningKey::generate(Algorithm::Es256).unwrap();
    for (member, value) in [
        ("jwk", attacker.public_jwk()),
        ("jku", json!("http://169.254.169.254/latest/meta-data")),
        ("x5u", json!("http://169.254.169.254/cert.pem")),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut header = f.header();
        header[member] = value;
        let token = sign_raw_with(&attacker, &header.to_string(), &claims().to_string());
        assert_eq!(
            f.validate(&token).unwrap_err(),
            ValidationError::BadSignature,
            "{member}"
        );
    }
}

#[test]
fn v14_hostile_kids_never_reach_anything_but_the_key_map() {
    let f = Fixture::new(Algorithm::Es256);
    for kid in ["../../../../dev/null", "' OR '1'='1", "kid\u{7f}"] {
        let mut header = f.header();
        header["kid"] = json!(kid);
        let result = f.validate(&f.sign(&header, &claims()));
        assert!(
            matches!(
                result,
                Err(ValidationError::Key(KeyLookupError::UnknownKid))
                    | Err(ValidationError::Malformed(JoseError::InvalidHeader {
                        member: "kid"
                    }))
            ),
            "{kid}: {result:?}"
        );
    }
    for kid in [
        json!("k".repeat(10 * 1024)),
        json!("a\u{0}b"),
        json!(5),
        json!(null),
    ] {
        let mut header = f.header();
        header["kid"] = kid;
        assert_eq!(
            f.validate(&f.sign(&header, &claims())).unwrap_err(),
            malformed(JoseError::InvalidHeader { member: "kid" })
        );
    }
}

#[test]
fn v15_a_missing_kid_picks_the_only_key_and_refuses_to_guess_among_several() {
    let f = Fixture::new(Algorithm::Es256);
    let header = json!({"alg": "ES256", "typ": "oauth-id-jag+jwt"});
    assert!(f.validate(&f.sign(&header, &claims())).is_ok());

    let second = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("idp-key-2").unwrap());
    let keys = KeySet::new([
        f.key.verifying_key().unwrap(),
        second.verifying_key().unwrap(),
    ])
    .unwrap();
    let validator = IdJagValidator::new(
        TrustedIssuers::new().with(Issuer::new(IDP).unwrap(), Arc::new(keys)),
        Audience::new(RAS).unwrap(),
        AlgorithmSet::all(),
        f.clock.shared(),
    );
    assert_eq!(
        validator.validate(&f.sign(&header, &claims())).unwrap_err(),
        ValidationError::Key(KeyLookupError::AmbiguousKey)
    );
}

#[test]
fn v16_a_kid_of_another_trusted_issuer_does_not_verify() {
    let f = Fixture::new(Algorithm::Es256);
    let other_idp = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("other-key").unwrap());
    let validator = IdJagValidator::new(
        TrustedIssuers::new()
            .with(
                Issuer::new(IDP).unwrap(),
                Arc::new(KeySet::new([f.key.verifying_key().unwrap()]).unwrap()),
            )
            .with(
                Issuer::new("https://other-idp.example").unwrap(),
                Arc::new(KeySet::new([other_idp.verifying_key().unwrap()]).unwrap()),
            ),
        Audience::new(RAS).unwrap(),
        AlgorithmSet::all(),
        f.clock.shared(),
    );
    let header = json!({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": "other-key"}).to_string();
    let token = sign_raw_with(&other_idp, &header, &claims().to_string());
    assert_eq!(
        validator.validate(&token).unwrap_err(),
        ValidationError::Key(KeyLookupError::UnknownKid)
    );
}

#[test]
fn v17_untrusted_and_near_miss_issuers_are_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    for iss in [
        json!("https://evil.example"),
        json!("https://idp.example/"),
        json!("https://IDP.example"),
        json!("https://idp.example/extra"),
        json!("https://idp.exampl"),
        json!("https://idp.example.evil"),
        json!(["https://idp.example"]),
        json!(null),
    ] {
        let token = f.token(&with(claims(), "iss", iss.clone()));
        assert_eq!(
            f.validate(&token).unwrap_err(),
            ValidationError::UntrustedIssuer,
            "{iss}"
        );
    }
    assert_eq!(
        f.validate(&f.token(&without(claims(), "iss"))).unwrap_err(),
        ValidationError::UntrustedIssuer
    );
}

#[test]
fn v19_aud_is_one_exact_value() {
    let f = Fixture::new(Algorithm::Es256);
    assert!(
        f.validate(&f.token(&with(claims(), "aud", json!(RAS))))
            .is_ok()
    );
    assert!(
        f.validate(&f.token(&with(claims(), "aud", json!([RAS]))))
            .is_ok()
    );
    for aud in [
        json!([RAS, "https://other.example"]),
        json!(["https://other.example", RAS]),
        json!([]),
    ] {
        assert_eq!(
            f.validate(&f.token(&with(claims(), "aud", aud.clone())))
                .unwrap_err(),
            claim_error("aud", ClaimProblem::Invalid),
            "{aud}"
        );
    }
    assert_eq!(
        f.validate(&f.token(&with(claims(), "aud", json!(null))))
            .unwrap_err(),
        claim_error("aud", ClaimProblem::Missing)
    );
    assert_eq!(
        f.validate(&f.token(&without(claims(), "aud"))).unwrap_err(),
        claim_error("aud", ClaimProblem::Missing)
    );
    for aud in [
        "https://auth.chat.example/oauth2/token",
        "https://auth.chat.example/",
        "HTTPS://AUTH.CHAT.EXAMPLE",
    ] {
        assert_eq!(
            f.validate(&f.token(&with(claims(), "aud", json!(aud))))
                .unwrap_err(),
            ValidationError::AudienceMismatch,
            "{aud}"
        );
    }
}

#[test]
fn v19_an_explicit_audience_alias_is_matched_exactly() {
    let f = Fixture::new(Algorithm::Es256);
    let validator = f
        .validator
        .clone()
        .with_audience_alias(Audience::new("https://auth.chat.example/").unwrap());
    assert!(
        validator
            .validate(&f.token(&with(claims(), "aud", json!("https://auth.chat.example/"))))
            .is_ok()
    );
    assert_eq!(
        validator
            .validate(&f.token(&with(claims(), "aud", json!("https://auth.chat.example//"))))
            .unwrap_err(),
        ValidationError::AudienceMismatch
    );
}

#[test]
fn v20_client_id_must_be_one_string() {
    let f = Fixture::new(Algorithm::Es256);
    assert_eq!(
        f.validate(&f.token(&without(claims(), "client_id")))
            .unwrap_err(),
        claim_error("client_id", ClaimProblem::Missing)
    );
    assert_eq!(
        f.validate(&f.token(&with(claims(), "client_id", json!(["agent-at-ras"]))))
            .unwrap_err(),
        claim_error("client_id", ClaimProblem::WrongType)
    );
}

#[test]
fn v21_sub_and_jti_must_be_non_empty_strings() {
    let f = Fixture::new(Algorithm::Es256);
    for name in ["sub", "jti"] {
        assert_eq!(
            f.validate(&f.token(&without(claims(), name))).unwrap_err(),
            claim_error(name, ClaimProblem::Missing)
        );
        assert_eq!(
            f.validate(&f.token(&with(claims(), name, json!(""))))
                .unwrap_err(),
            claim_error(name, ClaimProblem::Invalid)
        );
        assert_eq!(
            f.validate(&f.token(&with(claims(), name, json!(42))))
                .unwrap_err(),
            claim_error(name, ClaimProblem::WrongType)
        );
    }
}

#[test]
fn v22_dates_of_the_wrong_type_are_hard_errors() {
    let f = Fixture::new(Algorithm::Es256);
    for name in ["exp", "iat", "nbf"] {
        for value in [
            json!("9999999999"),
            json!(true),
            json!([NOW]),
            json!({"t": NOW}),
        ] {
            assert_eq!(
                f.validate(&f.token(&with(claims(), name, value.clone())))
                    .unwrap_err(),
                claim_error(name, ClaimProblem::WrongType),
                "{name}: {value}"
            );
        }
    }
    for name in ["exp", "iat"] {
        assert_eq!(
            f.validate(&f.token(&without(claims(), name))).unwrap_err(),
            claim_error(name, ClaimProblem::Missing)
        );
        assert_eq!(
            f.validate(&f.token(&with(claims(), name, json!(null))))
                .unwrap_err(),
            claim_error(name, ClaimProblem::Missing)
        );
    }
    // nbf is optional: null means absent.
    assert!(
        f.validate(&f.token(&with(claims(), "nbf", json!(null))))
            .is_ok()
    );
}

#[test]
fn v22_the_time_window_is_enforced_with_leeway() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.token(&claims());
    f.clock.set_unix(NOW + 300 + 29);
    assert!(f.validate(&token).is_ok(), "within the 30 s leeway");
    f.clock.set_unix(NOW + 300 + 30);
    assert_eq!(f.validate(&token).unwrap_err(), ValidationError::Expired);

    f.clock.set_unix(NOW);
    let later = f.token(&with(claims(), "nbf", json!(NOW + 31)));
    assert_eq!(
        f.validate(&later).unwrap_err(),
        ValidationError::NotYetValid
    );
    let soon = f.token(&with(claims(), "nbf", json!(NOW + 30)));
    assert!(f.validate(&soon).is_ok());
}

#[test]
fn v23_out_of_range_dates_lifetimes_and_ages_are_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    // 1e400 does not parse as a JSON number at all.
    let huge = claims()
        .to_string()
        .replace(&format!("\"exp\":{}", NOW + 300), "\"exp\":1e400");
    assert_eq!(
        f.validate(&f.sign_raw(&f.header().to_string(), &huge))
            .unwrap_err(),
        malformed(JoseError::Json {
            segment: Segment::Payload
        })
    );
    for exp in [
        json!(-1),
        json!(9_223_372_036_854_775_808u64),
        json!(1u64 << 53),
    ] {
        assert_eq!(
            f.validate(&f.token(&with(claims(), "exp", exp.clone())))
                .unwrap_err(),
            claim_error("exp", ClaimProblem::Invalid),
            "{exp}"
        );
    }
    let future_iat = with(
        with(claims(), "iat", json!(NOW + 31)),
        "exp",
        json!(NOW + 100),
    );
    assert_eq!(
        f.validate(&f.token(&future_iat)).unwrap_err(),
        ValidationError::IssuedInFuture
    );
    let too_long = with(claims(), "exp", json!(NOW + 3601));
    assert_eq!(
        f.validate(&f.token(&too_long)).unwrap_err(),
        ValidationError::LifetimeTooLong
    );

    let validator = f
        .validator
        .clone()
        .with_max_age(Duration::from_secs(60))
        .unwrap();
    let old = f.token(&claims());
    f.clock.set_unix(NOW + 91);
    assert_eq!(
        validator.validate(&old).unwrap_err(),
        ValidationError::TooOld
    );
}

#[test]
fn v23_fractional_dates_are_floored() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.token(&with(claims(), "exp", json!(NOW as f64 + 300.9)));
    assert_eq!(f.validate(&token).unwrap().claims().exp.unix(), NOW + 300);
}

#[test]
fn v24_duplicate_members_are_rejected_in_header_and_payload() {
    let f = Fixture::new(Algorithm::Es256);
    let header = r#"{"alg":"ES256","alg":"none","typ":"oauth-id-jag+jwt","kid":"idp-key-1"}"#;
    assert_eq!(
        f.validate(&f.sign_raw(header, &claims().to_string()))
            .unwrap_err(),
        malformed(JoseError::DuplicateMember {
            segment: Segment::Header
        })
    );
    let payload = claims()
        .to_string()
        .replacen('{', r#"{"aud":"https://evil.example","#, 1);
    assert_eq!(
        f.validate(&f.sign_raw(&f.header().to_string(), &payload))
            .unwrap_err(),
        malformed(JoseError::DuplicateMember {
            segment: Segment::Payload
        })
    );
}

#[test]
fn v25_invalid_utf8_and_lone_surrogates_are_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    let header = base64url::encode(f.header().to_string());
    let mut bytes = claims().to_string().into_bytes();
    let at = bytes.iter().position(|b| *b == b'a').unwrap();
    bytes[at] = 0xff;
    let input = format!("{header}.{}", base64url::encode(&bytes));
    let token = format!(
        "{input}.{}",
        base64url::encode(f.key.sign(input.as_bytes()).unwrap())
    );
    assert_eq!(
        f.validate(&token).unwrap_err(),
        malformed(JoseError::Utf8 {
            segment: Segment::Payload
        })
    );

    let surrogate = claims().to_string().replace("\"alice\"", r#""\ud800""#);
    assert_eq!(
        f.validate(&f.sign_raw(&f.header().to_string(), &surrogate))
            .unwrap_err(),
        malformed(JoseError::Json {
            segment: Segment::Payload
        })
    );
}

#[test]
fn v26_base64url_must_be_strict_but_json_whitespace_is_fine() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.token(&claims());
    let (head, rest) = token.split_once('.').unwrap();
    for bad in [
        format!("{head}=.{rest}"),
        format!("{head} .{rest}"),
        token.replacen('-', "+", 1).replacen('_', "/", 1),
    ] {
        if bad == token {
            continue;
        }
        assert!(
            matches!(
                f.validate(&bad).unwrap_err(),
                ValidationError::Malformed(JoseError::Base64 { .. })
            ),
            "{bad}"
        );
    }
    let spaced = r#"{ "alg" : "ES256" , "typ" : "oauth-id-jag+jwt" , "kid" : "idp-key-1" }"#;
    assert!(
        f.validate(&f.sign_raw(spaced, &claims().to_string()))
            .is_ok()
    );
}

#[test]
fn v26_non_canonical_trailing_bits_are_rejected() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.token(&claims());
    let sig_start = token.rfind('.').unwrap() + 1;
    let last = token.as_bytes()[token.len() - 1];
    // An ES256 signature is 64 bytes: 86 characters, the last carrying 2 unused bits.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.iter().position(|c| *c == last).unwrap();
    let tweaked = alphabet[(index & !0b11) | ((index + 1) & 0b11)] as char;
    let bad = format!("{}{}", &token[..token.len() - 1], tweaked);
    assert_eq!(token.len() - sig_start, 86);
    assert_eq!(
        f.validate(&bad).unwrap_err(),
        malformed(JoseError::Base64 {
            segment: Segment::Signature
        })
    );
}

#[test]
fn v27_the_payload_must_be_an_object() {
    let f = Fixture::new(Algorithm::Es256);
    for payload in ["null", "[]", "\"s\"", "7"] {
        assert_eq!(
            f.validate(&f.sign_raw(&f.header().to_string(), payload))
                .unwrap_err(),
            malformed(JoseError::NotAnObject {
                segment: Segment::Payload
            }),
            "{payload}"
        );
    }
}

#[test]
fn v28_oversized_inputs_fail_before_decoding() {
    let f = Fixture::new(Algorithm::Es256);
    let max = 16 * 1024;
    assert_eq!(
        f.validate(&"a".repeat(1024 * 1024)).unwrap_err(),
        malformed(JoseError::TooLarge { max })
    );
    assert_eq!(
        f.validate(&".".repeat(100_000)).unwrap_err(),
        malformed(JoseError::TooLarge { max })
    );
    let mut deep = claims();
    deep["authorization_details"] = json!("placeholder");
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let payload = deep.to_string().replace("\"placeholder\"", &nested);
    let validator = f.validator.clone().with_max_token_bytes(64 * 1024).unwrap();
    assert_eq!(
        validator
            .validate(&f.sign_raw(&f.header().to_string(), &payload))
            .unwrap_err(),
        malformed(JoseError::Json {
            segment: Segment::Payload
        })
    );
}

#[test]
fn v29_unicode_variants_of_issuer_and_audience_do_not_match() {
    let f = Fixture::new(Algorithm::Es256);
    // Full-width letters and a combining sequence in place of the configured strings.
    for iss in [
        "https://ｉｄｐ.example",
        "https://idp.exa\u{301}mple",
        "https://idp\u{2024}example",
    ] {
        assert_eq!(
            f.validate(&f.token(&with(claims(), "iss", json!(iss))))
                .unwrap_err(),
            ValidationError::UntrustedIssuer
        );
    }
    for aud in [
        "https://auth.chat.ｅxample",
        "https://auth.chat.exam\u{0070}\u{0301}le",
    ] {
        assert_eq!(
            f.validate(&f.token(&with(claims(), "aud", json!(aud))))
                .unwrap_err(),
            ValidationError::AudienceMismatch
        );
    }
}

#[test]
fn v30_scope_must_be_a_clean_space_delimited_string() {
    let f = Fixture::new(Algorithm::Es256);
    assert_eq!(
        f.validate(&f.token(&with(claims(), "scope", json!(["chat.read"]))))
            .unwrap_err(),
        claim_error("scope", ClaimProblem::WrongType)
    );
    for scope in ["chat\"read", "chat\\read", "chat\u{1}read", "a  b", " a"] {
        assert_eq!(
            f.validate(&f.token(&with(claims(), "scope", json!(scope))))
                .unwrap_err(),
            claim_error("scope", ClaimProblem::Invalid),
            "{scope:?}"
        );
    }
}

#[test]
fn v31_resources_must_be_absolute_uris_without_fragments() {
    let f = Fixture::new(Algorithm::Es256);
    for resource in [
        json!("/mcp"),
        json!("mcp.chat.example"),
        json!("https://mcp.chat.example/#x"),
        json!([]),
        json!(["https://a.example/", "rel"]),
    ] {
        assert_eq!(
            f.validate(&f.token(&with(claims(), "resource", resource.clone())))
                .unwrap_err(),
            claim_error("resource", ClaimProblem::Invalid),
            "{resource}"
        );
    }
    let many = f.token(&with(
        claims(),
        "resource",
        json!(["https://a.example/", "https://b.example/"]),
    ));
    assert_eq!(
        f.validate(&many)
            .unwrap()
            .claims()
            .resource
            .as_ref()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn v32_cnf_and_authorization_details_are_parsed_strictly() {
    let f = Fixture::new(Algorithm::Es256);
    let with_cnf = f.token(&with(
        claims(),
        "cnf",
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
    ));
    assert_eq!(
        f.validate(&with_cnf)
            .unwrap()
            .claims()
            .cnf
            .as_ref()
            .unwrap()
            .jkt
            .as_deref(),
        Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    );
    assert_eq!(
        f.validate(&f.token(&with(claims(), "cnf", json!("jkt"))))
            .unwrap_err(),
        claim_error("cnf", ClaimProblem::WrongType)
    );
    assert_eq!(
        f.validate(&f.token(&with(
            claims(),
            "authorization_details",
            json!({"type": "x"})
        )))
        .unwrap_err(),
        claim_error("authorization_details", ClaimProblem::WrongType)
    );
    assert_eq!(
        f.validate(&f.token(&with(
            claims(),
            "authorization_details",
            json!([{"no_type": 1}])
        )))
        .unwrap_err(),
        claim_error("authorization_details", ClaimProblem::Invalid)
    );
}

#[test]
fn v33_a_bad_signature_is_reported_before_expiry() {
    let f = Fixture::new(Algorithm::Es256);
    let expired = f.token(&with(
        with(claims(), "iat", json!(NOW - 1000)),
        "exp",
        json!(NOW - 900),
    ));
    let mut sig = signature(&expired);
    sig[10] ^= 1;
    assert_eq!(
        f.validate(&resign(&expired, &sig)).unwrap_err(),
        ValidationError::BadSignature
    );
    assert_eq!(f.validate(&expired).unwrap_err(), ValidationError::Expired);
}

#[test]
fn rfc8725_3_12_other_token_kinds_are_not_id_jags_and_vice_versa() {
    let f = Fixture::new(Algorithm::Es256);
    let id_token_header = json!({"alg": "ES256", "typ": "JWT", "kid": "idp-key-1"});
    assert_eq!(
        f.validate(&f.sign(&id_token_header, &claims()))
            .unwrap_err(),
        ValidationError::WrongType {
            expected: "oauth-id-jag+jwt"
        }
    );
    // An ID-JAG where an ID token or an access token is expected.
    let id_jag = f.token(&claims());
    let keys: Arc<dyn KeySource> = Arc::new(KeySet::new([f.key.verifying_key().unwrap()]).unwrap());
    let issuers = TrustedIssuers::new().with(Issuer::new(IDP).unwrap(), keys);
    let as_id_token = IdTokenValidator::new(
        issuers.clone(),
        Audience::new(RAS).unwrap(),
        AlgorithmSet::all(),
        f.clock.shared(),
    );
    assert_eq!(
        as_id_token.validate(&id_jag).unwrap_err(),
        ValidationError::WrongType { expected: "JWT" }
    );
    let as_access_token = AccessTokenValidator::new(
        issuers.clone(),
        Audience::new(RAS).unwrap(),
        AlgorithmSet::all(),
        f.clock.shared(),
    );
    assert_eq!(
        as_access_token.validate(&id_jag).unwrap_err(),
        ValidationError::WrongType { expected: "at+jwt" }
    );
    let as_assertion = ClientAssertionValidator::new(
        issuers,
        Audience::new(RAS).unwrap(),
        AlgorithmSet::all(),
        f.clock.shared(),
    );
    assert_eq!(
        as_assertion.validate(&id_jag).unwrap_err(),
        ValidationError::WrongType {
            expected: "client-authentication+jwt"
        }
    );
}

#[test]
fn an_algorithm_outside_the_allow_list_is_rejected_before_key_lookup() {
    let f = Fixture::new(Algorithm::EdDsa);
    let validator = IdJagValidator::new(
        TrustedIssuers::new().with(
            Issuer::new(IDP).unwrap(),
            Arc::new(KeySet::new([f.key.verifying_key().unwrap()]).unwrap()),
        ),
        Audience::new(RAS).unwrap(),
        AlgorithmSet::from([Algorithm::Es256]),
        f.clock.shared(),
    );
    assert_eq!(
        validator.validate(&f.token(&claims())).unwrap_err(),
        ValidationError::AlgorithmNotAllowed
    );
}

#[test]
fn every_algorithm_round_trips_on_every_backend() {
    for backend in crypto::all_backends() {
        for alg in Algorithm::ALL {
            let f = Fixture::with_backend(alg, backend);
            let verified = f.validate(&f.token(&claims()));
            assert!(verified.is_ok(), "{} {alg}: {verified:?}", backend.name());
        }
    }
}

#[test]
fn extra_claims_are_kept_and_every_profile_claim_is_typed() {
    let f = Fixture::new(Algorithm::Es256);
    let full = json!({
        "iss": IDP, "sub": "alice", "aud": [RAS], "client_id": "c", "jti": "j", "iat": NOW, "exp": NOW + 60,
        "nbf": NOW, "resource": ["https://mcp.chat.example/"], "scope": "a",
        "authorization_details": [{"type": "payment", "amount": 5}],
        "tenant": "t1", "aud_tenant": "t2", "aud_sub": "u-9",
        "sub_id": {"format": "saml-nameid", "issuer": "https://saml.example", "nameid": "alice"},
        "email": "alice@example.com", "auth_time": NOW - 10, "acr": "urn:mfa", "amr": ["pwd", "otp"],
        "cnf": {"jkt": "abc"}, "act": {"sub": "agent"}, "custom": {"k": [1, 2]},
    });
    let c = f.validate(&f.token(&full)).unwrap().into_claims();
    assert_eq!(c.tenant.as_deref(), Some("t1"));
    assert_eq!(c.aud_tenant.as_deref(), Some("t2"));
    assert_eq!(c.aud_sub.as_deref(), Some("u-9"));
    assert_eq!(c.sub_id.as_ref().unwrap().member("nameid"), Some("alice"));
    assert_eq!(
        c.authorization_details.as_ref().unwrap()[0].kind(),
        "payment"
    );
    assert_eq!(
        c.amr.as_deref(),
        Some(&["pwd".to_owned(), "otp".to_owned()][..])
    );
    assert_eq!(c.act.as_ref().unwrap()["sub"], "agent");
    assert_eq!(c.extra.len(), 1);
    assert_eq!(c.extra["custom"], json!({"k": [1, 2]}));
    let bad_sub_id = with(
        full,
        "sub_id",
        json!({"format": "saml-nameid", "issuer": "x"}),
    );
    assert_eq!(
        f.validate(&f.token(&bad_sub_id)).unwrap_err(),
        claim_error("sub_id", ClaimProblem::Invalid)
    );
}
