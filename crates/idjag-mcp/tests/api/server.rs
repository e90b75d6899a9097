//! A real rmcp server behind `McpAuth` on 127.0.0.1, reached by raw HTTP and by rmcp's own
//! client: the `401` challenge, the metadata route, per-tool scopes answered `403` before the
//! tool runs (threats G01, G02, G16; requirements MCP-04, MCP-05), and the verified caller
//! inside the tool.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use idjag_core::*;
use idjag_mcp::EnterpriseManagedAuthorization;
use idjag_mcp::server::{
    Caller, McpAuth, ToolScopeLayer, ToolScopes, client_declares_enterprise_managed_authorization,
};
use idjag_resource::rs::{AccessTokenVerifier, ProtectedResource};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ContentBlock,
    Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::{Value, json};

const CLIENT: &str = "chat-agent";

#[derive(Clone)]
struct Repo {
    deletions: Arc<AtomicUsize>,
    #[allow(dead_code, reason = "read by the code #[tool_handler] generates")]
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Repo {
    #[tool(description = "Who is calling, through which client, with which scopes.")]
    async fn whoami(
        &self,
        caller: Caller,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "{} via {} with [{}]; declares EMA: {}",
            caller.subject(),
            caller.client_id(),
            caller.scope(),
            client_declares_enterprise_managed_authorization(&context),
        ))]))
    }

    #[tool(description = "Deletes the repository (needs repo.admin).")]
    async fn delete_repo(&self, caller: Caller) -> Result<CallToolResult, ErrorData> {
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

struct Server {
    url: String,
    as_issuer: Issuer,
    as_key: SigningKey,
    deletions: Arc<AtomicUsize>,
}

async fn start() -> Server {
    let (listener, base) = idjag_test_support::net::loopback().await;
    let url = format!("{base}/mcp");
    let as_issuer = Issuer::new("https://auth.chat.example").unwrap();
    let as_key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let verifier = AccessTokenVerifier::new(
        Resource::new(url.as_str()).unwrap(),
        as_issuer.clone(),
        Arc::new(KeySet::new([as_key.verifying_key().unwrap()]).unwrap()),
        SystemClock::shared(),
    );
    let protected = ProtectedResource::new(verifier, vec![as_issuer.clone()])
        .unwrap()
        .with_scopes_supported(ScopeSet::parse("repo.read repo.admin").unwrap());
    let auth = McpAuth::new(protected)
        .with_required_scope(ScopeSet::parse("repo.read").unwrap())
        .with_tool_scope("delete_repo", ScopeSet::parse("repo.admin").unwrap());
    assert_eq!(auth.path(), "/mcp");
    let deletions = Arc::new(AtomicUsize::new(0));
    let counter = deletions.clone();
    idjag_test_support::spawn::mcp(listener, &auth, move || {
        Ok(Repo {
            deletions: counter.clone(),
            tool_router: Repo::tool_router(),
        })
    });
    Server {
        url,
        as_issuer,
        as_key,
        deletions,
    }
}

impl Server {
    fn token_for(&self, audience: &str, scope: &str) -> String {
        let now = SystemClock::shared().now_unix();
        let mut claims = AccessTokenClaims::new(
            self.as_issuer.clone(),
            Subject::new("alice").unwrap(),
            Audience::new(audience).unwrap(),
            ClientId::new(CLIENT).unwrap(),
            Jti::new(format!("at-{now}-{scope}")).unwrap(),
            NumericDate::from_unix(now).unwrap(),
            NumericDate::from_unix(now + 300).unwrap(),
        );
        claims.scope = Some(ScopeSet::parse(scope).unwrap());
        self.as_key
            .sign_jwt(Some(wire::TYP_ACCESS_TOKEN), &claims)
            .unwrap()
            .secret()
            .to_owned()
    }

    fn token(&self, scope: &str) -> String {
        self.token_for(&self.url, scope)
    }

    fn metadata_url(&self) -> String {
        self.url
            .replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    }

    /// A raw JSON-RPC POST, as a client would send it once initialized.
    async fn post(&self, token: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn client(
        &self,
        token: &str,
    ) -> rmcp::service::RunningService<rmcp::RoleClient, ClientConfig> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str());
        config.auth_header = Some(token.to_owned());
        let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
        ClientConfig::new(
            ClientCapabilities::default().enable_enterprise_managed_authorization(),
            Implementation::new("test", "1"),
        )
        .serve(transport)
        .await
        .unwrap()
    }
}

fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

const DELETE: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_repo","arguments":{}}}"#;

