//! The requesting app against the real IdP and resource AS, over HTTP on loopback (issue 5):
//! `idjag-client` exchanges a user's ID token at `idjag-idp` for an ID-JAG and redeems it at
//! `idjag-resource`, which trusts the IdP through its published metadata and JWKS.

use std::sync::Arc;

use idjag_client::{
    AccessRequest, ClientCredentials, ClientError, IdJagClient, IdentityProvider,
    ResourceAuthorizationServer, TokenProvider, UserToken,
};
use idjag_core::server::{RegisteredClient, StaticClientRegistry};
use idjag_core::*;
use idjag_idp::dev::{DevUser, DevUsers};
use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
use idjag_resource::rs::AccessTokenVerifier;
use idjag_resource::{
    RegisteredResource, ResourceAuthorizationServer as ResourceServer, TrustedIssuer,
};
use tokio::net::TcpListener;

const AGENT_AT_IDP: &str = "chat-agent";
const AGENT_AT_AS: &str = "f53f191f9311af35";

struct Topology {
    idp_issuer: Issuer,
    as_issuer: Issuer,
    mcp: Resource,
    users: DevUsers,
    resource_server: Arc<ResourceServer>,
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

async fn start() -> Topology {
    let (idp_listener, idp_url) = listener().await;
    let (as_listener, as_url) = listener().await;
    let idp_issuer = Issuer::new(idp_url.as_str()).unwrap();
    let as_issuer = Issuer::new(as_url.as_str()).unwrap();
    let mcp = Resource::new(format!("{as_url}/mcp")).unwrap();

    let policy = TomlPolicy::from_toml_str(&format!(
        r#"
        [[audience]]
        issuer = "{as_url}"
        resources = ["{mcp}"]
        client_ids = {{ "{AGENT_AT_IDP}" = "{AGENT_AT_AS}" }}

        [[allow]]
        clients = ["{AGENT_AT_IDP}"]
        audience = "{as_url}"
        users = ["alice"]
        scopes = ["chat.read", "chat.history"]
        "#
    ))
    .unwrap();
    let idp_clients = StaticClientRegistry::new().with(RegisteredClient::with_secret(
        ClientId::new(AGENT_AT_IDP).unwrap(),
        &ClientSecret::new("idp-secret"),
    ));
    let idp = IdJagIssuer::builder(
        idp_issuer.clone(),
        SigningKeys::generate_es256().unwrap(),
        Arc::new(idp_clients),
        Arc::new(policy),
    )
    .build()
    .unwrap();
    let users = DevUsers::new(&idp)
        .with_user(DevUser::new("alice").unwrap())
        .with_user(DevUser::new("bob").unwrap());
    tokio::spawn(async move { axum::serve(idp_listener, idp.router()).await });

    let resource_server = Arc::new(
        ResourceServer::builder(
            as_issuer.clone(),
            SigningKey::generate(Algorithm::Es256)
                .unwrap()
                .with_thumbprint_kid(),
        )
        .trust(TrustedIssuer::remote(idp_issuer.clone(), SystemClock::shared()).unwrap())
        .resource(
            RegisteredResource::new(mcp.clone())
                .with_scopes(ScopeSet::parse("chat.read chat.history").unwrap()),
        )
        .clients(
            StaticClientRegistry::new().with(RegisteredClient::with_secret(
                ClientId::new(AGENT_AT_AS).unwrap(),
                &ClientSecret::new("as-secret"),
            )),
        )
        .build()
        .unwrap(),
    );
    let router = resource_server.router();
    tokio::spawn(async move { axum::serve(as_listener, router).await });

    Topology {
        idp_issuer,
        as_issuer,
        mcp,
        users,
        resource_server,
    }
}

async fn provider(t: &Topology) -> (TokenProvider, AccessRequest) {
    let idp = IdentityProvider::new(
        t.idp_issuer.clone(),
        &format!("{}/token", t.idp_issuer),
        ClientCredentials::secret_basic(
            ClientId::new(AGENT_AT_IDP).unwrap(),
            ClientSecret::new("idp-secret"),
        )
        .unwrap(),
    )
    .unwrap();
    let client = IdJagClient::new(idp).unwrap();
    // The resource AS through its RFC 8414 metadata, with an exact issuer match.
    let metadata = client
        .discovery()
        .authorization_server(&t.as_issuer)
        .await
        .unwrap();
    assert_eq!(metadata.advertises_id_jag_profile(), Some(true));
    let resource_as = ResourceAuthorizationServer::from_metadata(
        &metadata,
        ClientCredentials::secret_basic(
            ClientId::new(AGENT_AT_AS).unwrap(),
            ClientSecret::new("as-secret"),
        )
        .unwrap(),
    )
    .unwrap();
    let request = AccessRequest::new(resource_as)
        .with_resource(t.mcp.clone())
        .with_scope(ScopeSet::parse("chat.read chat.admin").unwrap());
    (TokenProvider::new(client), request)
}

fn id_token(t: &Topology, user: &str) -> UserToken {
    UserToken::id_token(
        t.users
            .id_token(user, &ClientId::new(AGENT_AT_IDP).unwrap())
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_user_gets_an_access_token_for_exactly_the_granted_resource_and_scope() {
    let t = start().await;
    let (provider, request) = provider(&t).await;
    let alice = id_token(&t, "alice");
    let grant = provider.access_token(&alice, &request).await.unwrap();

    let verifier = AccessTokenVerifier::new(
        t.mcp.clone(),
        t.as_issuer.clone(),
        Arc::new(t.resource_server.verification_keys()),
        SystemClock::shared(),
    );
    let verified = verifier
        .verify(grant.access_token().secret())
        .await
        .unwrap();
    let claims = verified.claims();
    assert_eq!(claims.iss, t.as_issuer);
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.aud.as_str(), t.mcp.as_str());
    assert_eq!(claims.client_id, AGENT_AT_AS);
    // chat.admin is in no allow rule: the IdP narrowed it away and the AS kept the rest.
    assert_eq!(claims.scope.as_ref().unwrap().to_string(), "chat.read");
    assert_eq!(
        (provider.exchange_count(), provider.redemption_count()),
        (1, 1)
    );

    // Cached: the next call sends nothing.
    let again = provider.access_token(&alice, &request).await.unwrap();
    assert!(again.access_token().ct_eq(grant.access_token()));
    assert_eq!(
        (provider.exchange_count(), provider.redemption_count()),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_the_policy_refuses_gets_a_typed_denial_and_no_redemption_is_attempted() {
    let t = start().await;
    let (provider, request) = provider(&t).await;
    let error = provider
        .access_token(&id_token(&t, "bob"), &request)
        .await
        .unwrap_err();
    match &error {
        ClientError::PolicyDenied { code, .. } => assert_eq!(*code, OAuthErrorCode::AccessDenied),
        other => panic!("expected a policy denial, got {other:?}"),
    }
    assert_eq!(
        (provider.exchange_count(), provider.redemption_count()),
        (1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_jag_is_single_use_at_the_resource_as() {
    let t = start().await;
    let (provider, request) = provider(&t).await;
    let client = provider.client();
    let id_jag = client
        .exchange(&id_token(&t, "alice"), &request)
        .await
        .unwrap();
    assert!(client.redeem(&id_jag, &request).await.is_ok());
    match client.redeem(&id_jag, &request).await.unwrap_err() {
        ClientError::Rejected {
            stage,
            status,
            error,
        } => {
            assert_eq!(
                (stage, status),
                (idjag_client::Stage::ResourceAuthorizationServer, 400)
            );
            assert_eq!(error.error, OAuthErrorCode::InvalidGrant);
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}
