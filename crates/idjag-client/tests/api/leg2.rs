//! Leg 2 answers and the checks made before anything is sent (requirements JB-17, JB-18, EMA-09).

use idjag_client::*;
use idjag_core::{ClientId, ClientSecret, IdToken, Issuer, ScopeSet};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::support::*;

async fn redeem_against(
    w: &World,
    client: &IdJagClient,
    response: ResponseTemplate,
) -> Result<AccessTokenGrant, ClientError> {
    w.idp.reset().await;
    w.ras.reset().await;
    w.mount_idp(ok(exchange_body(&w.id_jag()))).await;
    w.mount_ras(response).await;
    client.access_token(&w.subject(), &w.request()).await
}

fn problem(error: ClientError) -> ResponseProblem {
    match error {
        ClientError::MalformedResponse {
            stage: Stage::ResourceAuthorizationServer,
            problem,
        } => problem,
        other => panic!("expected a malformed resource AS response, got {other:?}"),
    }
}

#[tokio::test]
async fn leg_two_answers_are_checked() {
    let w = World::new().await;
    let client = w.client();
    let good = redeem_body("at-1");
    let cases: Vec<(&str, Value, ResponseProblem)> = vec![
        (
            "token_type N_A",
            with(good.clone(), "token_type", json!("N_A")),
            ResponseProblem::TokenType,
        ),
        (
            "token_type DPoP without DPoP",
            with(good.clone(), "token_type", json!("DPoP")),
            ResponseProblem::TokenType,
        ),
        (
            "token_type missing",
            json!({"access_token": "at-1"}),
            ResponseProblem::Missing {
                member: "token_type",
            },
        ),
        (
            "access_token missing",
            json!({"token_type": "Bearer"}),
            ResponseProblem::Missing {
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
            "scope beyond the ID-JAG",
            with(good.clone(), "scope", json!("chat.read admin")),
            ResponseProblem::ScopeExceeded,
        ),
        (
            "echoed resource elsewhere",
            with(good.clone(), "resource", json!("https://evil.example/")),
            ResponseProblem::ResourceMismatch,
        ),
    ];
    for (name, body, expected) in cases {
        let error = redeem_against(&w, &client, ok(body)).await.unwrap_err();
        assert_eq!(problem(error), expected, "{name}");
    }
}

#[tokio::test]
async fn granted_scope_must_stay_within_the_request_too() {
    let w = World::new().await;
    let mut claims = w.claims();
    claims.scope = None; // the ID-JAG does not limit scope; the request still does
    w.mount_idp(ok(json!({"issued_token_type": idjag_core::wire::TOKEN_TYPE_ID_JAG, "access_token": w.sign(&claims), "token_type": "N_A"}))).await;
    w.mount_ras(ok(with(
        redeem_body("at-1"),
        "scope",
        json!("chat.read chat.admin"),
    )))
    .await;
    let error = w
        .client()
        .access_token(&w.subject(), &w.request())
        .await
        .unwrap_err();
    assert_eq!(problem(error), ResponseProblem::ScopeExceeded);
}

#[tokio::test]
async fn a_good_answer_gives_a_bearer_grant() {
    let w = World::new().await;
    let grant = redeem_against(
        &w,
        &w.client(),
        ok(json!({"access_token": "at-1", "token_type": "bearer", "expires_in": 900})),
    )
    .await
    .unwrap();
    assert_eq!(grant.access_token().secret(), "at-1");
    assert_eq!(grant.token_type(), TokenType::Bearer);
    assert_eq!(grant.expires_at(), T0 + 900);
    // No `scope` in the answer: the ID-JAG's scope is what was granted (RFC 6749 §5.1).
    assert_eq!(
        grant.scope(),
        Some(&ScopeSet::parse("chat.read chat.history").unwrap())
    );
    assert_eq!(grant.resource_as(), &w.ras_issuer());
    assert_eq!(
        grant.authorization_header().unwrap().to_str().unwrap(),
        "Bearer at-1"
    );
    assert!(grant.authorization_header().unwrap().is_sensitive());

    let grant = redeem_against(
        &w,
        &w.client(),
        ok(json!({"access_token": "at-2", "token_type": "Bearer"})),
    )
    .await
    .unwrap();
    assert_eq!(
        grant.expires_at(),
        T0 + 60,
        "assumed lifetime without expires_in"
    );
}

#[tokio::test]
async fn an_unexpected_refresh_token_can_be_discarded_when_configured() {
    let w = World::new().await;
    let mut config = ClientConfig::default();
    config.unexpected_refresh_token = UnexpectedRefreshToken::Discard;
    let client = w.client().with_config(config).unwrap();
    let grant = redeem_against(
        &w,
        &client,
        ok(with(redeem_body("at-1"), "refresh_token", json!("rt"))),
    )
    .await;
    assert_eq!(grant.unwrap().access_token().secret(), "at-1");
}

#[tokio::test]
async fn resource_as_errors_are_rejections_at_that_stage() {
    let w = World::new().await;
    let client = w.client();
    for (status, code) in [
        (400, "invalid_grant"),
        (401, "invalid_client"),
        (400, "invalid_scope"),
        (400, "access_denied"),
    ] {
        let error = redeem_against(&w, &client, oauth_error(status, json!({"error": code})))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ClientError::Rejected { stage: Stage::ResourceAuthorizationServer, status: s, error } if *s == status && error.error.as_str() == code),
            "{code}: {error:?}"
        );
        assert!(!error.is_policy_denial());
    }
    let error = redeem_against(
        &w,
        &client,
        ResponseTemplate::new(302).insert_header("location", "https://evil.example/token"),
    )
    .await
    .unwrap_err();
    assert!(matches!(
        error,
        ClientError::UnexpectedStatus {
            stage: Stage::ResourceAuthorizationServer,
            status: 302
        }
    ));
}

