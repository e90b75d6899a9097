//! The exact bytes of each request (threat C01; requirements TX-01 to TX-05, JB-01, JB-02).

use std::sync::Arc;

use idjag_client::auth::PrivateKeyJwt;
use idjag_client::*;
use idjag_core::{
    Algorithm, AlgorithmSet, Audience, AuthorizationDetail, ClientAssertionValidator, ClientId,
    ClientSecret, Issuer, KeySet, RefreshToken, Resource, TrustedIssuers,
};
use serde_json::json;

use crate::support::*;

fn names(request: &wiremock::Request) -> Vec<String> {
    form(request).into_iter().map(|(name, _)| name).collect()
}

#[tokio::test]
async fn c01_token_exchange_request_is_exactly_the_documented_form() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let subject = w.subject();
    w.client().exchange(&subject, &w.request()).await.unwrap();

    let requests = w.idp_requests().await;
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(r.url.path(), "/token");
    assert_eq!(r.url.query(), None);
    let port = w.ras.address().port();
    let expected = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
         &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid-jag\
         &audience=http%3A%2F%2F127.0.0.1%3A{port}\
         &resource=https%3A%2F%2Fmcp.chat.example%2Fmcp\
         &scope=chat.history+chat.read\
         &subject_token={}\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token",
        subject.token().secret()
    );
    assert_eq!(String::from_utf8(r.body.clone()).unwrap(), expected);
    assert_eq!(
        header(r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(r, "accept"), Some("application/json"));
    // client_secret_basic only: no client_id or client_secret in the form (one method).
    assert_eq!(
        header(r, "authorization"),
        Some("Basic aWRwLWNsaWVudDppZHAtczNjcmV0")
    );
    assert_eq!(header(r, "dpop"), None);
}

#[tokio::test]
async fn jwt_bearer_request_is_exact_and_basic_auth_form_encodes_before_base64() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let client = w.client();
    let request = w.request();
    let id_jag = client.exchange(&w.subject(), &request).await.unwrap();
    client.redeem(&id_jag, &request).await.unwrap();

    let requests = w.ras_requests().await;
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    let expected = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer\
         &assertion={}\
         &resource=https%3A%2F%2Fmcp.chat.example%2Fmcp",
        id_jag.id_jag().secret()
    );
    assert_eq!(String::from_utf8(r.body.clone()).unwrap(), expected);
    // RFC 6749 §2.3.1: "gw client" -> "gw+client", "s3:cr3t" -> "s3%3Acr3t", then base64.
    assert_eq!(
        header(r, "authorization"),
        Some("Basic Z3crY2xpZW50OnMzJTNBY3IzdA==")
    );
    assert_eq!(
        header(r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn client_secret_post_sends_id_and_secret_once_in_the_form_and_no_header() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let creds = ClientCredentials::secret_post(
        ClientId::new(RAS_CLIENT).unwrap(),
        ClientSecret::new(RAS_SECRET),
    )
    .unwrap();
    w.client()
        .access_token(&w.subject(), &w.request_with(creds))
        .await
        .unwrap();

    let r = &w.ras_requests().await[0];
    assert_eq!(header(r, "authorization"), None);
    assert_eq!(
        names(r),
        [
            "grant_type",
            "assertion",
            "resource",
            "client_id",
            "client_secret"
        ]
    );
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        body.ends_with("&client_id=gw+client&client_secret=s3%3Acr3t"),
        "{body}"
    );
}

#[tokio::test]
async fn public_client_sends_client_id_and_never_a_secret() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let idp_public = ClientCredentials::public(ClientId::new(IDP_CLIENT).unwrap());
    let ras_public = ClientCredentials::public(ClientId::new(RAS_CLIENT).unwrap());
    w.client_with(idp_public)
        .access_token(&w.subject(), &w.request_with(ras_public))
        .await
        .unwrap();

    for (r, id) in [
        (&w.idp_requests().await[0], IDP_CLIENT),
        (&w.ras_requests().await[0], RAS_CLIENT),
    ] {
        assert_eq!(header(r, "authorization"), None);
        let fields = form(r);
        assert_eq!(fields.iter().filter(|(n, _)| n == "client_id").count(), 1);
        assert!(fields.contains(&("client_id".into(), id.into())));
        assert!(
            !fields
                .iter()
                .any(|(n, _)| n.starts_with("client_secret") || n.starts_with("client_assertion"))
        );
    }
}

