//! The tower layer in front of a real axum MCP-like service (`docs/flow.md#mcp-request`,
//! requirements MD-09, MD-10, MCP-03 to MCP-05; threats G01, G02, G04, G05, G16).

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Json, Router};
use idjag_core::remote::RemoteJwks;
use idjag_core::*;
use idjag_resource::RegisteredResource;
use idjag_resource::rs::{
    AccessTokenVerifier, BearerPrincipal, InsufficientScope, ProtectedResource, RequireBearerLayer,
};
use serde_json::{Value, json};

use crate::support::*;

async fn whoami(Extension(principal): Extension<BearerPrincipal>) -> Json<Value> {
    Json(json!({
        "sub": principal.subject().as_str(),
        "client_id": principal.client_id().as_str(),
        "scope": principal.scope().to_string(),
        "kid": principal.verified().kid().map(|k| k.as_str().to_owned()),
    }))
}

/// A tool handler that checks its own scope, as an rmcp tool handler would.
async fn history_tool(
    Extension(principal): Extension<BearerPrincipal>,
) -> Result<&'static str, InsufficientScope> {
    principal.require_scopes(&ScopeSet::parse("chat.history").unwrap())?;
    Ok("history")
}

struct Mcp {
    base: String,
    resource: String,
    h: Harness,
    http: reqwest::Client,
}

impl Mcp {
    async fn start() -> Self {
        let (listener, base) = bind().await;
        let resource = format!("{base}/mcp");
        let registered = resource.clone();
        let h = Harness::start(Setup::builder(move |b| {
            b.resource(
                RegisteredResource::new(Resource::new(registered).unwrap())
                    .with_scopes(ScopeSet::parse("chat.read chat.history chat.write").unwrap()),
            )
        }))
        .await;
        // The MCP server knows only the AS's issuer and JWKS URL (fetched over HTTP).
        let keys = RemoteJwks::from_jwks_uri(
            Issuer::new(h.base.clone()).unwrap(),
            h.server.jwks_uri(),
            h.clock.shared(),
        )
        .unwrap();
        let verifier = AccessTokenVerifier::new(
            Resource::new(resource.clone()).unwrap(),
            Issuer::new(h.base.clone()).unwrap(),
            Arc::new(keys),
            h.clock.shared(),
        );
        let protected = Arc::new(
            ProtectedResource::new(verifier, vec![Issuer::new(h.base.clone()).unwrap()])
                .unwrap()
                .with_scopes_supported(
                    ScopeSet::parse("chat.read chat.history chat.write").unwrap(),
                ),
        );
        let app = Router::new()
            .route("/mcp", get(whoami))
            .route("/mcp/tools/history", get(history_tool))
            .route_layer(RequireBearerLayer::new(protected.clone()))
            .merge(
                Router::new().route("/mcp/admin", get(whoami)).route_layer(
                    RequireBearerLayer::new(protected.clone())
                        .with_scopes(ScopeSet::parse("chat.write").unwrap()),
                ),
            )
            .merge(protected.metadata_router());
        serve(listener, app);
        Self {
            base,
            resource,
            h,
            http: reqwest::Client::new(),
        }
    }

    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
    }

    /// An access token for this MCP server, with `scope` requested.
    async fn token(&self, scope: Option<&str>) -> String {
        let resource = self.resource.clone();
        let id_jag = self.h.idp.with(move |c| {
            c.insert("resource".into(), json!(resource));
        });
        let extra: Vec<(&str, &str)> = scope.map(|s| vec![("scope", s)]).unwrap_or_default();
        let reply = self.h.redeem_with(&id_jag, &extra).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.access_token().to_owned()
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        send(self.http.get(format!("{}{path}", self.base)), headers).await
    }
}

