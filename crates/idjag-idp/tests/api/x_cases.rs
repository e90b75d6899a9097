//! Threats X01 to X20, over HTTP. Every refusal asserts the status, the OAuth
//! error code, that no token was issued (no `access_token` in the answer) and exactly one
//! denial audit event with its reason code.

use std::sync::Arc;
use std::time::Duration;

use idjag_core::server::InMemoryReplayCache;
use idjag_core::*;
use idjag_idp::*;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn x01_missing_wrong_or_public_client_authentication_is_invalid_client() {
    let h = start().await;
    let answer = h
        .refused(
            &h.valid().no_auth(),
            401,
            "invalid_client",
            "no_client_auth",
        )
        .await;
    assert!(answer.headers.get("www-authenticate").is_none());

    let answer = h
        .refused(
            &h.valid().basic(AGENT, "wrong"),
            401,
            "invalid_client",
            "wrong_client_secret",
        )
        .await;
    assert_eq!(
        answer.headers["www-authenticate"],
        format!("Basic realm=\"{}\", charset=\"UTF-8\"", h.base)
    );
    h.refused(
        &h.valid().post_secret(AGENT, "wrong"),
        401,
        "invalid_client",
        "wrong_client_secret",
    )
    .await;
    h.refused(
        &h.valid().post_secret("nobody", "x"),
        401,
        "invalid_client",
        "unknown_client",
    )
    .await;
    let public = h.valid().no_auth().set("client_id", PUBLIC);
    h.refused(&public, 401, "invalid_client", "public_client_refused")
        .await;
}

#[tokio::test]
async fn x01_two_authentication_methods_in_one_request_are_refused() {
    let h = start().await;
    let basic_and_post = h
        .valid()
        .set("client_id", AGENT)
        .set("client_secret", AGENT_SECRET);
    h.refused(
        &basic_and_post,
        400,
        "invalid_request",
        "multiple_auth_methods",
    )
    .await;
    let assertion = h.client_assertion(json!(h.base), "x01-both");
    let basic_and_assertion = h
        .valid()
        .set(
            "client_assertion_type",
            wire::CLIENT_ASSERTION_TYPE_JWT_BEARER,
        )
        .set("client_assertion", &assertion);
    h.refused(
        &basic_and_assertion,
        400,
        "invalid_request",
        "multiple_auth_methods",
    )
    .await;
}

#[tokio::test]
async fn x02_client_assertion_audience_and_replay_are_enforced() {
    let h = start().await;
    let jwt_agent = |assertion: &str| {
        h.valid()
            .subject(&h.id_token("alice", JWT_AGENT), wire::TOKEN_TYPE_ID_TOKEN)
            .assertion(assertion)
    };
    let injected = h.client_assertion(json!([h.base, "https://attacker.example"]), "x02-a");
    h.refused(
        &jwt_agent(&injected),
        401,
        "invalid_client",
        "bad_client_assertion",
    )
    .await;
    let endpoint = h.client_assertion(json!(h.token_url()), "x02-b");
    h.refused(
        &jwt_agent(&endpoint),
        401,
        "invalid_client",
        "bad_client_assertion",
    )
    .await;

    let good = h.client_assertion(json!(h.base), "x02-c");
    h.post(&jwt_agent(&good)).await.id_jag();
    h.expect_issued();
    h.refused(
        &jwt_agent(&good),
        401,
        "invalid_client",
        "client_assertion_replayed",
    )
    .await;
}

#[tokio::test]
async fn x02_token_endpoint_audience_only_when_enabled() {
    let h = start_with(None, |b| b.accept_token_endpoint_as_assertion_audience()).await;
    let endpoint = h.client_assertion(json!(h.token_url()), "x02-d");
    let form = h
        .valid()
        .subject(&h.id_token("alice", JWT_AGENT), wire::TOKEN_TYPE_ID_TOKEN)
        .assertion(&endpoint);
    h.post(&form).await.id_jag();
    h.expect_issued();
}

#[tokio::test]
async fn x03_subject_id_token_of_another_client_is_invalid_grant() {
    let h = start().await;
    // The same user's ID token, issued to another client of this IdP.
    let other = h
        .valid()
        .subject(&h.id_token("alice", OTHER), wire::TOKEN_TYPE_ID_TOKEN);
    h.refused(&other, 400, "invalid_grant", "subject_token_other_client")
        .await;
    // `aud` is the agent but `azp` names another client.
    let mut claims = h.users.claims("alice", &id(AGENT)).unwrap();
    claims.azp = Some(id(OTHER));
    let azp = h.users.sign(&claims).unwrap();
    let form = h.valid().subject(azp.secret(), wire::TOKEN_TYPE_ID_TOKEN);
    h.refused(&form, 400, "invalid_grant", "subject_token_other_client")
        .await;
    // And the other client presenting the agent's ID token.
    let swapped = h.valid().basic(OTHER, OTHER_SECRET);
    h.refused(&swapped, 400, "invalid_grant", "subject_token_other_client")
        .await;
}

