//! The binary: a verdict on stdin or an argument, JSON output, exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_idjag-inspect");

fn inspect(args: &[&str], stdin: Option<&str>) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn inspect_gives_a_verdict_and_exits_non_zero_when_the_token_fails() {
    use idjag_core::{Algorithm, SigningKey};
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let now = i64::try_from(
        std::time::UNIX_EPOCH
            .elapsed()
            .unwrap_or_default()
            .as_secs(),
    )
    .unwrap();
    let claims = serde_json::json!({
        "iss": "https://idp.example", "sub": "alice", "aud": "https://as.example",
        "client_id": "agent", "jti": "j1", "iat": now, "exp": now + 300
    });
    let token = key
        .sign_jwt(Some("oauth-id-jag+jwt"), &claims)
        .unwrap()
        .secret()
        .to_owned();
    let jwks = std::env::temp_dir().join(format!("idjag-inspect-{}.json", std::process::id()));
    std::fs::write(
        &jwks,
        serde_json::json!({ "keys": [key.public_jwk()] }).to_string(),
    )
    .unwrap();
    let jwks = jwks.to_str().unwrap();

    let (code, out) = inspect(&["--jwks", jwks, "-"], Some(&format!("{token}\n")));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("kind         ID-JAG"), "{out}");
    assert!(out.contains("verdict      VALID: every check passed and the signature verifies"));
    assert!(!out.contains(&token));

    let (code, out) = inspect(&["--json", &token], None);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["kind"], "id_jag");
    assert_eq!(report["signature_verified"], false);

    let other = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let foreign = other
        .sign_jwt(Some("oauth-id-jag+jwt"), &claims)
        .unwrap()
        .secret()
        .to_owned();
    let (code, out) = inspect(&["--jwks", jwks, &foreign], None);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL IDJAG-02"), "{out}");
    assert!(
        out.contains("verdict      INVALID: fails IDJAG-02"),
        "{out}"
    );

    let (code, out) = inspect(&["not-a-token"], None);
    assert_eq!(code, Some(1));
    assert!(out.contains("FAIL JWT-05"), "{out}");
}
