//! Threat V08 at the token endpoint: every Wycheproof JWS vector presented as an
//! `assertion` over HTTP is refused, with no token, no replay entry and one audit event.
//!
//! The vectors are read in place from `../shared/vectors/wycheproof` (or `IDJAG_VECTORS_DIR`),
//! never copied into the repository; idjag-core's `tests/wycheproof.rs` checks each one
//! against its expected result through the JWS verify path on every backend. Under `CI=true`
//! missing vectors fail the run; elsewhere the test says plainly that it skipped.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::*;

fn load(name: &str) -> Option<Value> {
    let dir = std::env::var_os("IDJAG_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/wycheproof")
        });
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "Wycheproof vectors not found at {} (CI=true makes this fatal)",
                dir.display()
            )
        }
        Err(_) => {
            eprintln!("SKIPPED: Wycheproof vectors not found at {}", dir.display());
            None
        }
    }
}

#[tokio::test]
async fn v08_wycheproof_json_web_signature_vectors_are_refused_at_the_token_endpoint() {
    let Some(file) = load("json_web_signature_test.json") else {
        return;
    };
    let vectors: Vec<String> = file["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["tests"].as_array().unwrap())
        .map(|test| test["jws"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(vectors.len(), 401);

    // None of them is an ID-JAG of a trusted issuer (their payloads are not claim sets, their
    // keys are not the issuer's): each is refused, with no token and no replay entry.
    let h = Harness::start(Setup::default()).await;
    for jws in &vectors {
        let reply = h.redeem(jws).await;
        assert_eq!(reply.status, 400);
        // Three vectors are the empty string: an omitted assertion (threat J01).
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