#[tokio::test]
async fn x04_expired_forged_unsigned_or_foreign_subject_tokens_are_invalid_grant() {
    let h = start().await;
    let expired = h.valid();
    h.clock.advance(Duration::from_secs(600 + 31));
    h.refused(&expired, 400, "invalid_grant", "subject_token_expired")
        .await;
    h.clock.set_unix(NOW);

    let claims = h.users.claims("alice", &id(AGENT)).unwrap();
    let impostor = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(h.idp.current_signing_key().kid().unwrap().clone());
    let forged = impostor.sign_jwt(Some("JWT"), &claims).unwrap();
    let form = h
        .valid()
        .subject(forged.secret(), wire::TOKEN_TYPE_ID_TOKEN);
    h.refused(&form, 400, "invalid_grant", "subject_token_bad_signature")
        .await;

    let claims_json = serde_json::to_value(&claims).unwrap();
    for alg in ["none", "None", "NONE"] {
        let unsigned = jws(&json!({"alg": alg, "typ": "JWT"}), &claims_json, None);
        let form = h.valid().subject(&unsigned, wire::TOKEN_TYPE_ID_TOKEN);
        h.refused(&form, 400, "invalid_grant", "subject_token_invalid")
            .await;
    }

    let mut foreign = claims_json.clone();
    foreign["iss"] = json!("https://evil.example");
    let foreign = jws(
        &json!({"alg": "ES256", "typ": "JWT"}),
        &foreign,
        Some(&h.idp.current_signing_key()),
    );
    let form = h.valid().subject(&foreign, wire::TOKEN_TYPE_ID_TOKEN);
    h.refused(
        &form,
        400,
        "invalid_grant",
        "subject_token_untrusted_issuer",
    )
    .await;
}

#[tokio::test]
async fn x05_an_id_jag_or_access_token_labelled_as_id_token_is_invalid_grant() {
    let h = start().await;
    let id_jag = h.post(&h.valid()).await.id_jag().to_owned();
    h.expect_issued();
    let form = h.valid().subject(&id_jag, wire::TOKEN_TYPE_ID_TOKEN);
    h.refused(&form, 400, "invalid_grant", "subject_token_wrong_type")
        .await;

    // Tokens that would pass as ID tokens in every claim, signed by this IdP's own key:
    // only their `typ` (RFC 8725 §3.12) refuses them.
    let claims = serde_json::to_value(h.users.claims("alice", &id(AGENT)).unwrap()).unwrap();
    let key = h.idp.current_signing_key();
    for typ in [
        "oauth-id-jag+jwt",
        "application/oauth-id-jag+jwt",
        "at+jwt",
        "dpop+jwt",
    ] {
        let token = jws(&json!({"alg": "ES256", "typ": typ}), &claims, Some(&key));
        let form = h.valid().subject(&token, wire::TOKEN_TYPE_ID_TOKEN);
        h.refused(&form, 400, "invalid_grant", "subject_token_wrong_type")
            .await;
    }
    let control = jws(&json!({"alg": "ES256", "typ": "JWT"}), &claims, Some(&key));
    h.post(&h.valid().subject(&control, wire::TOKEN_TYPE_ID_TOKEN))
        .await
        .id_jag();
    h.expect_issued();
}

#[tokio::test]
async fn x06_subject_token_type_must_match_the_token() {
    let h = start().await;
    let refresh = h.alice_refresh_token(AGENT);
    let labelled_id_token = h
        .valid()
        .subject(refresh.secret(), wire::TOKEN_TYPE_ID_TOKEN);
    h.refused(
        &labelled_id_token,
        400,
        "invalid_grant",
        "subject_token_invalid",
    )
    .await;
    let labelled_refresh = h
        .valid()
        .subject(&h.id_token("alice", AGENT), wire::TOKEN_TYPE_REFRESH_TOKEN);
    h.refused(
        &labelled_refresh,
        400,
        "invalid_grant",
        "subject_token_unknown",
    )
    .await;
    let unknown_type = h
        .valid()
        .set("subject_token_type", wire::TOKEN_TYPE_ACCESS_TOKEN);
    h.refused(
        &unknown_type,
        400,
        "invalid_request",
        "unsupported_subject_token_type",
    )
    .await;
}

