//! Test peers on 127.0.0.1: an MCP server's metadata, its authorization server, an IdP that
//! mints real ID-JAGs under a per-subject policy, and a scripted rmcp HTTP client standing in
//! for the MCP server's own answers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use idjag_client::{ClientCredentials, IdJagClient, IdentityProvider, TokenProvider, UserToken};
use idjag_core::*;
use idjag_mcp::client::{EmaAuthorizer, ResourceAsRegistrations};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, InsufficientScopeError, SseError, StreamableHttpClient, StreamableHttpError,
    StreamableHttpPostResponse,
};
use serde_json::{Value, json};

/// The client id at the IdP and at the authorization server.
pub const IDP_CLIENT: &str = "agent-at-idp";
pub const AS_CLIENT: &str = "agent-at-as";
pub const AS_SECRET: &str = "as-s3cret-value";

#[derive(Default)]
pub struct Log {
    pub prm_fetches: AtomicUsize,
    pub as_metadata_fetches: AtomicUsize,
    /// Token-exchange forms received by the IdP.
    pub exchanges: Mutex<Vec<HashMap<String, String>>>,
    /// JWT-bearer forms received by the authorization server.
    pub redemptions: Mutex<Vec<HashMap<String, String>>>,
}

pub struct Peers {
    pub base: String,
    pub log: Arc<Log>,
}

#[derive(Clone)]
struct App {
    base: String,
    key: SigningKey,
    log: Arc<Log>,
    /// Subject tokens the IdP refuses (`access_denied`).
    denied: Arc<Vec<String>>,
    /// Scopes the IdP grants at most.
    grantable: ScopeSet,
    /// Authorization servers the resource lists.
    listed: Arc<Vec<String>>,
    /// The `issuer` the authorization server's metadata states, if not its own.
    stated_issuer: Option<String>,
}

fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

async fn prm(State(app): State<App>) -> Json<Value> {
    app.log.prm_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "resource": format!("{}/mcp", app.base),
        "authorization_servers": *app.listed,
    }))
}

async fn as_metadata(State(app): State<App>) -> Json<Value> {
    app.log.as_metadata_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "issuer": app.stated_issuer.clone().unwrap_or_else(|| format!("{}/as", app.base)),
        "token_endpoint": format!("{}/as/token", app.base),
        "grant_types_supported": [wire::GRANT_TYPE_JWT_BEARER],
        "authorization_grant_profiles_supported": [wire::GRANT_PROFILE_ID_JAG],
    }))
}

async fn idp_token(State(app): State<App>, body: String) -> Response {
    let form = form(&body);
    app.log.exchanges.lock().unwrap().push(form.clone());
    let subject = form.get("subject_token").cloned().unwrap_or_default();
    if app.denied.contains(&subject) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "access_denied", "error_description": "not allowed"})),
        )
            .into_response();
    }
    let now = SystemClock::shared().now_unix();
    let requested = form
        .get("scope")
        .map(|s| ScopeSet::parse(s).unwrap())
        .unwrap_or_default();
    let granted: ScopeSet = ScopeSet::parse(
        &requested
            .iter()
            .filter(|s| app.grantable.contains(s.as_str()))
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    )
    .unwrap_or_default();
    let mut claims = IdJagClaims::new(
        Issuer::new(format!("{}/idp", app.base)).unwrap(),
        Subject::new(subject.replace("id-token-", "")).unwrap(),
        Audience::new(form["audience"].clone()).unwrap(),
        ClientId::new(AS_CLIENT).unwrap(),
        Jti::new(format!(
            "jti-{now}-{}",
            app.log.exchanges.lock().unwrap().len()
        ))
        .unwrap(),
        NumericDate::from_unix(now).unwrap(),
        NumericDate::from_unix(now + 300).unwrap(),
    );
    claims.resource = form
        .get("resource")
        .map(|r| vec![Resource::new(r.clone()).unwrap()]);
    if !granted.is_empty() {
        claims.scope = Some(granted.clone());
    }
    let id_jag = app.key.sign_jwt(Some(wire::TYP_ID_JAG), &claims).unwrap();
    let mut answer = json!({
        "access_token": id_jag.secret(),
        "issued_token_type": wire::TOKEN_TYPE_ID_JAG,
        "token_type": "N_A",
        "expires_in": 300,
    });
    if !granted.is_empty() {
        answer["scope"] = json!(granted.to_string());
    }
    Json(answer).into_response()
}

async fn as_token(State(app): State<App>, body: String) -> Json<Value> {
    let form = form(&body);
    let mut redemptions = app.log.redemptions.lock().unwrap();
    redemptions.push(form);
    Json(json!({
        "access_token": format!("at-{}", redemptions.len()),
        "token_type": "Bearer",
        "expires_in": 300,
    }))
}

pub struct PeersBuilder {
    denied: Vec<String>,
    grantable: ScopeSet,
    listed: Option<Vec<String>>,
    stated_issuer: Option<String>,
}

