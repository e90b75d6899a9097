//! Successful exchanges: the ID-JAG validates with the core validator and carries exactly
//! what was granted (requirements TX-13, TX-15 to TX-18; requirements IDJAG-01 to IDJAG-12).

use std::sync::Arc;

use idjag_core::server::AuthenticatedClient;
use idjag_core::*;
use idjag_idp::*;

use crate::support::*;

#[tokio::test]
async fn issued_id_jag_validates_and_carries_exactly_the_granted_claims() {
    let h = start().await;
    let answer = h.post(&h.valid()).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);

    let token = answer.id_jag();
    let verified = h.validator(CHAT_AS).validate(token).unwrap();
    let claims = verified.claims();
    assert_eq!(claims.iss.as_str(), h.base);
    assert_eq!(claims.sub.as_str(), "alice");
    assert_eq!(claims.aud.as_str(), CHAT_AS);
    assert_eq!(claims.client_id.as_str(), AGENT_AT_CHAT);
    assert_eq!(claims.jti.as_str().len(), 22);
    assert_eq!(claims.iat.unix(), NOW);
    assert_eq!(claims.exp.unix(), NOW + 300);
    assert_eq!(claims.nbf, None);
    assert_eq!(
        claims.resource.as_deref(),
        Some(&[Resource::new(CHAT_MCP).unwrap()][..])
    );
    assert_eq!(
        claims.scope.as_ref().map(ToString::to_string).as_deref(),
        Some("chat.history chat.read")
    );
    assert_eq!(claims.authorization_details, None);
    assert_eq!(claims.tenant.as_deref(), Some("acme"));
    assert_eq!(claims.aud_tenant, None);
    assert_eq!(claims.aud_sub, None);
    assert_eq!(claims.sub_id, None);
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!(claims.auth_time.map(NumericDate::unix), Some(NOW));
    assert_eq!(claims.acr, None);
    assert_eq!(claims.amr.as_deref(), Some(&["pwd".to_owned()][..]));
    assert_eq!(claims.cnf, None);
    assert_eq!(claims.act, None);
    assert!(claims.extra.is_empty(), "{:?}", claims.extra);
    assert_eq!(verified.kid(), h.idp.current_signing_key().kid());

    // The wire payload has exactly these members, `aud` and `resource` as strings.
    let (header, payload) = decode(token);
    assert_eq!(
        header,
        serde_json::json!({"alg": "ES256", "typ": "oauth-id-jag+jwt",
            "kid": h.idp.current_signing_key().kid().unwrap().as_str()})
    );
    let mut names: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "amr",
            "aud",
            "auth_time",
            "client_id",
            "email",
            "exp",
            "iat",
            "iss",
            "jti",
            "resource",
            "scope",
            "sub",
            "tenant"
        ]
    );
    assert_eq!(payload["aud"], CHAT_AS);
    assert_eq!(payload["resource"], CHAT_MCP);

    // The response (RFC 8693 §2.2.1).
    let body = answer.body.as_object().unwrap();
    let mut members: Vec<&str> = body.keys().map(|k| k.as_str()).collect();
    members.sort_unstable();
    assert_eq!(
        members,
        [
            "access_token",
            "expires_in",
            "issued_token_type",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(body["issued_token_type"], wire::TOKEN_TYPE_ID_JAG);
    assert_eq!(body["token_type"], "N_A");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "chat.history chat.read");
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(answer.headers["pragma"], "no-cache");

    let audit = h.expect_issued();
    assert_eq!(audit["client_id"], AGENT);
    assert_eq!(audit["auth_method"], "client_secret_basic");
    assert_eq!(audit["subject_token_type"], "id_token");
    assert_eq!(audit["audience"], CHAT_AS);
    assert_eq!(audit["resource"], CHAT_MCP);
    assert_eq!(audit["scope"], "chat.history chat.read");
    assert_eq!(audit["ras_client_id"], AGENT_AT_CHAT);
    assert_eq!(
        audit["subject_sha256"],
        "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"
    );
    assert!(audit.get("subject").is_none());
    assert_eq!(audit["jti_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        audit["kid"],
        h.idp.current_signing_key().kid().unwrap().as_str()
    );
}

#[tokio::test]
async fn every_client_authentication_method_works_and_client_ids_map_per_audience() {
    let h = start().await;
    let post = h.post(&h.valid().post_secret(AGENT, AGENT_SECRET)).await;
    let claims = h
        .validator(CHAT_AS)
        .validate(post.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.client_id.as_str(), AGENT_AT_CHAT);
    assert_eq!(h.expect_issued()["auth_method"], "client_secret_post");

    let assertion = h.client_assertion(serde_json::json!(h.base), "a-1");
    let form = h
        .valid()
        .subject(&h.id_token("alice", JWT_AGENT), wire::TOKEN_TYPE_ID_TOKEN)
        .assertion(&assertion);
    let jwt = h.post(&form).await;
    let claims = h
        .validator(CHAT_AS)
        .validate(jwt.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.client_id.as_str(), "jwt-agent-at-chat");
    assert_eq!(h.expect_issued()["auth_method"], "private_key_jwt");

    let mail = h
        .valid()
        .set("audience", MAIL_AS)
        .set("resource", MAIL_MCP)
        .set("scope", "mail.read");
    let answer = h.post(&mail).await;
    let claims = h
        .validator(MAIL_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.client_id.as_str(), "agent-at-mail");
    assert_eq!(
        claims.email, None,
        "the mail audience does not ask for email"
    );
}

#[tokio::test]
async fn several_resources_are_granted_together() {
    let h = start().await;
    let answer = h.post(&h.valid().add("resource", CHAT_FILES)).await;
    let (_, payload) = decode(answer.id_jag());
    assert_eq!(
        payload["resource"],
        serde_json::json!([CHAT_MCP, CHAT_FILES])
    );
    assert_eq!(
        h.expect_issued()["resource"],
        format!("{CHAT_MCP} {CHAT_FILES}")
    );
}

#[tokio::test]
async fn lifetime_is_configurable_and_capped() {
    let h = start_with(None, |b| b.lifetime(std::time::Duration::from_secs(60))).await;
    let answer = h.post(&h.valid()).await;
    assert_eq!(answer.body["expires_in"], 60);
    let claims = h
        .validator(CHAT_AS)
        .validate(answer.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.exp.unix() - claims.iat.unix(), 60);

    let build = |lifetime| {
        IdJagIssuer::builder(
            Issuer::new("https://idp.example").unwrap(),
            SigningKeys::generate_es256().unwrap(),
            Arc::new(idjag_core::server::StaticClientRegistry::new()),
            Arc::new(TomlPolicy::from_toml_str("").unwrap()),
        )
        .lifetime(lifetime)
        .build()
        .map(|_| ())
    };
    assert_eq!(
        build(std::time::Duration::from_secs(3601)),
        Err(BuildError::Lifetime)
    );
    assert_eq!(build(std::time::Duration::ZERO), Err(BuildError::Lifetime));
    assert_eq!(build(std::time::Duration::from_secs(3600)), Ok(()));
}

#[test]
fn issuers_must_be_https_urls() {
    let build = |issuer: &str| {
        IdJagIssuer::builder(
            Issuer::new(issuer).unwrap(),
            SigningKeys::generate_es256().unwrap(),
            Arc::new(idjag_core::server::StaticClientRegistry::new()),
            Arc::new(TomlPolicy::from_toml_str("").unwrap()),
        )
        .build()
        .map(|idp| idp.token_endpoint().to_string())
    };
    assert_eq!(
        build("https://idp.example/").unwrap(),
        "https://idp.example/token"
    );
    assert_eq!(
        build("https://idp.example/t1").unwrap(),
        "https://idp.example/t1/token"
    );
    assert_eq!(build("http://idp.example"), Err(BuildError::Issuer));
    assert_eq!(build("https://idp.example/?x=1"), Err(BuildError::Issuer));
    assert_eq!(build("idp.example"), Err(BuildError::Issuer));
}

/// A SAML validator as a host would write one: it accepts one assertion for one SP.
#[derive(Debug)]
struct TestSaml;

impl SubjectTokenValidator for TestSaml {
    fn validate<'a>(
        &'a self,
        token: &'a SubjectToken,
        client: &'a AuthenticatedClient,
    ) -> BoxFuture<'a, Result<SubjectPrincipal, SubjectTokenError>> {
        let result = if token.secret() != "PHNhbWw-YWxpY2U8L3NhbWw-" {
            Err(SubjectTokenError::Refused {
                reason: "saml_signature",
            })
        } else if client.client_id().as_str() != AGENT {
            Err(SubjectTokenError::OtherClient)
        } else {
            Ok(SubjectPrincipal::new(Subject::new("alice").unwrap()).with_groups(["staff"]))
        };
        Box::pin(std::future::ready(result))
    }
}

