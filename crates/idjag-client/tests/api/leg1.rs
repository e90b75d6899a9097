//! Leg 1 answers: every malformed or inconsistent one is refused, and then no leg 2 request
//! is sent (threat C02; requirements TX-15 to TX-19, IDJAG-01 to IDJAG-09).

use std::sync::Arc;

use idjag_client::*;
use idjag_core::{
    Algorithm, AlgorithmSet, Audience, ClaimError, ClaimProblem, ClientId, ErrorCode, JoseError,
    KeySet, NumericDate, OAuthErrorCode, Resource, ScopeSet, Segment, SigningKey, ValidationError,
    wire,
};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::support::*;

/// Runs both legs against `response` from the IdP; asserts that the resource AS saw nothing.
async fn refused_with(w: &World, client: &IdJagClient, response: ResponseTemplate) -> ClientError {
    w.idp.reset().await;
    w.ras.reset().await;
    w.mount_idp(response).await;
    w.mount_ras(ok(redeem_body("at-1"))).await;
    let error = client
        .access_token(&w.subject(), &w.request())
        .await
        .unwrap_err();
    assert_eq!(
        w.ras_requests().await.len(),
        0,
        "leg 2 was sent after {error:?}"
    );
    error
}

async fn refused(w: &World, response: ResponseTemplate) -> ClientError {
    refused_with(w, &w.client(), response).await
}

fn problem(error: ClientError) -> ResponseProblem {
    match error {
        ClientError::MalformedResponse {
            stage: Stage::IdentityProvider,
            problem,
        } => problem,
        other => panic!("expected a malformed IdP response, got {other:?}"),
    }
}

fn claim(claim: &'static str, problem: ClaimProblem) -> ResponseProblem {
    ResponseProblem::IdJag(IdJagProblem::Claim(ClaimError { claim, problem }))
}

#[tokio::test]
async fn c02_token_response_members_are_checked_before_any_second_leg() {
    let w = World::new().await;
    let good = exchange_body(&w.id_jag());
    let cases: Vec<(&str, Value, ResponseProblem)> = vec![
        (
            "issued_token_type missing",
            without(good.clone(), "issued_token_type"),
            ResponseProblem::Missing {
                member: "issued_token_type",
            },
        ),
        (
            "issued_token_type access token",
            with(
                good.clone(),
                "issued_token_type",
                json!(wire::TOKEN_TYPE_ACCESS_TOKEN),
            ),
            ResponseProblem::IssuedTokenType,
        ),
        (
            "issued_token_type not a string",
            with(good.clone(), "issued_token_type", json!(["x"])),
            ResponseProblem::WrongType {
                member: "issued_token_type",
            },
        ),
        (
            "token_type Bearer",
            with(good.clone(), "token_type", json!("Bearer")),
            ResponseProblem::TokenType,
        ),
        (
            "token_type n_a (strict)",
            with(good.clone(), "token_type", json!("n_a")),
            ResponseProblem::TokenType,
        ),
        (
            "token_type missing",
            without(good.clone(), "token_type"),
            ResponseProblem::Missing {
                member: "token_type",
            },
        ),
        (
            "access_token missing",
            without(good.clone(), "access_token"),
            ResponseProblem::Missing {
                member: "access_token",
            },
        ),
        (
            "access_token empty",
            with(good.clone(), "access_token", json!("")),
            ResponseProblem::Invalid {
                member: "access_token",
            },
        ),
        (
            "access_token number",
            with(good.clone(), "access_token", json!(42)),
            ResponseProblem::WrongType {
                member: "access_token",
            },
        ),
        (
            "refresh_token present",
            with(good.clone(), "refresh_token", json!("rt")),
            ResponseProblem::UnexpectedRefreshToken,
        ),
        (
            "expires_in zero",
            with(good.clone(), "expires_in", json!(0)),
            ResponseProblem::Invalid {
                member: "expires_in",
            },
        ),
        (
            "expires_in negative",
            with(good.clone(), "expires_in", json!(-5)),
            ResponseProblem::Invalid {
                member: "expires_in",
            },
        ),
        (
            "expires_in words",
            with(good.clone(), "expires_in", json!("soon")),
            ResponseProblem::Invalid {
                member: "expires_in",
            },
        ),
        (
            "expires_in bool",
            with(good.clone(), "expires_in", json!(true)),
            ResponseProblem::WrongType {
                member: "expires_in",
            },
        ),
        (
            "scope beyond the request",
            with(good.clone(), "scope", json!("chat.read admin")),
            ResponseProblem::ScopeExceeded,
        ),
        (
            "scope differs from the claim",
            with(good.clone(), "scope", json!("chat.read")),
            ResponseProblem::ScopeInconsistent,
        ),
        (
            "scope with a quote",
            with(good.clone(), "scope", json!("chat\"read")),
            ResponseProblem::Invalid { member: "scope" },
        ),
        (
            "scope as array",
            with(good.clone(), "scope", json!(["chat.read"])),
            ResponseProblem::WrongType { member: "scope" },
        ),
        (
            "echoed resource elsewhere",
            with(good.clone(), "resource", json!("https://evil.example/mcp")),
            ResponseProblem::ResourceMismatch,
        ),
        (
            "authorization_details object",
            with(good.clone(), "authorization_details", json!({"type": "x"})),
            ResponseProblem::WrongType {
                member: "authorization_details",
            },
        ),
        (
            "body is an array",
            json!([good.clone()]),
            ResponseProblem::NotJson,
        ),
    ];
    for (name, body, expected) in cases {
        let error = refused(&w, ok(body)).await;
        assert_eq!(problem(error), expected, "{name}");
    }
    for (name, raw, expected) in [
        (
            "html page",
            "<html>hi</html>".to_owned(),
            ResponseProblem::NotJson,
        ),
        (
            "duplicate access_token",
            format!(
                r#"{{"issued_token_type":"{}","token_type":"N_A","access_token":"x","access_token":"{}"}}"#,
                wire::TOKEN_TYPE_ID_JAG,
                w.id_jag()
            ),
            ResponseProblem::DuplicateMember,
        ),
    ] {
        let error = refused(&w, ResponseTemplate::new(200).set_body_string(raw)).await;
        assert_eq!(problem(error), expected, "{name}");
    }
}

