//! Metadata (RFC 8414; ID-JAG -04 §7.2, requirements MD-03 to MD-05, MD-07), JWKS, and
//! introspection (RFC 7662).

use std::time::Duration;

use idjag_core::*;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn metadata_advertises_the_id_jag_profile_and_no_issuer_list() {
    let h = Harness::start(Setup::default()).await;
    let url = format!("{}/.well-known/oauth-authorization-server", h.base);
    assert_eq!(h.server.metadata_url(), url);
    let reply = h
        .request(reqwest::Method::GET, &url, &[], String::new())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let auth_methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    let algs = json!(["ES256", "ES384", "RS256", "PS256", "EdDSA"]);
    assert_eq!(
        reply.json,
        json!({
            "issuer": h.base,
            "token_endpoint": format!("{}/token", h.base),
            "jwks_uri": format!("{}/jwks.json", h.base),
            "introspection_endpoint": format!("{}/introspect", h.base),
            "grant_types_supported": [wire::GRANT_TYPE_JWT_BEARER],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": algs,
            "scopes_supported": ["chat.history", "chat.read", "chat.write"],
            "authorization_grant_profiles_supported": [wire::GRANT_PROFILE_ID_JAG],
        })
    );
    let metadata: AuthorizationServerMetadata = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(metadata.advertises_id_jag_profile(), Some(true));
    assert_eq!(metadata.issuer.as_str(), h.base, "MD-07");
    assert!(!reply.text().contains(IDP), "MD-05: no issuer allow-list");

    // Public clients appear only when allowed.
    let h = Harness::start(Setup::builder(|b| b.allow_public_clients())).await;
    let reply = h
        .request(
            reqwest::Method::GET,
            h.server.metadata_url(),
            &[],
            String::new(),
        )
        .await;
    assert_eq!(
        reply.json["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
}

/// A server with only what `build` requires, for tests that never serve a grant.
fn minimal_server(issuer: &str) -> idjag_resource::ResourceAuthorizationServerBuilder {
    idjag_resource::ResourceAuthorizationServer::builder(
        Issuer::new(issuer).unwrap(),
        SigningKey::generate(Algorithm::Es256).unwrap(),
    )
    .trust(idjag_resource::TrustedIssuer::new(
        Issuer::new(IDP).unwrap(),
        Idp::new(IDP, "k", "x").keys(),
    ))
    .resource(idjag_resource::RegisteredResource::new(
        Resource::new(RESOURCE).unwrap(),
    ))
    .clients(registry())
}

async fn get(h: &Harness, url: &str) -> Reply {
    h.request(reqwest::Method::GET, url, &[], String::new())
        .await
}

/// RFC 8414 §2 lets a server without an authorization endpoint omit it, but some clients
/// require it (the TypeScript MCP SDK); the three choices of `AuthorizationEndpoint`.
#[tokio::test]
async fn the_authorization_endpoint_is_absent_a_hosts_or_a_refusing_one() {
    use idjag_resource::AuthorizationEndpoint;

    let h = Harness::start(Setup::default()).await;
    let reply = get(&h, h.server.metadata_url()).await;
    assert_eq!(reply.json.get("authorization_endpoint"), None);
    assert_eq!(reply.json["response_types_supported"], json!([]));
    assert_eq!(h.server.authorize_path(), None);
    assert_eq!(get(&h, &format!("{}/authorize", h.base)).await.status, 404);

    let host = "https://login.chat.example/authorize";
    let h = Harness::start(Setup::builder(|b| {
        b.authorization_endpoint(AuthorizationEndpoint::Host(host.into()))
    }))
    .await;
    let reply = get(&h, h.server.metadata_url()).await;
    assert_eq!(reply.json["authorization_endpoint"], json!(host));
    assert_eq!(reply.json["response_types_supported"], json!(["code"]));
    assert_eq!(
        reply.json["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(h.server.authorize_path(), None);

    let h = Harness::start(Setup::builder(|b| {
        b.authorization_endpoint(AuthorizationEndpoint::Refusing)
    }))
    .await;
    let reply = get(&h, h.server.metadata_url()).await;
    let authorize = format!("{}/authorize", h.base);
    assert_eq!(reply.json["authorization_endpoint"], json!(authorize));
    assert_eq!(reply.json["response_types_supported"], json!([]));
    assert_eq!(reply.json.get("code_challenge_methods_supported"), None);
    let evil_redirect = "https%3A%2F%2Fevil.example%2F";
    let refused = get(
        &h,
        &format!("{authorize}?response_type=code&client_id={CLIENT}&redirect_uri={evil_redirect}"),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.header("location"), None, "never a redirect");
    assert_eq!(refused.json["error"], "unsupported_response_type");

    let plain_http = minimal_server("https://auth.chat.example")
        .authorization_endpoint(AuthorizationEndpoint::Host(
            "http://login.chat.example/authorize".into(),
        ))
        .build();
    assert!(matches!(
        plain_http,
        Err(idjag_resource::BuildError::AuthorizationEndpoint(
            idjag_core::endpoint::EndpointError::NotHttps
        ))
    ));
}

#[tokio::test]
async fn metadata_of_an_issuer_with_a_path_uses_path_insertion() {
    let server = minimal_server("https://auth.chat.example/tenant-1")
        .build()
        .unwrap();
    assert_eq!(
        server.metadata_url(),
        "https://auth.chat.example/.well-known/oauth-authorization-server/tenant-1"
    );
    assert_eq!(
        server.token_endpoint(),
        "https://auth.chat.example/tenant-1/token"
    );
    let (listener, base) = bind().await;
    serve(listener, server.router());
    let http = reqwest::Client::new();
    let reply = http
        .get(format!(
            "{base}/.well-known/oauth-authorization-server/tenant-1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let reply = http
        .get(format!("{base}/tenant-1/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn the_jwks_publishes_the_signing_key_and_extra_keys() {
    let previous = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(Kid::new("as-key-0").unwrap());
    let published = previous.verifying_key().unwrap();
    let h = Harness::start(Setup::builder(move |b| b.published_key(published))).await;
    let reply = h
        .request(
            reqwest::Method::GET,
            h.server.jwks_uri(),
            &[],
            String::new(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(wire::MEDIA_TYPE_JWK_SET));
    let import = KeySet::from_jwks_json(&reply.body).unwrap();
    assert!(import.rejected.is_empty());
    let kids: Vec<&str> = import
        .keys
        .iter()
        .map(|k| k.kid().unwrap().as_str())
        .collect();
    assert_eq!(kids, ["as-key-1", "as-key-0"]);
    assert!(
        reply.json["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none())
    );
}

async fn introspect(h: &Harness, auth: &str, token: &str) -> Reply {
    h.request(
        reqwest::Method::POST,
        h.server.introspection_endpoint(),
        &[
            ("content-type", wire::MEDIA_TYPE_FORM),
            ("authorization", auth),
        ],
        form(&[("token", token), ("token_type_hint", "access_token")]),
    )
    .await
}

#[tokio::test]
async fn introspection_shows_a_client_its_own_tokens() {
    let h = Harness::start(Setup::default()).await;
    let token = h.redeem(&h.idp.id_jag()).await.access_token().to_owned();
    let claims = h.decode(&token);
    let reply = introspect(&h, &basic(CLIENT, SECRET), &token).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(
        reply.json,
        json!({
            "active": true,
            "scope": "chat.history chat.read",
            "client_id": CLIENT,
            "sub": "alice@acme",
            "aud": RESOURCE,
            "iss": h.base,
            "exp": NOW + 300,
            "iat": NOW,
            "jti": claims.jti.as_str(),
            "token_type": "Bearer",
        })
    );
    // Another client does not see it; garbage and ID-JAGs are inactive.
    let inactive = json!({"active": false});
    let other = basic(OTHER_CLIENT, OTHER_SECRET);
    assert_eq!(introspect(&h, &other, &token).await.json, inactive);
    assert_eq!(
        introspect(&h, &basic(CLIENT, SECRET), "abc").await.json,
        inactive
    );
    let id_jag = h.idp.id_jag();
    assert_eq!(
        introspect(&h, &basic(CLIENT, SECRET), &id_jag).await.json,
        inactive
    );
    // Once expired (no leeway on our own tokens), it is inactive.
    h.clock.advance(Duration::from_secs(300));
    assert_eq!(
        introspect(&h, &basic(CLIENT, SECRET), &token).await.json,
        inactive
    );
}

#[tokio::test]
async fn a_designated_resource_server_introspects_every_token() {
    let h = Harness::start(Setup::builder(|b| {
        b.introspection_client(ClientId::new(OTHER_CLIENT).unwrap())
    }))
    .await;
    let token = h.redeem(&h.idp.id_jag()).await.access_token().to_owned();
    let reply = introspect(&h, &basic(OTHER_CLIENT, OTHER_SECRET), &token).await;
    assert_eq!(reply.json["active"], true);
    assert_eq!(reply.json["client_id"], CLIENT);
}

#[tokio::test]
async fn introspection_requires_client_authentication_and_a_token() {
    let h = Harness::start(Setup::default()).await;
    let token = h.redeem(&h.idp.id_jag()).await.access_token().to_owned();
    let reply = h
        .request(
            reqwest::Method::POST,
            h.server.introspection_endpoint(),
            &[("content-type", wire::MEDIA_TYPE_FORM)],
            form(&[("token", &token)]),
        )
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json["error"], "invalid_client");
    assert!(reply.json.get("active").is_none());
    let reply = introspect(&h, &basic(CLIENT, "wrong"), &token).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    let reply = h
        .request(
            reqwest::Method::POST,
            h.server.introspection_endpoint(),
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &basic(CLIENT, SECRET)),
            ],
            String::new(),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"], "invalid_request");
    let reply = h
        .request(
            reqwest::Method::GET,
            h.server.introspection_endpoint(),
            &[],
            String::new(),
        )
        .await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.json,
        json!({"error": "invalid_request", "error_description": "the request is malformed"})
    );
}
