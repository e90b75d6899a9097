//! The authorizing rmcp client against real HTTP peers on 127.0.0.1 (metadata, authorization
//! server, IdP) and a scripted MCP server: discovery, token exchange, redemption, the `401`
//! retry, the `403` step-up, and failures that send nothing.

#[allow(unreachable_pub, dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use idjag_client::{ClientError, Stage};
use idjag_core::{OAuthErrorCode, ScopeSet, wire};
use idjag_mcp::client::{
    AuthorizationError, EmaAuthClient, EmaHttpError, EmaTransportError, ResourceAsRegistrations,
    SharedUserToken, authorization_error,
};
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_client::{StreamableHttpClient, StreamableHttpError};

use self::support::*;

async fn send(client: &EmaAuthClient<ScriptedMcp>, peers: &Peers) -> Result<(), EmaHttpError> {
    client
        .post_message(
            Arc::from(peers.mcp_url()),
            ping(),
            None,
            None,
            HashMap::new(),
        )
        .await
        .map(drop)
}

fn authorization(error: &EmaHttpError) -> &AuthorizationError {
    match error {
        StreamableHttpError::Client(EmaTransportError::Authorization(e)) => e,
        other => panic!("expected an authorization error, got {other:?}"),
    }
}

fn some(token: &str) -> Option<String> {
    Some(token.to_owned())
}

fn insufficient_scope(peers: &Peers, scope: &str) -> Reply {
    Reply::Forbidden(format!(
        r#"Bearer error="insufficient_scope", scope="{scope}", resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
        peers.base
    ))
}

#[tokio::test]
async fn the_first_request_discovers_from_the_challenge_and_is_resent_with_the_token() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));

    send(&client, &peers).await.unwrap();

    assert_eq!(mcp.tokens(), [None, some("at-1")]);
    // Leg 1, exactly (requirements EMA-02, EMA-03, MCP-01; threat C01).
    let exchanges = peers.exchanges();
    assert_eq!(exchanges.len(), 1);
    let expected: HashMap<String, String> = [
        ("grant_type", wire::GRANT_TYPE_TOKEN_EXCHANGE),
        ("requested_token_type", wire::TOKEN_TYPE_ID_JAG),
        ("audience", peers.as_issuer().as_str()),
        ("resource", &peers.mcp_url()),
        ("subject_token", "id-token-alice"),
        ("subject_token_type", wire::TOKEN_TYPE_ID_TOKEN),
        ("client_id", IDP_CLIENT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(exchanges[0], expected);
    // Leg 2: the ID-JAG, the resource, client_secret_basic (so no credential in the form).
    let redemptions = peers.redemptions();
    assert_eq!(redemptions.len(), 1);
    let mut fields: Vec<_> = redemptions[0].keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["assertion", "grant_type", "resource"]);
    assert_eq!(redemptions[0]["grant_type"], wire::GRANT_TYPE_JWT_BEARER);
    assert_eq!(redemptions[0]["resource"], peers.mcp_url());
    assert_eq!(peers.log.prm_fetches.load(Ordering::SeqCst), 1);

    let request = client.access_request().await.unwrap();
    assert_eq!(request.resource_as().issuer(), &peers.as_issuer());
    assert_eq!(request.resources()[0].as_str(), peers.mcp_url());
}

#[tokio::test]
async fn later_requests_and_clones_use_the_cached_token() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    send(&client, &peers).await.unwrap();
    send(&client, &peers).await.unwrap();
    send(&client.clone(), &peers).await.unwrap();
    assert_eq!(
        mcp.tokens(),
        [None, some("at-1"), some("at-1"), some("at-1")]
    );
    assert_eq!(peers.exchanges().len(), 1);
    assert_eq!(peers.log.prm_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_idp_policy_denial_is_typed_and_no_credential_is_ever_sent() {
    let peers = Peers::builder().deny("mallory").start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("mallory"));

    let error = send(&client, &peers).await.unwrap_err();
    let denied = authorization(&error);
    assert!(denied.is_policy_denial(), "{denied:?}");
    assert_eq!(denied.stage(), Some(Stage::IdentityProvider));
    assert_eq!(denied.oauth_error(), Some(OAuthErrorCode::AccessDenied));
    assert!(matches!(
        denied.client_error(),
        Some(ClientError::PolicyDenied { status: 400, .. })
    ));

    // Asked again: the IdP is asked again and refuses again; no fallback to anything else.
    let again = send(&client, &peers).await.unwrap_err();
    assert!(authorization(&again).is_policy_denial());
    assert_eq!(
        mcp.tokens(),
        [None],
        "only the unauthenticated first request went out"
    );
    assert_eq!(peers.exchanges().len(), 2);
    assert!(peers.redemptions().is_empty());
}

