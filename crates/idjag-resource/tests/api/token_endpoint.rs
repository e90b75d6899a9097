//! The token endpoint over HTTP: the success path, client authentication, request shape and
//! grant policy (threats J01 to J08; ID-JAG -04 §4.4; the redemption checks).

use std::sync::Arc;
use std::time::Duration;

use idjag_core::*;
use idjag_resource::*;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a_valid_id_jag_yields_an_rfc9068_access_token() {
    let h = Harness::start(Setup::default()).await;
    let reply = h.redeem(&h.idp.id_jag()).await;
    let claims = h.granted(&reply);
    assert_eq!(claims.iss.as_str(), h.base);
    assert_eq!(claims.sub.as_str(), "alice@acme");
    assert_eq!(claims.aud.as_str(), RESOURCE);
    assert_eq!(claims.client_id.as_str(), CLIENT);
    assert_eq!(claims.scope.unwrap().to_string(), "chat.history chat.read");
    assert_eq!(claims.iat.unix(), NOW);
    assert_eq!(claims.exp.unix(), NOW + 300);
    assert_eq!(claims.jti.as_str().len(), 22, "128 random bits, base64url");
    assert_eq!(claims.cnf, None);
    // The header is `at+jwt` with the server's kid (RFC 9068 §2.1).
    let header = reply.access_token().split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&idjag_core::jose::base64url::decode(header).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "at+jwt", "kid": "as-key-1"})
    );
    // The response (RFC 6749 §5.1; requirements JB-17, JB-18).
    let mut body = reply.json.as_object().unwrap().clone();
    body.remove("access_token");
    assert_eq!(
        Value::Object(body),
        json!({
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "chat.history chat.read",
            "resource": RESOURCE,
        })
    );
    assert_eq!(h.replay.len(), 1);
}

#[tokio::test]
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
    // Even two different assertions: exactly one JWT per request (RFC 7523 §2.1).
    let reply = h
        .post(
            &headers,
            format!("{grant}&assertion={token}&assertion={}", h.idp.id_jag()),
        )
        .await;
    h.refused(&reply, 400, "invalid_request", "duplicate_parameter");
}

#[tokio::test]
async fn j02_client_authentication_failures_are_invalid_client_401() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    let grant = [
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", token.as_str()),
    ];
    let form_ct = ("content-type", wire::MEDIA_TYPE_FORM);

    // Basic with a wrong secret: 401 and a Basic challenge (RFC 6749 §5.2).
    let wrong = basic(CLIENT, "wrong");
    let reply = h
        .post(&[form_ct, ("authorization", &wrong)], form(&grant))
        .await;
    h.refused(&reply, 401, "invalid_client", "wrong_client_secret");
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!("Basic realm=\"{}\", charset=\"UTF-8\"", h.base)
    );

    // A wrong secret in the body: 401 without a challenge.
    let mut pairs = grant.to_vec();
    pairs.extend([("client_id", CLIENT), ("client_secret", "wrong")]);
    let reply = h.post(&[form_ct], form(&pairs)).await;
    h.refused(&reply, 401, "invalid_client", "wrong_client_secret");
    assert_eq!(reply.header("www-authenticate"), None);

    // No authentication at all.
    let reply = h.post(&[form_ct], form(&grant)).await;
    h.refused(&reply, 401, "invalid_client", "no_client_auth");

    // An unknown client.
    let unknown = basic("nobody", "x");
    let reply = h
        .post(&[form_ct, ("authorization", &unknown)], form(&grant))
        .await;
    h.refused(&reply, 401, "invalid_client", "unknown_client");

    // A public client, not allowed here (ID-JAG -04 §9.1; requirement JB-03).
    let mut pairs = grant.to_vec();
    pairs.push(("client_id", PUBLIC_CLIENT));
    let reply = h.post(&[form_ct], form(&pairs)).await;
    h.refused(&reply, 401, "invalid_client", "public_client_refused");

    // Two methods in one request (RFC 6749 §2.3).
    let good = basic(CLIENT, SECRET);
    let mut pairs = grant.to_vec();
    pairs.extend([("client_id", CLIENT), ("client_secret", SECRET)]);
    let reply = h
        .post(&[form_ct, ("authorization", &good)], form(&pairs))
        .await;
    h.refused(&reply, 400, "invalid_request", "multiple_auth_methods");
}

