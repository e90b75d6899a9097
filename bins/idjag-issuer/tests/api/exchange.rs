//! The token exchange of the binary with its own ID tokens (signed with its listed key, under
//! its issuer): the issued ID-JAG (threat X17), and threats X01 to X18 that the
//! configuration file decides, each with its exact status, code and audit reason.

use idjag_core::*;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x17_an_issued_id_jag_carries_exactly_what_was_granted() {
    let i = Server::start(Setup::default()).await;
    let reply = i
        .exchange(&i.id_token(0, "alice", CLIENT, json!({})), &[])
        .await;
    let (header, claims) = i.issued(&reply).await;
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": i.keys[0].kid().unwrap().as_str()})
    );
    assert_eq!(claims["iss"], i.base);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], AS);
    assert_eq!(claims["client_id"], CLIENT_AT_AS);
    assert_eq!(claims["resource"], RESOURCE);
    assert_eq!(claims["scope"], "chat.read");
    assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(claims.get("email").is_none() && claims.get("cnf").is_none());
    let mut body = reply.json.as_object().unwrap().clone();
    body.remove("access_token");
    assert_eq!(
        Value::Object(body),
        json!({"issued_token_type": wire::TOKEN_TYPE_ID_JAG, "token_type": "N_A", "expires_in": 300, "scope": "chat.read"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x01_client_authentication_failures() {
    let i = Server::start(Setup::default()).await;
    let id_token = i.id_token(0, "alice", CLIENT, json!({}));
    let body = i.exchange_form(&id_token, &[]);
    let form_ct = ("content-type", wire::MEDIA_TYPE_FORM);
    let reply = i
        .post(
            &[form_ct, ("authorization", &basic(CLIENT, "wrong"))],
            body.clone(),
        )
        .await;
    i.refused(&reply, 401, "invalid_client", "wrong_client_secret");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    let reply = i.post(&[form_ct], body.clone()).await;
    i.refused(&reply, 401, "invalid_client", "no_client_auth");
    let both = format!("{body}&client_id={CLIENT}&client_secret={SECRET}");
    let reply = i
        .post(&[form_ct, ("authorization", &basic(CLIENT, SECRET))], both)
        .await;
    i.refused(&reply, 400, "invalid_request", "multiple_auth_methods");
    // The secret from a file works (other-agent), with client_secret_post too.
    let other = i.id_token(0, "alice", OTHER_CLIENT, json!({}));
    let body = format!(
        "{}&client_id={OTHER_CLIENT}&client_secret={OTHER_SECRET}",
        i.exchange_form(&other, &[])
    );
    let (_, claims) = i.issued(&i.post(&[form_ct], body).await).await;
    assert_eq!(claims["client_id"], "other-agent-at-as");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x03_to_x06_subject_tokens_of_another_client_issuer_kind_or_time_are_refused() {
    let i = Server::start(Setup::default()).await;
    let now = now();
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    let kid = i.keys[0].kid().unwrap().as_str().to_owned();
    let cases: Vec<(String, &str)> = vec![
        // X03: issued to another client.
        (
            i.id_token(0, "alice", OTHER_CLIENT, json!({})),
            "subject_token_other_client",
        ),
        (
            i.id_token(0, "alice", CLIENT, json!({"azp": OTHER_CLIENT})),
            "subject_token_other_client",
        ),
        // X04: expired, badly signed, another issuer.
        (
            i.id_token(
                0,
                "alice",
                CLIENT,
                json!({"iat": now - 7200, "exp": now - 3600}),
            ),
            "subject_token_expired",
        ),
        (
            idjag_test_support::forge::jws(
                &json!({"alg": "ES256", "kid": kid}),
                &json!({"iss": i.base, "sub": "alice", "aud": CLIENT, "iat": now, "exp": now + 60}),
                Some(&stranger),
            ),
            "subject_token_bad_signature",
        ),
        (
            i.id_token(0, "alice", CLIENT, json!({"iss": "https://evil.example"})),
            "subject_token_untrusted_issuer",
        ),
        // X05: an ID-JAG presented as an ID token.
        (
            idjag_test_support::forge::jws(
                &json!({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": kid}),
                &json!({"iss": i.base, "sub": "alice", "aud": CLIENT, "iat": now, "exp": now + 60}),
                Some(&i.keys[0]),
            ),
            "subject_token_wrong_type",
        ),
    ];
    for (token, reason) in cases {
        let reply = i.exchange(&token, &[]).await;
        i.refused(&reply, 400, "invalid_grant", reason);
    }
    // X06: a refresh token is not accepted by this configuration.
    let reply = i
        .exchange(
            &i.id_token(0, "alice", CLIENT, json!({})),
            &[("subject_token_type", Some(wire::TOKEN_TYPE_REFRESH_TOKEN))],
        )
        .await;
    i.refused(
        &reply,
        400,
        "invalid_request",
        "subject_token_type_not_accepted",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x08_to_x12_request_parameters_and_policy() {
    let i = Server::start(Setup::default()).await;
    let alice = i.id_token(0, "alice", CLIENT, json!({}));
    for (changes, status, code, reason) in [
        (
            vec![("requested_token_type", None)],
            400,
            "invalid_request",
            "missing_parameter",
        ),
        (
            vec![("requested_token_type", Some(wire::TOKEN_TYPE_ACCESS_TOKEN))],
            400,
            "invalid_request",
            "unsupported_requested_token_type",
        ),
        (
            vec![("grant_type", Some(wire::GRANT_TYPE_CLIENT_CREDENTIALS))],
            400,
            "unsupported_grant_type",
            "unsupported_grant_type",
        ),
        (
            vec![("audience", None)],
            400,
            "invalid_request",
            "missing_parameter",
        ),
        (
            vec![("audience", Some("https://unknown-as.example"))],
            400,
            "invalid_target",
            "audience_not_available",
        ),
        (
            vec![("resource", Some("https://mcp.chat.example/mcp#x"))],
            400,
            "invalid_target",
            "invalid_resource",
        ),
        (
            vec![("resource", Some("https://other.example/mcp"))],
            400,
            "invalid_target",
            "resource_not_registered",
        ),
        (
            vec![("scope", Some("chat.admin"))],
            400,
            "invalid_scope",
            "scope_not_allowed",
        ),
    ] {
        let reply = i.exchange(&alice, &changes).await;
        i.refused(&reply, status, code, reason);
    }
    // The issuer itself as the audience.
    let reply = i
        .exchange(&alice, &[("audience", Some(i.base.as_str()))])
        .await;
    i.refused(&reply, 400, "invalid_target", "audience_is_this_issuer");
    // X10: an alias gives the canonical issuer as aud.
    let (_, claims) = i
        .issued(
            &i.exchange(&alice, &[("audience", Some("urn:example:chat"))])
                .await,
        )
        .await;
    assert_eq!(claims["aud"], AS);
    // X11: narrowed to what policy allows; groups widen it; deny rules win.
    let wide = [("scope", Some("chat.read chat.admin"))];
    let reply = i.exchange(&alice, &wide).await;
    assert_eq!(reply.json["scope"], "chat.read");
    i.issued(&reply).await;
    let admin = i.id_token(0, "dave", CLIENT, json!({"groups": ["chat-admins"]}));
    let reply = i.exchange(&admin, &wide).await;
    assert_eq!(reply.json["scope"], "chat.admin chat.read");
    i.issued(&reply).await;
    let offboarded = i.id_token(0, "alice", CLIENT, json!({"groups": ["offboarded"]}));
    i.refused(
        &i.exchange(&offboarded, &[]).await,
        400,
        "access_denied",
        "denied_by_rule",
    );
    let bob = i.id_token(0, "bob", CLIENT, json!({}));
    i.refused(
        &i.exchange(&bob, &[]).await,
        400,
        "access_denied",
        "denied_by_rule",
    );
    let zed = i.id_token(0, "zed", CLIENT, json!({}));
    i.refused(
        &i.exchange(&zed, &[]).await,
        400,
        "access_denied",
        "not_allowed",
    );
}

fn dpop_proof(key: &SigningKey, htu: &str, jti: &str) -> String {
    idjag_test_support::forge::jws(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}),
        &json!({"jti": jti, "htm": "POST", "htu": htu, "iat": now()}),
        Some(key),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x15_dpop_binds_the_id_jag_and_a_replayed_proof_is_refused_through_the_store() {
    let dir = idjag_test_support::process::TestDir::new();
    let i = Server::start(Setup {
        store: embedded_store(dir.path()),
        ..Setup::default()
    })
    .await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let alice = i.id_token(0, "alice", CLIENT, json!({}));
    let token_url = format!("{}/token", i.base);
    let send = |proof: String| {
        let i = &i;
        let body = i.exchange_form(&alice, &[]);
        async move {
            i.post(
                &[
                    ("content-type", wire::MEDIA_TYPE_FORM),
                    ("authorization", &basic(CLIENT, SECRET)),
                    ("dpop", &proof),
                ],
                body,
            )
            .await
        }
    };
    let proof = dpop_proof(&key, &token_url, "proof-1");
    let (_, claims) = i.issued(&send(proof.clone()).await).await;
    assert_eq!(claims["cnf"], json!({"jkt": key.thumbprint()}));
    i.refused(
        &send(proof).await,
        400,
        "invalid_dpop_proof",
        "dpop_replayed",
    );
    let wrong_uri = dpop_proof(&key, "https://elsewhere.example/token", "proof-2");
    i.refused(
        &send(wrong_uri).await,
        400,
        "invalid_dpop_proof",
        "dpop_wrong_htu",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x16_x18_malformed_requests_and_an_id_jag_redeemed_at_the_idp() {
    let i = Server::start(Setup::default()).await;
    let alice = i.id_token(0, "alice", CLIENT, json!({}));
    let auth = basic(CLIENT, SECRET);
    let body = i.exchange_form(&alice, &[]);
    let reply = i
        .post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &auth),
            ],
            format!("{body}&audience={AS}"),
        )
        .await;
    i.refused(&reply, 400, "invalid_request", "duplicate_parameter");
    let reply = i
        .post(
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            body.clone(),
        )
        .await;
    i.refused(&reply, 400, "invalid_request", "not_form_encoded");
    let huge = format!("{body}&pad={}", "a".repeat(70 * 1024));
    let reply = i
        .post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &auth),
            ],
            huge,
        )
        .await;
    i.refused(&reply, 413, "invalid_request", "body_too_large");
    // X18: an ID-JAG this IdP issued, presented to it as a JWT-bearer grant.
    let issued = i.exchange(&alice, &[]).await;
    i.issued(&issued).await;
    let id_jag = issued.json["access_token"].as_str().unwrap();
    let reply = i
        .post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &auth),
            ],
            form(&[
                ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
                ("assertion", id_jag),
            ]),
        )
        .await;
    i.refused(&reply, 400, "invalid_grant", "id_jag_redeemed_at_idp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_jwks_and_the_admin_listener() {
    let i = Server::start(Setup::default()).await;
    let md = i.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(md.status, 200);
    assert_eq!(md.json["issuer"], i.base);
    assert_eq!(md.json["token_endpoint"], format!("{}/token", i.base));
    assert_eq!(md.json["jwks_uri"], format!("{}/jwks", i.base));
    assert_eq!(
        md.json["grant_types_supported"],
        json!([wire::GRANT_TYPE_TOKEN_EXCHANGE])
    );
    assert_eq!(
        md.json["identity_chaining_requested_token_types_supported"],
        json!([wire::TOKEN_TYPE_ID_JAG])
    );
    assert_eq!(
        i.get("/.well-known/openid-configuration").await.json,
        md.json
    );
    assert_eq!(i.jwks_kids().await, [i.keys[0].kid().unwrap().as_str()]);
    let reply = i.admin("/healthz").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok\n"));
    let reply = i.admin("/readyz").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ready\n"));
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(i.get(path).await.status, 404, "{path} is not public");
    }
    i.issued(
        &i.exchange(&i.id_token(0, "alice", CLIENT, json!({})), &[])
            .await,
    )
    .await;
    let metrics = i.admin("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for line in [
        r#"idjag_issuer_token_exchanges_total{outcome="issued",reason="granted"} 1"#,
        r#"idjag_issuer_store_up{backend="memory"} 1"#,
        r#"idjag_issuer_build_info{version=""#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly_with_every_audit_line_written() {
    let mut i = Server::start(Setup::default()).await;
    i.issued(
        &i.exchange(&i.id_token(0, "alice", CLIENT, json!({})), &[])
            .await,
    )
    .await;
    let process = &mut i.process;
    let status = tokio::task::block_in_place(|| process.terminate()).expect("it was running");
    assert!(status.success(), "{status:?}");
    assert_eq!(i.process.audit().len(), 1);
    assert!(
        idjag_test_support::process::http_status(i.process.port(), "/jwks").is_none(),
        "nothing listens once it has exited"
    );
}
