//! SECURITY-CASES V08: the Wycheproof JWS and ES256 P1363 vectors (vendored, see
//! `tests/vectors/wycheproof/PROVENANCE.md`), through the core verify path with each group's
//! key, and every JWS through the HTTP token endpoint.

use idjag_core::*;
use serde_json::Value;

use crate::support::*;

fn load(name: &str) -> Value {
    let path = format!(
        "{}/tests/vectors/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Valid vectors idjag rejects on purpose, with the reason. `alg` is the JWS header's.
fn deviation(alg: Option<&str>, tc_id: u64) -> Option<&'static str> {
    match (alg, tc_id) {
        // RFC 7515 base64url has no `?`; Wycheproof marks these two valid (SECURITY-CASES
        // B3: "stricter than Wycheproof").
        (_, 372 | 373) => Some("strict base64url"),
        (Some("HS256" | "HS384" | "HS512"), _) => Some("no HMAC: symmetric keys are never used"),
        (Some("RS384" | "RS512" | "PS384" | "PS512" | "ES512"), _) => {
            Some("algorithm not supported by idjag")
        }
        _ => None,
    }
}

/// The `alg` of a JWS header, if it decodes.
fn header_alg(jws: &str) -> Option<String> {
    let header = jose::base64url::decode(jws.split('.').next()?).ok()?;
    let header: Value = serde_json::from_slice(&header).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

#[tokio::test]
async fn v08_wycheproof_json_web_signature_vectors() {
    let file = load("json_web_signature_test.json");
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut jws_all = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        let public = group.get("public");
        let keys = public
            .and_then(|jwk| VerifyingKey::from_jwk(jwk).ok())
            .map(|key| KeySet::new([key]).unwrap());
        for test in group["tests"].as_array().unwrap() {
            let tc_id = test["tcId"].as_u64().unwrap();
            let jws = test["jws"].as_str().unwrap();
            jws_all.push(jws.to_owned());
            let ours = keys.as_ref().is_some_and(|keys| {
                verify_jws(
                    jws,
                    keys,
                    AlgorithmSet::all(),
                    jose::DEFAULT_MAX_TOKEN_BYTES,
                )
                .is_ok()
            });
            let outcome = match (test["result"].as_str().unwrap(), ours) {
                ("valid", true) => "valid accepted",
                ("valid", false) => {
                    let why = deviation(header_alg(jws).as_deref(), tc_id);
                    assert!(why.is_some(), "tcId {tc_id} is valid and was rejected");
                    "valid rejected by policy"
                }
                ("invalid", false) => "invalid rejected",
                ("invalid", true) => panic!("tcId {tc_id} is invalid and was accepted"),
                ("acceptable", true) => "acceptable accepted",
                ("acceptable", false) => "acceptable rejected",
                (other, _) => panic!("unknown result {other}"),
            };
            *counts.entry(outcome).or_default() += 1;
        }
    }
    assert_eq!(counts.values().sum::<usize>(), 401);
    // 16 valid ES256/RS256/PS256 vectors verify; 30 valid ones use HMAC, RS384/512,
    // PS384/512, ES512 or the two `?` encodings; every invalid one is refused.
    assert_eq!(counts.get("invalid rejected"), Some(&355), "{counts:?}");
    assert_eq!(counts.get("valid accepted"), Some(&16), "{counts:?}");
    assert_eq!(
        counts.get("valid rejected by policy"),
        Some(&30),
        "{counts:?}"
    );

    // None of them is an ID-JAG of a trusted issuer: each is refused at the endpoint, with
    // no token, no replay entry and one audit event.
    let h = Harness::start(Setup::default()).await;
    for jws in jws_all {
        let reply = h.redeem(&jws).await;
        assert_eq!(reply.status, 400);
        // Three vectors are the empty string: an omitted assertion (J01).
        let (code, description) = if jws.is_empty() {
            ("invalid_request", "the request is malformed")
        } else {
            ("invalid_grant", "the authorization grant is invalid")
        };
        assert_eq!(reply.json["error"], code);
        assert_eq!(reply.json["error_description"], description);
    }
    assert_eq!(h.replay.len(), 0);
    assert_eq!(h.signatures.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(h.audit().len(), 401);
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn v08_wycheproof_es256_p1363_vectors() {
    let file = load("ecdsa_secp256r1_sha256_p1363_test.json");
    let (mut total, mut valid) = (0, 0);
    for group in file["testGroups"].as_array().unwrap() {
        // A few groups give the point only as hex coordinates.
        let jwk = group.get("publicKeyJwk").cloned().unwrap_or_else(|| {
            let coordinate = |name: &str| {
                let bytes = unhex(group["publicKey"][name].as_str().unwrap());
                let trimmed: Vec<u8> = bytes.into_iter().skip_while(|b| *b == 0).collect();
                let mut padded = vec![0u8; 32 - trimmed.len()];
                padded.extend(trimmed);
                jose::base64url::encode(padded)
            };
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": coordinate("wx"), "y": coordinate("wy")})
        });
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.alg(), Algorithm::Es256);
        for test in group["tests"].as_array().unwrap() {
            let ok = key.verify(
                &unhex(test["msg"].as_str().unwrap()),
                &unhex(test["sig"].as_str().unwrap()),
            );
            let tc_id = &test["tcId"];
            match test["result"].as_str().unwrap() {
                "valid" => {
                    assert!(ok, "tcId {tc_id} valid and rejected");
                    valid += 1;
                }
                "invalid" => assert!(!ok, "tcId {tc_id} invalid and accepted"),
                _ => {}
            }
            total += 1;
        }
    }
    assert_eq!(total, 262);
    assert!(valid > 0);
}
