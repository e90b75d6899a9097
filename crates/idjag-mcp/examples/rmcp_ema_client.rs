//! rmcp's own EMA helper (`EmaExchangeRequest`, feature `auth-enterprise-managed`) running the
//! ID-JAG flow against the servers idjag ships, with idjag's `private_key_jwt` signer
//! (`RmcpAssertions`) authenticating the client at both token endpoints; then rmcp's Streamable
//! HTTP client calls the MCP server with the access token. `scripts/interop.sh rust` runs it
//! against the interop stack (`interop/stack/`):
//!
//! - the upstream OpenID provider (`oauth2-mock-server`), where the user signs in (a password
//!   grant here) for an ID token issued to `rust-agent`;
//! - `idjag-issuer`, which trades that ID token for an ID-JAG (RFC 8693);
//! - `idjag-resource-server`, which redeems the ID-JAG for an access token (RFC 7523);
//! - the `mcp_server` example, which accepts only that server's access tokens.
//!
//! The addresses come from the environment: `IDJAG_INTEROP_UPSTREAM`, `IDJAG_INTEROP_ISSUER`,
//! `IDJAG_INTEROP_AS` (the resource server's issuer), `IDJAG_INTEROP_MCP` (the MCP server's URL)
//! and `IDJAG_INTEROP_RUST_CLIENT_JWKS` (where this client publishes its public key: the
//! `jwks_uri` both servers have for `rust-agent`; its key is generated at start).
//!
//! Each check prints `ok - ...`; the first failure ends the process with a non-zero status.
#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::routing::get;
use idjag_client::auth::PrivateKeyJwt;
use idjag_core::challenge::BearerChallenge;
use idjag_core::{Algorithm, KeySet, SigningKey, SystemClock};
use idjag_mcp::EnterpriseManagedAuthorization;
use idjag_mcp::client::rmcp_ema::RmcpAssertions;
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
};
use rmcp::service::{ClientInitializeError, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::default_oauth_http_client;
use rmcp::transport::auth::enterprise::{
    EmaAccessToken, EmaAuthorizationServer, EmaClientAuthentication, EmaError, EmaExchangeRequest,
    EmaExchangeStage,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

type Outcome<T> = Result<T, Box<dyn Error>>;

/// This client's id at the upstream IdP, at idjag-issuer and at the resource server.
const CLIENT_ID: &str = "rust-agent";

/// Fails the run with `what` unless `condition` holds.
fn check(condition: bool, what: impl Into<String>) -> Outcome<()> {
    if condition {
        Ok(())
    } else {
        Err(format!("check failed: {}", what.into()).into())
    }
}

static CHECKS: AtomicUsize = AtomicUsize::new(0);

fn ok(what: &str) {
    CHECKS.fetch_add(1, Ordering::Relaxed);
    println!("ok - {what}");
}

fn env(name: &str) -> Outcome<String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set (scripts/interop.sh sets it)").into())
}

/// The stack's addresses and what the client found there.
struct Stack {
    http: reqwest::Client,
    upstream: String,
    mcp: String,
    /// The MCP server's RFC 9728 metadata URL.
    metadata_url: String,
    /// idjag-issuer: its issuer and token endpoint (RFC 8414).
    idp: (String, String),
    /// The resource server: its issuer and token endpoint (RFC 8414).
    resource_as: (String, String),
}

impl Stack {
    /// The user's ID token from the upstream IdP, issued to this client (`aud` = `rust-agent`).
    async fn sign_in(&self, user: &str) -> Outcome<String> {
        let reply: Value = self
            .http
            .post(format!("{}/token", self.upstream))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("client_id", CLIENT_ID),
                ("scope", "openid"),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = reply["id_token"].as_str().ok_or("no id_token")?;
        Ok(token.to_owned())
    }

    /// Both legs through rmcp's helper for `user`'s ID token, the client authenticated with
    /// `private_key_jwt` by `at_idp` at idjag-issuer and by `at_as` at the resource server (two
    /// signers, so that one can hold a key nobody registered).
    async fn exchange(
        &self,
        user: &str,
        scopes: &[&str],
        at_idp: &RmcpAssertions,
        at_as: &RmcpAssertions,
    ) -> Outcome<Result<EmaAccessToken, EmaError>> {
        let id_token = self.sign_in(user).await?;
        let authenticated = |(issuer, token_endpoint): &(String, String),
                             signer: &RmcpAssertions| {
            EmaAuthorizationServer::new(issuer.as_str(), token_endpoint.as_str(), CLIENT_ID)
                .with_client_authentication(EmaClientAuthentication::JwtAssertion(Arc::new(
                    signer.clone(),
                )))
        };
        let http = default_oauth_http_client()?;
        Ok(EmaExchangeRequest::new_with_id_token(
            authenticated(&self.idp, at_idp),
            authenticated(&self.resource_as, at_as),
            &self.mcp,
            &id_token,
        )
        .with_scopes(scopes.iter().copied())
        .exchange(&http, &http)
        .await)
    }

    /// Both legs for `user` asking for `asked`, with `signer` at both servers: they must
    /// succeed with exactly the scopes `granted`.
    async fn grant(
        &self,
        user: &str,
        asked: &[&str],
        granted: &[&str],
        signer: &RmcpAssertions,
    ) -> Outcome<EmaAccessToken> {
        let token = self
            .exchange(user, asked, signer, signer)
            .await?
            .map_err(|error| format!("{user}: the exchange failed: {error:?}"))?;
        check(
            token.scopes == scopes(granted),
            format!("{user}: granted {:?}", token.scopes),
        )?;
        Ok(token)
    }

    /// An rmcp client session to the MCP server, sending `token` as its bearer.
    async fn connect(
        &self,
        token: &str,
    ) -> Result<RunningService<RoleClient, ClientConfig>, ClientInitializeError> {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(self.mcp.as_str()).auth_header(token),
        );
        ClientConfig::new(
            ClientCapabilities::default().enable_enterprise_managed_authorization(),
            Implementation::new("idjag-rust-interop", env!("CARGO_PKG_VERSION")),
        )
        .serve(transport)
        .await
    }
}