impl Peers {
    pub fn builder() -> PeersBuilder {
        PeersBuilder {
            denied: Vec::new(),
            grantable: ScopeSet::parse("tools.read tools.write").unwrap(),
            listed: None,
            stated_issuer: None,
        }
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn challenge(&self) -> String {
        format!(
            r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
            self.base
        )
    }

    pub fn as_issuer(&self) -> Issuer {
        Issuer::new(format!("{}/as", self.base)).unwrap()
    }

    pub fn exchanges(&self) -> Vec<HashMap<String, String>> {
        self.log.exchanges.lock().unwrap().clone()
    }

    pub fn redemptions(&self) -> Vec<HashMap<String, String>> {
        self.log.redemptions.lock().unwrap().clone()
    }

    /// An authorizer for these peers, registered (pinned) at their authorization server.
    pub fn authorizer(&self) -> Arc<EmaAuthorizer> {
        self.authorizer_with(
            ResourceAsRegistrations::new().with(self.as_issuer(), as_credentials()),
        )
    }

    pub fn authorizer_with(&self, registrations: ResourceAsRegistrations) -> Arc<EmaAuthorizer> {
        let idp = IdentityProvider::new(
            Issuer::new(format!("{}/idp", self.base)).unwrap(),
            &format!("{}/idp/token", self.base),
            ClientCredentials::public(ClientId::new(IDP_CLIENT).unwrap()),
        )
        .unwrap();
        let provider = TokenProvider::new(IdJagClient::new(idp).unwrap());
        Arc::new(EmaAuthorizer::new(Arc::new(provider), registrations))
    }
}

pub fn as_credentials() -> ClientCredentials {
    ClientCredentials::secret_basic(
        ClientId::new(AS_CLIENT).unwrap(),
        ClientSecret::new(AS_SECRET),
    )
    .unwrap()
}

pub fn user(name: &str) -> UserToken {
    UserToken::id_token(IdToken::new(format!("id-token-{name}")))
}

impl PeersBuilder {
    pub fn deny(mut self, name: &str) -> Self {
        self.denied.push(format!("id-token-{name}"));
        self
    }

    pub fn grantable(mut self, scopes: &str) -> Self {
        self.grantable = ScopeSet::parse(scopes).unwrap();
        self
    }

    pub fn listing(mut self, servers: &[&str]) -> Self {
        self.listed = Some(servers.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// The authorization server's metadata names another issuer (a mix-up attempt).
    pub fn stating_issuer(mut self, issuer: &str) -> Self {
        self.stated_issuer = Some(issuer.to_owned());
        self
    }

    pub async fn start(self) -> Peers {
        let (listener, base) = idjag_test_support::net::loopback().await;
        let log = Arc::new(Log::default());
        let app = App {
            listed: Arc::new(self.listed.unwrap_or_else(|| vec![format!("{base}/as")])),
            base: base.clone(),
            key: SigningKey::generate(Algorithm::Es256)
                .unwrap()
                .with_thumbprint_kid(),
            log: log.clone(),
            denied: Arc::new(self.denied),
            grantable: self.grantable,
            stated_issuer: self.stated_issuer,
        };
        let router = Router::new()
            .route("/.well-known/oauth-protected-resource/mcp", get(prm))
            .route(
                "/.well-known/oauth-authorization-server/as",
                get(as_metadata),
            )
            .route("/idp/token", post(idp_token))
            .route("/as/token", post(as_token))
            .with_state(app);
        idjag_test_support::net::serve(listener, router);
        Peers { base, log }
    }
}

/// What the scripted MCP server answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Accepted,
    Unauthorized(String),
    Forbidden(String),
}

/// An rmcp HTTP client that answers from a script, and records the token of every request it
/// is asked to send. Once the script is done: `401` with `challenge` to a request without a
/// token, `Accepted` otherwise.
#[derive(Clone)]
pub struct ScriptedMcp {
    script: Arc<Mutex<VecDeque<Reply>>>,
    challenge: String,
    pub seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl ScriptedMcp {
    pub fn new(peers: &Peers, replies: impl IntoIterator<Item = Reply>) -> Self {
        Self {
            script: Arc::new(Mutex::new(replies.into_iter().collect())),
            challenge: peers.challenge(),
            seen: Arc::default(),
        }
    }

    pub fn tokens(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }

    fn answer(&self, token: Option<String>) -> Result<(), StreamableHttpError<std::io::Error>> {
        self.seen.lock().unwrap().push(token.clone());
        let scripted = self.script.lock().unwrap().pop_front();
        let reply = scripted.unwrap_or_else(|| match token {
            None => Reply::Unauthorized(self.challenge.clone()),
            Some(_) => Reply::Accepted,
        });
        match reply {
            Reply::Accepted => Ok(()),
            Reply::Unauthorized(challenge) => Err(StreamableHttpError::AuthRequired(
                AuthRequiredError::new(challenge),
            )),
            Reply::Forbidden(challenge) => Err(StreamableHttpError::InsufficientScope(
                InsufficientScopeError::new(challenge, None),
            )),
        }
    }
}

impl StreamableHttpClient for ScriptedMcp {
    type Error = std::io::Error;

    async fn post_message(
        &self,
        _uri: Arc<str>,
        _message: ClientJsonRpcMessage,
        _session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.answer(auth_header)
            .map(|()| StreamableHttpPostResponse::Accepted)
    }

    async fn delete_session(
        &self,
        _uri: Arc<str>,
        _session_id: Arc<str>,
        auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.answer(auth_header)
    }

    async fn get_stream(
        &self,
        _uri: Arc<str>,
        _session_id: Option<Arc<str>>,
        _last_event_id: Option<String>,
        auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        self.answer(auth_header)
            .map(|()| Box::pin(futures::stream::empty()) as BoxStream<'static, _>)
    }
}

/// A JSON-RPC `ping` request.
pub fn ping() -> ClientJsonRpcMessage {
    serde_json::from_value(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).unwrap()
}
