//! The client the public MCP conformance suite drives for the scenario
//! `auth/enterprise-managed-authorization` (threat C07).
//!
//! Contract: the scenario's context (JSON) is in `MCP_CONFORMANCE_CONTEXT`, the MCP server URL
//! is the last argument. The client signs nothing itself: it trades the IdP's ID token for an
//! ID-JAG at `idp_token_endpoint` (a public client there, `idp_client_id`), redeems it at the
//! authorization server the MCP server names with `client_secret_basic`, then lists and calls
//! the server's tools. Everything runs on `http://localhost`, which idjag accepts as loopback.
//! The authorization server does not list grant profiles (assumed supported) and the IdP does
//! not publish its ID-JAG keys (no client-side signature check; the authorization server
//! verifies).
//!
//! Run it through the suite: `scripts/conformance.sh` (see the crate README).

use std::error::Error;
use std::sync::Arc;

use idjag_client::{ClientCredentials, IdJagClient, IdentityProvider, TokenProvider, UserToken};
use idjag_core::{ClientId, ClientSecret, IdToken, Issuer};
use idjag_mcp::EnterpriseManagedAuthorization;
use idjag_mcp::client::{EmaAuthorizer, ResourceAsRegistrations, authorization_error};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
};
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};

/// The scenario context (the members this client uses).
#[derive(serde::Deserialize)]
struct Context {
    client_id: String,
    client_secret: String,
    idp_client_id: String,
    idp_id_token: String,
    idp_issuer: String,
    idp_token_endpoint: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("conformance client failed: {error}");
            if let Some(denied) = authorization_error(error.as_ref()) {
                eprintln!("authorization: {denied} (stage {:?})", denied.stage());
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let server_url = std::env::args()
        .next_back()
        .ok_or("usage: conformance_client <server-url>")?;
    let context: Context = serde_json::from_str(
        &std::env::var("MCP_CONFORMANCE_CONTEXT")
            .map_err(|_| "MCP_CONFORMANCE_CONTEXT is not set")?,
    )?;

    // The IdP: its token endpoint comes with the context; we are a public client there.
    let idp = IdentityProvider::new(
        Issuer::new(context.idp_issuer)?,
        &context.idp_token_endpoint,
        ClientCredentials::public(ClientId::new(context.idp_client_id)?),
    )?;
    let provider = Arc::new(TokenProvider::new(IdJagClient::new(idp)?));

    // Our registration at the MCP server's authorization server, which is only known once the
    // MCP server names it (a fresh port per run).
    let registrations =
        ResourceAsRegistrations::new().with_any_listed(ClientCredentials::secret_basic(
            ClientId::new(context.client_id)?,
            ClientSecret::new(context.client_secret),
        )?);
    let authorizer = Arc::new(EmaAuthorizer::new(provider, registrations));
    let user = UserToken::id_token(IdToken::new(context.idp_id_token));
    let transport = authorizer.reqwest_client(user)?.into_transport(server_url);

    let config = ClientConfig::new(
        ClientCapabilities::default().enable_enterprise_managed_authorization(),
        Implementation::new("idjag-mcp-conformance-client", env!("CARGO_PKG_VERSION")),
    );
    // The scenario's protocol version: `initialize` before 2026-07-28, `server/discover` from it.
    let client = match std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION") {
        Ok(version) => {
            let version: ProtocolVersion =
                serde_json::from_value(serde_json::Value::String(version))?;
            let lifecycle = if version >= ProtocolVersion::NO_INITIALIZE {
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![version.clone()],
                }
            } else {
                ClientLifecycleMode::Initialize
            };
            config
                .with_protocol_version(version)
                .serve_with_lifecycle(transport, lifecycle)
                .await?
        }
        Err(_) => config.serve(transport).await?,
    };
    let tools = client.list_all_tools().await?;
    eprintln!(
        "tools: {:?}",
        tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>()
    );
    if let Some(tool) = tools.first() {
        client
            .call_tool(CallToolRequestParams::new(tool.name.clone()))
            .await?;
    }
    client.cancel().await?;
    Ok(())
}