/// A `WWW-Authenticate` challenge of the MCP server as (`error`, `scope`, `resource_metadata`).
fn challenge_of(header: &str) -> Outcome<(String, String, String)> {
    let challenge = BearerChallenge::from_header_values([header])?
        .ok_or_else(|| format!("not a Bearer challenge: {header:?}"))?;
    Ok((
        challenge
            .error()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default(),
        challenge
            .scope()
            .map(ToString::to_string)
            .unwrap_or_default(),
        challenge.resource_metadata().unwrap_or_default().to_owned(),
    ))
}

fn scopes(list: &[&str]) -> HashSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn text_of(result: &CallToolResult) -> Outcome<String> {
    check(
        result.is_error != Some(true),
        format!("a tool error: {result:?}"),
    )?;
    Ok(result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect())
}

async fn call(client: &RunningService<RoleClient, ClientConfig>, tool: &str) -> Outcome<String> {
    text_of(
        &client
            .call_tool(CallToolRequestParams::new(tool.to_owned()))
            .await?,
    )
}

async fn get_json(http: &reqwest::Client, url: &str) -> Outcome<Value> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Publishes `key`'s public half at `jwks_url` (this client's `jwks_uri` at both servers).
async fn publish_jwks(key: &SigningKey, jwks_url: &str) -> Outcome<()> {
    let jwks = KeySet::new([key.verifying_key()?])?.to_jwks();
    let url = url::Url::parse(jwks_url)?;
    let app = axum::Router::new().route(url.path(), get(move || async move { Json(jwks) }));
    let listener = tokio::net::TcpListener::bind(&*url.socket_addrs(|| None)?).await?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(())
}