#[tokio::test]
async fn x07_refresh_tokens_are_bound_live_and_rebuilt_fresh() {
    let h = start().await;
    let alice = Subject::new("alice").unwrap();
    h.refresh
        .set_user(h.users.user("alice").unwrap().principal());
    let until = NumericDate::from_unix(NOW + 3600).unwrap();
    let with = |token: &RefreshToken| {
        h.valid()
            .subject(token.secret(), wire::TOKEN_TYPE_REFRESH_TOKEN)
    };

    let other = h
        .refresh
        .issue(RefreshTokenRecord::new(id(OTHER), alice.clone(), until));
    h.refused(
        &with(&other),
        400,
        "invalid_grant",
        "subject_token_other_client",
    )
    .await;
    let revoked = h
        .refresh
        .issue(RefreshTokenRecord::new(id(AGENT), alice.clone(), until));
    h.refresh.revoke(&revoked);
    h.refused(
        &with(&revoked),
        400,
        "invalid_grant",
        "subject_token_revoked",
    )
    .await;
    let expired = h.refresh.issue(RefreshTokenRecord::new(
        id(AGENT),
        alice.clone(),
        NumericDate::from_unix(NOW).unwrap(),
    ));
    h.refused(
        &with(&expired),
        400,
        "invalid_grant",
        "subject_token_expired",
    )
    .await;

    let live = h
        .refresh
        .issue(RefreshTokenRecord::new(id(AGENT), alice.clone(), until));
    let claims = h
        .validator(CHAT_AS)
        .validate(h.post(&with(&live)).await.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    h.expect_issued();

    // The user's record changes: the next ID-JAG shows the new email, and losing the group
    // loses access.
    h.refresh.set_user(
        SubjectPrincipal::new(alice.clone())
            .with_email("alice@new.example")
            .with_groups(["staff"]),
    );
    let claims = h
        .validator(CHAT_AS)
        .validate(h.post(&with(&live)).await.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.email.as_deref(), Some("alice@new.example"));
    h.expect_issued();
    h.refresh
        .set_user(SubjectPrincipal::new(alice.clone()).with_email("alice@new.example"));
    h.refused(&with(&live), 400, "access_denied", "not_allowed")
        .await;

    h.refresh.disable_user(&alice);
    h.refused(&with(&live), 400, "invalid_grant", "subject_user_disabled")
        .await;
}

#[tokio::test]
async fn x07_refresh_tokens_need_a_store() {
    let h = start().await;
    let form = h
        .valid()
        .subject("rt.anything", wire::TOKEN_TYPE_REFRESH_TOKEN);
    // The harness has a store; an IdP without one refuses the type itself.
    h.refused(&form, 400, "invalid_grant", "subject_token_unknown")
        .await;
    let bare = IdJagIssuer::builder(
        Issuer::new("https://idp.example").unwrap(),
        SigningKeys::generate_es256().unwrap(),
        Arc::new(idjag_core::server::StaticClientRegistry::new().with(
            idjag_core::server::RegisteredClient::with_secret(
                id(AGENT),
                &ClientSecret::new(AGENT_SECRET),
            ),
        )),
        Arc::new(TomlPolicy::from_toml_str(POLICY).unwrap()),
    )
    .build()
    .unwrap();
    let request = http::Request::post("https://idp.example/token")
        .header("content-type", wire::MEDIA_TYPE_FORM)
        .header("authorization", basic(AGENT, AGENT_SECRET))
        .body(form.no_auth().body().into_bytes())
        .unwrap();
    let response = bare.handle(request).await;
    assert_eq!(response.status(), 400);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "this IdP does not accept refresh tokens"
    );
}

#[tokio::test]
async fn x08_requested_token_type_and_grant_type_are_exact() {
    let h = start().await;
    h.refused(
        &h.valid().remove("requested_token_type"),
        400,
        "invalid_request",
        "missing_parameter",
    )
    .await;
    for other in [
        wire::TOKEN_TYPE_ACCESS_TOKEN,
        wire::TOKEN_TYPE_ID_TOKEN,
        "id-jag",
    ] {
        let form = h.valid().set("requested_token_type", other);
        h.refused(
            &form,
            400,
            "invalid_request",
            "unsupported_requested_token_type",
        )
        .await;
    }
    for grant in [
        "authorization_code",
        "client_credentials",
        "urn:example:grant",
    ] {
        let form = h.valid().set("grant_type", grant);
        h.refused(
            &form,
            400,
            "unsupported_grant_type",
            "unsupported_grant_type",
        )
        .await;
    }
    h.refused(
        &h.valid().remove("grant_type"),
        400,
        "invalid_request",
        "missing_grant_type",
    )
    .await;
}

#[tokio::test]
async fn x09_audience_is_required_single_known_and_not_this_idp() {
    let h = start().await;
    h.refused(
        &h.valid().remove("audience"),
        400,
        "invalid_request",
        "missing_parameter",
    )
    .await;
    for unknown in [
        "https://auth.unknown.example",
        "https://auth.chat.example/",
        "https://AUTH.chat.example",
        "https://auth.chat.example.evil",
    ] {
        let form = h.valid().set("audience", unknown);
        h.refused(&form, 400, "invalid_target", "audience_not_available")
            .await;
    }
    let twice = h.valid().add("audience", MAIL_AS);
    h.refused(&twice, 400, "invalid_request", "duplicate_parameter")
        .await;
    let joined = h.valid().set("audience", &format!("{CHAT_AS} {MAIL_AS}"));
    h.refused(&joined, 400, "invalid_request", "multiple_audiences")
        .await;
    let itself = h.valid().set("audience", &h.base);
    h.refused(&itself, 400, "invalid_target", "audience_is_this_issuer")
        .await;
    // A client without a client id at an audience cannot reach it, with the same answer as
    // for an unknown audience.
    let other_to_mail = h
        .valid()
        .basic(OTHER, OTHER_SECRET)
        .subject(&h.id_token("alice", OTHER), wire::TOKEN_TYPE_ID_TOKEN)
        .set("audience", MAIL_AS)
        .remove("resource");
    let answer = h
        .refused(
            &other_to_mail,
            400,
            "invalid_target",
            "audience_not_available",
        )
        .await;
    assert_eq!(
        answer.body["error_description"],
        "the audience is not available"
    );
}

#[tokio::test]
async fn x10_an_audience_alias_yields_the_canonical_issuer() {
    let h = start().await;
    let answer = h.post(&h.valid().set("audience", CHAT_ALIAS)).await;
    let claims = h
        .validator(CHAT_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.aud.as_str(), CHAT_AS);
    assert_eq!(decode(answer.id_jag()).1["aud"], CHAT_AS);
    assert_eq!(h.expect_issued()["audience"], CHAT_AS);
}

