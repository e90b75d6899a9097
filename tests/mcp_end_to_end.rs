//! MCP Enterprise-Managed Authorization end to end, all on 127.0.0.1 (issue 6): a real IdP
//! (`idjag-idp`), a real resource authorization server (`idjag-resource`), a real rmcp server
//! behind `idjag_mcp::server::McpAuth` with a tool that needs a scope, and a real rmcp client
//! over `idjag_mcp::client::EmaAuthClient`.
//!
//! - alice may read and administer: her calls succeed, the admin tool after one step-up;
//! - bob is refused by the IdP's policy: he gets the typed denial and the MCP server never
//!   sees a request from him;
//! - carol may only read: the admin tool answers `403 insufficient_scope`, also after the
//!   step-up, and the tool never runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use idjag_client::{ClientCredentials, IdJagClient, TokenProvider, UserToken};
use idjag_core::*;
use idjag_idp::dev::DevUsers;
use idjag_mcp::EnterpriseManagedAuthorization;
use idjag_mcp::client::{
    EmaAuthClient, EmaAuthorizer, ResourceAsRegistrations, authorization_error, transport_error,
};
use idjag_mcp::server::{Caller, McpAuth};
use idjag_resource::rs::{AccessTokenVerifier, ProtectedResource};
use idjag_test_support::net::loopback as listener;
use idjag_test_support::spawn::{
    AS_SECRET, idp as spawn_idp, idp_registration, resource_as as spawn_resource_as,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ContentBlock,
    Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpError;
use rmcp::{ErrorData, RoleClient, ServerHandler, ServiceExt, tool, tool_handler, tool_router};

const AGENT_AT_IDP: &str = "repo-agent";
const AGENT_AT_AS: &str = "8d2a1c07e5f94b3a";

/// The MCP server: two tools, one of which needs `repo.admin`.
#[derive(Clone)]
struct Repo {
    deletions: Arc<AtomicUsize>,
    #[allow(dead_code, reason = "read by the code #[tool_handler] generates")]
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Repo {
    #[tool(description = "Who is calling.")]
    async fn whoami(&self, caller: Caller) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "{} via {} with [{}]",
            caller.subject(),
            caller.client_id(),
            caller.scope()
        ))]))
    }

    #[tool(description = "Deletes the repository.")]
    async fn delete_repo(&self, caller: Caller) -> Result<CallToolResult, ErrorData> {
        assert!(
            caller.has_scope("repo.admin"),
            "the tool-scope layer let it through"
        );
        self.deletions.fetch_add(1, Ordering::SeqCst);
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "deleted by {}",
            caller.subject()
        ))]))
    }
}

#[tool_handler]
impl ServerHandler for Repo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .build()
                .enable_enterprise_managed_authorization(),
        )
    }
}

struct World {
    mcp_url: String,
    as_issuer: Issuer,
    idp_issuer: Issuer,
    users: DevUsers,
    /// MCP sessions rmcp created: a request reached the MCP server.
    sessions: Arc<AtomicUsize>,
    deletions: Arc<AtomicUsize>,
}

async fn start() -> World {
    let (idp_listener, idp_url) = listener().await;
    let (as_listener, as_url) = listener().await;
    let (mcp_listener, mcp_base) = listener().await;
    let idp_issuer = Issuer::new(idp_url.as_str()).unwrap();
    let as_issuer = Issuer::new(as_url.as_str()).unwrap();
    let mcp_url = format!("{mcp_base}/mcp");
    let mcp = Resource::new(mcp_url.as_str()).unwrap();

    // The IdP: alice reads and administers, carol only reads, bob has no rule.
    let policy = format!(
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
    );
    let users = spawn_idp(
        idp_listener,
        &idp_issuer,
        &policy,
        AGENT_AT_IDP,
        &["alice", "bob", "carol"],
    );

    // The resource AS: trusts the IdP through its metadata and JWKS.
    let keys = Arc::new(spawn_resource_as(
        as_listener,
        &as_issuer,
        &idp_issuer,
        &mcp,
        "repo.read repo.admin",
        AGENT_AT_AS,
    ));

    // The MCP server: every request needs repo.read, delete_repo needs repo.admin.
    let verifier = AccessTokenVerifier::new(mcp, as_issuer.clone(), keys, SystemClock::shared());
    let auth = McpAuth::new(
        ProtectedResource::new(verifier, vec![as_issuer.clone()])
            .unwrap()
            .with_scopes_supported(ScopeSet::parse("repo.read repo.admin").unwrap()),
    )
    .with_required_scope(ScopeSet::parse("repo.read").unwrap())
    .with_tool_scope("delete_repo", ScopeSet::parse("repo.admin").unwrap());
    let sessions = Arc::new(AtomicUsize::new(0));
    let deletions = Arc::new(AtomicUsize::new(0));
    let (s, d) = (sessions.clone(), deletions.clone());
    idjag_test_support::spawn::mcp(mcp_listener, &auth, move || {
        s.fetch_add(1, Ordering::SeqCst);
        Ok(Repo {
            deletions: d.clone(),
            tool_router: Repo::tool_router(),
        })
    });

    World {
        mcp_url,
        as_issuer,
        idp_issuer,
        users,
        sessions,
        deletions,
    }
}