/// The MCP server's RFC 9728 metadata, found through its `401`, names the resource server;
/// then both servers' RFC 8414 metadata give their token endpoints.
async fn discover(http: reqwest::Client) -> Outcome<Stack> {
    let mcp = env("IDJAG_INTEROP_MCP")?;
    let expected_as = env("IDJAG_INTEROP_AS")?;
    let issuer = env("IDJAG_INTEROP_ISSUER")?;

    let refused = http.post(&mcp).body("{}").send().await?;
    check(
        refused.status() == 401,
        format!("401 without a token, got {}", refused.status()),
    )?;
    let challenge = refused
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let origin = url::Url::parse(&mcp)?.origin().ascii_serialization();
    let metadata_url = format!("{origin}/.well-known/oauth-protected-resource/mcp");
    let (_, scope, named) = challenge_of(&challenge)?;
    check(
        scope == "repo.read" && named == metadata_url,
        format!("the 401 names repo.read and the RFC 9728 metadata: {challenge:?}"),
    )?;
    let prm = get_json(&http, &metadata_url).await?;
    check(prm["resource"] == mcp.as_str(), format!("resource: {prm}"))?;
    check(
        prm["authorization_servers"] == serde_json::json!([expected_as]),
        format!("authorization_servers: {prm}"),
    )?;
    ok(
        "the MCP server's 401 and RFC 9728 metadata name idjag-resource-server as its only authorization server",
    );

    let mut endpoints = Vec::new();
    for server in [&issuer, &expected_as] {
        let metadata = get_json(
            &http,
            &format!("{server}/.well-known/oauth-authorization-server"),
        )
        .await?;
        check(
            metadata["issuer"] == server.as_str(),
            format!("issuer: {metadata}"),
        )?;
        let token_endpoint = metadata["token_endpoint"]
            .as_str()
            .ok_or("no token_endpoint")?;
        endpoints.push((server.clone(), token_endpoint.to_owned()));
    }
    ok(
        "idjag-issuer's and idjag-resource-server's RFC 8414 metadata (exact issuer, token endpoint)",
    );
    let resource_as = endpoints.pop().ok_or("no resource server")?;
    let idp = endpoints.pop().ok_or("no issuer")?;
    Ok(Stack {
        http,
        upstream: env("IDJAG_INTEROP_UPSTREAM")?,
        mcp,
        metadata_url,
        idp,
        resource_as,
    })
}

