//! An rmcp server behind `McpAuth` that accepts only the access tokens of one external
//! authorization server, such as the `idjag-resource-server` binary.
//!
//! ```text
//! cargo run -p idjag-mcp --example mcp_server -- \
//!     --resource http://127.0.0.1:8182/mcp --authorization-server http://127.0.0.1:8181
//! ```
//!
//! - `--resource`: the MCP server's URL, its RFC 9728 resource identifier. It listens on that
//!   URL's host and port and serves MCP at its path.
//! - `--authorization-server`: the authorization server's issuer identifier. Its keys come from
//!   the `jwks_uri` of its RFC 8414 metadata, fetched once before the server listens (it exits
//!   if they cannot be fetched) and again for an unknown `kid`.
//!
//! Routes: the MCP endpoint (a valid access token with `repo.read` issued by that authorization
//! server for this resource, else `401` naming the metadata), the RFC 9728 metadata at
//! `/.well-known/oauth-protected-resource{path}` (its `authorization_servers` is that issuer
//! alone) and `GET /readyz` (`200` once it listens, for scripts that wait for it). Tools:
//! `whoami` and `delete_repo` (which needs `repo.admin`). `scripts/interop.sh` runs it beside
//! `idjag-issuer` and `idjag-resource-server`.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use axum::routing::get;
use idjag_core::remote::RemoteJwks;
use idjag_core::{Issuer, Resource, ScopeSet, SystemClock};
use idjag_mcp::server::McpAuth;
use idjag_resource::rs::{AccessTokenVerifier, ProtectedResource};
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

#[path = "shared/repo.rs"]
mod repo;
use repo::Repo;

const USAGE: &str = "usage: mcp_server --resource URL --authorization-server ISSUER";

/// `--resource` and `--authorization-server`, each exactly once.
fn arguments() -> Result<(String, String), Box<dyn Error>> {
    let mut resource = None;
    let mut issuer = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--resource" => &mut resource,
            "--authorization-server" => &mut issuer,
            _ => return Err(format!("unknown argument {flag:?}; {USAGE}").into()),
        };
        let value = args.next().ok_or(USAGE)?;
        if slot.replace(value).is_some() {
            return Err(format!("{flag} given twice; {USAGE}").into());
        }
    }
    Ok((resource.ok_or(USAGE)?, issuer.ok_or(USAGE)?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let (resource_url, issuer_url) = arguments()?;
    let resource = Resource::new(resource_url.as_str())?;
    let issuer = Issuer::new(issuer_url.as_str())?;
    let listen = url::Url::parse(&resource_url)?.socket_addrs(|| None)?;

    let keys = RemoteJwks::from_issuer(issuer.clone(), SystemClock::shared())?;
    keys.refresh_now().await?;
    let verifier = AccessTokenVerifier::new(
        resource,
        issuer.clone(),
        Arc::new(keys),
        SystemClock::shared(),
    );
    let auth = McpAuth::new(
        ProtectedResource::new(verifier, vec![issuer])?
            .with_scopes_supported(ScopeSet::parse("repo.read repo.admin")?),
    )
    .with_required_scope(ScopeSet::parse("repo.read")?)
    .with_tool_scope("delete_repo", ScopeSet::parse("repo.admin")?);
    let service = StreamableHttpService::new(
        || Ok(Repo::new()),
        Arc::new(LocalSessionManager::default()),
        auth.server_config(),
    );
    let app = auth
        .router(service)
        .route("/readyz", get(|| async { "ready\n" }));

    let listener = tokio::net::TcpListener::bind(&*listen).await?;
    println!("MCP server {resource_url}, authorization server {issuer_url}");
    axum::serve(listener, app).await?;
    Ok(())
}
