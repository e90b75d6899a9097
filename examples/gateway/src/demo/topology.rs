//! The demo's four servers on loopback: the IdP, the resource AS, an MCP server and the
//! gateway in front of it. The tests and the benchmark start the same topology.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::post;
use idjag_client::{
    AccessRequest, ClientCredentials, IdJagClient, IdentityProvider, ResourceAsTarget, UserToken,
};
use idjag_core::server::{RegisteredClient, StaticClientRegistry};
use idjag_core::{
    AccessToken, Algorithm, ClientId, ClientSecret, IdToken, Issuer, Resource, ScopeSet,
    SigningKey, SystemClock,
};
use idjag_idp::dev::{DevClient, DevOidcProvider, DevUser, DevUsers};
use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
use idjag_mcp::server::McpAuth;
use idjag_ops::listener::{Listener, ListenerConfig, ServeSummary, Shutdown};
use idjag_resource::rs::{AccessTokenVerifier, ProtectedResource};
use idjag_resource::{
    RegisteredResource, ResourceAuthorizationServer as ResourceServer, TrustedIssuer,
};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::DemoError;
use super::flow::{FlowLog, Place, observe_mcp_server, observe_token_endpoint};
use super::login::LoginHooks;
use super::notes::{NoteBook, NotesServer};
use super::wiki::WikiLog;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::observe::audit::AuditSink;
use crate::plan::Plan;

/// The gateway's client id at the IdP (inbound ID tokens are issued to it).
pub const GATEWAY_CLIENT: &str = "mcp-gateway";
/// The gateway's client id at the resource AS.
pub const GATEWAY_AT_AS: &str = "gateway-at-notes";
/// The scopes of the MCP server.
pub const SCOPES: &str = "notes.read notes.write";
/// An EMA client: registered at the IdP (it exchanges its users' ID tokens for ID-JAGs) and
/// at the gateway's authorization server (it redeems them there), with the same id.
pub const EMA_CLIENT: &str = "ema-agent";
/// A public OAuth client pre-registered at the gateway's authorization server, with the
/// loopback redirect URI [`PUBLIC_CLIENT_REDIRECT`] (any port, RFC 8252 §7.3).
pub const PUBLIC_CLIENT: &str = "demo-mcp-client";
/// The redirect URI of [`PUBLIC_CLIENT`].
pub const PUBLIC_CLIENT_REDIRECT: &str = "http://127.0.0.1/callback";
/// The generated configuration's last section: the demo's state lives in memory (a
/// deployment keeps it in the embedded store or Redis: `[store]`).
pub const MEMORY_STORE: &str = "[store]\nbackend = { kind = \"memory\" }\n";

/// The MCP server behind the gateway.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum UpstreamKind {
    /// The rmcp notes server (SSE answers, sessions).
    #[default]
    Notes,
    /// The stateless JSON echo server (a plain axum handler).
    Echo,
    /// The same echo server on rmcp (stateless, JSON answers).
    RmcpEcho,
    /// Your own router, served as is (at `/mcp`, guard it yourself).
    Custom(Router),
}

/// A hook that edits the gateway's configuration before it is built.
pub type ConfigHook = Arc<dyn Fn(&mut Config) + Send + Sync>;

/// How to start a [`Topology`].
#[derive(Clone)]
#[non_exhaustive]
pub struct TopologyOptions {
    /// The MCP server.
    pub upstream: UpstreamKind,
    /// Where audit records go (default: nowhere but the returned handle's memory).
    pub audit: Option<Arc<dyn AuditSink>>,
    /// Edits the gateway configuration.
    pub configure: Option<ConfigHook>,
    /// Whether the MCP server's calls are observed in [`Topology::flow`] (decoding each
    /// token for display). Default on; the benchmark turns it off for the servers' sake.
    pub observe_upstream: bool,
    /// Runs the gateway on this runtime instead of the current one (the benchmark gives it
    /// its own, as its own process would have).
    pub gateway_runtime: Option<tokio::runtime::Handle>,
    /// Turns on the gateway's own authorization server (`[authorization_server]`), with the
    /// IdP's login page behind it, open registration, metadata documents from loopback, the
    /// EMA client [`EMA_CLIENT`] and the public client [`PUBLIC_CLIENT`]. Default off.
    pub authorization_server: bool,
    /// Lifetime of the development users' ID tokens (default: the IdP's).
    pub id_token_lifetime: Option<std::time::Duration>,
    /// The gateway's store (default: the configuration's, in memory).
    pub store: Option<Arc<dyn idjag_store::Store>>,
    /// Listen on six consecutive ports from this one: the IdP, the resource AS, the notes
    /// MCP server, the gateway, the wiki, the gateway's admin listener. Default: ephemeral
    /// ports.
    pub base_port: Option<u16>,
}

