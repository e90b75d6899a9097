//! A complete rmcp server protected by MCP Enterprise-Managed Authorization, with its whole
//! world on loopback: a demo IdP (`idjag-idp`), the resource authorization server
//! (`idjag-resource`) and the MCP server behind `McpAuth`.
//!
//! ```text
//! cargo run -p idjag-mcp --example protected_server
//! cargo run -p idjag-mcp --example client -- alice   # in another terminal
//! ```
//!
//! - IdP: `http://127.0.0.1:8180` (plus `GET /dev/id-token/<user>`, a demo sign-in that hands
//!   out ID tokens; a real IdP signs users in through OIDC instead).
//! - Resource AS: `http://127.0.0.1:8181`.
//! - MCP server: `http://127.0.0.1:8182/mcp`, tools `whoami` (any valid token with
//!   `repo.read`) and `delete_repo` (needs `repo.admin`).
//!
//! Policy: alice may read and administer, carol may only read, bob may do nothing.
//! Set `IDJAG_DEMO_PORT` to move the three ports (`port`, `port + 1`, `port + 2`).
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use idjag_core::server::{RegisteredClient, StaticClientRegistry};
use idjag_core::*;
use idjag_idp::dev::{DevUser, DevUsers};
use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
use idjag_mcp::server::McpAuth;
use idjag_resource::rs::{AccessTokenVerifier, ProtectedResource};
use idjag_resource::{
    AuthorizationEndpoint, RegisteredResource, ResourceAuthorizationServer, TrustedIssuer,
};
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

#[path = "shared/repo.rs"]
mod repo;
use repo::Repo;

/// The requesting app's client ids, at the IdP and at the resource AS, and their secrets.
const AGENT_AT_IDP: &str = "repo-agent";
const AGENT_AT_AS: &str = "8d2a1c07e5f94b3a";
const IDP_SECRET: &str = "demo-idp-secret";
const AS_SECRET: &str = "demo-as-secret";

/// The demo sign-in: an ID token for `user`, issued to the requesting app.
async fn dev_id_token(State(users): State<Arc<DevUsers>>, Path(user): Path<String>) -> String {
    users
        .id_token(
            &user,
            &ClientId::new(AGENT_AT_IDP).expect("a valid client id"),
        )
        .map(|token| token.secret().to_owned())
        .unwrap_or_default()
}

async fn serve(port: u16, router: Router) -> Result<(), Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let port: u16 = std::env::var("IDJAG_DEMO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8180);
    let idp_url = format!("http://127.0.0.1:{port}");
    let as_url = format!("http://127.0.0.1:{}", port + 1);
    let mcp_url = format!("http://127.0.0.1:{}/mcp", port + 2);

    // 1. The IdP: who may get an ID-JAG for which resource AS, with which scopes.
    let policy = TomlPolicy::from_toml_str(&format!(
        r#"
        [[audience]]
        issuer = "{as_url}"
        resources = ["{mcp_url}"]
        client_ids = {{ "{AGENT_AT_IDP}" = "{AGENT_AT_AS}" }}

        [[allow]]
        clients = ["{AGENT_AT_IDP}"]
        audience = "{as_url}"
        users = ["alice"]
        scopes = ["repo.read", "repo.admin"]

        [[allow]]
        clients = ["{AGENT_AT_IDP}"]
        audience = "{as_url}"
        users = ["carol"]
        scopes = ["repo.read"]
        "#
    ))?;
    let idp = IdJagIssuer::builder(
        Issuer::new(idp_url.as_str())?,
        SigningKeys::generate_es256()?,
        Arc::new(
            StaticClientRegistry::new().with(RegisteredClient::with_secret(
                ClientId::new(AGENT_AT_IDP)?,
                &ClientSecret::new(IDP_SECRET),
            )),
        ),
        Arc::new(policy),
    )
    .build()?;
    let users = Arc::new(
        DevUsers::new(&idp)
            .with_user(DevUser::new("alice")?)
            .with_user(DevUser::new("bob")?)
            .with_user(DevUser::new("carol")?),
    );
    let sign_in = Router::new()
        .route("/dev/id-token/{user}", get(dev_id_token))
        .with_state(users);
    serve(port, idp.router().merge(sign_in)).await?;

    // 2. The resource AS: trusts the IdP's published keys, knows the MCP server and the app.
    let resource = Resource::new(mcp_url.as_str())?;
    let as_server = ResourceAuthorizationServer::builder(
        Issuer::new(as_url.as_str())?,
        SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid(),
    )
    .trust(TrustedIssuer::remote(
        Issuer::new(idp_url.as_str())?,
        SystemClock::shared(),
    )?)
    .resource(
        RegisteredResource::new(resource.clone())
            .with_scopes(ScopeSet::parse("repo.read repo.admin")?),
    )
    .clients(
        StaticClientRegistry::new().with(RegisteredClient::with_secret(
            ClientId::new(AGENT_AT_AS)?,
            &ClientSecret::new(AS_SECRET),
        )),
    )
    // No interactive flow here, but the TypeScript MCP SDK needs an authorization endpoint
    // in the metadata: one that refuses every request.
    .authorization_endpoint(AuthorizationEndpoint::Refusing)
    .build()?;
    let as_keys = Arc::new(as_server.verification_keys());
    serve(port + 1, as_server.router()).await?;

    // 3. The MCP server: only access tokens from that AS, for this resource.
    let verifier = AccessTokenVerifier::new(
        resource,
        Issuer::new(as_url.as_str())?,
        as_keys,
        SystemClock::shared(),
    );
    let auth = McpAuth::new(
        ProtectedResource::new(verifier, vec![Issuer::new(as_url.as_str())?])?
            .with_scopes_supported(ScopeSet::parse("repo.read repo.admin")?),
    )
    .with_required_scope(ScopeSet::parse("repo.read")?)
    .with_tool_scope("delete_repo", ScopeSet::parse("repo.admin")?);
    let service = StreamableHttpService::new(
        || Ok(Repo::new()),
        Arc::new(LocalSessionManager::default()),
        auth.server_config(),
    );
    serve(port + 2, auth.router(service)).await?;

    println!("IdP           {idp_url}  (demo sign-in: {idp_url}/dev/id-token/<user>)");
    println!("resource AS   {as_url}");
    println!("MCP server    {mcp_url}");
    println!("then: cargo run -p idjag-mcp --example client -- alice   (or bob, carol)");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
