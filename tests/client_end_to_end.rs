//! The requesting app against the real IdP and resource AS, over HTTP on loopback (issue 5):
//! `idjag-client` exchanges a user's ID token at `idjag-idp` for an ID-JAG and redeems it at
//! `idjag-resource`, which trusts the IdP through its published metadata and JWKS.

use std::sync::Arc;

use idjag_client::{
    AccessRequest, ClientCredentials, ClientError, IdJagClient, ResourceAsTarget, TokenProvider,
    UserToken,
};
use idjag_core::*;
use idjag_idp::dev::DevUsers;
use idjag_resource::rs::AccessTokenVerifier;
use idjag_test_support::net::loopback as listener;
use idjag_test_support::spawn::{
    AS_SECRET, idp as spawn_idp, idp_registration, resource_as as spawn_resource_as,
};

const AGENT_AT_IDP: &str = "chat-agent";
const AGENT_AT_AS: &str = "f53f191f9311af35";

struct Topology {
    idp_issuer: Issuer,
    as_issuer: Issuer,
    mcp: Resource,
    users: DevUsers,
    access_token_keys: KeySet,
}

async fn start() -> Topology {
    let (idp_listener, idp_url) = listener().await;
    let (as_listener, as_url) = listener().await;
    let idp_issuer = Issuer::new(idp_url.as_str()).unwrap();
    let as_issuer = Issuer::new(as_url.as_str()).unwrap();
    let mcp = Resource::new(format!("{as_url}/mcp")).unwrap();
    let policy = format!(
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
    );
    let users = spawn_idp(
        idp_listener,
        &idp_issuer,
        &policy,
        AGENT_AT_IDP,
        &["alice", "bob"],
    );
    let access_token_keys = spawn_resource_as(
        as_listener,
        &as_issuer,
        &idp_issuer,
        &mcp,
        "chat.read chat.history",
        AGENT_AT_AS,
    );
    Topology {
        idp_issuer,
        as_issuer,
        mcp,
        users,
        access_token_keys,
    }
}

async fn provider(t: &Topology) -> (TokenProvider, AccessRequest) {
    let client = IdJagClient::new(idp_registration(&t.idp_issuer, AGENT_AT_IDP)).unwrap();
    // The resource AS through its RFC 8414 metadata, with an exact issuer match.
    let metadata = client
        .discovery()
        .authorization_server(&t.as_issuer)
        .await
        .unwrap();
    assert_eq!(metadata.advertises_id_jag_profile(), Some(true));
    let resource_as = ResourceAsTarget::from_metadata(
        &metadata,
        ClientCredentials::secret_basic(
            ClientId::new(AGENT_AT_AS).unwrap(),
            ClientSecret::new(AS_SECRET),
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
        Arc::new(t.access_token_keys.clone()),
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