#[tokio::main]
async fn main() -> Outcome<()> {
    let key = SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid();
    publish_jwks(&key, &env("IDJAG_INTEROP_RUST_CLIENT_JWKS")?).await?;
    let signer = RmcpAssertions::private_key_jwt(PrivateKeyJwt::new(key, SystemClock::shared()));
    let stack = discover(reqwest::Client::new()).await?;

    // 1. alice asks for repo.read: an access token the MCP server accepts.
    let token = stack
        .grant("alice", &["repo.read"], &["repo.read"], &signer)
        .await?;
    ok(
        "alice: rmcp's EMA helper ran both legs with private_key_jwt at idjag-issuer and idjag-resource-server (requirements EMA-02, EMA-03)",
    );
    let client = stack.connect(token.access_token.secret()).await?;
    let mut tools: Vec<String> = client
        .list_all_tools()
        .await?
        .into_iter()
        .map(|tool| tool.name.into_owned())
        .collect();
    tools.sort();
    check(tools == ["delete_repo", "whoami"], format!("{tools:?}"))?;
    ok("alice: tools/list with the resource server's access token");
    let who = call(&client, "whoami").await?;
    check(who == "alice via rust-agent with [repo.read]", &who)?;
    ok(&format!("alice: whoami answered \"{who}\""));
    // delete_repo needs repo.admin: the MCP server refuses the token before the tool runs.
    let refused = client
        .call_tool(CallToolRequestParams::new("delete_repo"))
        .await
        .err()
        .ok_or("delete_repo ran with repo.read only")?;
    let challenge = refused.auth_challenge().unwrap_or_default();
    check(
        challenge_of(challenge)?
            == (
                "insufficient_scope".to_owned(),
                "repo.admin".to_owned(),
                stack.metadata_url.clone(),
            ),
        format!("the 403 challenge: {challenge:?}"),
    )?;
    ok(
        "alice: delete_repo refused with 403 insufficient_scope, scope=\"repo.admin\" (requirement MCP-05)",
    );
    // The 403 ended rmcp's session.
    drop(client);

    // 2. alice steps up: a new exchange for both scopes, a new session, and the tool runs.
    let both = ["repo.read", "repo.admin"];
    let token = stack.grant("alice", &both, &both, &signer).await?;
    let client = stack.connect(token.access_token.secret()).await?;
    let deleted = call(&client, "delete_repo").await?;
    check(deleted == "repository deleted by alice", &deleted)?;
    ok("alice: delete_repo after a new exchange for \"repo.read repo.admin\"");
    client.cancel().await?;

    // 3. carol asks for both scopes: the issuer's policy narrows her grant to repo.read.
    let token = stack.grant("carol", &both, &["repo.read"], &signer).await?;
    let client = stack.connect(token.access_token.secret()).await?;
    let who = call(&client, "whoami").await?;
    check(who == "carol via rust-agent with [repo.read]", &who)?;
    ok("carol: the ID-JAG and the access token narrowed to repo.read (rmcp checked the narrowing)");
    client.cancel().await?;

    // 4. bob: the issuer's policy refuses him; no grant reaches the resource server.
    let refused = stack
        .exchange("bob", &["repo.read"], &signer, &signer)
        .await?;
    check(
        refused.as_ref().err()
            == Some(&EmaError::OAuthRejected {
                stage: EmaExchangeStage::IdentityProvider,
                status: 400,
                code: "access_denied",
            }),
        format!("{refused:?}"),
    )?;
    ok("bob: idjag-issuer refused the exchange with 400 access_denied");

    // 5. A key neither server has: refused at the issuer, then (the issuer's leg signed with
    // the registered key) at the resource server.
    let stranger = RmcpAssertions::private_key_jwt(PrivateKeyJwt::new(
        SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid(),
        SystemClock::shared(),
    ));
    for (at_idp, at_as, stage) in [
        (&stranger, &signer, EmaExchangeStage::IdentityProvider),
        (
            &signer,
            &stranger,
            EmaExchangeStage::ResourceAuthorizationServer,
        ),
    ] {
        let refused = stack
            .exchange("alice", &["repo.read"], at_idp, at_as)
            .await?;
        check(
            refused.as_ref().err()
                == Some(&EmaError::OAuthRejected {
                    stage,
                    status: 401,
                    code: "invalid_client",
                }),
            format!("{refused:?}"),
        )?;
    }
    ok(
        "a client assertion signed with an unpublished key: 401 invalid_client at idjag-issuer and at idjag-resource-server",
    );

    // 6. A forged access token (one signature character changed): the MCP server refuses it.
    let token = stack
        .grant("alice", &["repo.read"], &["repo.read"], &signer)
        .await?;
    let secret = token.access_token.secret();
    let at = secret.len() - 2;
    let flipped = if &secret[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &secret[..at], &secret[at + 1..]);
    let refused = stack
        .connect(&forged)
        .await
        .err()
        .ok_or("a forged access token was accepted")?;
    let challenge = refused.auth_challenge().unwrap_or_default();
    check(
        challenge_of(challenge)?
            == (
                "invalid_token".to_owned(),
                "repo.read".to_owned(),
                stack.metadata_url.clone(),
            ),
        format!("the 401 challenge: {challenge:?}"),
    )?;
    ok("a forged access token: the MCP server answered 401 invalid_token");

    println!("{} checks passed", CHECKS.load(Ordering::Relaxed));
    Ok(())
}
