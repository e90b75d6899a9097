//! An rmcp client that reaches the `protected_server` example through the ID-JAG flow.
//!
//! ```text
//! cargo run -p idjag-mcp --example protected_server          # first, in another terminal
//! cargo run -p idjag-mcp --example client -- alice           # or bob (denied), carol (reader)
//! ```
//!
//! It signs the user in at the demo IdP (a real app gets the ID token from its OIDC login),
//! connects to the MCP server, whose `401` leads to its authorization server, exchanges the ID
//! token for an ID-JAG at the IdP, redeems it for an access token, then calls `whoami` and
//! `delete_repo` (which needs `repo.admin`: one step-up, refused for readers).
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use idjag_client::{ClientCredentials, IdJagClient, IdentityProvider, TokenProvider, UserToken};
use idjag_core::{ClientId, ClientSecret, IdToken, Issuer, ScopeSet};
use idjag_mcp::EnterpriseManagedAuthorization;
use idjag_mcp::client::{
    EmaAuthorizer, ResourceAsRegistrations, authorization_error, transport_error,
};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::transport::streamable_http_client::StreamableHttpError;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let user = std::env::args().nth(1).unwrap_or_else(|| "alice".into());
    let port: u16 = std::env::var("IDJAG_DEMO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8180);
    let idp_url = format!("http://127.0.0.1:{port}");
    let as_url = format!("http://127.0.0.1:{}", port + 1);
    let mcp_url = format!("http://127.0.0.1:{}/mcp", port + 2);

    // The app's registrations: at its IdP, and at the one resource AS it trusts.
    let idp = IdentityProvider::new(
        Issuer::new(idp_url.as_str())?,
        &format!("{idp_url}/token"),
        ClientCredentials::secret_basic(
            ClientId::new("repo-agent")?,
            ClientSecret::new("demo-idp-secret"),
        )?,
    )?;
    let registrations = ResourceAsRegistrations::new().with(
        Issuer::new(as_url.as_str())?,
        ClientCredentials::secret_basic(
            ClientId::new("8d2a1c07e5f94b3a")?,
            ClientSecret::new("demo-as-secret"),
        )?,
    );
    let authorizer = Arc::new(
        EmaAuthorizer::new(
            Arc::new(TokenProvider::new(IdJagClient::new(idp)?)),
            registrations,
        )
        .with_scope(ScopeSet::parse("repo.read")?),
    );

    // The user signs in (demo IdP).
    let id_token = reqwest::get(format!("{idp_url}/dev/id-token/{user}"))
        .await?
        .text()
        .await?;
    let transport = authorizer
        .reqwest_client(UserToken::id_token(IdToken::new(id_token)))?
        .into_transport(mcp_url);

    let config = ClientConfig::new(
        ClientCapabilities::default().enable_enterprise_managed_authorization(),
        Implementation::new("repo-agent", env!("CARGO_PKG_VERSION")),
    );
    let client = match config.serve(transport).await {
        Ok(client) => client,
        Err(error) => {
            match authorization_error(&error) {
                Some(denied) if denied.is_policy_denial() => {
                    println!("{user}: the IdP's policy refuses this access ({denied})");
                }
                Some(other) => println!("{user}: authorization failed: {other}"),
                None => println!("{user}: could not connect: {error}"),
            }
            return Ok(());
        }
    };

    let whoami = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await?;
    println!(
        "whoami: {}",
        whoami.content[0].as_text().map_or("", |t| &t.text)
    );
    match client
        .call_tool(CallToolRequestParams::new("delete_repo"))
        .await
    {
        Ok(result) => println!(
            "delete_repo: {}",
            result.content[0].as_text().map_or("", |t| &t.text)
        ),
        Err(error) => match transport_error(&error) {
            Some(StreamableHttpError::InsufficientScope(refusal)) => println!(
                "delete_repo: refused, needs {}",
                refusal.get_required_scope().unwrap_or("more scope")
            ),
            _ => println!("delete_repo: {error}"),
        },
    }
    client.cancel().await?;
    Ok(())
}
