//! Runs every case of the Wycheproof files in `../shared/vectors/wycheproof/` through the
//! verify path, on every compiled backend (threat V08).
//!
//! - The JOSE files (`json_web_signature_test.json`, `json_web_key_test.json`) go through JWK
//!   Set import under the key policy and [`verify_jws`]: strict parsing, header policy,
//!   algorithm allow-list, key lookup and signature. Their payloads (`"foo"`) are not JWT claim
//!   sets, so the claim layer, which the other tests cover, is the only step not exercised.
//! - The primitive files go through JWK import and [`VerifyingKey::verify`], which applies the
//!   fixed-length rule before the backend.
//!
//! Every `invalid` case must be rejected, with no exception. A `valid` case may be rejected
//! only for one of the deliberate reasons in [`deliberately_rejected`]. `acceptable` cases may
//! go either way.
//!
//! The vectors are read in place, never copied into this repository. Set
//! `IDJAG_VECTORS_DIR` to point elsewhere. Under `CI=true` missing vectors fail the run;
//! elsewhere the runner says plainly that it skipped.

use std::path::{Path, PathBuf};

use idjag_core::crypto::CryptoBackend;
use idjag_core::jose::DEFAULT_MAX_TOKEN_BYTES;
use idjag_core::*;
use serde_json::{Value, json};

const SUPPORTED: [&str; 5] = ["ES256", "ES384", "RS256", "PS256", "EdDSA"];

/// Why a case Wycheproof calls valid may be rejected here. Anything else fails the run.
fn deliberately_rejected(file: &str, tc_id: u64, header_alg: Option<&str>) -> Option<&'static str> {
    // HMAC (HS256/384/512) and the algorithms outside idjag's set (RS384, RS512, PS384,
    // PS512, ES512) are not representable on the asymmetric path: not supported, by design.
    if header_alg.is_some_and(|alg| !SUPPORTED.contains(&alg)) {
        return Some("algorithm deliberately unsupported");
    }
    // tcId 372 and 373 insert a character outside the base64url alphabet into the header or
    // payload and are marked valid; idjag's strict base64url refuses them (threat V26). Stricter
    // than Wycheproof on purpose.
    if file == "json_web_signature_test.json" && matches!(tc_id, 372 | 373) {
        return Some("strict base64url");
    }
    None
}

fn vectors_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("IDJAG_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/wycheproof")
        });
    if dir.join("json_web_signature_test.json").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "Wycheproof vectors not found at {} (CI=true makes this fatal)",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: Wycheproof vectors not found at {}; set IDJAG_VECTORS_DIR",
        dir.display()
    );
    None
}

fn load(dir: &Path, file: &str) -> Value {
    let text = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_slice(&text).unwrap()
}

#[derive(Default, Debug)]
struct Tally {
    accepted_valid: usize,
    rejected_invalid: usize,
    rejected_valid_deliberately: usize,
    acceptable: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(
        &mut self,
        file: &str,
        tc_id: u64,
        expected: &str,
        ok: bool,
        header_alg: Option<&str>,
        detail: &str,
    ) {
        match (expected, ok) {
            ("valid", true) => self.accepted_valid += 1,
            ("invalid", false) => self.rejected_invalid += 1,
            ("acceptable", _) => self.acceptable += 1,
            ("valid", false) if deliberately_rejected(file, tc_id, header_alg).is_some() => {
                self.rejected_valid_deliberately += 1
            }
            _ => self.failures.push(format!(
                "{file} tcId {tc_id}: expected {expected}, got ok={ok} ({detail})"
            )),
        }
    }

    fn finish(self, what: &str) {
        eprintln!(
            "{what}: {} valid accepted, {} invalid rejected, {} valid rejected deliberately, {} acceptable",
            self.accepted_valid,
            self.rejected_invalid,
            self.rejected_valid_deliberately,
            self.acceptable
        );
        assert!(
            self.failures.is_empty(),
            "{what}:\n{}",
            self.failures.join("\n")
        );
        assert!(
            self.accepted_valid + self.rejected_invalid > 0,
            "{what}: no case ran"
        );
    }
}

/// The public half of a JWK, or of every JWK of a set.
fn public_set(group: &Value) -> Value {
    let source = group
        .get("public")
        .or_else(|| group.get("private"))
        .cloned()
        .unwrap_or(json!({"keys": []}));
    let keys = match source.get("keys") {
        Some(Value::Array(keys)) => keys.clone(),
        _ => vec![source],
    };
    let strip = |mut key: Value| {
        if group.get("public").is_none() {
            for member in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
                key.as_object_mut().map(|k| k.remove(member));
            }
        }
        key
    };
    json!({"keys": keys.into_iter().map(strip).collect::<Vec<_>>()})
}

fn header_alg(jws: &str) -> Option<String> {
    let header = jws.split('.').next()?;
    let bytes = jose::base64url::decode(header).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("alg")?
        .as_str()
        .map(str::to_owned)
}

