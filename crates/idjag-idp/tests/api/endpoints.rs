//! Metadata, JWKS and method handling (requirements MD-01, MD-02; ID-JAG -04 §7.1).

use idjag_core::*;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn metadata_is_served_at_both_well_known_paths() {
    let h = start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = h
            .http
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let md: AuthorizationServerMetadata = response.json().await.unwrap();
        assert_eq!(md.issuer.as_str(), h.base);
        assert_eq!(
            md.token_endpoint.as_deref(),
            Some(format!("{}/token", h.base).as_str())
        );
        assert_eq!(
            md.jwks_uri.as_deref(),
            Some(format!("{}/jwks", h.base).as_str())
        );
        assert_eq!(md.advertises_id_jag_issuance(), Some(true));
        assert!(md.supports_grant_type(wire::GRANT_TYPE_TOKEN_EXCHANGE));
        assert_eq!(
            md.token_endpoint_auth_methods_supported.as_deref(),
            Some(
                &[
                    "client_secret_basic".to_owned(),
                    "client_secret_post".to_owned(),
                    "private_key_jwt".to_owned()
                ][..]
            )
        );
        assert_eq!(
            md.extra["id_token_signing_alg_values_supported"],
            serde_json::json!(["ES256"])
        );
        assert!(md.extra.contains_key("dpop_signing_alg_values_supported"));
        // RFC 8414 §2: required even without an authorization endpoint.
        assert_eq!(md.response_types_supported, Some(vec![]));
        assert_eq!(md.authorization_endpoint, None);
    }
}

/// The host's sign-in endpoint, when given, is advertised for clients that need it (the
/// TypeScript MCP SDK refuses IdP metadata without one); a non-https one is refused.
#[tokio::test]
async fn metadata_lists_the_hosts_authorization_endpoint() {
    let builder = |url: &str| {
        idjag_idp::IdJagIssuer::builder(
            Issuer::new("https://idp.example").unwrap(),
            idjag_idp::SigningKeys::generate_es256().unwrap(),
            std::sync::Arc::new(idjag_core::server::StaticClientRegistry::new()),
            std::sync::Arc::new(idjag_idp::TomlPolicy::from_toml_str("").unwrap()),
        )
        .authorization_endpoint(url)
        .build()
    };
    let md = builder("https://idp.example/oauth2/authorize")
        .unwrap()
        .metadata();
    assert_eq!(
        md.authorization_endpoint.as_deref(),
        Some("https://idp.example/oauth2/authorize")
    );
    assert_eq!(md.response_types_supported, Some(vec!["code".to_owned()]));
    assert_eq!(
        md.code_challenge_methods_supported,
        Some(vec!["S256".to_owned()])
    );
    assert!(matches!(
        builder("http://idp.example/authorize"),
        Err(idjag_idp::BuildError::Endpoint {
            endpoint: "authorization_endpoint",
            error: idjag_core::endpoint::EndpointError::NotHttps,
        })
    ));
}

#[tokio::test]
async fn metadata_paths_follow_an_issuer_with_a_path() {
    let (listener, base) = idjag_test_support::net::loopback().await;
    let idp = idjag_idp::IdJagIssuer::builder(
        Issuer::new(format!("{base}/tenant1")).unwrap(),
        idjag_idp::SigningKeys::generate_es256().unwrap(),
        std::sync::Arc::new(idjag_core::server::StaticClientRegistry::new()),
        std::sync::Arc::new(idjag_idp::TomlPolicy::from_toml_str("").unwrap()),
    )
    .build()
    .unwrap();
    idjag_test_support::net::serve(listener, idp.router());
    let http = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-authorization-server/tenant1",
        "/tenant1/.well-known/openid-configuration",
        "/tenant1/jwks",
    ] {
        let status = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path}");
    }
    let status = http
        .post(format!("{base}/tenant1/token"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn jwks_serves_the_published_public_keys() {
    let h = start().await;
    let response = h.http.get(h.idp.jwks_uri().as_str()).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let body = response.bytes().await.unwrap();
    let jwks = KeySet::from_jwks_json(&body).unwrap();
    assert!(jwks.rejected.is_empty());
    assert_eq!(jwks.keys.len(), 1);
    let key = h.idp.current_signing_key();
    assert_eq!(jwks.keys.iter().next().unwrap().kid(), key.kid());
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["keys"][0], key.public_jwk());
    assert!(json["keys"][0].get("d").is_none());
}

#[tokio::test]
async fn the_token_endpoint_accepts_post_only() {
    let h = start().await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = h.http.request(method, h.token_url()).send().await.unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        h.expect_denied("method_not_allowed");
    }
}
