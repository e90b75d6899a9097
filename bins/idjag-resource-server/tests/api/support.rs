//! The harness: the `idjag-resource-server` binary started as a process from
//! `tests/configs/cases.toml`, a test IdP on loopback publishing its metadata and JWKS, ID-JAGs
//! forged and signed here, and assertions on exact answers and on the process's audit lines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use idjag_core::*;
use idjag_test_support::process::{ServerProcess, TestDir, free_port, pem_key, render};
use serde_json::{Map, Value, json};

pub(crate) use idjag_test_support::forge::{b64, hmac_sha256};
pub(crate) use idjag_test_support::form::{basic, body as form};

pub(crate) const RESOURCE: &str = "https://mcp.chat.example/mcp";
pub(crate) const CLIENT: &str = "chat-agent";
pub(crate) const SECRET: &str = "s3cr3t:value-9f2c";
pub(crate) const OTHER_CLIENT: &str = "other-agent";
pub(crate) const OTHER_SECRET: &str = "other-secret-77ab";
pub(crate) const JWT_CLIENT: &str = "jwt-agent";
pub(crate) const MCP_CLIENT: &str = "mcp-server";
pub(crate) const MCP_SECRET: &str = "mcp-introspection-5e1d";
pub(crate) const IDJAG_SCOPES: &str = "chat.read chat.history";
pub(crate) const GLOBEX: &str = "https://globex.idp.example";
pub(crate) const CAFE: &str = "https://caf\u{e9}.idp.example";

/// The binary under test.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_idjag-resource-server")
}

/// Now, in Unix seconds (the server runs on the system clock).
pub(crate) fn now() -> i64 {
    SystemClock::shared().now_unix()
}

// ---------------------------------------------------------------------------------------------
// The test IdP: metadata and JWKS on loopback, keys replaceable at any time.

/// One published key set.
pub(crate) type Jwks = Arc<RwLock<Vec<Value>>>;

#[derive(Clone, Default)]
struct Published {
    acme: Jwks,
    globex: Jwks,
    cafe: Jwks,
    client: Jwks,
    base: Arc<RwLock<String>>,
    fetches: Arc<AtomicUsize>,
}

/// A loopback IdP serving `/.well-known/oauth-authorization-server`, `/jwks` (Acme),
/// `/globex/jwks`, `/cafe/jwks` and `/client-jwks` (the private_key_jwt client's keys).
#[derive(Clone)]
pub(crate) struct TestIdp {
    pub(crate) base: String,
    published: Published,
}

fn set(jwks: &Jwks, keys: &[&SigningKey]) {
    *jwks.write().unwrap() = keys.iter().map(|k| k.public_jwk()).collect();
}

