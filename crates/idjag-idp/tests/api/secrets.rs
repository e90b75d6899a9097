//! Threat X20: over a full set of successes and failures, no secret, subject token,
//! client assertion, DPoP proof or issued ID-JAG appears in any `tracing` output (every
//! level, every target: ours, axum's, hyper's, reqwest's) or in any error body.

use idjag_core::*;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn x20_tracing_never_sees_secrets_or_tokens() {
    let h = start().await;
    let mut secrets: Vec<String> = vec![AGENT_SECRET.into(), OTHER_SECRET.into()];
    let mut error_bodies = Vec::new();

    // Successes, by every authentication method and subject-token type, with DPoP.
    let basic = h.valid();
    let post = h.valid().post_secret(AGENT, AGENT_SECRET);
    let assertion = h.client_assertion(json!(h.base), "x20-1");
    let pkjwt = h
        .valid()
        .subject(&h.id_token("alice", JWT_AGENT), wire::TOKEN_TYPE_ID_TOKEN)
        .assertion(&assertion);
    let refresh = h.alice_refresh_token(AGENT);
    let by_refresh = h
        .valid()
        .subject(refresh.secret(), wire::TOKEN_TYPE_REFRESH_TOKEN);
    let dpop_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let proof = jws(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": dpop_key.public_jwk()}),
        &json!({"jti": "x20-dpop", "htm": "POST", "htu": h.token_url(), "iat": NOW}),
        Some(&dpop_key),
    );
    let dpop = h.valid().header("dpop", &proof);
    for form in [&basic, &post, &pkjwt, &by_refresh, &dpop] {
        let answer = h.post(form).await;
        secrets.push(answer.id_jag().to_owned());
        secrets.push(
            form.params
                .iter()
                .find(|(n, _)| n == "subject_token")
                .unwrap()
                .1
                .clone(),
        );
    }
    secrets.extend([
        assertion.clone(),
        refresh.secret().to_owned(),
        proof.clone(),
    ]);

    // Failures: wrong secrets, replays, bad and foreign subject tokens, policy refusals.
    let failures = [
        h.valid().basic(AGENT, "guessed-secret-1"),
        h.valid().post_secret(OTHER, "guessed-secret-2"),
        pkjwt.clone(),
        dpop.clone(),
        h.valid()
            .subject(&h.id_token("alice", OTHER), wire::TOKEN_TYPE_ID_TOKEN),
        h.valid().subject(
            "rt.not-a-real-refresh-token-value",
            wire::TOKEN_TYPE_REFRESH_TOKEN,
        ),
        h.valid().subject(
            "opaque-garbage-subject-token-value",
            wire::TOKEN_TYPE_ID_TOKEN,
        ),
        h.valid_for("mallory"),
        h.valid().set("scope", "nothing.allowed"),
        h.valid()
            .set("grant_type", wire::GRANT_TYPE_JWT_BEARER)
            .set("assertion", &secrets[2]),
    ];
    secrets.extend(["guessed-secret-1".into(), "guessed-secret-2".into()]);
    secrets.push("rt.not-a-real-refresh-token-value".into());
    secrets.push("opaque-garbage-subject-token-value".into());
    for form in &failures {
        let answer = h.post(form).await;
        assert_ne!(answer.status, 200, "{}", answer.raw);
        error_bodies.push(answer.raw);
        for (name, value) in &form.params {
            if name == "subject_token" {
                secrets.push(value.clone());
            }
        }
    }

    let logs = h.logs.text();
    assert!(
        logs.contains("\"target\":\"idjag::audit\""),
        "the capture works"
    );
    assert_eq!(h.take_audit().len(), 5 + failures.len());
    for secret in &secrets {
        // The whole value, its form encoding and, for JWTs, the signature segment.
        let mut needles = vec![secret.clone(), form_encode(secret)];
        if let Some(signature) = secret.rsplit('.').next().filter(|_| secret.contains('.')) {
            needles.push(signature.to_owned());
        }
        for needle in needles.iter().filter(|n| n.len() >= 8) {
            assert!(!logs.contains(needle.as_str()), "a secret reached the logs");
            for body in &error_bodies {
                assert!(
                    !body.contains(needle.as_str()),
                    "a secret reached an error body"
                );
            }
        }
    }
    // Basic credentials travel base64-encoded: neither header value is in the logs.
    assert!(!logs.contains(&basic_header_value()));
}

fn basic_header_value() -> String {
    basic(AGENT, AGENT_SECRET)["Basic ".len()..].to_owned()
}