#[tokio::test]
async fn an_id_jag_is_never_sent_to_another_server_or_after_it_expired() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let client = w.client();
    let request = w.request();
    let issued = client.exchange(&w.subject(), &request).await.unwrap();

    let other_as = ResourceAsTarget::new(
        Issuer::new("https://other-as.example").unwrap(),
        "https://other-as.example/token",
        World::ras_credentials(),
    )
    .unwrap();
    let elsewhere = AccessRequest::new(other_as);
    let error = client.redeem(&issued, &elsewhere).await.unwrap_err();
    assert!(matches!(
        error,
        ClientError::InvalidInput(InputError::WrongResourceAuthorizationServer)
    ));

    let other_client = w.request_with(
        ClientCredentials::secret_basic(ClientId::new("other").unwrap(), ClientSecret::new("x"))
            .unwrap(),
    );
    let error = client.redeem(&issued, &other_client).await.unwrap_err();
    assert!(matches!(
        error,
        ClientError::InvalidInput(InputError::WrongResourceAuthorizationServer)
    ));

    w.clock.advance(std::time::Duration::from_secs(300));
    let error = client.redeem(&issued, &request).await.unwrap_err();
    assert!(matches!(
        error,
        ClientError::InvalidInput(InputError::IdJagExpired)
    ));
    assert_eq!(w.ras_requests().await.len(), 0);
}

#[tokio::test]
async fn inputs_that_cannot_be_valid_are_refused_before_sending() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let client = w.client();
    let request = w.request();

    let cases: Vec<(&str, UserToken, InputError)> = vec![
        (
            "empty ID token",
            UserToken::id_token(IdToken::new("")),
            InputError::Empty {
                what: "subject token",
            },
        ),
        (
            "ID token with a space",
            UserToken::id_token(IdToken::new("a b")),
            InputError::MalformedToken {
                what: "subject token",
            },
        ),
        (
            "ID token with a newline",
            UserToken::id_token(IdToken::new("a\nb")),
            InputError::MalformedToken {
                what: "subject token",
            },
        ),
        (
            "huge token",
            UserToken::id_token(IdToken::new("a".repeat(MAX_SUBJECT_TOKEN_BYTES + 1))),
            InputError::MalformedToken {
                what: "subject token",
            },
        ),
        (
            "SAML not base64url",
            UserToken::saml2_base64url("PHNhbWw+/+=="),
            InputError::MalformedToken {
                what: "subject token",
            },
        ),
    ];
    for (name, subject, expected) in cases {
        match client.access_token(&subject, &request).await {
            Err(ClientError::InvalidInput(got)) => assert_eq!(got, expected, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }

    // A padded pass-through SAML assertion is fine; padding in the middle is not.
    assert!(UserToken::saml2_base64url("PHNhbWw-Lw==").token().len() == 12);
    assert!(matches!(
        client
            .exchange(&UserToken::saml2_base64url("PHNh=bWw-Lw"), &request)
            .await,
        Err(ClientError::InvalidInput(InputError::MalformedToken { .. }))
    ));
    // Padding in the middle of a SAML assertion is not base64url.
    assert!(matches!(
        client
            .exchange(&UserToken::saml2_base64url("PHNh=bWw-Lw"), &request)
            .await,
        Err(ClientError::InvalidInput(InputError::MalformedToken { .. }))
    ));
    let expired = UserToken::id_token(w.id_token_until(T0));
    assert!(matches!(
        client.access_token(&expired, &request).await,
        Err(ClientError::ReauthenticationRequired {
            reason: ReauthReason::IdTokenExpired
        })
    ));

    let same_issuer = ResourceAsTarget::new(
        w.idp_issuer(),
        &w.ras_token_endpoint(),
        World::ras_credentials(),
    )
    .unwrap();
    assert!(matches!(
        client
            .access_token(&w.subject(), &AccessRequest::new(same_issuer))
            .await,
        Err(ClientError::InvalidInput(InputError::SameIssuer))
    ));

    for bad in [
        "http://idp.example/token",
        "https://user:pw@idp.example/token",
        "https://idp.example/token#x",
        "ftp://idp.example/",
    ] {
        assert!(
            matches!(
                IdentityProvider::new(w.idp_issuer(), bad, World::idp_credentials()),
                Err(InputError::Endpoint { .. })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        ResourceAsTarget::new(
            Issuer::new("http://as.example").unwrap(),
            "https://as.example/token",
            World::ras_credentials()
        ),
        Err(InputError::Endpoint { .. })
    ));
    assert!(matches!(
        ClientCredentials::secret_basic(ClientId::new("a").unwrap(), ClientSecret::new("")),
        Err(InputError::Empty {
            what: "client secret"
        })
    ));
    let mut config = ClientConfig::default();
    config.leeway = std::time::Duration::from_secs(301);
    assert!(matches!(
        client.clone().with_config(config),
        Err(InputError::Config { what: "leeway" })
    ));

    assert_eq!(w.idp_requests().await.len(), 0);
    assert_eq!(w.ras_requests().await.len(), 0);
}