/// Where each server of a [`Topology`] listens (`TopologyOptions::base_port`).
#[derive(Debug, Clone, Copy)]
struct Ports(Option<u16>);

impl Ports {
    fn port(self, offset: u16) -> Result<u16, DemoError> {
        let Some(base) = self.0 else { return Ok(0) };
        base.checked_add(offset)
            .ok_or_else(|| DemoError::Setup(format!("port {base} + {offset} is above 65535")))
    }
}

impl Default for TopologyOptions {
    fn default() -> Self {
        Self {
            upstream: UpstreamKind::default(),
            audit: None,
            configure: None,
            observe_upstream: true,
            gateway_runtime: None,
            authorization_server: false,
            id_token_lifetime: None,
            store: None,
            base_port: None,
        }
    }
}

impl std::fmt::Debug for TopologyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyOptions")
            .field("upstream", &self.upstream)
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

impl TopologyOptions {
    /// The defaults with `upstream`.
    pub fn with_upstream(upstream: UpstreamKind) -> Self {
        Self {
            upstream,
            ..Self::default()
        }
    }
}

/// The running servers.
#[derive(Debug)]
pub struct Topology {
    /// The IdP's issuer.
    pub idp: Issuer,
    /// The resource AS's issuer.
    pub resource_as: Issuer,
    /// The MCP server's endpoint.
    pub mcp_url: String,
    /// The gateway's base URL.
    pub gateway_url: String,
    /// The gateway's admin listener (`/metrics`, health, `/admin/`).
    pub admin_url: String,
    /// The gateway's configuration file (rewrite it and call `gateway.reload()`).
    pub config_path: std::path::PathBuf,
    /// The gateway's route to the MCP server.
    pub route_url: String,
    /// The test users.
    pub users: DevUsers,
    /// The gateway.
    pub gateway: Gateway,
    /// What the IdP, the AS and the MCP server saw.
    pub flow: FlowLog,
    /// The notes of the notes server.
    pub notes: NoteBook,
    /// The gateway's configuration file, as generated.
    pub config_toml: String,
    /// The IdP (to sign unusual tokens, rotate keys).
    pub idp_server: IdJagIssuer,
    /// The resource AS.
    pub resource_server: Arc<ResourceServer>,
    /// The gateway's route to the wiki (static API key upstream).
    pub wiki_route_url: String,
    /// The wiki's own endpoint (behind the gateway's wiki route).
    pub wiki_url: String,
    /// What the wiki received.
    pub wiki: WikiLog,
    /// The admin API's bearer token.
    pub admin_token: ClientSecret,
    /// Test hooks on the IdP's development login (idjag-idp's [`DevOidcProvider`]).
    pub login: LoginHooks,
    /// The secret of [`EMA_CLIENT`] (at the IdP and at the gateway).
    pub ema_secret: ClientSecret,
    _files: TempFiles,
    idp_down: Arc<AtomicBool>,
    as_down: Arc<AtomicBool>,
    idp_secret: ClientSecret,
    as_secret: ClientSecret,
    stop: Shutdown,
    gateway_task: Option<JoinHandle<(ServeSummary, Option<ServeSummary>)>>,
    _servers: Vec<CancelOnDrop>,
}

