//! No token or secret in the process's logs, audit lines or error bodies (threats X20, J03, G26),
//! even at `trace` level: every grant, refusal, client authentication and introspection of a
//! full session is run, then the whole stdout and stderr are searched for every credential
//! that crossed the wire. The audit lines are one JSON object each, with the documented
//! fields and the `jti` hashed.

use idjag_core::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::*;

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_secret_reaches_the_logs_the_audit_or_an_error_body() {
    for format in ["json", "text"] {
        let h = Harness::start(Setup {
            log_level: Some("trace".into()),
            log_format: Some(format.into()),
            ..Setup::default()
        })
        .await;
        let mut credentials: Vec<String> =
            vec![SECRET.into(), OTHER_SECRET.into(), MCP_SECRET.into()];
        let mut bodies = Vec::new();

        let good = h.idp.id_jag();
        let reply = h.redeem(&good).await;
        h.granted(&reply);
        let access_token = reply.access_token().to_owned();
        credentials.push(good.clone());
        credentials.push(access_token.clone());
        // Refusals of every kind: replay, bad signature, wrong audience, wrong secret,
        // malformed, and a secret posted in the body.
        let mut forged = good.clone();
        forged.push('A');
        let wrong_aud = h.idp.set(&[("aud", json!("https://x.example"))]);
        for token in [&good, &forged, &wrong_aud] {
            let reply = h.redeem(token).await;
            assert_eq!(reply.status, 400);
            credentials.push(token.clone());
            bodies.push(reply.text());
        }
        let another = h.idp.id_jag();
        credentials.push(another.clone());
        let reply = h
            .post(
                &[
                    ("content-type", wire::MEDIA_TYPE_FORM),
                    ("authorization", &basic(CLIENT, "a-wrong-secret-1b9f")),
                ],
                form(&[
                    ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
                    ("assertion", &another),
                ]),
            )
            .await;
        assert_eq!(reply.status, 401);
        credentials.push("a-wrong-secret-1b9f".into());
        bodies.push(reply.text());
        let reply = h
            .post(
                &[("content-type", wire::MEDIA_TYPE_FORM)],
                form(&[
                    ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
                    ("assertion", &another),
                    ("client_id", CLIENT),
                    ("client_secret", SECRET),
                ]),
            )
            .await;
        assert_eq!(reply.status, 200);
        credentials.push(reply.access_token().to_owned());
        // Introspection.
        let reply = h
            .request(
                reqwest::Method::POST,
                &format!("{}/introspect", h.base),
                &[
                    ("content-type", wire::MEDIA_TYPE_FORM),
                    ("authorization", &basic(MCP_CLIENT, MCP_SECRET)),
                ],
                form(&[("token", &access_token)]),
            )
            .await;
        assert_eq!(reply.json["active"], true);

        let output = format!("{}\n{}", h.process.stdout(), h.process.stderr());
        assert!(output.contains("grant decision"), "the audit ran");
        assert!(
            format == "text"
                || h.process.stderr().contains("\"level\":\"TRACE\"")
                || h.process.stderr().contains("\"level\":\"DEBUG\""),
            "debug or trace logging is on"
        );
        let mut pieces: Vec<String> = Vec::new();
        for credential in &credentials {
            pieces.push(credential.clone());
            // Each part of a JWT, too (the header part is shared by many tokens of one key,
            // so only the payload and signature are searched for).
            if credential.matches('.').count() == 2 {
                pieces.extend(credential.split('.').skip(1).map(str::to_owned));
            }
        }
        for piece in pieces.iter().filter(|p| p.len() >= 8) {
            assert!(
                !output.contains(piece.as_str()),
                "{format}: a credential leaked into the output"
            );
            for body in &bodies {
                assert!(
                    !body.contains(piece.as_str()),
                    "a credential leaked into an error body"
                );
            }
        }
        assert!(
            !output.contains("alice@acme"),
            "subjects are hashed in the audit"
        );

        // The audit lines: one JSON object each, documented fields only, jti hashed.
        let lines = h.audit_at_least(6);
        assert_eq!(lines.len(), 6);
        let first = lines[0].as_object().unwrap();
        let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "client_address",
                "client_id",
                "decision",
                "event",
                "iss",
                "jti_sha256",
                "kid",
                "reason",
                "resource",
                "scope",
                "server",
                "sub",
                "timestamp",
                "trace_id",
                "type"
            ]
        );
        let (_, claims) = idjag_test_support::forge::decode(&good);
        assert_eq!(
            first["jti_sha256"],
            sha256_hex(claims["jti"].as_str().unwrap())
        );
        assert_eq!(first["sub"], sha256_hex("alice@acme"));
        assert_eq!(first["kid"], "idp-key-1");
        assert_eq!(first["iss"], Value::from(h.idp.issuer.clone()));
        assert_eq!(lines[1]["reason"], "replayed");
        assert_eq!(first["client_address"], "127.0.0.1");
        assert_eq!(
            first["trace_id"].as_str().unwrap().len(),
            32,
            "the request's trace id"
        );
    }
}