#[tokio::test]
async fn saml2_needs_a_host_validator() {
    let h = start().await;
    let saml = h
        .valid()
        .subject("PHNhbWw-YWxpY2U8L3NhbWw-", wire::TOKEN_TYPE_SAML2);
    let answer = h
        .refused(
            &saml,
            400,
            "invalid_request",
            "subject_token_type_not_accepted",
        )
        .await;
    assert_eq!(
        answer.body["error_description"],
        "this IdP does not accept SAML 2.0 subject tokens"
    );

    let h = start_with(None, |b| b.saml2_validator(Arc::new(TestSaml))).await;
    let claims = h
        .validator(CHAT_AS)
        .validate(h.post(&saml).await.id_jag())
        .unwrap()
        .into_claims();
    assert_eq!(claims.sub.as_str(), "alice");
    h.expect_issued();
    let forged = saml
        .clone()
        .set("subject_token", "PHNhbWw-bWFsbG9yeTwvc2FtbD4");
    h.refused(&forged, 400, "invalid_grant", "saml_signature")
        .await;
    let other = saml.basic(OTHER, OTHER_SECRET);
    h.refused(&other, 400, "invalid_grant", "subject_token_other_client")
        .await;
}

#[tokio::test]
async fn rfc8693_error_code_for_subject_tokens_is_available() {
    let h = start_with(None, |b| {
        b.subject_token_error_code(SubjectTokenErrorCode::InvalidRequest)
    })
    .await;
    let form = h.valid().set("subject_token", "not-a-jwt");
    h.refused(&form, 400, "invalid_request", "subject_token_invalid")
        .await;
}

