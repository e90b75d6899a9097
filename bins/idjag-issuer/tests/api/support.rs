//! The harness: the `idjag-issuer` binary started as a process from `tests/configs/issuer.toml`
//! and `tests/configs/policy.toml`, ID tokens signed here (its own) or by oauth2-mock-server
//! (the upstream), and assertions on exact answers and on the process's audit lines.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use idjag_core::*;
use idjag_test_support::process::{ServerProcess, TestDir, free_port, pem_key, render};
use serde_json::{Map, Value, json};

pub(crate) use idjag_test_support::form::{basic, body as form};

pub(crate) const AS: &str = "https://auth.chat.example";
pub(crate) const RESOURCE: &str = "https://mcp.chat.example/mcp";
pub(crate) const CLIENT: &str = "repo-agent";
pub(crate) const SECRET: &str = "repo-agent-secret-3c1e";
pub(crate) const CLIENT_AT_AS: &str = "8d2a1c07e5f94b3a";
pub(crate) const OTHER_CLIENT: &str = "other-agent";
pub(crate) const OTHER_SECRET: &str = "other-agent-secret-9a0b";
/// The sealing key of the store sections (64 hex digits).
pub(crate) const SEALING_KEY: &str =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The binary under test.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_idjag-issuer")
}

pub(crate) fn now() -> i64 {
    SystemClock::shared().now_unix()
}

/// Extra settings for the configuration templates.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// How many signing keys are listed (fresh PEM files, oldest first).
    pub(crate) keys: usize,
    pub(crate) lead_time_secs: u64,
    pub(crate) server: String,
    pub(crate) subject_tokens: String,
    pub(crate) upstream: String,
    /// Extra lines for the `repo-agent` client.
    pub(crate) client: String,
    pub(crate) client_jwks: String,
    pub(crate) store: String,
    pub(crate) log_level: String,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            keys: 1,
            lead_time_secs: 600,
            server: String::new(),
            subject_tokens: String::new(),
            upstream: String::new(),
            client: String::new(),
            client_jwks: "http://127.0.0.1:9/jwks".into(),
            store: String::new(),
            log_level: "info".into(),
        }
    }
}

/// An `[store]` section for an embedded database in `dir`.
pub(crate) fn embedded_store(dir: &std::path::Path) -> String {
    format!(
        "[store]\nsealing_key_env = \"TEST_SEALING_KEY\"\n[store.backend]\nkind = \"embedded\"\npath = \"{}\"\n",
        dir.join("issuer.redb").display()
    )
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

/// The environment every issuer gets.
pub(crate) fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TEST_REPO_AGENT_SECRET", SECRET),
        ("TEST_SEALING_KEY", SEALING_KEY),
        ("TEST_UPSTREAM_SECRET", "upstream-secret-5d2c"),
    ]
}

/// One issuer process.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) process: ServerProcess,
    /// The listed signing keys, oldest first, with their thumbprint `kid`s.
    pub(crate) keys: Vec<SigningKey>,
    pub(crate) http: reqwest::Client,
    pub(crate) dir: TestDir,
    pub(crate) config: PathBuf,
    audit_seen: Mutex<usize>,
}

/// Renders the templates into `dir` for an issuer on `port`, with `keys` listed.
pub(crate) fn write_config(
    dir: &TestDir,
    port: u16,
    admin_port: u16,
    keys: &[String],
    setup: &Setup,
) -> PathBuf {
    dir.write("other-agent.secret", format!("{OTHER_SECRET}\n"));
    dir.write("policy.toml", include_str!("../configs/policy.toml"));
    let listed: Vec<String> = keys
        .iter()
        .map(|file| format!("{{ file = \"{file}\", alg = \"ES256\" }}"))
        .collect();
    let text = render(
        include_str!("../configs/issuer.toml"),
        &[
            ("PORT", &port.to_string()),
            ("ADMIN_PORT", &admin_port.to_string()),
            ("SERVER", &setup.server),
            ("LOG_LEVEL", &setup.log_level),
            ("KEYS", &listed.join(", ")),
            ("LEAD_TIME", &setup.lead_time_secs.to_string()),
            ("SUBJECT_TOKENS", &setup.subject_tokens),
            ("UPSTREAM", &setup.upstream),
            ("CLIENT", &setup.client),
            ("CLIENT_JWKS", &setup.client_jwks),
            ("STORE", &setup.store),
        ],
    );
    dir.write("issuer.toml", text)
}

/// Fresh PEM keys `key-<i>.pem` in `dir`.
pub(crate) fn write_keys(
    dir: &TestDir,
    count: usize,
    from: usize,
) -> (Vec<SigningKey>, Vec<String>) {
    (from..from + count)
        .map(|i| {
            let (key, pem) = pem_key(Algorithm::Es256);
            let file = format!("key-{i}.pem");
            dir.write(&file, pem);
            (key.with_thumbprint_kid(), file)
        })
        .unzip()
}

impl Server {
    pub(crate) async fn start(setup: Setup) -> Self {
        let dir = TestDir::new();
        let (keys, files) = write_keys(&dir, setup.keys, 0);
        let port = free_port();
        let admin_port = free_port();
        let config = write_config(&dir, port, admin_port, &files, &setup);
        Self::launch(dir, config, port, admin_port, keys).await
    }

    pub(crate) async fn launch(
        dir: TestDir,
        config: PathBuf,
        port: u16,
        admin_port: u16,
        keys: Vec<SigningKey>,
    ) -> Self {
        let env = env();
        let path = config.clone();
        let process = tokio::task::spawn_blocking(move || {
            ServerProcess::start(
                std::path::Path::new(binary()),
                &path,
                port,
                Some(admin_port),
                &env,
            )
        })
        .await
        .unwrap();
        Self {
            base: format!("http://127.0.0.1:{port}"),
            process,
            keys,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            dir,
            config,
            audit_seen: Mutex::new(0),
        }
    }