impl World {
    /// The requesting app: its IdP registration, its registration at the resource AS, and
    /// `repo.read` asked for up front.
    fn authorizer(&self) -> Arc<EmaAuthorizer> {
        let idp = idp_registration(&self.idp_issuer, AGENT_AT_IDP);
        let provider = Arc::new(TokenProvider::new(IdJagClient::new(idp).unwrap()));
        let registrations = ResourceAsRegistrations::new().with(
            self.as_issuer.clone(),
            ClientCredentials::secret_basic(
                ClientId::new(AGENT_AT_AS).unwrap(),
                ClientSecret::new(AS_SECRET),
            )
            .unwrap(),
        );
        Arc::new(
            EmaAuthorizer::new(provider, registrations)
                .with_scope(ScopeSet::parse("repo.read").unwrap()),
        )
    }

    fn user(&self, name: &str) -> UserToken {
        UserToken::id_token(
            self.users
                .id_token(name, &ClientId::new(AGENT_AT_IDP).unwrap())
                .unwrap(),
        )
    }

    fn client(&self, name: &str) -> EmaAuthClient<reqwest::Client> {
        self.authorizer().reqwest_client(self.user(name)).unwrap()
    }

    async fn connect(
        &self,
        client: EmaAuthClient<reqwest::Client>,
    ) -> Result<RunningService<RoleClient, ClientConfig>, rmcp::service::ClientInitializeError>
    {
        ClientConfig::new(
            ClientCapabilities::default().enable_enterprise_managed_authorization(),
            Implementation::new("repo-agent", "1.0.0"),
        )
        .serve(client.into_transport(self.mcp_url.as_str()))
        .await
    }
}

/// Calls `tool` and returns its text, which must be there.
async fn call(mcp: &RunningService<RoleClient, ClientConfig>, tool: &'static str) -> String {
    let result = mcp
        .call_tool(CallToolRequestParams::new(tool))
        .await
        .unwrap();
    result.content[0].as_text().unwrap().text.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_user_calls_the_tools_and_steps_up_for_the_admin_one() {
    let w = start().await;
    let client = w.client("alice");
    let mcp = w.connect(client.clone()).await.unwrap();

    let tools = mcp.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 2);
    let whoami = call(&mcp, "whoami").await;
    // Asked for repo.read only: the token holds exactly that, for the AS registration.
    assert_eq!(whoami, format!("alice via {AGENT_AT_AS} with [repo.read]"));

    // delete_repo needs repo.admin: 403, one new exchange with the union, and the call runs.
    let deleted = call(&mcp, "delete_repo").await;
    assert_eq!(deleted, "deleted by alice");
    assert_eq!(w.deletions.load(Ordering::SeqCst), 1);
    assert_eq!(
        client.access_request().await.unwrap().scope().to_string(),
        "repo.admin repo.read"
    );
    let whoami = call(&mcp, "whoami").await;
    assert_eq!(
        whoami,
        format!("alice via {AGENT_AT_AS} with [repo.admin repo.read]")
    );
    mcp.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_denied_by_idp_policy_gets_the_typed_denial_and_the_server_sees_no_request() {
    let w = start().await;

    // Up front: the flow fails before any request goes to the MCP server.
    let client = w.client("bob");
    let denied = client.authorize(&w.mcp_url).await.unwrap_err();
    assert!(denied.is_policy_denial(), "{denied:?}");
    assert_eq!(denied.oauth_error(), Some(OAuthErrorCode::AccessDenied));
    assert_eq!(denied.stage(), Some(idjag_client::Stage::IdentityProvider));

    // Through rmcp: the same denial, found in rmcp's error; no fallback, nothing sent with a
    // credential, and rmcp never created a session for bob.
    let error = w.connect(w.client("bob")).await.unwrap_err();
    let denied = authorization_error(&error).expect("the denial behind rmcp's error");
    assert!(denied.is_policy_denial(), "{denied:?}");
    assert_eq!(w.sessions.load(Ordering::SeqCst), 0);
    assert_eq!(w.deletions.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_tools_scope_gets_insufficient_scope() {
    let w = start().await;
    let client = w.client("carol");
    let mcp = w.connect(client.clone()).await.unwrap();
    let whoami = call(&mcp, "whoami").await;
    assert_eq!(whoami, format!("carol via {AGENT_AT_AS} with [repo.read]"));

    // The step-up asks the IdP for repo.admin too; its policy narrows it away, and the server
    // still refuses: the caller gets the 403 with the scope needed.
    let error = mcp
        .call_tool(CallToolRequestParams::new("delete_repo"))
        .await
        .unwrap_err();
    let Some(StreamableHttpError::InsufficientScope(refusal)) = transport_error(&error) else {
        panic!("expected insufficient_scope, got {error}");
    };
    assert!(
        refusal
            .www_authenticate_header
            .starts_with(r#"Bearer error="insufficient_scope", scope="repo.admin""#),
        "{}",
        refusal.www_authenticate_header
    );
    assert_eq!(refusal.get_required_scope(), Some("repo.admin"));
    assert_eq!(w.deletions.load(Ordering::SeqCst), 0);

    // The session goes on for what carol may do.
    let whoami = call(&mcp, "whoami").await;
    assert_eq!(whoami, format!("carol via {AGENT_AT_AS} with [repo.read]"));
    mcp.cancel().await.unwrap();
}
