//! Signing keys from PKCS#8 PEM/DER and JWK, generation, thumbprints and JWK Set export
//! (issue 2, "Keys"), on every backend.

use base64::Engine as _;
use idjag_core::crypto::PrivateKeyMaterial;
use idjag_core::*;
use serde_json::json;

fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[test]
fn pkcs8_pem_and_der_keys_sign_what_their_public_keys_verify() {
    for backend in crypto::all_backends() {
        for alg in Algorithm::ALL {
            let PrivateKeyMaterial::Pkcs8(der) = backend.generate(alg).unwrap() else {
                panic!("PKCS#8")
            };
            let from_der = SigningKey::from_pkcs8_der_with(alg, der.secret(), backend).unwrap();
            let from_pem =
                SigningKey::from_pkcs8_pem_with(alg, &pem(der.secret()), backend).unwrap();
            assert_eq!(
                from_der.thumbprint(),
                from_pem.thumbprint(),
                "{} {alg}",
                backend.name()
            );
            let signature = from_pem.sign(b"message").unwrap();
            assert!(
                from_der
                    .verifying_key()
                    .unwrap()
                    .verify(b"message", &signature),
                "{} {alg}",
                backend.name()
            );
        }
    }
}

#[test]
fn a_key_for_one_algorithm_is_refused_for_another() {
    let der = match crypto::default_backend()
        .generate(Algorithm::Es384)
        .unwrap()
    {
        PrivateKeyMaterial::Pkcs8(der) => der,
        _ => unreachable!(),
    };
    for alg in [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256] {
        assert!(
            SigningKey::from_pkcs8_der(alg, der.secret()).is_err(),
            "{alg}"
        );
    }
    assert_eq!(
        SigningKey::from_pkcs8_pem(Algorithm::Es256, "not a pem").unwrap_err(),
        KeyError::Encoding
    );
}

#[test]
fn keys_generated_on_one_backend_verify_on_the_other() {
    let backends = crypto::all_backends();
    for signer_backend in &backends {
        for verifier_backend in &backends {
            for alg in Algorithm::ALL {
                let key = SigningKey::generate_with(alg, *signer_backend).unwrap();
                let public =
                    VerifyingKey::from_jwk_with(&key.public_jwk(), *verifier_backend).unwrap();
                let signature = key.sign(b"interop").unwrap();
                assert!(
                    public.verify(b"interop", &signature),
                    "{} -> {} {alg}",
                    signer_backend.name(),
                    verifier_backend.name()
                );
            }
        }
    }
}

#[test]
fn private_jwks_import_as_signing_keys() {
    // RFC 7520 §3.2 (EC P-521 is unsupported, so the P-256 key of RFC 7515 A.3 is used) and a
    // freshly made Ed25519 key in JWK form.
    let ec = json!({
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
    });
    for backend in crypto::all_backends() {
        let key = SigningKey::from_jwk_with(&ec, backend).unwrap();
        assert_eq!(key.alg(), Algorithm::Es256);
        let mut public = ec.clone();
        public.as_object_mut().unwrap().remove("d");
        let verifying = VerifyingKey::from_jwk_with(&public, backend).unwrap();
        assert!(verifying.verify(b"jwk", &key.sign(b"jwk").unwrap()));
        assert_eq!(verifying.thumbprint(), key.thumbprint());
    }
    // A private key in a public set is unusable; a public key is not a signing key.
    let mut public = ec.clone();
    assert_eq!(
        VerifyingKey::from_jwk(&ec).unwrap_err(),
        KeyError::PrivateMembers
    );
    public.as_object_mut().unwrap().remove("d");
    assert_eq!(
        SigningKey::from_jwk(&public).unwrap_err(),
        KeyError::NotPrivate
    );
    // key_ops must allow signing.
    let mut verify_only = ec;
    verify_only["key_ops"] = json!(["verify"]);
    assert_eq!(
        SigningKey::from_jwk(&verify_only).unwrap_err(),
        KeyError::WrongKeyOps
    );
}