#[tokio::test]
async fn private_key_jwt_signs_a_fresh_assertion_for_the_server_issuer_on_each_request() {
    let w = World::new().await;
    let mut claims = w.claims();
    claims.client_id = ClientId::new("agent-42").unwrap();
    w.mount_idp(ok(exchange_body(&w.sign(&claims)))).await;
    w.mount_ras(ok(redeem_body("at-1"))).await;
    let key = idjag_core::SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let signer = PrivateKeyJwt::new(key.clone(), w.clock.shared());
    let creds = ClientCredentials::private_key_jwt(ClientId::new("agent-42").unwrap(), signer);
    let client = w.client();
    let request = w.request_with(creds);
    for _ in 0..2 {
        let id_jag = client.exchange(&w.subject(), &request).await.unwrap();
        client.redeem(&id_jag, &request).await.unwrap();
    }

    let validator = ClientAssertionValidator::new(
        TrustedIssuers::new().with(
            Issuer::new("agent-42").unwrap(),
            Arc::new(KeySet::new([key.verifying_key().unwrap()]).unwrap()),
        ),
        Audience::new(w.ras.uri()).unwrap(),
        AlgorithmSet::from([Algorithm::Es256]),
        w.clock.shared(),
    );
    let mut jtis = Vec::new();
    for r in w.ras_requests().await {
        assert_eq!(header(&r, "authorization"), None);
        assert_eq!(
            names(&r),
            [
                "grant_type",
                "assertion",
                "resource",
                "client_id",
                "client_assertion_type",
                "client_assertion"
            ]
        );
        let fields = form(&r);
        assert_eq!(fields[3].1, "agent-42");
        assert_eq!(
            fields[4].1,
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let verified = validator.validate(&fields[5].1).unwrap();
        let claims = verified.claims();
        assert_eq!(claims.iss.as_str(), "agent-42");
        assert_eq!(claims.sub.as_str(), "agent-42");
        assert_eq!(claims.exp.unix() - claims.iat.unwrap().unix(), 60);
        jtis.push(claims.jti.clone());
    }
    assert_eq!(jtis.len(), 2);
    assert_ne!(jtis[0], jtis[1]);
}

#[tokio::test]
async fn refresh_token_and_saml_subjects_carry_their_token_type() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let client = w.client();
    let request = w.request();
    client
        .exchange(
            &UserToken::refresh_token(RefreshToken::new("rt-123")),
            &request,
        )
        .await
        .unwrap();
    client
        .exchange(
            &UserToken::saml2_assertion(b"<saml:Assertion>\xe2\x9c\x93</saml:Assertion>"),
            &request,
        )
        .await
        .unwrap();

    let requests = w.idp_requests().await;
    let tail = |r: &wiremock::Request| form(r).into_iter().rev().take(2).collect::<Vec<_>>();
    assert_eq!(
        tail(&requests[0]),
        [
            (
                "subject_token_type".into(),
                "urn:ietf:params:oauth:token-type:refresh_token".into()
            ),
            ("subject_token".into(), "rt-123".into())
        ]
    );
    assert_eq!(
        tail(&requests[1]),
        [
            (
                "subject_token_type".into(),
                "urn:ietf:params:oauth:token-type:saml2".into()
            ),
            // base64url without padding of the XML bytes
            (
                "subject_token".into(),
                "PHNhbWw6QXNzZXJ0aW9uPuKckzwvc2FtbDpBc3NlcnRpb24-".into()
            )
        ]
    );
}

#[tokio::test]
async fn resources_repeat_and_authorization_details_travel_as_one_json_string() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let detail = AuthorizationDetail::new(
        json!({"type": "chat", "actions": ["read"]})
            .as_object()
            .unwrap()
            .clone(),
    )
    .unwrap();
    let request = w
        .request()
        .with_resource(Resource::new("https://mcp.chat.example/other").unwrap())
        .with_resource(Resource::new(RESOURCE).unwrap())
        .with_authorization_details(vec![detail]);
    let _ = w.client().exchange(&w.subject(), &request).await;

    let fields = form(&w.idp_requests().await[0]);
    let resources: Vec<_> = fields
        .iter()
        .filter(|(n, _)| n == "resource")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(resources, [RESOURCE, "https://mcp.chat.example/other"]);
    let details: Vec<_> = fields
        .iter()
        .filter(|(n, _)| n == "authorization_details")
        .collect();
    assert_eq!(details.len(), 1);
    // Exact bytes: compact JSON of the caller's details. Member order is serde_json's (sorted,
    // or insertion order when a dependency enables `preserve_order`), so the expectation is
    // serialised by the same build.
    let expected = serde_json::to_string(&json!([{"type": "chat", "actions": ["read"]}])).unwrap();
    assert_eq!(details[0].1, expected);
    assert!(!details[0].1.contains(' '));
}

#[tokio::test]
async fn leg_two_parameters_follow_the_configuration() {
    let w = World::new().await;
    w.mount_happy_path().await;
    let mut config = ClientConfig::default();
    config.send_resource_at_redemption = false;
    config.send_scope_at_redemption = true;
    let client = w.client().with_config(config).unwrap();
    client
        .access_token(&w.subject(), &w.request())
        .await
        .unwrap();

    let r = &w.ras_requests().await[0];
    assert_eq!(names(r), ["grant_type", "assertion", "scope"]);
    assert_eq!(form(r)[2].1, "chat.history chat.read");
}

#[tokio::test]
async fn no_request_carries_a_field_twice() {
    let w = World::new().await;
    w.mount_happy_path().await;
    w.client()
        .access_token(&w.subject(), &w.request())
        .await
        .unwrap();
    for r in w
        .idp_requests()
        .await
        .iter()
        .chain(w.ras_requests().await.iter())
    {
        let mut seen = names(r);
        let total = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), total, "{:?}", names(r));
    }
}

#[tokio::test]
async fn a_padded_saml_assertion_is_passed_through_unchanged() {
    let w = World::new().await;
    w.mount_happy_path().await;
    w.client()
        .exchange(&UserToken::saml2_base64url("PHNhbWw-Lw=="), &w.request())
        .await
        .unwrap();
    let fields = form(&w.idp_requests().await[0]);
    assert!(fields.contains(&("subject_token".into(), "PHNhbWw-Lw==".into())));
}