#[tokio::test]
async fn x11_scope_is_narrowed_to_the_allowed_subset() {
    let h = start().await;
    let wider = h
        .valid()
        .set("scope", "chat.read chat.write mail.read profile");
    let answer = h.post(&wider).await;
    assert_eq!(answer.body["scope"], "chat.read");
    let claims = h
        .validator(CHAT_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.scope.unwrap().to_string(), "chat.read");
    assert_eq!(h.expect_issued()["scope"], "chat.read");

    // A deny rule takes chat.history away from contractors.
    let bob = h.valid_for("bob");
    let answer = h.post(&bob).await;
    assert_eq!(answer.body["scope"], "chat.read");
    h.expect_issued();

    let nothing = h.valid().set("scope", "chat.write mail.read");
    h.refused(&nothing, 400, "invalid_scope", "scope_not_allowed")
        .await;
    let malformed = h.valid().set("scope", "chat.read  chat.history");
    h.refused(&malformed, 400, "invalid_scope", "malformed_scope")
        .await;
    let quoted = h.valid().set("scope", "chat.\"read\"");
    h.refused(&quoted, 400, "invalid_scope", "malformed_scope")
        .await;
}

#[tokio::test]
async fn x11_users_outside_the_policy_and_denied_users_get_access_denied() {
    let h = start().await;
    h.refused(&h.valid_for("eve"), 400, "access_denied", "not_allowed")
        .await;
    h.refused(
        &h.valid_for("mallory"),
        400,
        "access_denied",
        "denied_by_rule",
    )
    .await;
}

#[tokio::test]
async fn x12_resources_must_be_absolute_registered_and_allowed() {
    let h = start().await;
    for (resource, reason) in [
        ("https://mcp.chat.example/mcp#frag", "invalid_resource"),
        ("/mcp", "invalid_resource"),
        ("mcp.chat.example", "invalid_resource"),
        (MAIL_MCP, "resource_not_registered"),
        ("https://mcp.chat.example/mcp/", "resource_not_registered"),
        (CHAT_ADMIN, "resource_not_allowed"),
    ] {
        let form = h.valid().set("resource", resource);
        h.refused(&form, 400, "invalid_target", reason).await;
    }
    // One bad resource among good ones refuses the request.
    let mixed = h.valid().add("resource", CHAT_ADMIN);
    h.refused(&mixed, 400, "invalid_target", "resource_not_allowed")
        .await;
}

/// A policy that rewrites authorization details: it narrows each `actions` list to `read`.
#[derive(Debug)]
struct NarrowingPolicy(TomlPolicy);

impl Policy for NarrowingPolicy {
    fn evaluate<'a>(
        &'a self,
        request: &'a PolicyRequest<'a>,
    ) -> BoxFuture<'a, Result<Grant, PolicyDenial>> {
        let result = self.0.decide(request).map(|mut grant| {
            grant.authorization_details = grant.authorization_details.map(|details| {
                details
                    .into_iter()
                    .map(|d| {
                        let mut object = d.as_object().clone();
                        object.insert("actions".into(), json!(["read"]));
                        AuthorizationDetail::new(object).unwrap()
                    })
                    .collect()
            });
            grant
        });
        Box::pin(std::future::ready(result))
    }
}