#[tokio::test]
async fn j03_refusals_carry_one_generic_body_per_code_and_echo_nothing() {
    let h = Harness::start(Setup::default()).await;
    let tokens = [
        h.idp.set(&[("aud", json!("https://other-as.example"))]),
        h.idp
            .set(&[("exp", json!(NOW - 3600)), ("iat", json!(NOW - 3900))]),
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

#[tokio::test]
async fn j04_tokens_expire_within_policy_and_the_id_jag_cap() {
    // Default: 5 minutes, never past the ID-JAG.
    let h = Harness::start(Setup::default()).await;
    let reply = h.redeem(&h.idp.set(&[("exp", json!(NOW + 60))])).await;
    let claims = h.granted(&reply);
    assert_eq!(claims.exp.unix(), NOW + 60);
    assert_eq!(reply.json["expires_in"], 60);

    // Configured: 2 minutes, at most 30 s past the ID-JAG.
    let h = Harness::start(Setup::builder(|b| {
        b.token_lifetime(
            AccessTokenLifetime::new(Duration::from_secs(120))
                .beyond_id_jag(Duration::from_secs(30)),
        )
    }))
    .await;
    let short = h.idp.set(&[("exp", json!(NOW + 60))]);
    assert_eq!(h.granted(&h.redeem(&short).await).exp.unix(), NOW + 90);
    let long = h.idp.set(&[("exp", json!(NOW + 600))]);
    let reply = h.redeem(&long).await;
    assert_eq!(h.granted(&reply).exp.unix(), NOW + 120);
    assert_eq!(reply.json["expires_in"], 120);

    // Within the leeway after its exp, an ID-JAG still validates, but a token capped at its
    // exp would be born expired: refused.
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    h.clock.set_unix(NOW + 310);
    h.invalid_grant(&token, "grant_expiring").await;
}

#[tokio::test]
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
        wire::GRANT_TYPE_AUTHORIZATION_CODE,
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
    let reply = h.post(&headers, form(&[("assertion", &token)])).await;
    h.refused(&reply, 400, "invalid_request", "missing_parameter");
}

#[tokio::test]
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
    let reply = h.post(&[("authorization", &auth)], body.clone()).await;
    h.refused(&reply, 400, "invalid_request", "not_form_encoded");

    let huge = format!("{body}&pad={}", "a".repeat(DEFAULT_MAX_BODY_BYTES));
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

    // And a success still works with a charset parameter.
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

#[tokio::test]
async fn an_empty_code_beside_the_grant_is_omitted_go_sdk_shape() {
    // The Go SDK sends client_secret_post and an empty `code=` (seen in interop testing).
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.id_jag();
    let body = format!(
        "{}&code=",
        form(&[
            ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
            ("assertion", &token),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
        ])
    );
    let reply = h
        .post(&[("content-type", wire::MEDIA_TYPE_FORM)], body)
        .await;
    h.granted(&reply);
}

#[tokio::test]
async fn private_key_jwt_clients_redeem_their_id_jags() {
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.set(&[("client_id", json!(JWT_CLIENT))]);
    let assertion = jwt_client_key()
        .sign_jwt(
            None,
            &json!({
                "iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": h.base, "jti": "ca-1",
                "iat": NOW, "exp": NOW + 60,
            }),
        )
        .unwrap();
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &token),
        (
            "client_assertion_type",
            wire::CLIENT_ASSERTION_TYPE_JWT_BEARER,
        ),
        ("client_assertion", assertion.secret()),
    ]);
    let reply = h
        .post(&[("content-type", wire::MEDIA_TYPE_FORM)], body.clone())
        .await;
    assert_eq!(h.granted(&reply).client_id.as_str(), JWT_CLIENT);
    // The client assertion is single-use (threat X02): replaying it fails client authentication
    // before the ID-JAG is looked at.
    let reply = h
        .post(&[("content-type", wire::MEDIA_TYPE_FORM)], body)
        .await;
    h.refused(&reply, 401, "invalid_client", "client_assertion_replayed");
}

#[tokio::test]
async fn public_clients_redeem_only_when_explicitly_allowed() {
    let h = Harness::start(Setup::builder(|b| b.allow_public_clients())).await;
    let token = h.idp.set(&[("client_id", json!(PUBLIC_CLIENT))]);
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &token),
        ("client_id", PUBLIC_CLIENT),
    ]);
    let reply = h
        .post(&[("content-type", wire::MEDIA_TYPE_FORM)], body)
        .await;
    assert_eq!(h.granted(&reply).client_id.as_str(), PUBLIC_CLIENT);
    // A public client still cannot redeem an ID-JAG minted for a confidential client
    // (the public-client threat, `docs/threat-model.md#public-clients`).
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", &h.idp.id_jag()),
        ("client_id", PUBLIC_CLIENT),
    ]);
    let reply = h
        .post(&[("content-type", wire::MEDIA_TYPE_FORM)], body)
        .await;
    h.refused(&reply, 400, "invalid_grant", "client_id_mismatch");
}