    /// An ID token of this issuer (signed by the listed key `key`), for `client`.
    pub(crate) fn id_token(&self, key: usize, sub: &str, client: &str, extra: Value) -> String {
        let now = now();
        let mut claims = json!({
            "iss": self.base, "sub": sub, "aud": client, "iat": now, "exp": now + 600,
        });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let key = &self.keys[key];
        idjag_test_support::forge::jws(
            &json!({"alg": "ES256", "typ": "JWT", "kid": key.kid().unwrap().as_str()}),
            &claims,
            Some(key),
        )
    }

    /// The token-exchange form for `subject_token`, with parameters replaced or added.
    pub(crate) fn exchange_form(
        &self,
        subject_token: &str,
        changes: &[(&str, Option<&str>)],
    ) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("grant_type", wire::GRANT_TYPE_TOKEN_EXCHANGE),
            ("requested_token_type", wire::TOKEN_TYPE_ID_JAG),
            ("audience", AS),
            ("resource", RESOURCE),
            ("scope", "chat.read"),
            ("subject_token", subject_token),
            ("subject_token_type", wire::TOKEN_TYPE_ID_TOKEN),
        ];
        for (name, value) in changes {
            pairs.retain(|(n, _)| n != name);
            if let Some(value) = value {
                pairs.push((name, value));
            }
        }
        form(&pairs)
    }

    /// POSTs to the token endpoint.
    pub(crate) async fn post(&self, headers: &[(&str, &str)], body: String) -> Reply {
        send(
            self.http.post(format!("{}/token", self.base)).body(body),
            headers,
        )
        .await
    }

    /// A token exchange as `CLIENT` (client_secret_basic).
    pub(crate) async fn exchange(
        &self,
        subject_token: &str,
        changes: &[(&str, Option<&str>)],
    ) -> Reply {
        self.post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &basic(CLIENT, SECRET)),
            ],
            self.exchange_form(subject_token, changes),
        )
        .await
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        send(self.http.get(format!("{}{path}", self.base)), &[]).await
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

    /// The one audit line written since the last check (the sinks write asynchronously).
    fn one_new_audit_line(&self) -> Value {
        let mut seen = self.audit_seen.lock().unwrap();
        let lines = self.process.audit_at_least(*seen + 1);
        // A second line would show up within a moment of the first.
        std::thread::sleep(Duration::from_millis(2));
        let lines = if lines.len() == *seen + 1 {
            self.process.audit()
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

    /// Takes every audit line so far as seen.
    pub(crate) fn sync_audit(&self) {
        *self.audit_seen.lock().unwrap() = self.process.audit().len();
    }

    /// Asserts an issued ID-JAG (RFC 8693 §2.2.1, ID-JAG -04 §4.3.4): returns its header and
    /// claims, after checking them with this issuer's published keys.
    pub(crate) async fn issued(&self, reply: &Reply) -> (Value, Map<String, Value>) {
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.json["issued_token_type"], wire::TOKEN_TYPE_ID_JAG);
        assert_eq!(reply.json["token_type"], "N_A");
        assert!(reply.json.get("refresh_token").is_none());
        let line = self.one_new_audit_line();
        assert_eq!(line["decision"], "issued", "{line}");
        let token = reply.json["access_token"].as_str().unwrap();
        let claims = self.verify(token).await;
        let (header, _) = idjag_test_support::forge::decode(token);
        (header, claims)
    }

    /// Validates an ID-JAG with the keys this issuer publishes now.
    pub(crate) async fn verify(&self, token: &str) -> Map<String, Value> {
        let jwks = self.get("/jwks").await;
        let keys = KeySet::from_jwks_json(&jwks.body).unwrap().keys;
        let verified = IdJagValidator::new(
            TrustedIssuers::new().with(
                Issuer::new(self.base.clone()).unwrap(),
                std::sync::Arc::new(keys),
            ),
            Audience::new(AS).unwrap(),
            AlgorithmSet::all(),
            SystemClock::shared(),
        )
        .validate(token)
        .expect("a valid ID-JAG");
        let (_, claims) = idjag_test_support::forge::decode(token);
        assert_eq!(verified.claims().jti.as_str(), claims["jti"]);
        claims.as_object().unwrap().clone()
    }

    /// Asserts a refusal: status, code, JSON with no-store, no ID-JAG, and one `denied`
    /// audit line with `reason`.
    pub(crate) fn refused(&self, reply: &Reply, status: u16, code: &str, reason: &str) {
        assert_eq!(reply.status, status, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.json["error"], code, "{}", reply.text());
        assert!(reply.json["error_description"].is_string());
        assert!(reply.json.get("access_token").is_none());
        let line = self.one_new_audit_line();
        assert_eq!(line["decision"], "denied", "{line}");
        assert_eq!(line["reason"], reason, "{line}");
        assert_eq!(line["error"], code, "{line}");
    }

    /// The `signing key schedule` log lines (one per start).
    pub(crate) fn schedules(&self) -> Vec<Value> {
        self.process
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == "signing key schedule")
            .map(|l| serde_json::from_str(l["keys"].as_str().unwrap()).unwrap())
            .collect()
    }

    /// The `kid`s of the JWKS.
    pub(crate) async fn jwks_kids(&self) -> Vec<String> {
        let jwks = self.get("/jwks").await;
        jwks.json["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A process-unique suffix.
pub(crate) fn unique() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}