#[tokio::test]
async fn x13_authorization_details_are_parsed_checked_and_echoed() {
    let h = start().await;
    for (value, code, reason) in [
        (
            "not json",
            "invalid_request",
            "malformed_authorization_details",
        ),
        (
            r#"{"type":"chat_channel"}"#,
            "invalid_request",
            "malformed_authorization_details",
        ),
        (
            r#"[{"type":"chat_channel"}], "x": 1"#,
            "invalid_request",
            "malformed_authorization_details",
        ),
        (
            r#"[{"actions":["read"]}]"#,
            "invalid_authorization_details",
            "invalid_authorization_detail",
        ),
        (
            r#"[{"type":"payment"}]"#,
            "invalid_authorization_details",
            "authorization_details_not_allowed",
        ),
    ] {
        let form = h.valid().set("authorization_details", value);
        h.refused(&form, 400, code, reason).await;
    }

    let details = r#"[{"type":"chat_channel","channel":"general","actions":["read","write"]}]"#;
    let answer = h
        .post(&h.valid().set("authorization_details", details))
        .await;
    let expected: Value = serde_json::from_str(details).unwrap();
    assert_eq!(answer.body["authorization_details"], expected);
    let claims = h
        .validator(CHAT_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(
        serde_json::to_value(&claims.authorization_details).unwrap(),
        expected
    );
    h.expect_issued();

    let policy = NarrowingPolicy(TomlPolicy::from_toml_str(POLICY).unwrap());
    let h = start_with(Some(Arc::new(policy)), |b| b).await;
    let answer = h
        .post(&h.valid().set("authorization_details", details))
        .await;
    let modified = json!([{"type": "chat_channel", "channel": "general", "actions": ["read"]}]);
    assert_eq!(answer.body["authorization_details"], modified);
    let claims = h
        .validator(CHAT_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(
        serde_json::to_value(&claims.authorization_details).unwrap(),
        modified
    );
}

#[tokio::test]
async fn x14_step_up_rules_answer_insufficient_user_authentication() {
    let h = start().await;
    let admin = |user: &str| h.valid_for(user).set("scope", "chat.read chat.admin");
    let answer = h
        .refused(
            &admin("alice"),
            400,
            "insufficient_user_authentication",
            "step_up_required",
        )
        .await;
    assert_eq!(answer.body["max_age"], 300);
    assert_eq!(answer.body["acr_values"], MFA);

    let fresh = admin("carol");
    let answer = h.post(&fresh).await;
    assert_eq!(answer.body["scope"], "chat.admin chat.read");
    let claims = h
        .validator(CHAT_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.acr.as_deref(), Some(MFA));
    h.expect_issued();

    // The same ID token five minutes and one second after the login: too old for admin.
    h.clock.advance(Duration::from_secs(301));
    let answer = h
        .refused(
            &fresh,
            400,
            "insufficient_user_authentication",
            "step_up_required",
        )
        .await;
    assert_eq!(answer.body["max_age"], 300);
    // Without the admin scope the same token is fine.
    h.post(&fresh.set("scope", "chat.read")).await.id_jag();
    h.expect_issued();
}

fn dpop_proof(key: &SigningKey, htm: &str, htu: &str, iat: i64, jti: &str) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": key.public_jwk()});
    let claims = json!({"jti": jti, "htm": htm, "htu": htu, "iat": iat});
    jws(&header, &claims, Some(key))
}

#[tokio::test]
async fn x15_dpop_proofs_are_validated_and_bind_the_id_jag() {
    let h = start().await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let url = h.token_url();
    let with = |proof: &str| h.valid().header("dpop", proof);

    let cases: Vec<(String, &str)> = vec![
        (dpop_proof(&key, "GET", &url, NOW, "d1"), "dpop_wrong_htm"),
        (
            dpop_proof(&key, "POST", "https://idp.example/token", NOW, "d2"),
            "dpop_wrong_htu",
        ),
        (
            dpop_proof(&key, "POST", &format!("{url}/other"), NOW, "d3"),
            "dpop_wrong_htu",
        ),
        (dpop_proof(&key, "POST", &url, NOW - 61, "d4"), "dpop_stale"),
        (dpop_proof(&key, "POST", &url, NOW + 31, "d5"), "dpop_stale"),
        (
            {
                let mut jwk = key.public_jwk();
                jwk["d"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
                let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
                let claims = json!({"jti": "d6", "htm": "POST", "htu": url, "iat": NOW});
                jws(&header, &claims, Some(&key))
            },
            "dpop_bad_key",
        ),
        (
            {
                let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()});
                let claims = json!({"jti": "d7", "htm": "POST", "htu": url, "iat": NOW});
                jws(&header, &claims, None)
            },
            "dpop_malformed",
        ),
        (
            {
                let header = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk()});
                let claims = json!({"jti": "d8", "htm": "POST", "htu": url, "iat": NOW});
                format!("{}AAAA", jws(&header, &claims, None))
            },
            "dpop_malformed",
        ),
        (
            {
                let other = SigningKey::generate(Algorithm::Es256).unwrap();
                let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
                let claims = json!({"jti": "d9", "htm": "POST", "htu": url, "iat": NOW});
                jws(&header, &claims, Some(&other))
            },
            "dpop_bad_signature",
        ),
        (
            {
                let header = json!({"typ": "JWT", "alg": "ES256", "jwk": key.public_jwk()});
                let claims = json!({"jti": "d10", "htm": "POST", "htu": url, "iat": NOW});
                jws(&header, &claims, Some(&key))
            },
            "dpop_wrong_typ",
        ),
        (
            {
                let header = json!({"typ": "dpop+jwt", "alg": "ES256"});
                let claims = json!({"jti": "d11", "htm": "POST", "htu": url, "iat": NOW});
                jws(&header, &claims, Some(&key))
            },
            "dpop_bad_key",
        ),
    ];
    for (proof, reason) in cases {
        h.refused(&with(&proof), 400, "invalid_dpop_proof", reason)
            .await;
    }
    let two = with(&dpop_proof(&key, "POST", &url, NOW, "d12"))
        .header("dpop", &dpop_proof(&key, "POST", &url, NOW, "d13"));
    h.refused(&two, 400, "invalid_dpop_proof", "dpop_multiple_proofs")
        .await;

    // A valid proof (the query part of htu is ignored, RFC 9449 §4.3) binds the ID-JAG.
    let proof = dpop_proof(&key, "POST", &format!("{url}?x=1"), NOW - 5, "d14");
    let answer = h.post(&with(&proof)).await;
    let claims = h
        .validator(CHAT_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.cnf.unwrap().jkt.unwrap(), key.thumbprint());
    assert_eq!(h.expect_issued()["dpop_bound"], true);
    // The same proof again is a replay.
    h.refused(&with(&proof), 400, "invalid_dpop_proof", "dpop_replayed")
        .await;
    // Without DPoP there is no cnf.
    let claims = h
        .validator(CHAT_AS)
        .validate(h.post(&h.valid()).await.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.cnf, None);
}