#[tokio::test]
async fn issued_id_jag_is_checked_claim_by_claim_before_any_second_leg() {
    let w = World::new().await;
    let base = w.claims();
    let mut cases: Vec<(&str, String, ResponseProblem)> = Vec::new();
    let mut case = |name, token, expected| cases.push((name, token, expected));

    case(
        "typ missing",
        w.sign_typ(None, &base),
        IdJagProblem::Type.into(),
    );
    case(
        "typ JWT",
        w.sign_typ(Some("JWT"), &base),
        IdJagProblem::Type.into(),
    );
    case(
        "typ at+jwt (an access token)",
        w.sign_typ(Some("at+jwt"), &base),
        IdJagProblem::Type.into(),
    );
    case(
        "alg none",
        raw_jws(
            &json!({"alg": "none", "typ": wire::TYP_ID_JAG}),
            &base,
            "AAAA",
        ),
        IdJagProblem::Jose(JoseError::UnsupportedAlgorithm).into(),
    );
    case(
        "alg none, empty signature",
        raw_jws(&json!({"alg": "none", "typ": wire::TYP_ID_JAG}), &base, ""),
        IdJagProblem::Jose(JoseError::EmptySegment {
            segment: Segment::Signature,
        })
        .into(),
    );
    case(
        "HS256",
        raw_jws(
            &json!({"alg": "HS256", "typ": wire::TYP_ID_JAG}),
            &base,
            "AAAA",
        ),
        IdJagProblem::Jose(JoseError::UnsupportedAlgorithm).into(),
    );
    case(
        "two segments",
        "eyJhbGciOiJFUzI1NiJ9.e30".into(),
        IdJagProblem::Jose(JoseError::SegmentCount).into(),
    );
    case(
        "crit header",
        raw_jws(
            &json!({"alg": "ES256", "typ": wire::TYP_ID_JAG, "crit": ["exp"]}),
            &base,
            "AAAA",
        ),
        IdJagProblem::Jose(JoseError::ForbiddenHeader { member: "crit" }).into(),
    );

    let mut c = base.clone();
    c.iss = idjag_core::Issuer::new("https://other-idp.example").unwrap();
    case("iss another IdP", w.sign(&c), IdJagProblem::Issuer.into());

    let mut c = base.clone();
    c.aud = Audience::new("https://other-as.example").unwrap();
    case(
        "aud another resource AS",
        w.sign(&c),
        IdJagProblem::Audience.into(),
    );

    let mut c = base.clone();
    c.aud = Audience::new(format!("{}/", w.ras.uri())).unwrap();
    case(
        "aud with a trailing slash",
        w.sign(&c),
        IdJagProblem::Audience.into(),
    );

    let mut two_auds = serde_json::to_value(&base).unwrap();
    two_auds["aud"] = json!([w.ras.uri(), "https://other-as.example"]);
    case(
        "aud with two entries",
        w.sign(&two_auds),
        claim("aud", ClaimProblem::Invalid),
    );

    let mut c = base.clone();
    c.client_id = ClientId::new("someone-else").unwrap();
    case(
        "client_id of another client",
        w.sign(&c),
        IdJagProblem::ClientId.into(),
    );

    let mut c = base.clone();
    c.resource = Some(vec![
        Resource::new("https://mcp.other.example/mcp").unwrap(),
    ]);
    case(
        "resource of another server",
        w.sign(&c),
        IdJagProblem::Resource.into(),
    );

    let mut c = base.clone();
    c.scope = Some(ScopeSet::parse("chat.read chat.history admin").unwrap());
    case(
        "scope beyond the request",
        w.sign(&c),
        IdJagProblem::Scope.into(),
    );

    let mut c = base.clone();
    c.iat = NumericDate::from_unix(T0 - 600).unwrap();
    c.exp = NumericDate::from_unix(T0).unwrap();
    case("expired", w.sign(&c), IdJagProblem::Expired.into());

    let mut c = base.clone();
    c.iat = NumericDate::from_unix(T0 + 31).unwrap();
    c.exp = NumericDate::from_unix(T0 + 331).unwrap();
    case(
        "issued in the future",
        w.sign(&c),
        IdJagProblem::IssuedInFuture.into(),
    );

    let mut c = base.clone();
    c.nbf = Some(NumericDate::from_unix(T0 + 31).unwrap());
    case(
        "not yet valid",
        w.sign(&c),
        IdJagProblem::NotYetValid.into(),
    );

    let mut no_jti = serde_json::to_value(&base).unwrap();
    no_jti.as_object_mut().unwrap().remove("jti");
    case(
        "jti missing",
        w.sign(&no_jti),
        claim("jti", ClaimProblem::Missing),
    );

    let mut string_exp = serde_json::to_value(&base).unwrap();
    string_exp["exp"] = json!("1700000300");
    case(
        "exp as a string",
        w.sign(&string_exp),
        claim("exp", ClaimProblem::WrongType),
    );

    let mut c = base.clone();
    c.cnf = Some(idjag_core::Confirmation::jkt("some-thumbprint"));
    case(
        "cnf without DPoP",
        w.sign(&c),
        IdJagProblem::ConfirmationUnexpected.into(),
    );

    for (name, token, expected) in cases {
        let error = refused(&w, ok(exchange_body(&token))).await;
        assert_eq!(problem(error), expected, "{name}");
    }
}