impl TestIdp {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let published = Published::default();
        *published.base.write().unwrap() = base.clone();
        fn keys(jwks: &Jwks) -> axum::Json<Value> {
            axum::Json(json!({ "keys": jwks.read().unwrap().clone() }))
        }
        let router = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(|State(p): State<Published>| async move {
                    let base = p.base.read().unwrap().clone();
                    axum::Json(json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}))
                }),
            )
            .route(
                "/jwks",
                get(|State(p): State<Published>| async move {
                    p.fetches.fetch_add(1, Ordering::SeqCst);
                    keys(&p.acme)
                }),
            )
            .route(
                "/globex/jwks",
                get(|State(p): State<Published>| async move { keys(&p.globex) }),
            )
            .route(
                "/cafe/jwks",
                get(|State(p): State<Published>| async move { keys(&p.cafe) }),
            )
            .route(
                "/client-jwks",
                get(|State(p): State<Published>| async move { keys(&p.client) }),
            )
            .with_state(published.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, published }
    }

    /// Publishes exactly these Acme keys.
    pub(crate) fn publish(&self, keys: &[&SigningKey]) {
        set(&self.published.acme, keys);
    }

    pub(crate) fn publish_globex(&self, keys: &[&SigningKey]) {
        set(&self.published.globex, keys);
    }

    pub(crate) fn publish_cafe(&self, keys: &[&SigningKey]) {
        set(&self.published.cafe, keys);
    }

    pub(crate) fn publish_client(&self, keys: &[&SigningKey]) {
        set(&self.published.client, keys);
    }

    /// How many times the Acme JWKS was fetched.
    pub(crate) fn fetches(&self) -> usize {
        self.published.fetches.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// ID-JAGs.

fn next_jti() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "jti-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Signs ID-JAGs as Acme would, for one resource AS.
#[derive(Debug, Clone)]
pub(crate) struct Idp {
    pub(crate) issuer: String,
    pub(crate) key: SigningKey,
    pub(crate) audience: String,
}

impl Idp {
    pub(crate) fn header(&self) -> Value {
        json!({"alg": self.key.alg().as_str(), "typ": wire::TYP_ID_JAG, "kid": self.key.kid().unwrap().as_str()})
    }

    /// A valid ID-JAG's claims for `CLIENT`, issued now.
    pub(crate) fn claims(&self) -> Map<String, Value> {
        let now = now();
        json!({
            "iss": self.issuer,
            "sub": "alice@acme",
            "aud": self.audience,
            "client_id": CLIENT,
            "jti": next_jti(),
            "iat": now,
            "exp": now + 300,
            "resource": RESOURCE,
            "scope": IDJAG_SCOPES,
        })
        .as_object()
        .unwrap()
        .clone()
    }

    pub(crate) fn jws_raw(&self, header: &[u8], payload: &[u8]) -> String {
        idjag_test_support::forge::sign_raw(&self.key, header, payload)
    }

    pub(crate) fn jws(&self, header: &Value, claims: &Value) -> String {
        self.jws_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    pub(crate) fn id_jag(&self) -> String {
        self.with(|_| {})
    }

    pub(crate) fn with(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        self.jws(&self.header(), &Value::Object(claims))
    }

    /// The default claims with some set (`Null` removes the claim).
    pub(crate) fn claims_with(&self, changes: &[(&str, Value)]) -> Map<String, Value> {
        let mut claims = self.claims();
        for (name, value) in changes {
            match value {
                Value::Null => claims.remove(*name),
                other => claims.insert((*name).to_owned(), other.clone()),
            };
        }
        claims
    }

    pub(crate) fn set(&self, changes: &[(&str, Value)]) -> String {
        self.jws(&self.header(), &Value::Object(self.claims_with(changes)))
    }

    pub(crate) fn without(&self, name: &str) -> String {
        self.set(&[(name, Value::Null)])
    }

    pub(crate) fn with_header(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut header = self.header().as_object().unwrap().clone();
        edit(&mut header);
        self.jws(&Value::Object(header), &Value::Object(self.claims()))
    }
}

/// A JWS of `header` and `claims` signed by `key`.
pub(crate) fn sign_with(key: &SigningKey, header: Value, claims: &Map<String, Value>) -> String {
    idjag_test_support::forge::jws(&header, &Value::Object(claims.clone()), Some(key))
}

// ---------------------------------------------------------------------------------------------
// The harness.

/// Extra settings for `tests/configs/cases.toml`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Setup {
    /// Lines in `[server]`.
    pub(crate) server: String,
    /// Lines in `[tokens]`.
    pub(crate) tokens: String,
    /// Lines in Acme's `[[trusted_idps]]`.
    pub(crate) acme: String,
    /// More `[[resources]]`.
    pub(crate) resources: String,
    /// A `[store]` section (default: none, memory).
    pub(crate) store: String,
    /// A path after the issuer's origin (`/tenant-a`).
    pub(crate) issuer_path: String,
    /// Acme's `[trusted_idps.jwks_cache]` (default `cooldown_secs = 1`).
    pub(crate) jwks_cache: Option<String>,
    /// `[log]` level (default `info`) and format (default `json`).
    pub(crate) log_level: Option<String>,
    pub(crate) log_format: Option<String>,
}

impl Setup {
    pub(crate) fn tokens(lines: &str) -> Self {
        Self {
            tokens: lines.into(),
            ..Self::default()
        }
    }

    pub(crate) fn acme(lines: &str) -> Self {
        Self {
            acme: lines.into(),
            ..Self::default()
        }
    }
}

/// What a request got back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) json: Value,
}

impl Reply {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn access_token(&self) -> &str {
        self.json["access_token"].as_str().expect("an access token")
    }
}

pub(crate) async fn send(mut request: reqwest::RequestBuilder, headers: &[(&str, &str)]) -> Reply {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap().to_vec();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        json,
    }
}

/// One resource server process and its IdP.
pub(crate) struct Harness {
    pub(crate) base: String,
    pub(crate) process: ServerProcess,
    pub(crate) idp: Idp,
    pub(crate) test_idp: TestIdp,
    pub(crate) as_key: SigningKey,
    pub(crate) as_next_key: SigningKey,
    pub(crate) http: reqwest::Client,
    _dir: TestDir,
    audit_seen: Mutex<usize>,
}