#[tokio::test]
async fn g01_no_token_gets_401_with_the_metadata_url_and_the_scope_needed() {
    let s = start().await;
    let response = s.post(None, DELETE).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        www_authenticate(&response),
        format!(
            r#"Bearer scope="repo.read", resource_metadata="{}""#,
            s.metadata_url()
        )
    );
    assert_eq!(s.deletions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_metadata_document_is_served_without_a_token() {
    let s = start().await;
    let response = reqwest::get(s.metadata_url()).await.unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(
        document,
        json!({
            "resource": s.url,
            "authorization_servers": ["https://auth.chat.example"],
            "scopes_supported": ["repo.admin", "repo.read"],
            "bearer_methods_supported": ["header"],
        })
    );
}

#[tokio::test]
async fn g02_a_token_for_another_resource_is_invalid() {
    let s = start().await;
    let token = s.token_for("https://other.example/mcp", "repo.read repo.admin");
    let response = s.post(Some(&token), DELETE).await;
    assert_eq!(response.status(), 401);
    assert!(www_authenticate(&response).starts_with(r#"Bearer error="invalid_token""#));
    assert_eq!(s.deletions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn g16_a_tool_call_without_the_tools_scope_gets_403_before_the_tool_runs() {
    let s = start().await;
    let response = s.post(Some(&s.token("repo.read")), DELETE).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        www_authenticate(&response),
        format!(
            r#"Bearer error="insufficient_scope", scope="repo.admin", resource_metadata="{}""#,
            s.metadata_url()
        )
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(s.deletions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn g04_two_authorization_headers_are_a_bad_request() {
    let s = start().await;
    let token = s.token("repo.read repo.admin");
    let response = reqwest::Client::new()
        .post(&s.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .body(DELETE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(s.deletions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_tool_scope_layer_alone_fails_closed() {
    // Mounted without the bearer layer: it verifies the token itself.
    let s = start().await;
    let verifier = AccessTokenVerifier::new(
        Resource::new(s.url.as_str()).unwrap(),
        s.as_issuer.clone(),
        Arc::new(KeySet::new([s.as_key.verifying_key().unwrap()]).unwrap()),
        SystemClock::shared(),
    );
    let layer = ToolScopeLayer::new(
        Arc::new(ProtectedResource::new(verifier, vec![s.as_issuer.clone()]).unwrap()),
        ToolScopes::new().with("delete_repo", ScopeSet::parse("repo.admin").unwrap()),
    );
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { "reached" }
            }),
        )
        .route_layer(layer);
    let call = |token: Option<String>| {
        let mut request = http::Request::post("/mcp");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(axum::body::Body::from(DELETE)).unwrap()
    };
    use tower::ServiceExt as _;
    let anonymous = app.clone().oneshot(call(None)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let reader = app
        .clone()
        .oneshot(call(Some(s.token("repo.read"))))
        .await
        .unwrap();
    assert_eq!(reader.status(), 403);
    assert_eq!(reached.load(Ordering::SeqCst), 0);
    let admin = app
        .oneshot(call(Some(s.token("repo.admin"))))
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_with_a_repeated_member_is_refused_before_rmcp() {
    let s = start().await;
    let ambiguous = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_repo","name":"whoami"}}"#;
    let response = s.post(Some(&s.token("repo.read")), ambiguous).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(s.deletions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn g27_a_case_folded_member_is_refused_before_rmcp_with_the_readers_code() {
    let s = start().await;
    let token = s.token("repo.read");
    // Go's encoding/json reads `NAME` as the tool name, and `argument\u017f` (long s) as the
    // arguments.
    let cases = [
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","NAME":"delete_repo"}}"#.to_owned(),
            -32700,
        ),
        (
            "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"whoami\",\"argument\u{17f}\":{}}}".to_owned(),
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_repo\u0000"}}"#.to_owned(),
            -32602,
        ),
    ];
    for (body, code) in cases {
        let response = s.post(Some(&token), &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}");
        assert_eq!(answer["id"], Value::Null);
    }
    assert_eq!(s.deletions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_tool_sees_the_verified_caller() {
    let s = start().await;
    let client = s.client(&s.token("repo.read")).await;
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["delete_repo", "whoami"]);
    assert!(
        client
            .peer_info()
            .unwrap()
            .capabilities
            .supports_enterprise_managed_authorization()
    );

    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    assert_eq!(
        result.content[0].as_text().unwrap().text,
        "alice via chat-agent with [repo.read]; declares EMA: true"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rmcp_clients_see_insufficient_scope_and_a_scoped_token_runs_the_tool() {
    let s = start().await;
    let reader = s.client(&s.token("repo.read")).await;
    let error = reader
        .call_tool(CallToolRequestParams::new("delete_repo"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Insufficient scope"), "{error}");
    assert_eq!(s.deletions.load(Ordering::SeqCst), 0);
    reader.cancel().await.unwrap();

    let admin = s.client(&s.token("repo.read repo.admin")).await;
    let result = admin
        .call_tool(CallToolRequestParams::new("delete_repo"))
        .await
        .unwrap();
    assert_eq!(
        result.content[0].as_text().unwrap().text,
        "deleted by alice"
    );
    assert_eq!(s.deletions.load(Ordering::SeqCst), 1);
    admin.cancel().await.unwrap();
}

#[test]
fn allowed_hosts_follow_the_resource_url() {
    let verifier = |url: &str| {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        AccessTokenVerifier::new(
            Resource::new(url).unwrap(),
            Issuer::new("https://as.example").unwrap(),
            Arc::new(KeySet::new([key.verifying_key().unwrap()]).unwrap()),
            SystemClock::shared(),
        )
    };
    let auth = |url: &str| {
        McpAuth::new(
            ProtectedResource::new(
                verifier(url),
                vec![Issuer::new("https://as.example").unwrap()],
            )
            .unwrap(),
        )
    };
    let public = auth("https://mcp.chat.example/mcp");
    assert_eq!(public.allowed_hosts(), ["mcp.chat.example"]);
    assert_eq!(public.server_config().allowed_hosts, ["mcp.chat.example"]);
    assert_eq!(public.path(), "/mcp");
    let port = auth("https://mcp.chat.example:8443/");
    assert_eq!(port.allowed_hosts(), ["mcp.chat.example:8443"]);
    assert_eq!(port.path(), "/");
}