/// Secret files removed when the topology is dropped.
#[derive(Debug)]
struct TempFiles(Vec<std::path::PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn secret_file(secret: &ClientSecret) -> Result<std::path::PathBuf, DemoError> {
    let name = random_secret()?;
    let path = std::env::temp_dir().join(format!("idjag-{}.secret", &name.secret()[12..]));
    std::fs::write(&path, secret.secret()).map_err(DemoError::io)?;
    Ok(path)
}

/// Aborts a server task when dropped.
#[derive(Debug)]
struct CancelOnDrop(JoinHandle<()>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn listener(port: u16) -> Result<(TcpListener, String), DemoError> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| DemoError::Setup(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let url = format!("http://{}", listener.local_addr().map_err(DemoError::io)?);
    Ok((listener, url))
}

fn spawn(listener: TcpListener, router: Router) -> CancelOnDrop {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    CancelOnDrop(tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    }))
}

/// Answers 503 to everything while the flag is set (an outage).
async fn outage(
    axum::extract::State(down): axum::extract::State<Arc<AtomicBool>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if down.load(Ordering::SeqCst) {
        return axum::response::IntoResponse::into_response(http::StatusCode::SERVICE_UNAVAILABLE);
    }
    next.run(request).await
}

/// A random secret, recognisable in tests (`demo-secret-...`).
fn random_secret() -> Result<ClientSecret, DemoError> {
    let hex = idjag_core::random::hex_id(16).map_err(DemoError::setup)?;
    Ok(ClientSecret::new(format!("demo-secret-{hex}")))
}

/// The IdP's policy: alice and bob may reach the notes server; carol may not. With the
/// gateway's authorization server, the EMA client may get ID-JAGs for the gateway's routes.
fn idp_policy(as_url: &str, mcp_url: &str, gateway_url: Option<&str>) -> String {
    let ema = gateway_url.map_or_else(String::new, |gw| {
        format!(
            r#"
        [[audience]]
        issuer = "{gw}"
        resources = ["{gw}/mcp/notes", "{gw}/mcp/wiki"]
        client_ids = {{ "{EMA_CLIENT}" = "{EMA_CLIENT}" }}

        [[allow]]
        clients = ["{EMA_CLIENT}"]
        audience = "{gw}"
        users = ["alice", "bob"]
        scopes = ["mcp"]
        "#
        )
    });
    format!(
        r#"{ema}
        [[audience]]
        issuer = "{as_url}"
        resources = ["{mcp_url}"]
        client_ids = {{ "{GATEWAY_CLIENT}" = "{GATEWAY_AT_AS}" }}

        [[allow]]
        clients = ["{GATEWAY_CLIENT}"]
        audience = "{as_url}"
        users = ["alice", "bob"]
        scopes = ["notes.read", "notes.write"]
        "#
    )
}

/// The gateway's configuration: engineering may use every tool but `delete_*`; sales may
/// only list notes.
/// Where the wiki's key and the admin token are (files: these secrets never go in the
/// configuration file itself).
struct Bridged<'a> {
    admin_url: &'a str,
    wiki_url: &'a str,
    wiki_key_file: &'a str,
    admin_token_file: &'a str,
}

/// The `[authorization_server]` section of the demo.
fn authorization_server_config(idp: &str, ema_secret_file: &str) -> String {
    format!(
        r#"
# The gateway is the authorization server of its routes; users sign in at the IdP.
[authorization_server]
idp_authorization_endpoint = "{idp}/authorize"
registration = "open"

[authorization_server.client_metadata_documents]
# Tests and the demo serve metadata documents from loopback (never in production).
allow_loopback = true

[[authorization_server.client]]
id = "{EMA_CLIENT}"
name = "EMA agent"
secret_file = "{ema_secret_file}"

# A public client for standard OAuth MCP clients that do not register.
[[authorization_server.client]]
id = "{PUBLIC_CLIENT}"
name = "Demo MCP client"
redirect_uris = ["{PUBLIC_CLIENT_REDIRECT}"]
"#
    )
}