#[tokio::test]
async fn acceptable_variants_pass_both_legs() {
    let w = World::new().await;
    let base = w.claims();
    let client = w.client();

    let mut single_aud_array = serde_json::to_value(&base).unwrap();
    single_aud_array["aud"] = json!([w.ras.uri()]);
    let mut bare = base.clone(); // like the MCP conformance IdP: no resource, no scope claim
    bare.resource = None;
    bare.scope = None;
    let mut narrowed = base.clone();
    narrowed.scope = Some(ScopeSet::parse("chat.read").unwrap());
    let narrowed_body = with(
        exchange_body(&w.sign(&narrowed)),
        "scope",
        json!("chat.read"),
    );
    let within_leeway = {
        let mut c = base.clone();
        c.iat = NumericDate::from_unix(T0 + 30).unwrap();
        c
    };

    for (name, body) in [
        (
            "aud as a one-element array",
            exchange_body(&w.sign(&single_aud_array)),
        ),
        (
            "no resource and no scope",
            without(exchange_body(&w.sign(&bare)), "scope"),
        ),
        ("scope narrowed and reported", narrowed_body),
        (
            "typ with application/ prefix",
            exchange_body(&w.sign_typ(Some("application/oauth-id-jag+jwt"), &base)),
        ),
        (
            "iat within the leeway",
            exchange_body(&w.sign(&within_leeway)),
        ),
        (
            "expires_in as digits",
            with(exchange_body(&w.id_jag()), "expires_in", json!("120")),
        ),
    ] {
        w.idp.reset().await;
        w.ras.reset().await;
        w.mount_idp(ok(body)).await;
        w.mount_ras(ok(redeem_body("at-1"))).await;
        let grant = client.access_token(&w.subject(), &w.request()).await;
        assert!(grant.is_ok(), "{name}: {grant:?}");
    }

    // `expires_in` shortens the usable life of the ID-JAG, never lengthens it.
    w.idp.reset().await;
    w.mount_idp(ok(with(
        exchange_body(&w.id_jag()),
        "expires_in",
        json!(120),
    )))
    .await;
    let issued = client.exchange(&w.subject(), &w.request()).await.unwrap();
    assert_eq!(issued.expires_at(), T0 + 120);
    assert!(!issued.signature_verified());
}