#[tokio::test]
async fn authorizing_up_front_sends_nothing_to_the_server() {
    let peers = Peers::builder().deny("mallory").start().await;
    let authorizer = peers.authorizer();

    let denied_mcp = ScriptedMcp::new(&peers, []);
    let denied = authorizer.client(denied_mcp.clone(), user("mallory"));
    let error = denied.authorize(&peers.mcp_url()).await.unwrap_err();
    assert!(error.is_policy_denial());
    assert!(
        denied_mcp.tokens().is_empty(),
        "the MCP server saw no request"
    );

    let allowed_mcp = ScriptedMcp::new(&peers, []);
    let allowed = authorizer.client(allowed_mcp.clone(), user("alice"));
    allowed.authorize(&peers.mcp_url()).await.unwrap();
    send(&allowed, &peers).await.unwrap();
    assert_eq!(allowed_mcp.tokens(), [some("at-1")]);
    // Found through the well-known URL, without a challenge.
    assert_eq!(peers.log.prm_fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_401_with_a_token_renews_it_once_then_gives_up() {
    let peers = Peers::builder().start().await;
    let refused = Reply::Unauthorized(peers.challenge());
    let mcp = ScriptedMcp::new(&peers, [refused.clone(), refused.clone(), refused.clone()]);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));

    let error = send(&client, &peers).await.unwrap_err();
    assert!(
        matches!(error, StreamableHttpError::AuthRequired(_)),
        "{error:?}"
    );
    assert_eq!(mcp.tokens(), [None, some("at-1"), some("at-2")]);
    assert_eq!(peers.exchanges().len(), 2);
    assert_eq!(peers.log.prm_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_revoked_token_is_replaced_and_the_request_succeeds() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    send(&client, &peers).await.unwrap();

    let revoked = ScriptedMcp::new(&peers, [Reply::Unauthorized(peers.challenge())]);
    let client = peers.authorizer().client(revoked.clone(), user("alice"));
    client.authorize(&peers.mcp_url()).await.unwrap();
    send(&client, &peers).await.unwrap();
    assert_eq!(revoked.tokens(), [some("at-2"), some("at-3")]);
}

#[tokio::test]
async fn mcp_05_insufficient_scope_steps_up_once_with_the_union() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(
        &peers,
        [
            Reply::Unauthorized(peers.challenge()),
            insufficient_scope(&peers, "tools.write"),
        ],
    );
    let authorizer = Arc::new(
        Arc::try_unwrap(peers.authorizer())
            .unwrap()
            .with_scope(ScopeSet::parse("tools.read").unwrap()),
    );
    let client = authorizer.client(mcp.clone(), user("alice"));

    send(&client, &peers).await.unwrap();

    assert_eq!(mcp.tokens(), [None, some("at-1"), some("at-2")]);
    let exchanges = peers.exchanges();
    assert_eq!(exchanges[0]["scope"], "tools.read");
    assert_eq!(exchanges[1]["scope"], "tools.read tools.write");
    let request = client.access_request().await.unwrap();
    assert_eq!(request.scope().to_string(), "tools.read tools.write");
}

#[tokio::test]
async fn a_second_insufficient_scope_is_returned_to_the_caller() {
    // The IdP does not grant tools.write: the new token still lacks it.
    let peers = Peers::builder().grantable("tools.read").start().await;
    let mcp = ScriptedMcp::new(
        &peers,
        [
            Reply::Unauthorized(peers.challenge()),
            insufficient_scope(&peers, "tools.write"),
            insufficient_scope(&peers, "tools.write"),
        ],
    );
    let client = peers.authorizer().client(mcp.clone(), user("alice"));

    let error = send(&client, &peers).await.unwrap_err();
    let StreamableHttpError::InsufficientScope(refusal) = error else {
        panic!("expected insufficient_scope, got {error:?}");
    };
    assert!(refusal.www_authenticate_header.contains("tools.write"));
    assert_eq!(mcp.tokens(), [None, some("at-1"), some("at-2")]);
    assert_eq!(peers.exchanges()[1]["scope"], "tools.write");
}