fn gateway_config(
    gateway_url: &str,
    idp: &str,
    as_url: &str,
    mcp_url: &str,
    idp_secret: &str,
    as_secret: &str,
    bridged: &Bridged<'_>,
) -> String {
    format!(
        r#"# Generated by `idjag-gateway demo`.
[server]
listen = "{listen}"
tls = "off"
plain_http_reason = "the demo runs on loopback"
public_url = "{gateway_url}"
body_timeout = "5s"
drain_timeout = "5s"

[idp]
issuer = "{idp}"
client = {{ id = "{GATEWAY_CLIENT}", secret = "{idp_secret}" }}

[teams]
eng = ["engineering"]
sales = ["sales"]

[audit]
arguments = "redact"

[[upstream]]
name = "notes"
url = "{mcp_url}"
read_timeout = "30s"

[upstream.credential]
mode = "id_jag"
authorization_server = "{as_url}"
scopes = ["notes.read", "notes.write"]
client = {{ id = "{GATEWAY_AT_AS}", secret = "{as_secret}" }}

[[upstream.access]]
teams = ["engineering"]
allow = ["*"]
deny = ["delete_*"]

[[upstream.access]]
teams = ["sales"]
allow = ["list_notes"]

# The wiki does not speak ID-JAG: the gateway sends its API key (static mode).
[[upstream]]
name = "wiki"
url = "{wiki_url}"
credential = {{ mode = "static", header = "x-api-key", secret_file = "{wiki_key_file}" }}

[[upstream.access]]
everyone = true
allow = ["search", "publish"]

[[upstream.tools.search.rules]]
name = "no-credential-hunting"
pointer = "/query"
deny = ["*password*", "*secret*"]

[upstream.tools.publish]
approval = true

[admin]
listen = "{admin_listen}"
tls = "off"
plain_http_reason = "the demo runs on loopback"
token_file = "{admin_token_file}"

{store}"#,
        listen = gateway_url.trim_start_matches("http://"),
        admin_listen = bridged.admin_url.trim_start_matches("http://"),
        wiki_url = bridged.wiki_url,
        wiki_key_file = bridged.wiki_key_file,
        admin_token_file = bridged.admin_token_file,
        store = MEMORY_STORE,
    )
}