#[tokio::test]
async fn an_issuer_vouches_only_for_its_clients() {
    let h = Harness::start(Setup::trust(|t| {
        t.for_clients([ClientId::new(OTHER_CLIENT).unwrap()])
    }))
    .await;
    let reply = h.redeem(&h.idp.id_jag()).await;
    h.refused(
        &reply,
        400,
        "invalid_grant",
        "client_not_allowed_for_issuer",
    );
}

#[tokio::test]
async fn a_multi_tenant_issuer_needs_an_accepted_tenant() {
    let h = Harness::start(Setup::trust(|t| {
        t.with_tenant("acme").with_tenant("acme-eu")
    }))
    .await;
    let reply = h.redeem(&h.idp.id_jag()).await;
    h.refused(&reply, 400, "invalid_grant", "tenant_mismatch");
    let reply = h.redeem(&h.idp.set(&[("tenant", json!("globex"))])).await;
    h.refused(&reply, 400, "invalid_grant", "tenant_mismatch");
    let reply = h.redeem(&h.idp.set(&[("tenant", json!("acme-eu"))])).await;
    h.granted(&reply);
}

#[tokio::test]
async fn aud_sub_mapping_uses_the_servers_own_user_id() {
    let h = Harness::start(Setup::trust(|t| {
        t.with_subject_mapping(SubjectMapping::AudSub {
            aud_tenant: Some("t-42".into()),
        })
    }))
    .await;
    let reply = h.redeem(&h.idp.id_jag()).await;
    h.refused(&reply, 400, "invalid_grant", "tenant_mismatch");
    let reply = h.redeem(&h.idp.set(&[("aud_tenant", json!("t-42"))])).await;
    h.refused(&reply, 400, "invalid_grant", "unknown_subject");
    let reply = h
        .redeem(&h.idp.set(&[
            ("aud_tenant", json!("t-42")),
            ("aud_sub", json!("user-9001")),
        ]))
        .await;
    assert_eq!(h.granted(&reply).sub.as_str(), "user-9001");
}

#[derive(Debug)]
struct Directory;

impl SubjectResolver for Directory {
    fn resolve<'a>(
        &'a self,
        claims: &'a IdJagClaims,
    ) -> BoxFuture<'a, Result<Subject, ResolveError>> {
        let answer = match claims.sub.as_str() {
            "alice@acme" => Ok(Subject::new("acme|alice").unwrap()),
            "down@acme" => Err(ResolveError::Unavailable),
            _ => Err(ResolveError::Unknown),
        };
        Box::pin(std::future::ready(answer))
    }
}

#[tokio::test]
async fn a_subject_resolver_maps_or_refuses() {
    let h = Harness::start(Setup::trust(|t| {
        t.with_subject_mapping(SubjectMapping::Resolver(Arc::new(Directory)))
    }))
    .await;
    assert_eq!(
        h.granted(&h.redeem(&h.idp.id_jag()).await).sub.as_str(),
        "acme|alice"
    );
    let reply = h
        .redeem(&h.idp.set(&[("sub", json!("mallory@acme"))]))
        .await;
    h.refused(&reply, 400, "invalid_grant", "unknown_subject");
    let reply = h.redeem(&h.idp.set(&[("sub", json!("down@acme"))])).await;
    h.refused(
        &reply,
        503,
        "temporarily_unavailable",
        "subject_directory_unavailable",
    );
}

#[tokio::test]
async fn an_absent_resource_binds_to_the_default_or_is_refused() {
    // One registered resource: bound to it (decision D-03; the resource-confusion threat,
    // `docs/threat-model.md#resource-confusion`).
    let h = Harness::start(Setup::default()).await;
    let token = h.idp.without("resource");
    let reply = h.redeem(&token).await;
    assert_eq!(h.granted(&reply).aud.as_str(), RESOURCE);
    assert_eq!(reply.json["resource"], RESOURCE);

    let h = Harness::start(Setup::builder(|b| {
        b.when_resource_absent(AbsentResource::Refuse)
    }))
    .await;
    let token = h.idp.without("resource");
    h.invalid_grant(&token, "resource_absent").await;
}

fn two_resources() -> Setup {
    Setup::builder(|b| {
        b.resource(
            RegisteredResource::new(Resource::new(RESOURCE_B).unwrap())
                .with_scopes(ScopeSet::parse("files.read chat.read").unwrap()),
        )
    })
}