/// The environment every test server gets (the secrets of `cases.toml`).
pub(crate) fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TEST_CHAT_AGENT_SECRET", SECRET),
        ("TEST_MCP_SERVER_SECRET", MCP_SECRET),
    ]
}

/// Writes the keys and secret files and renders `cases.toml` into `dir` for a server on `port`.
pub(crate) fn write_config(
    dir: &TestDir,
    port: u16,
    admin_port: u16,
    idp: &str,
    setup: &Setup,
) -> (std::path::PathBuf, SigningKey, SigningKey) {
    let (as_key, as_pem) = pem_key(Algorithm::Es256);
    let (next_key, next_pem) = pem_key(Algorithm::Es256);
    dir.write("as.pem", as_pem);
    dir.write("as-next.pem", next_pem);
    dir.write("other-agent.secret", format!("{OTHER_SECRET}\n"));
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/configs/cases.toml"
    ))
    .unwrap();
    let port = port.to_string();
    let admin_port = admin_port.to_string();
    let text = render(
        &template,
        &[
            ("PORT", &port),
            ("ADMIN_PORT", &admin_port),
            ("IDP", idp),
            ("SERVER", &setup.server),
            ("TOKENS", &setup.tokens),
            ("ACME", &setup.acme),
            ("RESOURCES", &setup.resources),
            ("STORE", &setup.store),
            ("PATH", &setup.issuer_path),
            ("LOG_LEVEL", setup.log_level.as_deref().unwrap_or("info")),
            ("LOG_FORMAT", setup.log_format.as_deref().unwrap_or("json")),
            (
                "JWKS_CACHE",
                setup.jwks_cache.as_deref().unwrap_or("cooldown_secs = 1"),
            ),
        ],
    );
    let config = dir.write("resource-server.toml", text);
    (
        config,
        as_key.with_kid(Kid::new("as-key-1").unwrap()),
        next_key.with_kid(Kid::new("as-key-2").unwrap()),
    )
}

impl Harness {
    pub(crate) async fn start(setup: Setup) -> Self {
        let test_idp = TestIdp::start().await;
        Self::start_with(setup, test_idp).await
    }

    pub(crate) async fn start_with(setup: Setup, test_idp: TestIdp) -> Self {
        let dir = TestDir::new();
        let port = free_port();
        let admin_port = free_port();
        let (config, as_key, as_next_key) =
            write_config(&dir, port, admin_port, &test_idp.base, &setup);
        let base = format!("http://127.0.0.1:{port}{}", setup.issuer_path);
        let idp = Idp {
            issuer: test_idp.base.clone(),
            key: SigningKey::generate(Algorithm::Es256)
                .unwrap()
                .with_kid(Kid::new("idp-key-1").unwrap()),
            audience: base.clone(),
        };
        test_idp.publish(&[&idp.key]);
        let env = env();
        let process = tokio::task::spawn_blocking(move || {
            ServerProcess::start(
                std::path::Path::new(binary()),
                &config,
                port,
                Some(admin_port),
                &env,
            )
        })
        .await
        .unwrap();
        Self {
            base,
            process,
            idp,
            test_idp,
            as_key,
            as_next_key,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _dir: dir,
            audit_seen: Mutex::new(0),
        }
    }

    pub(crate) fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    pub(crate) async fn post(&self, headers: &[(&str, &str)], body: impl Into<String>) -> Reply {
        self.request(
            reqwest::Method::POST,
            &self.token_url(),
            headers,
            body.into(),
        )
        .await
    }

    pub(crate) async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Reply {
        send(self.http.request(method, url).body(body), headers).await
    }