fn upstream_router(kind: UpstreamKind, protected: ProtectedResource, notes: NoteBook) -> Router {
    // The rmcp servers sit behind idjag-mcp's server layer: idjag-resource's access-token
    // check, per-tool scopes, the RFC 9728 route, and the verified caller in tool handlers.
    let auth = McpAuth::new(protected.clone());
    match kind {
        UpstreamKind::Custom(router) => router,
        UpstreamKind::Notes => auth.router(StreamableHttpService::new(
            move || Ok(NotesServer::new(notes.clone())),
            LocalSessionManager::default().into(),
            auth.server_config(),
        )),
        UpstreamKind::RmcpEcho => auth.router(StreamableHttpService::new(
            || Ok(super::echo::EchoServer::default()),
            LocalSessionManager::default().into(),
            auth.server_config()
                .with_legacy_session_mode(false)
                .with_json_response(true),
        )),
        // A plain axum handler: the same bearer layer, without rmcp.
        UpstreamKind::Echo => Router::new()
            .route("/mcp", post(super::echo::echo))
            .route_layer(auth.bearer_layer())
            .merge(protected.metadata_router()),
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

impl Topology {
    /// Starts everything on `127.0.0.1` with fresh keys and secrets.
    pub async fn start(options: TopologyOptions) -> Result<Self, DemoError> {
        let ports = Ports(options.base_port);
        let (idp_listener, idp_url) = listener(ports.port(0)?).await?;
        let (as_listener, as_url) = listener(ports.port(1)?).await?;
        let (mcp_listener, mcp_base) = listener(ports.port(2)?).await?;
        let (gateway_listener, gateway_url) = listener(ports.port(3)?).await?;
        let (wiki_listener, wiki_base) = listener(ports.port(4)?).await?;
        let (admin_listener, admin_url) = listener(ports.port(5)?).await?;
        let mcp_url = format!("{mcp_base}/mcp");
        let idp = Issuer::new(idp_url.as_str()).map_err(DemoError::setup)?;
        let resource_as = Issuer::new(as_url.as_str()).map_err(DemoError::setup)?;
        let resource = Resource::new(mcp_url.as_str()).map_err(DemoError::setup)?;
        let (idp_secret, as_secret) = (random_secret()?, random_secret()?);
        let flow = FlowLog::default();
        let mut servers = Vec::new();

        let ema_secret = random_secret()?;
        let policy = TomlPolicy::from_toml_str(&idp_policy(
            &as_url,
            &mcp_url,
            options.authorization_server.then_some(gateway_url.as_str()),
        ))
        .map_err(DemoError::setup)?;
        let gateway_client = ClientId::new(GATEWAY_CLIENT).map_err(DemoError::setup)?;
        let issuer = IdJagIssuer::builder(
            idp.clone(),
            SigningKeys::generate_es256().map_err(DemoError::setup)?,
            Arc::new(
                StaticClientRegistry::new()
                    .with(RegisteredClient::with_secret(gateway_client, &idp_secret))
                    .with(RegisteredClient::with_secret(
                        ClientId::new(EMA_CLIENT).map_err(DemoError::setup)?,
                        &ema_secret,
                    )),
            ),
            Arc::new(policy),
        )
        .authorization_endpoint(format!("{idp_url}/authorize"))
        .build()
        .map_err(DemoError::setup)?;
        let mut users = DevUsers::new(&issuer);
        if let Some(lifetime) = options.id_token_lifetime {
            users = users.with_lifetime(lifetime);
        }
        let users = users
            .with_user(
                DevUser::new("alice")
                    .map_err(DemoError::setup)?
                    .with_groups(&["eng"]),
            )
            .with_user(
                DevUser::new("bob")
                    .map_err(DemoError::setup)?
                    .with_groups(&["sales"]),
            )
            .with_user(
                DevUser::new("carol")
                    .map_err(DemoError::setup)?
                    .with_groups(&["eng"]),
            );
        let idp_down = Arc::new(AtomicBool::new(false));
        // idjag-idp's development OpenID provider: its login page, code + PKCE and refresh
        // grants beside the issuer's token exchange. The gateway signs users in there.
        let dev_client = |id: &str, secret: &ClientSecret| {
            DevClient::confidential(ClientId::new(id).map_err(DemoError::setup)?, secret)
                .map_err(DemoError::setup)
        };
        let dev_idp = DevOidcProvider::builder(users.clone())
            .client(
                dev_client(GATEWAY_CLIENT, &idp_secret)?
                    .with_redirect_uri(&format!("{gateway_url}/oauth/callback"))
                    .map_err(DemoError::setup)?,
            )
            .client(dev_client(EMA_CLIENT, &ema_secret)?)
            .build()
            .map_err(DemoError::setup)?;
        let login = LoginHooks::new(users.clone(), EMA_CLIENT);
        let idp_router = dev_idp
            .router()
            .layer(axum::middleware::from_fn_with_state(
                login.clone(),
                super::login::hooks,
            ))
            .layer(axum::middleware::from_fn_with_state(
                (Place::Idp, flow.clone()),
                observe_token_endpoint,
            ))
            .layer(axum::middleware::from_fn_with_state(
                idp_down.clone(),
                outage,
            ));
        servers.push(spawn(idp_listener, idp_router));

        let as_down = Arc::new(AtomicBool::new(false));
        let resource_server = Arc::new(
            ResourceServer::builder(
                resource_as.clone(),
                SigningKey::generate(Algorithm::Es256)
                    .map_err(DemoError::setup)?
                    .with_thumbprint_kid(),
            )
            .trust(
                TrustedIssuer::remote(idp.clone(), SystemClock::shared())
                    .map_err(DemoError::setup)?,
            )
            .resource(
                RegisteredResource::new(resource.clone())
                    .with_scopes(ScopeSet::parse(SCOPES).map_err(DemoError::setup)?),
            )
            .clients(
                StaticClientRegistry::new().with(RegisteredClient::with_secret(
                    ClientId::new(GATEWAY_AT_AS).map_err(DemoError::setup)?,
                    &as_secret,
                )),
            )
            .build()
            .map_err(DemoError::setup)?,
        );
        let as_router = resource_server
            .router()
            .layer(axum::middleware::from_fn_with_state(
                (Place::ResourceAs, flow.clone()),
                observe_token_endpoint,
            ))
            .layer(axum::middleware::from_fn_with_state(
                as_down.clone(),
                outage,
            ));
        servers.push(spawn(as_listener, as_router));

        let verifier = AccessTokenVerifier::new(
            resource,
            resource_as.clone(),
            Arc::new(resource_server.verification_keys()),
            SystemClock::shared(),
        );
        let protected = ProtectedResource::new(verifier, vec![resource_as.clone()])
            .map_err(DemoError::setup)?
            .with_scopes_supported(ScopeSet::parse(SCOPES).map_err(DemoError::setup)?);
        let notes = NoteBook::default();
        let mut mcp_router = upstream_router(options.upstream, protected, notes.clone());
        if options.observe_upstream {
            mcp_router = mcp_router.layer(axum::middleware::from_fn_with_state(
                flow.clone(),
                observe_mcp_server,
            ));
        }
        servers.push(spawn(mcp_listener, mcp_router));

        let wiki_key = random_secret()?;
        let admin_token = random_secret()?;
        let wiki = WikiLog::default();
        servers.push(spawn(
            wiki_listener,
            Router::new()
                .route("/mcp", post(super::wiki::wiki))
                .with_state(super::wiki::Wiki {
                    key: wiki_key.clone(),
                    log: wiki.clone(),
                }),
        ));
        let mut files = TempFiles(vec![
            secret_file(&wiki_key)?,
            secret_file(&admin_token)?,
            secret_file(&ema_secret)?,
        ]);
        let wiki_url = format!("{wiki_base}/mcp");
        let mut config_toml = gateway_config(
            &gateway_url,
            &idp_url,
            &as_url,
            &mcp_url,
            idp_secret.secret(),
            as_secret.secret(),
            &Bridged {
                admin_url: &admin_url,
                wiki_url: &wiki_url,
                wiki_key_file: &files.0[0].display().to_string(),
                admin_token_file: &files.0[1].display().to_string(),
            },
        );
        if options.authorization_server {
            config_toml.push_str(&authorization_server_config(
                &idp_url,
                &files.0[2].display().to_string(),
            ));
        }
        let config_path = std::env::temp_dir().join(format!(
            "idjag-gateway-{}.toml",
            &random_secret()?.secret()[12..]
        ));
        std::fs::write(&config_path, &config_toml).map_err(DemoError::io)?;
        files.0.push(config_path.clone());
        // The planning pass, at start-up and on every reload: the file, the test's edits.
        let configure = options.configure.clone();
        let planner = move |path: &std::path::Path| -> Result<Plan, String> {
            let mut config = Config::from_path(path).map_err(|e| e.to_string())?;
            if let Some(configure) = &configure {
                configure(&mut config);
            }
            Plan::from_config(&config).map_err(|e| e.to_string())
        };
        let plan = planner(&config_path).map_err(DemoError::Setup)?;
        let public_config = plan.server.listener.clone();
        let admin_config = plan.admin_listener.clone();
        let mut builder = Gateway::builder(plan).reload_from(&config_path, planner);
        if let Some(sink) = options.audit {
            builder = builder.audit_sink(sink);
        }
        if let Some(store) = options.store {
            builder = builder.store(store);
        }
        // Built where it serves: the store's connection and the revocation replica's task
        // run on the gateway's runtime.
        let gateway = match &options.gateway_runtime {
            Some(runtime) => runtime
                .spawn(builder.build())
                .await
                .map_err(DemoError::setup)?,
            None => builder.build().await,
        }
        .map_err(DemoError::setup)?;
        let stop = Shutdown::new();
        let serving = gateway.clone();
        // The listeners move as std sockets, to register with the runtime that serves them.
        let gateway_listener = gateway_listener.into_std().map_err(DemoError::io)?;
        let admin_listener = admin_listener.into_std().map_err(DemoError::io)?;
        let shutdown = stop.clone();
        let serve = async move {
            let public = Listener::from_tcp(
                "public",
                TcpListener::from_std(gateway_listener).expect("a tokio listener"),
                &public_config,
            )
            .expect("the public listener");
            let admin = admin_config.as_ref().map(|config: &ListenerConfig| {
                Listener::from_tcp(
                    "admin",
                    TcpListener::from_std(admin_listener).expect("a tokio listener"),
                    config,
                )
                .expect("the admin listener")
            });
            serving.serve(public, admin, shutdown).await
        };
        let gateway_task = match &options.gateway_runtime {
            Some(runtime) => runtime.spawn(serve),
            None => tokio::spawn(serve),
        };
        Ok(Self {
            idp,
            resource_as,
            route_url: format!("{gateway_url}/mcp/notes"),
            wiki_route_url: format!("{gateway_url}/mcp/wiki"),
            wiki_url,
            wiki,
            admin_token,
            login,
            ema_secret,
            _files: files,
            mcp_url,
            gateway_url,
            admin_url,
            config_path,
            users,
            gateway,
            flow,
            notes,
            config_toml,
            idp_server: issuer,
            resource_server,
            idp_down,
            as_down,
            idp_secret,
            as_secret,
            stop,
            gateway_task: Some(gateway_task),
            _servers: servers,
        })
    }

    /// Simulates an outage of the IdP (every request gets 503) or its end.
    pub fn set_idp_down(&self, down: bool) {
        self.idp_down.store(down, Ordering::SeqCst);
    }

    /// Simulates an outage of the resource AS or its end.
    pub fn set_resource_as_down(&self, down: bool) {
        self.as_down.store(down, Ordering::SeqCst);
    }

    /// A fresh ID token of `user`, issued to the gateway's client id (what the agent gets
    /// when the user signs in).
    pub fn id_token(&self, user: &str) -> Result<IdToken, DemoError> {
        let client = ClientId::new(GATEWAY_CLIENT).map_err(DemoError::setup)?;
        self.users.id_token(user, &client).map_err(DemoError::setup)
    }

    /// The client secrets (to prove they never leak).
    pub fn secrets(&self) -> [&ClientSecret; 2] {
        [&self.idp_secret, &self.as_secret]
    }

    /// An access token for the MCP server itself, obtained with the same ID-JAG flow outside
    /// the gateway (for direct calls in the benchmark).
    pub async fn direct_access_token(&self, user: &str) -> Result<AccessToken, DemoError> {
        let idp = IdentityProvider::new(
            self.idp.clone(),
            &format!("{}/token", self.idp),
            ClientCredentials::secret_basic(
                ClientId::new(GATEWAY_CLIENT).map_err(DemoError::setup)?,
                self.idp_secret.clone(),
            )
            .map_err(DemoError::setup)?,
        )
        .map_err(DemoError::setup)?;
        let client = IdJagClient::new(idp).map_err(DemoError::setup)?;
        let ras = ResourceAsTarget::new(
            self.resource_as.clone(),
            &format!("{}/token", self.resource_as),
            ClientCredentials::secret_basic(
                ClientId::new(GATEWAY_AT_AS).map_err(DemoError::setup)?,
                self.as_secret.clone(),
            )
            .map_err(DemoError::setup)?,
        )
        .map_err(DemoError::setup)?;
        let request = AccessRequest::new(ras)
            .with_resource(Resource::new(self.mcp_url.as_str()).map_err(DemoError::setup)?)
            .with_scope(ScopeSet::parse(SCOPES).map_err(DemoError::setup)?);
        let grant = client
            .access_token(&UserToken::id_token(self.id_token(user)?), &request)
            .await
            .map_err(DemoError::setup)?;
        Ok(grant.access_token().clone())
    }

    /// Stops the gateway gracefully (in-flight requests finish, SSE streams get a final
    /// event) and waits for it.
    pub async fn shutdown(&mut self) -> Result<(), DemoError> {
        self.stop.trigger();
        if let Some(task) = self.gateway_task.take() {
            task.await.map_err(|e| DemoError::Setup(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_follow_the_base_port_or_are_ephemeral() {
        let fixed: Vec<u16> = (0..6)
            .map(|i| Ports(Some(18280)).port(i).unwrap())
            .collect();
        assert_eq!(fixed, [18280, 18281, 18282, 18283, 18284, 18285]);
        assert_eq!(Ports(None).port(5).unwrap(), 0);
        let Err(DemoError::Setup(message)) = Ports(Some(65534)).port(2) else {
            panic!("a port above 65535")
        };
        assert_eq!(message, "port 65534 + 2 is above 65535");
    }
}