#[tokio::test]
async fn the_request_resource_picks_one_of_the_granted_resources() {
    let h = Harness::start(two_resources()).await;
    let both = || h.idp.set(&[("resource", json!([RESOURCE, RESOURCE_B]))]);
    let reply = h.redeem(&both()).await;
    h.refused(&reply, 400, "invalid_target", "resource_ambiguous");
    let reply = h.redeem_with(&both(), &[("resource", RESOURCE_B)]).await;
    let claims = h.granted(&reply);
    assert_eq!(claims.aud.as_str(), RESOURCE_B);
    assert_eq!(
        claims.scope.unwrap().to_string(),
        "chat.read",
        "B's policy applies"
    );

    let reply = h
        .redeem_with(&h.idp.id_jag(), &[("resource", RESOURCE_B)])
        .await;
    h.refused(&reply, 400, "invalid_target", "resource_not_granted");
    let reply = h
        .redeem_with(
            &h.idp.id_jag(),
            &[("resource", "https://mcp.chat.example/mcp#x")],
        )
        .await;
    h.refused(&reply, 400, "invalid_target", "malformed_resource");
    // Two resources and no default: an ID-JAG without resource is refused.
    let token = h.idp.without("resource");
    h.invalid_grant(&token, "resource_absent").await;
}

#[tokio::test]
async fn scope_is_request_cap_id_jag_cap_policy() {
    let h = Harness::start(Setup::default()).await;
    // Narrowed to what was asked.
    let reply = h
        .redeem_with(&h.idp.id_jag(), &[("scope", "chat.read")])
        .await;
    assert_eq!(h.granted(&reply).scope.unwrap().to_string(), "chat.read");
    assert_eq!(reply.json["scope"], "chat.read");
    // More than the ID-JAG carries is never granted (requirement EMA-19); the rest is.
    let reply = h
        .redeem_with(&h.idp.id_jag(), &[("scope", "chat.read chat.write admin")])
        .await;
    assert_eq!(h.granted(&reply).scope.unwrap().to_string(), "chat.read");
    // The ID-JAG's scope beyond the policy is dropped (threat V30, second half).
    let reply = h
        .redeem(&h.idp.set(&[("scope", json!("chat.read admin.all"))]))
        .await;
    assert_eq!(h.granted(&reply).scope.unwrap().to_string(), "chat.read");
    assert_eq!(reply.json["scope"], "chat.read");
    // Nothing grantable of what was asked.
    let reply = h
        .redeem_with(&h.idp.id_jag(), &[("scope", "chat.write")])
        .await;
    h.refused(&reply, 400, "invalid_scope", "scope_not_granted");
    let reply = h.redeem_with(&h.idp.id_jag(), &[("scope", "a\"b")]).await;
    h.refused(&reply, 400, "invalid_scope", "malformed_scope");
    // An ID-JAG without scope grants none: the token has no scope claim.
    let reply = h.redeem(&h.idp.without("scope")).await;
    assert_eq!(h.granted(&reply).scope, None);
    assert!(reply.json.get("scope").is_none());
}

#[tokio::test]
async fn authorization_details_are_checked_and_passed_on() {
    let h = Harness::start(Setup::builder(|b| {
        b.when_resource_absent(AbsentResource::Refuse).resource(
            RegisteredResource::new(Resource::new(RESOURCE_B).unwrap())
                .with_authorization_detail_types(["file_access"]),
        )
    }))
    .await;
    let details = json!([
        {"type": "file_access", "path": "/reports", "actions": ["read"]},
        {"type": "file_access", "path": "/drafts", "actions": ["read", "write"]},
    ]);
    let token = || {
        let details = details.clone();
        h.idp.with(move |c| {
            c.insert("resource".into(), json!(RESOURCE_B));
            c.insert("authorization_details".into(), details);
        })
    };
    let reply = h.redeem(&token()).await;
    let claims = h.granted(&reply);
    assert_eq!(reply.json["authorization_details"], details);
    assert_eq!(
        serde_json::to_value(claims.authorization_details.unwrap()).unwrap(),
        details
    );
    // A subset may be requested.
    let first = json!([details[0]]).to_string();
    let reply = h
        .redeem_with(&token(), &[("authorization_details", &first)])
        .await;
    h.granted(&reply);
    assert_eq!(reply.json["authorization_details"], json!([details[0]]));
    // Anything else may not.
    let more = json!([{"type": "file_access", "path": "/", "actions": ["write"]}]).to_string();
    let reply = h
        .redeem_with(&token(), &[("authorization_details", &more)])
        .await;
    h.refused(
        &reply,
        400,
        "invalid_authorization_details",
        "authorization_details_not_granted",
    );
    let reply = h
        .redeem_with(&token(), &[("authorization_details", "{\"type\":\"x\"}")])
        .await;
    h.refused(
        &reply,
        400,
        "invalid_authorization_details",
        "malformed_authorization_details",
    );
    // A type the resource does not know is refused.
    let reply = h
        .redeem(&h.idp.set(&[
            ("resource", json!(RESOURCE_B)),
            ("authorization_details", json!([{"type": "payment"}])),
        ]))
        .await;
    h.refused(
        &reply,
        400,
        "invalid_grant",
        "authorization_detail_type_not_allowed",
    );
}

