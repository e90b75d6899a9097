//! rmcp's own EMA helper, authenticating with our `private_key_jwt` signer
//! (`RmcpAssertions`), against the real `idjag-idp` on 127.0.0.1: the IdP accepts the
//! assertion and issues the ID-JAG; an unregistered key is refused.

use std::sync::Arc;

use idjag_client::auth::PrivateKeyJwt;
use idjag_core::server::{RegisteredClient, StaticClientRegistry};
use idjag_core::*;
use idjag_idp::dev::{DevUser, DevUsers};
use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
use idjag_mcp::client::rmcp_ema::RmcpAssertions;
use rmcp::transport::auth::default_oauth_http_client;
use rmcp::transport::auth::enterprise::{
    EmaAuthorizationServer, EmaClientAuthentication, EmaError, EmaExchangeRequest, EmaExchangeStage,
};

const AGENT: &str = "repo-agent";
const AS_ISSUER: &str = "https://auth.repo.example";
const RESOURCE: &str = "https://mcp.repo.example/mcp";

struct Idp {
    url: String,
    users: DevUsers,
}

async fn start_idp(agent_key: &SigningKey) -> Idp {
    let (listener, url) = idjag_test_support::net::loopback().await;
    let policy = TomlPolicy::from_toml_str(&format!(
        r#"
        [[audience]]
        issuer = "{AS_ISSUER}"
        resources = ["{RESOURCE}"]
        client_ids = {{ "{AGENT}" = "agent-at-as" }}

        [[allow]]
        clients = ["{AGENT}"]
        audience = "{AS_ISSUER}"
        scopes = ["repo.read"]
        "#
    ))
    .unwrap();
    let keys = KeySet::new([agent_key.verifying_key().unwrap()]).unwrap();
    let clients = StaticClientRegistry::new().with(RegisteredClient::with_private_key_jwt(
        ClientId::new(AGENT).unwrap(),
        Arc::new(keys),
    ));
    let idp = IdJagIssuer::builder(
        Issuer::new(url.as_str()).unwrap(),
        SigningKeys::generate_es256().unwrap(),
        Arc::new(clients),
        Arc::new(policy),
    )
    .build()
    .unwrap();
    let users = DevUsers::new(&idp).with_user(DevUser::new("alice").unwrap());
    idjag_test_support::net::serve(listener, idp.router());
    Idp { url, users }
}

async fn exchange(idp: &Idp, signer: PrivateKeyJwt) -> Result<(), EmaError> {
    let id_token = idp
        .users
        .id_token("alice", &ClientId::new(AGENT).unwrap())
        .unwrap();
    let at_idp = EmaAuthorizationServer::new(idp.url.as_str(), format!("{}/token", idp.url), AGENT)
        .with_client_authentication(EmaClientAuthentication::JwtAssertion(Arc::new(
            RmcpAssertions::private_key_jwt(signer),
        )));
    let at_as = EmaAuthorizationServer::new(AS_ISSUER, format!("{AS_ISSUER}/token"), "agent-at-as");
    let id_jag = EmaExchangeRequest::new_with_id_token(at_idp, at_as, RESOURCE, id_token.secret())
        .with_scopes(["repo.read"])
        .exchange_id_jag(&default_oauth_http_client().unwrap())
        .await?;
    assert!(id_jag.scopes().contains("repo.read"));
    assert_eq!(id_jag.assertion().secret().split('.').count(), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_exchanges_an_id_token_with_our_private_key_jwt() {
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let idp = start_idp(&key).await;
    exchange(&idp, PrivateKeyJwt::new(key, SystemClock::shared()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_signed_with_an_unregistered_key_is_refused() {
    let registered = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let idp = start_idp(&registered).await;
    let other = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let error = exchange(&idp, PrivateKeyJwt::new(other, SystemClock::shared()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EmaError::OAuthRejected {
                stage: EmaExchangeStage::IdentityProvider,
                status: 401,
                code: "invalid_client",
            }
        ),
        "{error:?}"
    );
}
