//! The token endpoint of the binary: the success shape, threats J01 to J08, and the policy the
//! configuration file sets (resources, scopes, an absent `resource`, which clients and
//! resources an IdP may vouch for, the subject map, `private_key_jwt` clients by JWKS URL).

use std::collections::BTreeSet;
use std::sync::Arc;

use idjag_core::*;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_id_jag_yields_an_rfc9068_access_token_and_nothing_more() {
    let h = Harness::start(Setup::default()).await;
    let reply = h.redeem(&h.idp.id_jag()).await;
    h.granted(&reply);
    let claims = h.verify(reply.access_token()).await;
    assert_eq!(claims.iss.as_str(), h.base);
    assert_eq!(claims.sub.as_str(), "alice@acme");
    assert_eq!(claims.aud.as_str(), RESOURCE);
    assert_eq!(claims.client_id.as_str(), CLIENT);
    assert_eq!(claims.scope.unwrap().to_string(), "chat.history chat.read");
    assert_eq!(claims.jti.as_str().len(), 22);
    assert!(claims.exp.unix() - claims.iat.unix() <= 300);
    let (header, _) = idjag_test_support::forge::decode(reply.access_token());
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "at+jwt", "kid": "as-key-1"})
    );
    let mut body = reply.json.as_object().unwrap().clone();
    body.remove("access_token");
    let expires_in = body.remove("expires_in").unwrap().as_i64().unwrap();
    assert!((295..=300).contains(&expires_in), "{expires_in}");
    assert_eq!(
        Value::Object(body),
        json!({"token_type": "Bearer", "scope": "chat.history chat.read", "resource": RESOURCE})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j01_missing_empty_or_duplicated_assertion_is_invalid_request() {
    let h = Harness::start(Setup::default()).await;
    let auth = basic(CLIENT, SECRET);
    let headers = [
        ("content-type", wire::MEDIA_TYPE_FORM),
        ("authorization", auth.as_str()),
    ];
    let grant = format!("grant_type={}", wire::GRANT_TYPE_JWT_BEARER);
    let reply = h.post(&headers, grant.clone()).await;
    h.refused(&reply, 400, "invalid_request", "missing_parameter");
    let reply = h.post(&headers, format!("{grant}&assertion=")).await;
    h.refused(&reply, 400, "invalid_request", "missing_parameter");
    let token = h.idp.id_jag();
    let reply = h
        .post(
            &headers,
            format!("{grant}&assertion={token}&assertion={token}"),
        )
        .await;
    h.refused(&reply, 400, "invalid_request", "duplicate_parameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j02_client_authentication_failures_are_invalid_client_401() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    let grant = [
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", token.as_str()),
    ];
    let form_ct = ("content-type", wire::MEDIA_TYPE_FORM);

    let wrong = basic(CLIENT, "wrong");
    let reply = h
        .post(&[form_ct, ("authorization", &wrong)], form(&grant))
        .await;
    h.refused(&reply, 401, "invalid_client", "wrong_client_secret");
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!("Basic realm=\"{}\", charset=\"UTF-8\"", h.base)
    );
    let mut pairs = grant.to_vec();
    pairs.extend([("client_id", CLIENT), ("client_secret", "wrong")]);
    let reply = h.post(&[form_ct], form(&pairs)).await;
    h.refused(&reply, 401, "invalid_client", "wrong_client_secret");
    assert_eq!(reply.header("www-authenticate"), None);
    let reply = h.post(&[form_ct], form(&grant)).await;
    h.refused(&reply, 401, "invalid_client", "no_client_auth");
    let unknown = basic("nobody", "x");
    let reply = h
        .post(&[form_ct, ("authorization", &unknown)], form(&grant))
        .await;
    h.refused(&reply, 401, "invalid_client", "unknown_client");
    // other-agent may use client_secret_basic only (auth_methods in the file).
    let mut pairs = grant.to_vec();
    pairs.extend([("client_id", OTHER_CLIENT), ("client_secret", OTHER_SECRET)]);
    let reply = h.post(&[form_ct], form(&pairs)).await;
    h.refused(&reply, 401, "invalid_client", "auth_method_not_allowed");
    // Two methods in one request (RFC 6749 §2.3).
    let good = basic(CLIENT, SECRET);
    let mut pairs = grant.to_vec();
    pairs.extend([("client_id", CLIENT), ("client_secret", SECRET)]);
    let reply = h
        .post(&[form_ct, ("authorization", &good)], form(&pairs))
        .await;
    h.refused(&reply, 400, "invalid_request", "multiple_auth_methods");
    // client_secret_post works for chat-agent (both methods by default).
    let mut pairs = grant.to_vec();
    pairs.extend([("client_id", CLIENT), ("client_secret", SECRET)]);
    h.granted(&h.post(&[form_ct], form(&pairs)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j03_refusals_carry_one_generic_body_per_code_and_echo_nothing() {
    let h = Harness::start(Setup::default()).await;
    let now = now();
    let tokens = [
        h.idp.set(&[("aud", json!("https://other-as.example"))]),
        h.idp
            .set(&[("exp", json!(now - 3600)), ("iat", json!(now - 3900))]),
        h.idp.set(&[("client_id", json!(OTHER_CLIENT))]),
        h.idp.with_header(|hd| {
            hd.insert("typ".into(), json!("JWT"));
        }),
        format!("{}x", h.idp.id_jag()),
    ];
    let reasons = [
        "wrong_audience",
        "expired",
        "client_id_mismatch",
        "wrong_typ",
        "malformed",
    ];
    let mut bodies = Vec::new();
    for (token, reason) in tokens.iter().zip(reasons) {
        let reply = h.redeem(token).await;
        h.refused(&reply, 400, "invalid_grant", reason);
        for part in token.split('.') {
            assert!(!reply.text().contains(part), "no token echo");
        }
        assert!(!reply.text().contains("alice"));
        bodies.push(reply.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one body for every reason"
    );
    assert_eq!(
        String::from_utf8(bodies.pop().unwrap()).unwrap(),
        r#"{"error":"invalid_grant","error_description":"the authorization grant is invalid"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j04_no_refresh_token_and_expiry_within_policy_and_the_id_jag() {
    let h = Harness::start(Setup::tokens(
        "access_token_lifetime_secs = 120\nbeyond_id_jag_secs = 30",
    ))
    .await;
    let now = now();
    let short = h.idp.set(&[("exp", json!(now + 60))]);
    let claims = h.granted(&h.redeem(&short).await);
    assert_eq!(
        claims["exp"],
        now + 90,
        "capped at the ID-JAG's exp plus 30 s"
    );
    let long = h.idp.set(&[("exp", json!(now + 600))]);
    let reply = h.redeem(&long).await;
    let claims = h.granted(&reply);
    let exp = claims["exp"].as_i64().unwrap();
    assert!((now + 118..=now + 122).contains(&exp), "{exp}");
    assert!(reply.json.get("refresh_token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j05_100_distinct_valid_requests_all_succeed_and_one_id_jag_raced_100_times_once() {
    let h = Arc::new(Harness::start(Setup::default()).await);
    let tokens: Vec<String> = (0..100).map(|_| h.idp.id_jag()).collect();
    let replies = h.redeem_all(tokens).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "{:?}",
        replies.iter().find(|r| r.status != 200)
    );
    let jtis: BTreeSet<String> = replies
        .iter()
        .map(|r| idjag_test_support::forge::decode(r.access_token()).1["jti"].to_string())
        .collect();
    assert_eq!(jtis.len(), 100, "100 independent tokens");
    let token = h.idp.id_jag();
    let replies = h.redeem_all(vec![token; 100]).await;
    assert_eq!(
        replies.iter().filter(|r| r.status == 200).count(),
        1,
        "exactly one token"
    );
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json["error"], "invalid_grant");
    }
    let lines = h.audit_at_least(200);
    assert_eq!(lines.len(), 200, "one audit line per request");
    assert_eq!(
        lines.iter().filter(|l| l["decision"] == "granted").count(),
        101
    );
    assert!(
        lines
            .iter()
            .filter(|l| l["decision"] == "denied")
            .all(|l| l["reason"] == "replayed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j06_a_client_disconnecting_mid_request_leaves_no_state() {
    use tokio::io::AsyncWriteExt;
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &token),
    ]);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", h.process.port()))
        .await
        .unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\nAuthorization: {}\r\n\
         Content-Length: {}\r\n\r\n",
        wire::MEDIA_TYPE_FORM,
        basic(CLIENT, SECRET),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    drop(stream);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(h.audit().is_empty(), "no decision for an abandoned request");
    h.grants(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j07_jwt_dpop_and_other_grants_are_unsupported_grant_type() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    let auth = basic(CLIENT, SECRET);
    let headers = [
        ("content-type", wire::MEDIA_TYPE_FORM),
        ("authorization", auth.as_str()),
    ];
    for grant in [
        wire::GRANT_TYPE_JWT_DPOP,
        wire::GRANT_TYPE_TOKEN_EXCHANGE,
        wire::GRANT_TYPE_CLIENT_CREDENTIALS,
        "urn:ietf:params:oauth:grant-type:JWT-BEARER",
    ] {
        let reply = h
            .post(
                &headers,
                form(&[("grant_type", grant), ("assertion", &token)]),
            )
            .await;
        h.refused(
            &reply,
            400,
            "unsupported_grant_type",
            "unsupported_grant_type",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j08_transport_errors_are_json_with_no_store() {
    let h = Harness::start(Setup::default()).await;
    let auth = basic(CLIENT, SECRET);
    let token = h.idp.id_jag();
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &token),
    ]);
    let reply = h
        .request(
            reqwest::Method::GET,
            &h.token_url(),
            &[("authorization", &auth)],
            String::new(),
        )
        .await;
    h.refused(&reply, 405, "invalid_request", "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = h
        .post(
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            body.clone(),
        )
        .await;
    h.refused(&reply, 400, "invalid_request", "not_form_encoded");
    let huge = format!("{body}&pad={}", "a".repeat(64 * 1024));
    let reply = h
        .post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &auth),
            ],
            huge,
        )
        .await;
    h.refused(&reply, 413, "invalid_request", "body_too_large");
    let reply = h
        .post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &auth),
            ],
            format!("{body}&scope=%zz"),
        )
        .await;
    h.refused(&reply, 400, "invalid_request", "malformed_form");
    let reply = h
        .post(
            &[
                (
                    "content-type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                ),
                ("authorization", &auth),
            ],
            body,
        )
        .await;
    h.granted(&reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_grantable_of_the_requested_scope_is_invalid_scope_and_partial_is_narrowed() {
    let h = Harness::start(Setup::default()).await;
    let reply = h
        .redeem_with(&h.idp.id_jag(), &[("scope", "chat.admin")])
        .await;
    h.refused(&reply, 400, "invalid_scope", "scope_not_granted");
    let reply = h
        .redeem_with(&h.idp.id_jag(), &[("scope", "chat.read chat.admin")])
        .await;
    assert_eq!(reply.json["scope"], "chat.read");
    h.granted(&reply);
    // An ID-JAG whose scopes the resource does not grant at all, with no request scope: a
    // token with an empty scope is not issued either.
    let reply = h
        .redeem_with(
            &h.idp.set(&[("scope", json!("files.read"))]),
            &[("scope", "files.read")],
        )
        .await;
    h.refused(&reply, 400, "invalid_scope", "scope_not_granted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_resource_the_server_does_not_govern_is_invalid_target() {
    let h = Harness::start(Setup::default()).await;
    let reply = h
        .redeem_with(
            &h.idp.id_jag(),
            &[("resource", "https://files.chat.example/mcp")],
        )
        .await;
    h.refused(&reply, 400, "invalid_target", "resource_not_granted");
    let reply = h
        .redeem_with(&h.idp.id_jag(), &[("resource", RESOURCE)])
        .await;
    h.granted(&reply);
}

const SECOND: &str =
    "[[resources]]\nresource = \"https://files.chat.example/mcp\"\nscopes = [\"files.read\"]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_resource_is_bound_to_the_configured_resource_or_refused() {
    // One resource, nothing configured: bound to it.
    let h = Harness::start(Setup::default()).await;
    let claims = h.grants(&h.idp.without("resource")).await;
    assert_eq!(claims["aud"], RESOURCE);
    // Configured to refuse.
    let h = Harness::start(Setup::tokens("absent_resource = \"refuse\"")).await;
    h.invalid_grant(&h.idp.without("resource"), "resource_absent")
        .await;
    // Two resources and a default.
    let h = Harness::start(Setup {
        tokens: "absent_resource = \"bind\"\ndefault_resource = \"https://files.chat.example/mcp\""
            .into(),
        resources: SECOND.into(),
        ..Setup::default()
    })
    .await;
    let token = h
        .idp
        .set(&[("resource", Value::Null), ("scope", json!("files.read"))]);
    let claims = h.grants(&token).await;
    assert_eq!(claims["aud"], "https://files.chat.example/mcp");
    assert_eq!(claims["scope"], "files.read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_vouches_only_for_its_clients_and_resources() {
    let h = Harness::start(Setup {
        acme: "resources = [\"https://mcp.chat.example/mcp\"]".into(),
        resources: SECOND.into(),
        ..Setup::default()
    })
    .await;
    // The file lists chat-agent, other-agent and jwt-agent for Acme; mcp-server is not one.
    let token = h.idp.set(&[("client_id", json!(MCP_CLIENT))]);
    let reply = h
        .post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &basic(MCP_CLIENT, MCP_SECRET)),
            ],
            form(&[
                ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
                ("assertion", &token),
            ]),
        )
        .await;
    h.refused(
        &reply,
        400,
        "invalid_grant",
        "client_not_allowed_for_issuer",
    );
    // A resource the server governs but Acme may not vouch for.
    let token = h.idp.set(&[
        ("resource", json!("https://files.chat.example/mcp")),
        ("scope", json!("files.read")),
    ]);
    h.invalid_grant(&token, "resource_not_allowed_for_issuer")
        .await;
    h.grants(&h.idp.id_jag()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_map_maps_listed_users_and_refuses_the_others() {
    let h = Harness::start(Setup::acme(
        "subject = { claim = \"sub\", map = { \"alice@acme\" = \"alice\", \"bob@acme\" = \"bob\" } }",
    ))
    .await;
    let claims = h.grants(&h.idp.id_jag()).await;
    assert_eq!(claims["sub"], "alice");
    let token = h.idp.set(&[("sub", json!("mallory@acme"))]);
    h.invalid_grant(&token, "unknown_subject").await;

    let h = Harness::start(Setup::acme(
        "subject = { claim = \"email\", unmapped = \"use_claim\", prefix = \"acme:\" }",
    ))
    .await;
    let token = h.idp.set(&[("email", json!("carol@acme.example"))]);
    let claims = h.grants(&token).await;
    assert_eq!(claims["sub"], "acme:carol@acme.example");
    h.invalid_grant(&h.idp.id_jag(), "unknown_subject").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_key_jwt_client_authenticates_with_keys_from_its_jwks_url() {
    let h = Harness::start(Setup::default()).await;
    let client_key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("client-key-1").unwrap());
    h.test_idp.publish_client(&[&client_key]);
    let assertion = |jti: &str| {
        let now = now();
        sign_with(
            &client_key,
            json!({"alg": "ES256", "kid": "client-key-1"}),
            json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": h.base, "jti": jti, "iat": now, "exp": now + 60})
                .as_object()
                .unwrap(),
        )
    };
    let redeem = |client_assertion: String| {
        let token = h.idp.set(&[("client_id", json!(JWT_CLIENT))]);
        let h = &h;
        async move {
            h.post(
                &[("content-type", wire::MEDIA_TYPE_FORM)],
                form(&[
                    ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
                    ("assertion", &token),
                    (
                        "client_assertion_type",
                        wire::CLIENT_ASSERTION_TYPE_JWT_BEARER,
                    ),
                    ("client_assertion", &client_assertion),
                ]),
            )
            .await
        }
    };
    h.granted(&redeem(assertion("ca-1")).await);
    // A client assertion is single use (threat X02).
    let reply = redeem(assertion("ca-1")).await;
    h.refused(&reply, 401, "invalid_client", "client_assertion_replayed");
    // Signed by a key the client does not publish.
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    let now = now();
    let forged = sign_with(
        &stranger,
        json!({"alg": "ES256", "kid": "client-key-1"}),
        json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": h.base, "jti": "ca-2", "iat": now, "exp": now + 60})
            .as_object()
            .unwrap(),
    );
    let reply = redeem(forged).await;
    h.refused(&reply, 401, "invalid_client", "bad_client_assertion");
}