    /// GET `path` on the server's origin.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        send(self.http.get(format!("{}{path}", self.process.base())), &[]).await
    }

    /// GET `path` on the admin listener.
    pub(crate) async fn admin(&self, path: &str) -> Reply {
        send(
            self.http
                .get(format!("{}{path}", self.process.admin_base())),
            &[],
        )
        .await
    }

    /// Redeems `assertion` as `CLIENT` with client_secret_basic.
    pub(crate) async fn redeem(&self, assertion: &str) -> Reply {
        self.redeem_with(assertion, &[]).await
    }

    pub(crate) async fn redeem_with(&self, assertion: &str, extra: &[(&str, &str)]) -> Reply {
        let mut pairs = vec![
            ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
            ("assertion", assertion),
        ];
        pairs.extend_from_slice(extra);
        self.post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &basic(CLIENT, SECRET)),
            ],
            form(&pairs),
        )
        .await
    }

    /// Redeems every token at once.
    pub(crate) async fn redeem_all(self: &Arc<Self>, tokens: Vec<String>) -> Vec<Reply> {
        let mut set = tokio::task::JoinSet::new();
        for token in tokens {
            let h = self.clone();
            set.spawn(async move { h.redeem(&token).await });
        }
        let mut replies = Vec::new();
        while let Some(reply) = set.join_next().await {
            replies.push(reply.unwrap());
        }
        replies
    }

    /// Every audit line of the process (at least `count`, waiting for the sinks up to 10 s).
    pub(crate) fn audit_at_least(&self, count: usize) -> Vec<Value> {
        self.process.audit_at_least(count)
    }

    /// Every audit line of the process so far.
    pub(crate) fn audit(&self) -> Vec<Value> {
        self.process.audit()
    }

    /// The one audit line written since the last check.
    fn one_new_audit_line(&self) -> Value {
        let mut seen = self.audit_seen.lock().unwrap();
        let lines = self.audit_at_least(*seen + 1);
        // A second line would show up within a moment of the first.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let lines = if lines.len() == *seen + 1 {
            self.audit()
        } else {
            lines
        };
        assert_eq!(
            lines.len(),
            *seen + 1,
            "exactly one audit line per decision: {:?}",
            &lines[(*seen).min(lines.len())..]
        );
        *seen = lines.len();
        lines.last().unwrap().clone()
    }

    /// Asserts a grant: 200 JSON, no-store, a Bearer token, no refresh token, one `granted`
    /// audit line. Returns the access token's claims (decoded; [`Self::verify`] checks them).
    pub(crate) fn granted(&self, reply: &Reply) -> Value {
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("pragma"), Some("no-cache"));
        assert_eq!(reply.json["token_type"], "Bearer");
        assert!(
            reply.json.get("refresh_token").is_none(),
            "J04: no refresh token"
        );
        let line = self.one_new_audit_line();
        assert_eq!(line["decision"], "granted", "{line}");
        assert_eq!(line["reason"], "ok", "{line}");
        idjag_test_support::forge::decode(reply.access_token()).1
    }

    /// Asserts a refusal: status, code, the generic description, JSON with exactly `error`
    /// and `error_description`, no-store, and one `denied` audit line with `reason`.
    pub(crate) fn refused(&self, reply: &Reply, status: u16, code: &str, reason: &str) {
        assert_eq!(reply.status, status, "{}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "J08"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"), "J08");
        let body = reply.json.as_object().expect("a JSON object");
        assert_eq!(body.len(), 2, "only error and error_description: {body:?}");
        assert_eq!(body["error"], code);
        let wire_code = OAuthErrorCode::from_wire(code).expect("a known code");
        assert_eq!(
            body["error_description"],
            idjag_resource_generic(wire_code),
            "J03: generic description"
        );
        let line = self.one_new_audit_line();
        assert_eq!(line["decision"], "denied", "{line}");
        assert_eq!(line["reason"], reason, "audit reason: {line}");
    }

    pub(crate) async fn invalid_grant(&self, token: &str, reason: &str) {
        let reply = self.redeem(token).await;
        self.refused(&reply, 400, "invalid_grant", reason);
    }

    pub(crate) async fn grants(&self, token: &str) -> Value {
        let reply = self.redeem(token).await;
        self.granted(&reply)
    }

    /// Verifies an access token with the keys this server publishes at its JWKS.
    pub(crate) async fn verify(&self, token: &str) -> AccessTokenClaims {
        let jwks = send(self.http.get(format!("{}/jwks.json", self.base)), &[]).await;
        let keys = KeySet::from_jwks_json(&jwks.body).unwrap().keys;
        AccessTokenValidator::new(
            TrustedIssuers::new().with(Issuer::new(self.base.clone()).unwrap(), Arc::new(keys)),
            Audience::new(RESOURCE).unwrap(),
            AlgorithmSet::all(),
            SystemClock::shared(),
        )
        .validate(token)
        .expect("a valid access token")
        .into_claims()
    }
}

/// The one `error_description` idjag-resource sends for `code`.
pub(crate) fn idjag_resource_generic(code: OAuthErrorCode) -> &'static str {
    idjag_resource::generic_description(code)
}