#[tokio::test]
async fn audit_can_name_the_subject_or_leave_it_out() {
    let h = start_with(None, |b| b.audit_subject(AuditSubject::Plain)).await;
    h.post(&h.valid()).await.id_jag();
    let audit = h.expect_issued();
    assert_eq!(audit["subject"], "alice");
    assert!(audit.get("subject_sha256").is_none());

    let h = start_with(None, |b| b.audit_subject(AuditSubject::Omit)).await;
    h.post(&h.valid()).await.id_jag();
    let audit = h.expect_issued();
    assert!(audit.get("subject").is_none() && audit.get("subject_sha256").is_none());
}

#[tokio::test]
async fn actor_tokens_are_refused_and_must_come_in_pairs() {
    let h = start().await;
    let pair = h
        .valid()
        .set("actor_token", "actor")
        .set("actor_token_type", wire::TOKEN_TYPE_JWT);
    h.refused(&pair, 400, "invalid_request", "actor_token_unsupported")
        .await;
    let lone = h.valid().set("actor_token", "actor");
    h.refused(&lone, 400, "invalid_request", "actor_token_pairing")
        .await;
    let lone_type = h.valid().set("actor_token_type", wire::TOKEN_TYPE_JWT);
    h.refused(&lone_type, 400, "invalid_request", "actor_token_pairing")
        .await;
}

#[tokio::test]
async fn the_exchange_api_works_without_http() {
    let h = start().await;
    let form = idjag_core::server::FormBody::parse_with_repeatable(
        h.valid().post_secret(AGENT, AGENT_SECRET).body().as_bytes(),
        &["resource"],
    )
    .unwrap();
    let issued = h
        .idp
        .exchange(&http::HeaderMap::new(), &form)
        .await
        .unwrap();
    assert_eq!(issued.expires_in, 300);
    assert_eq!(issued.claims.client_id.as_str(), AGENT_AT_CHAT);
    assert_eq!(
        h.validator(CHAT_AS)
            .validate(issued.id_jag.secret())
            .unwrap()
            .into_claims(),
        issued.claims
    );
    h.expect_issued();
}