#[test]
fn the_builder_refuses_unsafe_or_useless_configurations() {
    let issuer = Issuer::new("https://auth.chat.example").unwrap();
    let key = || SigningKey::generate(Algorithm::Es256).unwrap();
    let idp = Idp::new(IDP, "k", issuer.as_str());
    let trust = || TrustedIssuer::new(Issuer::new(IDP).unwrap(), idp.keys());
    let resource = || RegisteredResource::new(Resource::new(RESOURCE).unwrap());
    let base = || {
        ResourceAuthorizationServer::builder(issuer.clone(), key())
            .trust(trust())
            .resource(resource())
            .clients(registry())
    };
    assert!(base().build().is_ok());
    let err = |b: ResourceAuthorizationServerBuilder| b.build().unwrap_err();

    assert_eq!(
        err(base().trust(TrustedIssuer::new(issuer.clone(), idp.keys()))),
        BuildError::SelfTrust
    );
    assert_eq!(
        err(base().trust(trust())),
        BuildError::DuplicateIssuer(Issuer::new(IDP).unwrap())
    );
    assert_eq!(
        err(base().resource(resource())),
        BuildError::DuplicateResource(Resource::new(RESOURCE).unwrap())
    );
    assert_eq!(
        err(base().audience_alias(Audience::new("https://auth.chat.example/token").unwrap())),
        BuildError::EndpointAlias
    );
    assert_eq!(
        err(base().when_resource_absent(AbsentResource::BindTo(Resource::new(RESOURCE_B).unwrap()))),
        BuildError::DefaultResourceNotRegistered
    );
    assert_eq!(
        err(base().leeway(Duration::from_secs(301))),
        BuildError::Limit(ValidatorConfigError::LeewayTooLarge)
    );
    assert_eq!(
        err(base().token_lifetime(AccessTokenLifetime::new(Duration::ZERO))),
        BuildError::ZeroLifetime
    );
    assert_eq!(
        err(base().algorithms(AlgorithmSet::empty())),
        BuildError::NoAlgorithm
    );
    let plain_http = ResourceAuthorizationServer::builder(
        Issuer::new("http://auth.chat.example").unwrap(),
        key(),
    );
    assert!(matches!(err(plain_http), BuildError::Issuer(_)));
    let bare = ResourceAuthorizationServer::builder(issuer.clone(), key());
    assert_eq!(err(bare), BuildError::NoTrustedIssuer);
    let no_resource = ResourceAuthorizationServer::builder(issuer.clone(), key()).trust(trust());
    assert_eq!(err(no_resource), BuildError::NoResource);
    let no_clients = ResourceAuthorizationServer::builder(issuer.clone(), key())
        .trust(trust())
        .resource(resource());
    assert_eq!(err(no_clients), BuildError::NoClients);
}

/// A shared replay store that is down.
#[derive(Debug)]
struct DownStore;

impl idjag_core::server::ReplayCache for DownStore {
    fn record<'a>(
        &'a self,
        _key: idjag_core::server::ReplayKey,
        _holder: &'a str,
        _until_unix: i64,
    ) -> BoxFuture<'a, Result<idjag_core::server::Replay, idjag_core::server::ReplayStoreError>>
    {
        Box::pin(std::future::ready(Err(
            idjag_core::server::ReplayStoreError::Unavailable,
        )))
    }
}

#[tokio::test]
async fn a_replay_store_outage_fails_closed() {
    let h = Harness::start(Setup::builder(|b| b.replay_cache(Arc::new(DownStore)))).await;
    let reply = h.redeem(&h.idp.id_jag()).await;
    h.refused(
        &reply,
        503,
        "temporarily_unavailable",
        "replay_store_unavailable",
    );
}