/// Threat X21: the IdP records a DPoP proof's `jti` only for a request that passed every
/// other check, so a refused request neither burns the proof nor fills the replay store.
#[tokio::test]
async fn x21_a_dpop_proof_is_spent_only_by_a_request_that_otherwise_passed() {
    let cache = Arc::new(InMemoryReplayCache::new(
        100,
        TestClock::at_unix(NOW).shared(),
    ));
    let store = cache.clone();
    let h = start_with(None, move |b| b.dpop_replay_cache(store)).await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let proof = dpop_proof(&key, "POST", &h.token_url(), NOW, "x21-once");
    let with = |form: Form| form.header("dpop", &proof);

    // Refused after the proof was checked: by the subject token, the audience, the policy and
    // the scope. None spends the proof, none writes to the store.
    let refusals = [
        (
            with(h.valid().subject("not.a.token", wire::TOKEN_TYPE_ID_TOKEN)),
            "invalid_grant",
            "subject_token_invalid",
        ),
        (
            with(h.valid().set("audience", "https://auth.unknown.example")),
            "invalid_target",
            "audience_not_available",
        ),
        (with(h.valid_for("eve")), "access_denied", "not_allowed"),
        (
            with(h.valid().set("scope", "nothing.allowed")),
            "invalid_scope",
            "scope_not_allowed",
        ),
    ];
    for (form, code, reason) in &refusals {
        h.refused(form, 400, code, reason).await;
    }
    assert_eq!(cache.len(), 0, "a refused request recorded its DPoP jti");

    // The same proof then binds a request that passes, exactly once.
    let answer = h.post(&with(h.valid())).await;
    let claims = h
        .validator(CHAT_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.cnf.unwrap().jkt.unwrap(), key.thumbprint());
    assert_eq!(h.expect_issued()["dpop_bound"], true);
    assert_eq!(cache.len(), 1);
    assert_eq!(
        cache.holder_len(AGENT),
        0,
        "no per-holder count without a quota"
    );
    h.refused(&with(h.valid()), 400, "invalid_dpop_proof", "dpop_replayed")
        .await;
    // A replayed proof on a request refused anyway reports the first refusal, and spends
    // nothing either.
    h.refused(&refusals[3].0, 400, "invalid_scope", "scope_not_allowed")
        .await;
    assert_eq!(cache.len(), 1);
}

/// Threat X22: single-use `jti`s of each kind go to their own store, each client within its
/// quota there; a shared store keeps the kinds apart by namespace.
#[tokio::test]
async fn x22_single_use_kinds_have_their_own_stores_and_per_client_quotas() {
    let clock = TestClock::at_unix(NOW);
    let assertions = Arc::new(InMemoryReplayCache::new(100, clock.shared()));
    let proofs = Arc::new(InMemoryReplayCache::new(100, clock.shared()).with_per_holder_limit(2));
    let (a, p) = (assertions.clone(), proofs.clone());
    let h = start_with(None, move |b| {
        b.client_assertion_replay_cache(a).dpop_replay_cache(p)
    })
    .await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let proof = |jti: &str| dpop_proof(&key, "POST", &h.token_url(), NOW, jti);

    // A private_key_jwt request with a DPoP proof: one entry in each store. The proof's jti
    // equals the assertion's, and neither spends the other.
    let pkjwt = h
        .valid()
        .subject(&h.id_token("alice", JWT_AGENT), wire::TOKEN_TYPE_ID_TOKEN)
        .assertion(&h.client_assertion(json!(h.base), "x22-same"))
        .header("dpop", &proof("x22-same"));
    h.post(&pkjwt).await.id_jag();
    h.expect_issued();
    assert_eq!((assertions.len(), proofs.len()), (1, 1));

    // The chat agent's DPoP quota is 2: its third live proof is refused (fail closed), and
    // another client's proofs are not affected.
    for jti in ["x22-a1", "x22-a2"] {
        h.post(&h.valid().header("dpop", &proof(jti)))
            .await
            .id_jag();
        h.expect_issued();
    }
    assert_eq!(proofs.holder_len(AGENT), 2);
    h.refused(
        &h.valid().header("dpop", &proof("x22-a3")),
        503,
        "temporarily_unavailable",
        "replay_store_unavailable",
    )
    .await;
    let other = h
        .valid()
        .subject(&h.id_token("alice", OTHER), wire::TOKEN_TYPE_ID_TOKEN)
        .basic(OTHER, OTHER_SECRET)
        .header("dpop", &proof("x22-o1"));
    h.post(&other).await.id_jag();
    h.expect_issued();
    assert_eq!(proofs.holder_len(OTHER), 1);
    assert_eq!(assertions.len(), 1, "basic authentication records nothing");

    // Once the agent's proofs expire (iat + 90 s), its quota is back.
    h.clock.set_unix(NOW + 91);
    clock.set_unix(NOW + 91);
    let fresh = dpop_proof(&key, "POST", &h.token_url(), NOW + 91, "x22-a4");
    h.post(&h.valid().header("dpop", &fresh)).await.id_jag();
    h.expect_issued();

    // One shared store for both kinds: the DPoP jti lives in its own namespace there.
    let shared = Arc::new(InMemoryReplayCache::new(
        100,
        TestClock::at_unix(NOW).shared(),
    ));
    let store = shared.clone();
    let h = start_with(None, move |b| b.replay_cache(store)).await;
    let pkjwt = h
        .valid()
        .subject(&h.id_token("alice", JWT_AGENT), wire::TOKEN_TYPE_ID_TOKEN)
        .assertion(&h.client_assertion(json!(h.base), "x22-shared"))
        .header(
            "dpop",
            &dpop_proof(&key, "POST", &h.token_url(), NOW, "x22-shared"),
        );
    h.post(&pkjwt).await.id_jag();
    assert_eq!(shared.len(), 2);
}