#[test]
fn exported_jwks_carry_kid_alg_and_use_and_import_back() {
    let keys: Vec<SigningKey> = Algorithm::ALL
        .into_iter()
        .map(|alg| SigningKey::generate(alg).unwrap().with_thumbprint_kid())
        .collect();
    let set = KeySet::new(keys.iter().map(|k| k.verifying_key().unwrap())).unwrap();
    let document = set.to_jwks();
    for (jwk, key) in document["keys"].as_array().unwrap().iter().zip(&keys) {
        assert_eq!(jwk["kid"], key.thumbprint());
        assert_eq!(jwk["alg"], key.alg().as_str());
        assert_eq!(jwk["use"], "sig");
        assert!(jwk.get("d").is_none());
    }
    let import = KeySet::from_jwks_json(document.to_string().as_bytes()).unwrap();
    assert_eq!(import.keys.len(), 5);
    assert!(import.rejected.is_empty());
    for key in &keys {
        assert_eq!(
            import.keys.find(key.kid(), key.alg()).unwrap().thumbprint(),
            key.thumbprint()
        );
    }
}

#[test]
fn a_key_set_refuses_two_keys_with_one_kid() {
    let kid = Kid::new("same").unwrap();
    let a = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(kid.clone());
    let b = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(kid);
    assert_eq!(
        KeySet::new([a.verifying_key().unwrap(), b.verifying_key().unwrap()]).unwrap_err(),
        KeyError::DuplicateKid
    );
}

#[test]
fn jwk_sets_over_the_limits_are_refused_whole() {
    let one = SigningKey::generate(Algorithm::EdDsa).unwrap().public_jwk();
    let too_many = json!({"keys": vec![one; DEFAULT_MAX_JWKS_KEYS + 1]});
    assert_eq!(
        KeySet::from_jwks_json(too_many.to_string().as_bytes()).unwrap_err(),
        KeyError::InvalidKeySet
    );
    let too_big = format!(
        r#"{{"keys":[],"pad":"{}"}}"#,
        "x".repeat(DEFAULT_MAX_JWKS_BYTES)
    );
    assert_eq!(
        KeySet::from_jwks_json(too_big.as_bytes()).unwrap_err(),
        KeyError::InvalidKeySet
    );
    for bad in [
        &br#"{"keys":{}}"#[..],
        b"[]",
        br#"{"keys":[],"keys":[]}"#,
        b"{",
    ] {
        assert_eq!(
            KeySet::from_jwks_json(bad).unwrap_err(),
            KeyError::InvalidKeySet
        );
    }
}

#[test]
fn rsa_key_policy_refuses_weak_keys() {
    let key = SigningKey::generate(Algorithm::Rs256).unwrap();
    let jwk = key.public_jwk();
    let n = jose::base64url::decode(jwk["n"].as_str().unwrap()).unwrap();
    let mut short = jwk.clone();
    short["n"] = json!(jose::base64url::encode(&n[..128]));
    assert_eq!(
        VerifyingKey::from_jwk(&short).unwrap_err(),
        KeyError::RsaTooSmall { bits: 1024 }
    );
    for e in ["AQ", "Ag", ""] {
        let mut bad = jwk.clone();
        bad["e"] = json!(e);
        assert_eq!(
            VerifyingKey::from_jwk(&bad).unwrap_err(),
            KeyError::RsaExponent,
            "{e:?}"
        );
    }
    let mut pss = jwk.clone();
    pss["alg"] = json!("PS256");
    assert_eq!(
        VerifyingKey::from_jwk(&pss).unwrap().alg(),
        Algorithm::Ps256
    );
    let mut wrong = jwk;
    wrong["alg"] = json!("ES256");
    assert_eq!(
        VerifyingKey::from_jwk(&wrong).unwrap_err(),
        KeyError::AlgorithmMismatch
    );
}