fn run_jose_file(dir: &Path, file: &str, backend: &'static dyn CryptoBackend) {
    let doc = load(dir, file);
    let mut tally = Tally::default();
    for group in doc["testGroups"].as_array().unwrap() {
        let set = public_set(group);
        let keys = KeySet::from_jwks_json_with(set.to_string().as_bytes(), backend)
            .map(|import| import.keys)
            .unwrap_or_default();
        for case in group["tests"].as_array().unwrap() {
            let jws = case["jws"].as_str().unwrap();
            let outcome = verify_jws(jws, &keys, AlgorithmSet::all(), DEFAULT_MAX_TOKEN_BYTES);
            let detail = match &outcome {
                Ok(_) => "accepted".to_owned(),
                Err(e) => format!("{e:?}"),
            };
            let alg = header_alg(jws);
            tally.record(
                file,
                case["tcId"].as_u64().unwrap(),
                case["result"].as_str().unwrap(),
                outcome.is_ok(),
                alg.as_deref(),
                &detail,
            );
        }
    }
    tally.finish(&format!("{file} on {}", backend.name()));
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A JWK for groups that give only the raw EC point (`wx`, `wy` in hex, minimal length).
fn ec_jwk_from_raw(public: &Value) -> Value {
    let (crv, len) = match public["curve"].as_str().unwrap() {
        "secp256r1" => ("P-256", 32),
        "secp384r1" => ("P-384", 48),
        other => panic!("unexpected curve {other}"),
    };
    let coordinate = |name: &str| {
        let bytes = hex(public[name].as_str().unwrap());
        let bytes = &bytes[bytes.len().saturating_sub(len)..];
        let mut padded = vec![0u8; len - bytes.len()];
        padded.extend_from_slice(bytes);
        jose::base64url::encode(padded)
    };
    json!({"kty": "EC", "crv": crv, "x": coordinate("wx"), "y": coordinate("wy")})
}

fn run_primitive_file(
    dir: &Path,
    file: &str,
    jwk_member: &str,
    alg: &str,
    backend: &'static dyn CryptoBackend,
) {
    let doc = load(dir, file);
    let mut tally = Tally::default();
    for group in doc["testGroups"].as_array().unwrap() {
        let mut jwk = group
            .get(jwk_member)
            .cloned()
            .unwrap_or_else(|| ec_jwk_from_raw(&group["publicKey"]));
        jwk["alg"] = json!(alg);
        let key = VerifyingKey::from_jwk_with(&jwk, backend);
        for case in group["tests"].as_array().unwrap() {
            let ok = match &key {
                Ok(key) => key.verify(
                    &hex(case["msg"].as_str().unwrap()),
                    &hex(case["sig"].as_str().unwrap()),
                ),
                Err(_) => false,
            };
            let detail = if key.is_err() {
                "key refused"
            } else {
                "verify"
            };
            tally.record(
                file,
                case["tcId"].as_u64().unwrap(),
                case["result"].as_str().unwrap(),
                ok,
                None,
                detail,
            );
        }
    }
    tally.finish(&format!("{file} on {}", backend.name()));
}

#[test]
fn v08_json_web_signature_vectors() {
    let Some(dir) = vectors_dir() else { return };
    for backend in crypto::all_backends() {
        run_jose_file(&dir, "json_web_signature_test.json", backend);
    }
}

#[test]
fn v08_json_web_key_vectors() {
    let Some(dir) = vectors_dir() else { return };
    for backend in crypto::all_backends() {
        run_jose_file(&dir, "json_web_key_test.json", backend);
    }
}

#[test]
fn v08_ecdsa_p256_p1363_vectors() {
    let Some(dir) = vectors_dir() else { return };
    for backend in crypto::all_backends() {
        run_primitive_file(
            &dir,
            "ecdsa_secp256r1_sha256_p1363_test.json",
            "publicKeyJwk",
            "ES256",
            backend,
        );
    }
}

#[test]
fn v08_ecdsa_p384_p1363_vectors() {
    let Some(dir) = vectors_dir() else { return };
    for backend in crypto::all_backends() {
        run_primitive_file(
            &dir,
            "ecdsa_secp384r1_sha384_p1363_test.json",
            "publicKeyJwk",
            "ES384",
            backend,
        );
    }
}

#[test]
fn v08_ed25519_vectors() {
    let Some(dir) = vectors_dir() else { return };
    for backend in crypto::all_backends() {
        run_primitive_file(&dir, "ed25519_test.json", "publicKeyJwk", "EdDSA", backend);
    }
}

#[test]
fn v08_rsa_pkcs1_vectors() {
    let Some(dir) = vectors_dir() else { return };
    for backend in crypto::all_backends() {
        run_primitive_file(
            &dir,
            "rsa_signature_2048_sha256_test.json",
            "keyJwk",
            "RS256",
            backend,
        );
    }
}

#[test]
fn v08_rsa_pss_vectors() {
    let Some(dir) = vectors_dir() else { return };
    for backend in crypto::all_backends() {
        run_primitive_file(
            &dir,
            "rsa_pss_2048_sha256_mgf1_32_test.json",
            "publicKeyJwk",
            "PS256",
            backend,
        );
    }
}

#[test]
fn the_roca_key_is_refused_for_its_fingerprint() {
    let Some(dir) = vectors_dir() else { return };
    let doc = load(&dir, "json_web_key_test.json");
    let group = doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["comment"] == "jws_rsa_roca_key")
        .expect("the ROCA group");
    let import = KeySet::from_jwks_json(public_set(group).to_string().as_bytes()).unwrap();
    assert!(import.keys.is_empty());
    assert_eq!(import.rejected[0].reason, KeyError::RsaRoca);
}