#[tokio::test]
async fn insufficient_scope_for_scopes_already_asked_for_is_not_retried() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(
        &peers,
        [
            Reply::Unauthorized(peers.challenge()),
            insufficient_scope(&peers, "tools.read"),
        ],
    );
    let authorizer = Arc::new(
        Arc::try_unwrap(peers.authorizer())
            .unwrap()
            .with_scope(ScopeSet::parse("tools.read").unwrap()),
    );
    let client = authorizer.client(mcp.clone(), user("alice"));
    let error = send(&client, &peers).await.unwrap_err();
    assert!(matches!(error, StreamableHttpError::InsufficientScope(_)));
    assert_eq!(peers.exchanges().len(), 1);
}

#[tokio::test]
async fn the_challenge_scope_is_asked_for_at_discovery() {
    let peers = Peers::builder().start().await;
    let challenge = format!(r#"{}, scope="tools.write""#, peers.challenge());
    let mcp = ScriptedMcp::new(&peers, [Reply::Unauthorized(challenge)]);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    send(&client, &peers).await.unwrap();
    assert_eq!(peers.exchanges()[0]["scope"], "tools.write");
}

#[tokio::test]
async fn a_signed_out_user_must_sign_in_and_nothing_is_exchanged() {
    let peers = Peers::builder().start().await;
    let session = SharedUserToken::new(user("alice"));
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), session.clone());
    send(&client, &peers).await.unwrap();

    session.clear();
    // A fresh client (empty cache key) for the signed-out session.
    let client = peers.authorizer().client(mcp.clone(), session.clone());
    let error = send(&client, &peers).await.unwrap_err();
    assert!(matches!(
        authorization(&error),
        AuthorizationError::SignInRequired
    ));
    assert_eq!(peers.exchanges().len(), 1);

    session.set(user("alice"));
    send(&client, &peers).await.unwrap();
}

#[tokio::test]
async fn an_authorization_server_we_are_not_registered_with_gets_nothing() {
    let peers = Peers::builder()
        .listing(&["http://127.0.0.1:9/evil"])
        .start()
        .await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    let error = send(&client, &peers).await.unwrap_err();
    assert!(matches!(
        authorization(&error),
        AuthorizationError::NotRegistered
    ));
    assert_eq!(peers.log.as_metadata_fetches.load(Ordering::SeqCst), 0);
    assert!(peers.exchanges().is_empty());
    assert_eq!(mcp.tokens(), [None]);
}

#[tokio::test]
async fn any_listed_credentials_follow_the_server_named_first() {
    let peers = Peers::builder().start().await;
    let authorizer =
        peers.authorizer_with(ResourceAsRegistrations::new().with_any_listed(as_credentials()));
    let mcp = ScriptedMcp::new(&peers, []);
    send(&authorizer.client(mcp.clone(), user("alice")), &peers)
        .await
        .unwrap();
    assert_eq!(mcp.tokens(), [None, some("at-1")]);
}

#[tokio::test]
async fn a_malformed_challenge_is_refused() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(
        &peers,
        [Reply::Unauthorized(
            r#"Bearer resource_metadata="unterminated"#.into(),
        )],
    );
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    let error = send(&client, &peers).await.unwrap_err();
    assert!(matches!(
        authorization(&error).client_error(),
        Some(ClientError::Discovery(
            idjag_client::DiscoveryError::Challenge
        ))
    ));
    assert!(peers.exchanges().is_empty());
}

#[tokio::test]
async fn a_challenge_pointing_metadata_at_a_plain_http_host_is_refused() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(
        &peers,
        [Reply::Unauthorized(
            r#"Bearer resource_metadata="http://evil.example/prm""#.into(),
        )],
    );
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    let error = send(&client, &peers).await.unwrap_err();
    assert!(matches!(
        authorization(&error).client_error(),
        Some(ClientError::Discovery(
            idjag_client::DiscoveryError::Endpoint(_)
        ))
    ));
    assert_eq!(peers.log.prm_fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn c09_a_challenge_pointing_metadata_at_another_origin_is_refused_before_any_fetch() {
    let peers = Peers::builder().start().await;
    // The same server under another name, and another port: other origins all the same.
    let other_name = peers.base.replace("127.0.0.1", "localhost");
    let other_port = "http://127.0.0.1:9".to_owned();
    for base in [other_name, other_port] {
        let mcp = ScriptedMcp::new(
            &peers,
            [Reply::Unauthorized(format!(
                r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#
            ))],
        );
        let client = peers.authorizer().client(mcp.clone(), user("alice"));
        let error = send(&client, &peers).await.unwrap_err();
        assert!(
            matches!(
                authorization(&error).client_error(),
                Some(ClientError::Discovery(
                    idjag_client::DiscoveryError::MetadataCrossOrigin
                ))
            ),
            "{base}: {error:?}"
        );
    }
    assert_eq!(peers.log.prm_fetches.load(Ordering::SeqCst), 0);
    assert!(peers.exchanges().is_empty());
}

#[tokio::test]
async fn md_08_metadata_for_another_resource_stops_discovery() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    // The challenge points at the metadata of `/mcp`, but this client talks to `/other`.
    let error = client
        .post_message(
            Arc::from(format!("{}/other", peers.base)),
            ping(),
            None,
            None,
            HashMap::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        authorization(&error).client_error(),
        Some(ClientError::Discovery(
            idjag_client::DiscoveryError::ResourceMismatch
        ))
    ));
    assert_eq!(peers.log.as_metadata_fetches.load(Ordering::SeqCst), 0);
    assert!(peers.exchanges().is_empty());
}