#[tokio::test]
async fn token_type_case_is_accepted_only_when_configured() {
    let w = World::new().await;
    let body = with(exchange_body(&w.id_jag()), "token_type", json!("n_a"));
    let mut config = ClientConfig::default();
    config.token_type_check = TokenTypeCheck::IgnoreCase;
    let lenient = w.client().with_config(config).unwrap();
    w.mount_idp(ok(body.clone())).await;
    assert!(lenient.exchange(&w.subject(), &w.request()).await.is_ok());
    assert_eq!(
        problem(refused(&w, ok(body)).await),
        ResponseProblem::TokenType
    );
}

#[tokio::test]
async fn signature_is_verified_when_the_idp_keys_are_configured() {
    let w = World::new().await;
    let keys = |key: &SigningKey| Arc::new(KeySet::new([key.verifying_key().unwrap()]).unwrap());
    let algorithms = AlgorithmSet::from([Algorithm::Es256]);
    let verifying = IdJagClient::new(
        w.identity_provider(World::idp_credentials())
            .with_id_jag_keys(keys(&w.idp_key), algorithms),
    )
    .unwrap()
    .with_clock(w.clock.shared());
    w.mount_happy_path().await;
    let issued = verifying
        .exchange(&w.subject(), &w.request())
        .await
        .unwrap();
    assert!(issued.signature_verified());

    let other = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(w.idp_key.kid().unwrap().clone());
    let wrong = IdJagClient::new(
        w.identity_provider(World::idp_credentials())
            .with_id_jag_keys(keys(&other), algorithms),
    )
    .unwrap()
    .with_clock(w.clock.shared());
    let error = refused_with(&w, &wrong, ok(exchange_body(&w.id_jag()))).await;
    assert_eq!(
        problem(error),
        IdJagProblem::Signature(ValidationError::BadSignature).into()
    );
}