#[tokio::test]
async fn g01_no_token_gets_401_with_the_resource_metadata_challenge() {
    let mcp = Mcp::start().await;
    let reply = mcp.get("/mcp", &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!("Bearer resource_metadata=\"{}\"", mcp.metadata_url())
    );
    assert!(
        reply.body.is_empty(),
        "no error code without credentials (RFC 6750 §3.1)"
    );
    // Another scheme counts as no bearer token.
    let reply = mcp.get("/mcp", &[("authorization", "Basic dTpw")]).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn the_metadata_document_names_the_resource_and_its_authorization_server() {
    let mcp = Mcp::start().await;
    let reply = mcp
        .get("/.well-known/oauth-protected-resource/mcp", &[])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json,
        json!({
            "resource": mcp.resource,
            "authorization_servers": [mcp.h.base],
            "scopes_supported": ["chat.history", "chat.read", "chat.write"],
            "bearer_methods_supported": ["header"],
        })
    );
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_with_its_claims() {
    let mcp = Mcp::start().await;
    let token = mcp.token(None).await;
    let reply = mcp
        .get("/mcp", &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json,
        json!({
            "sub": "alice@acme",
            "client_id": CLIENT,
            "scope": "chat.history chat.read",
            "kid": "as-key-1",
        })
    );
    // A lower-case scheme is fine (threat G04).
    let reply = mcp
        .get("/mcp", &[("authorization", &format!("bearer {token}"))])
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn g02_bad_expired_or_foreign_tokens_get_401_invalid_token() {
    let mcp = Mcp::start().await;
    let challenge = format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{}\"",
        mcp.metadata_url()
    );
    // A token for another resource of the same AS (threat G02).
    let foreign = mcp
        .h
        .redeem(&mcp.h.idp.id_jag())
        .await
        .access_token()
        .to_owned();
    // The ID-JAG itself, presented as an access token (RFC 8725 §3.12).
    let id_jag = mcp.h.idp.id_jag();
    for token in [foreign.as_str(), "abc.def.ghi", id_jag.as_str()] {
        let reply = mcp
            .get("/mcp", &[("authorization", &format!("Bearer {token}"))])
            .await;
        assert_eq!(reply.status, 401, "{token}");
        assert_eq!(reply.header("www-authenticate").unwrap(), challenge);
        assert_eq!(
            reply.json,
            json!({"error": "invalid_token", "error_description": "the access token is invalid"})
        );
    }
    let token = mcp.token(None).await;
    mcp.h.clock.advance(Duration::from_secs(331));
    let reply = mcp
        .get("/mcp", &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate").unwrap(), challenge);
}

#[tokio::test]
async fn g04_g05_malformed_headers_and_query_tokens_are_refused() {
    let mcp = Mcp::start().await;
    let token = mcp.token(None).await;
    let reply = mcp
        .get("/mcp", &[("authorization", &format!("Bearer  {token}"))])
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"], "invalid_request");
    let bearer = format!("Bearer {token}");
    let reply = mcp
        .get(
            "/mcp",
            &[("authorization", &bearer), ("authorization", &bearer)],
        )
        .await;
    assert_eq!(reply.status, 400);
    let reply = mcp.get(&format!("/mcp?access_token={token}"), &[]).await;
    assert_eq!(
        reply.status, 401,
        "tokens in the query string are never read"
    );
}

#[tokio::test]
async fn g16_a_route_scope_missing_from_the_token_is_403_insufficient_scope() {
    let mcp = Mcp::start().await;
    let token = mcp.token(None).await;
    let reply = mcp
        .get(
            "/mcp/admin",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"chat.write\", resource_metadata=\"{}\"",
            mcp.metadata_url()
        )
    );
    assert_eq!(reply.json["error"], "insufficient_scope");
    // With the scope, the route answers.
    let id_jag = mcp.h.idp.set(&[
        ("resource", json!(mcp.resource)),
        ("scope", json!("chat.read chat.write")),
    ]);
    let token = mcp.h.redeem(&id_jag).await.access_token().to_owned();
    let reply = mcp
        .get(
            "/mcp/admin",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 200);
    // Without a token, the route's scope is named in the 401 challenge (MCP 2025-11-25).
    let reply = mcp.get("/mcp/admin", &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!(
            "Bearer scope=\"chat.write\", resource_metadata=\"{}\"",
            mcp.metadata_url()
        )
    );
}

#[tokio::test]
async fn a_handler_checks_its_own_scope_and_answers_403() {
    let mcp = Mcp::start().await;
    let narrow = mcp.token(Some("chat.read")).await;
    let reply = mcp
        .get(
            "/mcp/tools/history",
            &[("authorization", &format!("Bearer {narrow}"))],
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"chat.history\", resource_metadata=\"{}\"",
            mcp.metadata_url()
        )
    );
    let full = mcp.token(None).await;
    let reply = mcp
        .get(
            "/mcp/tools/history",
            &[("authorization", &format!("Bearer {full}"))],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "history");
}