#[tokio::test]
async fn c04_authorization_server_metadata_naming_another_issuer_stops_the_flow() {
    let peers = Peers::builder()
        .stating_issuer("https://evil.example")
        .start()
        .await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    let error = send(&client, &peers).await.unwrap_err();
    assert!(matches!(
        authorization(&error).client_error(),
        Some(ClientError::Discovery(
            idjag_client::DiscoveryError::IssuerMismatch
        ))
    ));
    assert!(peers.exchanges().is_empty());
    assert_eq!(mcp.tokens(), [None]);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_discovery_and_one_exchange() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    let calls = (0..16).map(|_| {
        let client = client.clone();
        let url = peers.mcp_url();
        tokio::spawn(async move {
            client
                .post_message(Arc::from(url), ping(), None, None, HashMap::new())
                .await
                .map(drop)
        })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    assert_eq!(peers.log.prm_fetches.load(Ordering::SeqCst), 1);
    assert_eq!(peers.exchanges().len(), 1);
    // Requests that started before the discovery finished went out without a token first.
    let tokens = mcp.tokens();
    let anonymous = tokens.iter().filter(|t| t.is_none()).count();
    assert!((1..=16).contains(&anonymous), "{tokens:?}");
    assert_eq!(tokens.len(), 16 + anonymous, "{tokens:?}");
    assert!(tokens.iter().flatten().all(|t| t == "at-1"), "{tokens:?}");
}

#[tokio::test]
async fn get_and_delete_carry_the_token_too() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    let uri: Arc<str> = Arc::from(peers.mcp_url());
    client
        .get_stream(
            uri.clone(),
            Some(Arc::from("s")),
            None,
            None,
            HashMap::new(),
        )
        .await
        .map(drop)
        .unwrap();
    client
        .delete_session(uri, Arc::from("s"), None, HashMap::new())
        .await
        .unwrap();
    assert_eq!(mcp.tokens(), [None, some("at-1"), some("at-1")]);
}

#[tokio::test]
async fn the_transport_auth_header_is_never_sent() {
    let peers = Peers::builder().start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let client = peers.authorizer().client(mcp.clone(), user("alice"));
    client
        .post_message(
            Arc::from(peers.mcp_url()),
            ping(),
            None,
            Some("someone-elses-token".into()),
            HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(mcp.tokens(), [None, some("at-1")]);
}

#[tokio::test]
async fn rmcp_reports_the_denial_and_authorization_error_finds_it() {
    let peers = Peers::builder().deny("mallory").start().await;
    let mcp = ScriptedMcp::new(&peers, []);
    let transport = peers
        .authorizer()
        .client(mcp.clone(), user("mallory"))
        .into_transport(peers.mcp_url());
    let error = ().serve(transport).await.unwrap_err();
    let found = authorization_error(&error).expect("the denial behind rmcp's error");
    assert!(found.is_policy_denial());
    assert_eq!(mcp.tokens(), [None]);
}

#[test]
fn debug_output_of_the_client_holds_no_secret() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let peers = Peers::builder().start().await;
        let mcp = ScriptedMcp::new(&peers, []);
        let client = peers.authorizer().client(mcp, user("alice"));
        send(&client, &peers).await.unwrap();
        let rendered = format!("{client:?} {:?}", client.access_request().await);
        for secret in [AS_SECRET, "id-token-alice", "at-1"] {
            assert!(!rendered.contains(secret), "{secret} in {rendered}");
        }
    });
}