#[tokio::test]
async fn idp_error_codes_are_typed_with_their_stage() {
    let w = World::new().await;
    for code in [
        OAuthErrorCode::AccessDenied,
        OAuthErrorCode::InvalidTarget,
        OAuthErrorCode::InvalidGrant,
    ] {
        let error = refused(
            &w,
            oauth_error(
                400,
                json!({"error": code.as_str(), "error_description": "blocked by admin"}),
            ),
        )
        .await;
        match &error {
            ClientError::PolicyDenied {
                stage,
                status,
                code: got,
                error: body,
            } => {
                assert_eq!(
                    (*stage, *status, *got),
                    (Stage::IdentityProvider, 400, code)
                );
                assert_eq!(body.error_description.as_deref(), Some("blocked by admin"));
            }
            other => panic!("{code}: {other:?}"),
        }
        assert!(error.is_policy_denial());
        assert_eq!(error.oauth_error(), Some(&ErrorCode::Known(code)));
    }

    let error = refused(
        &w,
        oauth_error(400, json!({"error": "insufficient_user_authentication", "max_age": 300, "acr_values": "urn:acme:mfa"})),
    )
    .await;
    let step_up = error.step_up().expect("step-up");
    assert_eq!(step_up.max_age, Some(300));
    assert_eq!(step_up.acr_values.as_deref(), Some("urn:acme:mfa"));
    assert_eq!(error.stage(), Some(Stage::IdentityProvider));

    for (status, code) in [
        (400, "invalid_request"),
        (401, "invalid_client"),
        (400, "vendor_specific"),
    ] {
        let error = refused(&w, oauth_error(status, json!({"error": code}))).await;
        assert!(
            matches!(&error, ClientError::Rejected { stage: Stage::IdentityProvider, status: s, error } if *s == status && error.error.as_str() == code),
            "{error:?}"
        );
    }

    let error = refused(&w, ResponseTemplate::new(500).set_body_string("oops")).await;
    assert!(matches!(
        error,
        ClientError::UnexpectedStatus {
            stage: Stage::IdentityProvider,
            status: 500
        }
    ));
    let error = refused(&w, oauth_error(400, json!({"error": 7}))).await;
    assert_eq!(problem(error), ResponseProblem::ErrorBody);
    let error = refused(&w, oauth_error(400, json!({"error": "bad\ncode"}))).await;
    assert_eq!(problem(error), ResponseProblem::ErrorBody);
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let w = World::new().await;
    let redirect =
        ResponseTemplate::new(307).insert_header("location", w.ras_token_endpoint().as_str());
    let error = refused(&w, redirect).await;
    assert!(
        matches!(
            error,
            ClientError::UnexpectedStatus {
                stage: Stage::IdentityProvider,
                status: 307
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn response_bodies_are_capped() {
    let w = World::new().await;
    let padded = with(
        exchange_body(&w.id_jag()),
        "padding",
        json!("x".repeat(4096)),
    );

    let mut config = ClientConfig::default();
    config.max_response_bytes = 2048;
    let capped = w.client().with_config(config).unwrap();
    let error = refused_with(&w, &capped, ok(padded.clone())).await;
    assert_eq!(problem(error), ResponseProblem::TooLarge { max: 2048 });

    let mut http_config = idjag_client::http::HttpConfig::default();
    http_config.max_response_bytes = 2048;
    let http = idjag_client::http::ReqwestHttpClient::with_config(http_config).unwrap();
    let small = IdJagClient::with_http_client(
        w.identity_provider(World::idp_credentials()),
        Arc::new(http),
    )
    .with_clock(w.clock.shared());
    let error = refused_with(&w, &small, ok(padded)).await;
    match error {
        ClientError::Transport {
            stage: Stage::IdentityProvider,
            error,
        } => {
            assert_eq!(error.kind(), idjag_client::http::HttpErrorKind::TooLarge)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_dead_idp_is_a_transport_failure_at_the_idp_stage() {
    let w = World::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let idp = IdentityProvider::new(
        w.idp_issuer(),
        &format!("http://127.0.0.1:{port}/token"),
        World::idp_credentials(),
    )
    .unwrap();
    let client = IdJagClient::new(idp).unwrap().with_clock(w.clock.shared());
    w.mount_ras(ok(redeem_body("at-1"))).await;
    let error = client
        .access_token(&w.subject(), &w.request())
        .await
        .unwrap_err();
    match error {
        ClientError::Transport {
            stage: Stage::IdentityProvider,
            error,
        } => {
            assert_eq!(error.kind(), idjag_client::http::HttpErrorKind::Connect)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.ras_requests().await.len(), 0);
}