/// Threat X23: a request without `scope` gets an ID-JAG that names the allowed scopes, or is
/// refused when the audience says so; never a scope-less ID-JAG that the resource AS would
/// fill with its own defaults.
#[tokio::test]
async fn x23_an_id_jag_for_a_request_without_scope_names_the_allowed_scopes_or_is_refused() {
    let unscoped = |h: &Harness| {
        h.valid()
            .set("audience", MAIL_AS)
            .set("resource", MAIL_MCP)
            .remove("scope")
    };
    let h = start().await;
    let answer = h.post(&unscoped(&h)).await;
    assert_eq!(answer.body["scope"], "mail.read", "{}", answer.raw);
    let (_, payload) = decode(answer.id_jag());
    assert_eq!(
        payload,
        json!({
            "iss": h.base, "sub": "alice", "aud": MAIL_AS, "client_id": "agent-at-mail",
            "jti": payload["jti"], "iat": NOW, "exp": NOW + 300,
            "resource": MAIL_MCP, "scope": "mail.read", "tenant": "acme",
            "auth_time": NOW, "amr": ["pwd"],
        })
    );
    assert_eq!(h.expect_issued()["scope"], "mail.read");

    // The audience refuses requests without scope: invalid_scope, nothing issued.
    let policy = POLICY.replace(
        "resources = [\"https://mcp.mail.example/mcp\"]",
        "resources = [\"https://mcp.mail.example/mcp\"]\nabsent_scope = \"refuse\"",
    );
    assert_ne!(policy, POLICY);
    let h = start_with(
        Some(Arc::new(TomlPolicy::from_toml_str(&policy).unwrap())),
        |b| b,
    )
    .await;
    h.refused(&unscoped(&h), 400, "invalid_scope", "scope_not_allowed")
        .await;
    let asked = h.post(&unscoped(&h).set("scope", "mail.read")).await;
    let (_, payload) = decode(asked.id_jag());
    assert_eq!(payload["scope"], "mail.read");
    h.expect_issued();
}

#[tokio::test]
async fn x16_malformed_bodies_are_refused_before_any_processing() {
    let h = start().await;
    let valid = h.valid();
    let headers = &valid.headers;

    let duplicate = format!("{}&scope=chat.read", valid.body());
    let answer = h
        .send(duplicate.into_bytes(), Some(wire::MEDIA_TYPE_FORM), headers)
        .await;
    answer.assert_error(400, "invalid_request");
    h.expect_denied("duplicate_parameter");

    for content_type in [Some("application/json"), Some("multipart/form-data"), None] {
        let answer = h
            .send(valid.body().into_bytes(), content_type, headers)
            .await;
        answer.assert_error(400, "invalid_request");
        h.expect_denied("not_form_encoded");
    }

    let bad_escape = format!("{}&x=%zz", valid.body());
    let answer = h
        .send(
            bad_escape.into_bytes(),
            Some(wire::MEDIA_TYPE_FORM),
            headers,
        )
        .await;
    answer.assert_error(400, "invalid_request");
    h.expect_denied("malformed_form");

    let padding = "a".repeat(DEFAULT_MAX_BODY_BYTES);
    let too_large = format!("{}&pad={padding}", valid.body());
    let answer = h
        .send(too_large.into_bytes(), Some(wire::MEDIA_TYPE_FORM), headers)
        .await;
    answer.assert_error(413, "invalid_request");
    h.expect_denied("body_too_large");

    // The same request, well-formed, goes through: nothing of the refusals was kept.
    h.post(&valid).await.id_jag();
    h.expect_issued();
}

#[tokio::test]
async fn x17_issued_token_invariants_hold() {
    let h = start().await;
    let mut jtis = std::collections::HashSet::new();
    for _ in 0..200 {
        let answer = h.post(&h.valid()).await;
        assert_eq!(answer.body["token_type"], "N_A");
        assert_eq!(answer.body["issued_token_type"], wire::TOKEN_TYPE_ID_JAG);
        assert!(answer.body.get("refresh_token").is_none());
        assert_eq!(answer.headers["cache-control"], "no-store");
        let (header, payload) = decode(answer.id_jag());
        assert_eq!(header["typ"], wire::TYP_ID_JAG);
        assert_eq!(
            header["kid"],
            h.idp.current_signing_key().kid().unwrap().as_str()
        );
        for claim in ["iss", "sub", "aud", "client_id", "jti", "exp", "iat"] {
            assert!(payload.get(claim).is_some(), "{claim}");
        }
        assert!(payload["aud"].is_string());
        let lifetime = payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap();
        assert!(lifetime <= 300);
        assert!(jtis.insert(payload["jti"].as_str().unwrap().to_owned()));
        h.expect_issued();
    }
}

