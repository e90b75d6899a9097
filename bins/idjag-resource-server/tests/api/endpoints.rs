//! The other endpoints of the binary: RFC 8414 metadata at both well-known forms, the JWKS,
//! RFC 7662 introspection of an issued and of a foreign token, the refusing authorization
//! endpoint, `/healthz`, `/readyz` and `/metrics`.

use idjag_core::*;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_served_at_the_inserted_and_the_appended_well_known_forms() {
    let h = Harness::start(Setup {
        issuer_path: "/tenant-a".into(),
        ..Setup::default()
    })
    .await;
    let inserted = h
        .get("/.well-known/oauth-authorization-server/tenant-a")
        .await;
    let appended = h
        .get("/tenant-a/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(inserted.status, 200);
    assert_eq!(appended.status, 200);
    assert_eq!(inserted.json, appended.json);
    let md = inserted.json;
    let base = &h.base;
    assert_eq!(md["issuer"], *base);
    assert_eq!(md["token_endpoint"], format!("{base}/token"));
    assert_eq!(md["introspection_endpoint"], format!("{base}/introspect"));
    assert_eq!(md["jwks_uri"], format!("{base}/jwks.json"));
    assert_eq!(md["authorization_endpoint"], format!("{base}/authorize"));
    assert_eq!(
        md["grant_types_supported"],
        json!([wire::GRANT_TYPE_JWT_BEARER])
    );
    assert_eq!(
        md["authorization_grant_profiles_supported"],
        json!([wire::GRANT_PROFILE_ID_JAG])
    );
    assert_eq!(md["response_types_supported"], json!([]));
    assert_eq!(
        md["scopes_supported"],
        json!(["chat.history", "chat.read", "chat.write"])
    );
    assert!(
        !md.to_string().contains(&h.idp.issuer),
        "no trusted issuer listed"
    );
    // The token endpoint lives under the issuer's path; the ID-JAG's aud is the issuer.
    h.grants(&h.idp.id_jag()).await;
    // The refusing authorization endpoint never redirects.
    let reply = h
        .get("/tenant-a/authorize?response_type=code&client_id=x")
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"], "unsupported_response_type");
    assert_eq!(reply.header("location"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_publishes_the_signing_key_and_the_published_keys() {
    let h = Harness::start(Setup::default()).await;
    let reply = h.get("/jwks.json").await;
    assert_eq!(reply.status, 200);
    let kids: Vec<&str> = reply.json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["as-key-1", "as-key-2"]);
    assert_eq!(reply.json["keys"][0], h.as_key.public_jwk());
    assert_eq!(reply.json["keys"][1], h.as_next_key.public_jwk());
    for key in reply.json["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none(), "no private member");
    }
}

async fn introspect(h: &Harness, auth: Option<String>, token: Option<&str>) -> Reply {
    let mut headers = vec![("content-type", wire::MEDIA_TYPE_FORM)];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    let body = token.map(|t| form(&[("token", t)])).unwrap_or_default();
    h.request(
        reqwest::Method::POST,
        &format!("{}/introspect", h.base),
        &headers,
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_of_an_issued_token_and_of_a_foreign_one() {
    let h = Harness::start(Setup::default()).await;
    let reply = h.redeem(&h.idp.id_jag()).await;
    h.granted(&reply);
    let token = reply.access_token();
    let claims = h.verify(token).await;

    // The resource server (introspect_all_tokens) sees it, with exactly these members.
    let seen = introspect(&h, Some(basic(MCP_CLIENT, MCP_SECRET)), Some(token)).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.header("cache-control"), Some("no-store"));
    assert_eq!(
        seen.json,
        json!({
            "active": true,
            "client_id": CLIENT,
            "sub": "alice@acme",
            "aud": RESOURCE,
            "scope": "chat.history chat.read",
            "iss": h.base,
            "exp": claims.exp.unix(),
            "iat": claims.iat.unix(),
            "jti": claims.jti.as_str(),
            "token_type": "Bearer",
        })
    );
    assert!(seen.json["aud"].is_string(), "a single-valued aud");
    // Its own client sees it too; another client sees nothing.
    let own = introspect(&h, Some(basic(CLIENT, SECRET)), Some(token)).await;
    assert_eq!(own.json["active"], true);
    let other = introspect(&h, Some(basic(OTHER_CLIENT, OTHER_SECRET)), Some(token)).await;
    assert_eq!(other.json, json!({"active": false}));

    // Foreign tokens: the ID-JAG itself, an access token signed by another key with the same
    // kid, garbage: all inactive, never an error that tells them apart.
    let stranger = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("as-key-1").unwrap());
    let (header, payload) = idjag_test_support::forge::decode(token);
    let forged = idjag_test_support::forge::jws(&header, &payload, Some(&stranger));
    for foreign in [h.idp.id_jag(), forged, "not-a-token".to_owned()] {
        let reply = introspect(&h, Some(basic(MCP_CLIENT, MCP_SECRET)), Some(&foreign)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json, json!({"active": false}));
    }

    // Callers must authenticate; the token parameter is required.
    let reply = introspect(&h, None, Some(token)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json["error"], "invalid_client");
    let reply = introspect(&h, Some(basic(MCP_CLIENT, "wrong")), Some(token)).await;
    assert_eq!(reply.status, 401);
    assert!(reply.header("www-authenticate").is_some());
    let reply = introspect(&h, Some(basic(MCP_CLIENT, MCP_SECRET)), None).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_on_the_admin_listener_only() {
    let h = Harness::start(Setup::default()).await;
    let reply = h.admin("/healthz").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok\n"));
    let reply = h.admin("/readyz").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ready\n"));
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(h.get(path).await.status, 404, "{path} is not public");
    }
    h.grants(&h.idp.id_jag()).await;
    h.invalid_grant(
        &h.idp.set(&[("aud", json!("https://x.example"))]),
        "wrong_audience",
    )
    .await;
    let metrics = h.admin("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for line in [
        r#"idjag_resource_redemptions_total{outcome="granted",reason="ok"} 1"#,
        r#"idjag_resource_redemptions_total{outcome="denied",reason="wrong_audience"} 1"#,
        r#"idjag_resource_store_up{backend="memory"} 1"#,
        r#"idjag_resource_build_info{version=""#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(
        text.contains("idjag_http_server_request_duration_seconds"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly_with_every_audit_line_written() {
    let mut h = Harness::start(Setup::default()).await;
    h.grants(&h.idp.id_jag()).await;
    let process = &mut h.process;
    let status = tokio::task::block_in_place(|| process.terminate()).expect("it was running");
    assert!(status.success(), "{status:?}");
    assert_eq!(h.audit().len(), 1);
    assert!(
        idjag_test_support::process::http_status(h.process.port(), "/jwks.json").is_none(),
        "nothing listens once it has exited"
    );
}