#[tokio::test]
async fn x18_the_idp_never_redeems_its_own_id_jag() {
    let h = start().await;
    let id_jag = h.post(&h.valid()).await.id_jag().to_owned();
    h.expect_issued();
    let redeem = h
        .valid()
        .set("grant_type", wire::GRANT_TYPE_JWT_BEARER)
        .set("assertion", &id_jag);
    let answer = h
        .refused(&redeem, 400, "invalid_grant", "id_jag_redeemed_at_idp")
        .await;
    assert_eq!(
        answer.body["error_description"],
        "ID-JAGs are redeemed at the resource authorization server, not at the IdP"
    );
    let other_assertion = redeem.set("assertion", &h.id_token("alice", AGENT));
    h.refused(
        &other_assertion,
        400,
        "unsupported_grant_type",
        "unsupported_grant_type",
    )
    .await;
}

#[tokio::test]
async fn x19_keys_are_published_before_they_sign_and_after_they_stop() {
    let h = start().await;
    let jwks_kids = || async {
        let jwks: Value = h
            .http
            .get(h.idp.jwks_uri().as_str())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let signing_kid = |answer: &Answer| {
        decode(answer.id_jag()).0["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let lead = RotationTiming::DEFAULT_LEAD_TIME.as_secs() as i64;
    let retention = RotationTiming::DEFAULT_RETENTION.as_secs() as i64;

    let old = h
        .idp
        .current_signing_key()
        .kid()
        .unwrap()
        .as_str()
        .to_owned();
    assert_eq!(jwks_kids().await, [old.as_str()]);

    let staged = h
        .idp
        .stage_signing_key(SigningKey::generate(Algorithm::Es256).unwrap())
        .unwrap();
    assert_eq!(staged.state, KeyState::Next);
    assert_eq!(staged.published_at, NOW);
    assert_eq!(staged.signs_from, NOW + lead);
    let new = staged.kid.as_str().to_owned();
    // Published at once, not yet signing.
    assert_eq!(jwks_kids().await, [old.clone(), new.clone()]);
    h.clock.set_unix(NOW + lead - 1);
    let before = h.post(&h.valid()).await;
    assert_eq!(signing_kid(&before), old);

    // After the lead time the new key signs; the old one is retired but still published.
    h.clock.set_unix(NOW + lead);
    let after = h.post(&h.valid()).await;
    assert_eq!(signing_kid(&after), new);
    assert_eq!(jwks_kids().await, [old.clone(), new.clone()]);
    let states: Vec<KeyState> = h.idp.key_status().iter().map(|s| s.state).collect();
    assert_eq!(states, [KeyState::Retired, KeyState::Current]);

    // The last token the old key signed still validates until it expires.
    h.clock.set_unix(NOW + lead - 1 + 300 + 29);
    h.validator(CHAT_AS).validate(before.id_jag()).unwrap();
    h.validator(CHAT_AS).validate(after.id_jag()).unwrap();

    // The old key stays published for the retention, then leaves the JWKS.
    h.clock.set_unix(NOW + lead + retention - 1);
    assert_eq!(jwks_kids().await, [old.clone(), new.clone()]);
    let status = h.idp.key_status();
    assert_eq!(status[0].retired_at, Some(NOW + lead));
    assert_eq!(status[0].unpublished_at, Some(NOW + lead + retention));
    h.clock.set_unix(NOW + lead + retention);
    assert_eq!(jwks_kids().await, [new.as_str()]);
    assert_eq!(h.idp.key_status().len(), 1);
    h.take_audit();
}

#[tokio::test]
async fn x19_a_second_rotation_waits_for_the_first() {
    let h = start().await;
    h.idp
        .stage_signing_key(SigningKey::generate(Algorithm::Es256).unwrap())
        .unwrap();
    assert_eq!(
        h.idp
            .stage_signing_key(SigningKey::generate(Algorithm::Es256).unwrap())
            .unwrap_err(),
        RotationError::AlreadyStaged
    );
    // EdDSA keys rotate in the same way.
    h.clock
        .advance(RotationTiming::DEFAULT_LEAD_TIME + Duration::from_secs(1));
    let staged = h
        .idp
        .stage_signing_key(SigningKey::generate(Algorithm::EdDsa).unwrap())
        .unwrap();
    h.clock.advance(RotationTiming::DEFAULT_LEAD_TIME);
    let answer = h.post(&h.valid()).await;
    let (header, _) = decode(answer.id_jag());
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], staged.kid.as_str());
    h.validator(CHAT_AS).validate(answer.id_jag()).unwrap();
}

#[tokio::test]
async fn x20_error_bodies_carry_no_token_secret_or_value() {
    let h = start().await;
    let id_token = h.id_token("alice", AGENT);
    let forms = [
        h.valid().basic(AGENT, "wrong-secret-value"),
        h.valid().set("audience", "https://secret-audience.example"),
        h.valid().set("scope", "secret.scope"),
        h.valid()
            .set("resource", "https://secret-resource.example/x"),
        h.valid()
            .subject(&format!("{id_token}x"), wire::TOKEN_TYPE_ID_TOKEN),
    ];
    for form in forms {
        let answer = h.post(&form).await;
        assert!(answer.body.get("error").is_some());
        for (_, value) in &form.params {
            if value.len() > 6 && !value.starts_with("urn:") {
                assert!(
                    !answer.raw.contains(value.as_str()),
                    "{} leaks a value",
                    answer.raw
                );
            }
        }
        assert!(!answer.raw.contains("wrong-secret-value"));
        assert!(!answer.raw.contains(&id_token[..40]));
    }
}
