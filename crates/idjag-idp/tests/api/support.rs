//! The test IdP: a real axum server on 127.0.0.1:0, a test clock, test users, a
//! refresh-token store, every kind of client, and this thread's `tracing` output (the
//! capture, loopback, form and token-forging helpers are idjag-test-support's).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use idjag_core::server::{RegisteredClient, StaticClientRegistry};
use idjag_core::*;
use idjag_idp::dev::{DevUser, DevUsers, MemoryRefreshTokens};
use idjag_idp::*;
use idjag_test_support::logs::{self, ThreadLog};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub(crate) use idjag_test_support::clock::NOW;
pub(crate) use idjag_test_support::forge::{decode, jws};
pub(crate) use idjag_test_support::form::{basic, encode as form_encode};

pub(crate) const CHAT_AS: &str = "https://auth.chat.example";
pub(crate) const CHAT_ALIAS: &str = "urn:example:chat";
pub(crate) const CHAT_MCP: &str = "https://mcp.chat.example/mcp";
pub(crate) const CHAT_FILES: &str = "https://mcp.chat.example/files";
pub(crate) const CHAT_ADMIN: &str = "https://mcp.chat.example/admin";
pub(crate) const MAIL_AS: &str = "https://auth.mail.example";
pub(crate) const MAIL_MCP: &str = "https://mcp.mail.example/mcp";

pub(crate) const AGENT: &str = "chat-agent";
/// Characters that need form-urlencoding inside Basic credentials (RFC 6749 §2.3.1).
pub(crate) const AGENT_SECRET: &str = "agent s3cret:%+/=";
pub(crate) const AGENT_AT_CHAT: &str = "f53f191f9311af35";
pub(crate) const OTHER: &str = "other-agent";
pub(crate) const OTHER_SECRET: &str = "other-9f8e7d6c5b4a";
pub(crate) const JWT_AGENT: &str = "jwt-agent";
pub(crate) const PUBLIC: &str = "public-agent";

pub(crate) const MFA: &str = "urn:example:acr:mfa";

pub(crate) const POLICY: &str = r#"
[[audience]]
issuer = "https://auth.chat.example"
aliases = ["urn:example:chat"]
resources = ["https://mcp.chat.example/mcp", "https://mcp.chat.example/files", "https://mcp.chat.example/admin"]
include_email = true
client_ids = { "chat-agent" = "f53f191f9311af35", "jwt-agent" = "jwt-agent-at-chat", "other-agent" = "other-at-chat" }

[[audience]]
issuer = "https://auth.mail.example"
resources = ["https://mcp.mail.example/mcp"]
client_ids = { "chat-agent" = "agent-at-mail" }

[[allow]]
clients = ["*"]
audience = "https://auth.chat.example"
resources = ["https://mcp.chat.example/mcp", "https://mcp.chat.example/files"]
groups = ["staff"]
scopes = ["chat.read", "chat.history", "chat.admin"]
authorization_detail_types = ["chat_channel"]

[[allow]]
clients = ["chat-agent"]
audience = "https://auth.mail.example"
groups = ["staff"]
scopes = ["mail.read"]

[[deny]]
users = ["mallory"]

[[deny]]
groups = ["contractors"]
scopes = ["chat.history"]

[[step_up]]
audience = "https://auth.chat.example"
scopes = ["chat.admin"]
acr_values = ["urn:example:acr:mfa"]
max_age = 300
"#;

pub(crate) struct Harness {
    pub(crate) idp: IdJagIssuer,
    pub(crate) clock: TestClock,
    pub(crate) users: DevUsers,
    pub(crate) refresh: Arc<MemoryRefreshTokens>,
    pub(crate) jwt_agent_key: SigningKey,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) logs: ThreadLog,
    audit_seen: Mutex<usize>,
}

pub(crate) fn id(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

pub(crate) fn users(idp: &IdJagIssuer) -> DevUsers {
    DevUsers::new(idp)
        .with_user(
            DevUser::new("alice")
                .unwrap()
                .with_email("alice@example.com")
                .with_groups(&["staff"])
                .with_amr(&["pwd"]),
        )
        .with_user(
            DevUser::new("bob")
                .unwrap()
                .with_groups(&["staff", "contractors"]),
        )
        .with_user(DevUser::new("mallory").unwrap().with_groups(&["staff"]))
        .with_user(DevUser::new("eve").unwrap())
        .with_user(
            DevUser::new("carol")
                .unwrap()
                .with_groups(&["staff"])
                .with_acr(MFA),
        )
}

pub(crate) async fn start() -> Harness {
    start_with(None, |b| b).await
}

/// Starts an IdP; `policy` replaces the test policy, `configure` adjusts the builder.
pub(crate) async fn start_with(
    policy: Option<Arc<dyn Policy>>,
    configure: impl FnOnce(IdJagIssuerBuilder) -> IdJagIssuerBuilder,
) -> Harness {
    start_serving(policy, configure, |idp, _| idp.router()).await
}

/// Starts an IdP served by the router `serve` makes from it and its test users.
pub(crate) async fn start_serving(
    policy: Option<Arc<dyn Policy>>,
    configure: impl FnOnce(IdJagIssuerBuilder) -> IdJagIssuerBuilder,
    serve: impl FnOnce(&IdJagIssuer, DevUsers) -> axum::Router,
) -> Harness {
    // Each test runs on its own current-thread runtime, so the server, the client and the
    // test share this thread: its log is this harness's.
    let logs = logs::this_thread();

    let clock = TestClock::at_unix(NOW);
    let jwt_agent_key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let clients = StaticClientRegistry::new()
        .with(RegisteredClient::with_secret(
            id(AGENT),
            &ClientSecret::new(AGENT_SECRET),
        ))
        .with(RegisteredClient::with_secret(
            id(OTHER),
            &ClientSecret::new(OTHER_SECRET),
        ))
        .with(RegisteredClient::with_private_key_jwt(
            id(JWT_AGENT),
            Arc::new(KeySet::new([jwt_agent_key.verifying_key().unwrap()]).unwrap()),
        ))
        .with(RegisteredClient::public(id(PUBLIC)));
    let policy = policy.unwrap_or_else(|| Arc::new(TomlPolicy::from_toml_str(POLICY).unwrap()));
    let refresh = Arc::new(MemoryRefreshTokens::new());

    let (listener, base) = idjag_test_support::net::loopback().await;
    let builder = IdJagIssuer::builder(
        Issuer::new(base.clone()).unwrap(),
        SigningKeys::generate_es256().unwrap(),
        Arc::new(clients),
        policy,
    )
    .clock(clock.shared())
    .tenant("acme")
    .refresh_token_store(refresh.clone());
    let idp = configure(builder).build().unwrap();
    let router = serve(&idp, users(&idp));
    idjag_test_support::net::serve(listener, router);

    Harness {
        users: users(&idp),
        idp,
        clock,
        refresh,
        jwt_agent_key,
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        logs,
        audit_seen: Mutex::new(0),
    }
}

/// A token-exchange request under construction.
#[derive(Clone, Debug)]
pub(crate) struct Form {
    pub(crate) params: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self.params.push((name.into(), value.into()));
        self
    }

    pub(crate) fn add(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    pub(crate) fn remove(mut self, name: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Drops every client credential.
    pub(crate) fn no_auth(mut self) -> Self {
        self.headers.retain(|(n, _)| n != "authorization");
        self.remove("client_id").remove("client_secret")
    }

    pub(crate) fn basic(self, user: &str, secret: &str) -> Self {
        self.no_auth().header("authorization", &basic(user, secret))
    }

    pub(crate) fn post_secret(self, user: &str, secret: &str) -> Self {
        self.no_auth()
            .set("client_id", user)
            .set("client_secret", secret)
    }

    pub(crate) fn assertion(self, assertion: &str) -> Self {
        self.no_auth()
            .set(
                "client_assertion_type",
                wire::CLIENT_ASSERTION_TYPE_JWT_BEARER,
            )
            .set("client_assertion", assertion)
    }

    pub(crate) fn subject(self, token: &str, token_type: &str) -> Self {
        self.set("subject_token", token)
            .set("subject_token_type", token_type)
    }

    pub(crate) fn body(&self) -> String {
        self.params
            .iter()
            .map(|(n, v)| format!("{}={}", form_encode(n), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// An answer from the token endpoint.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) raw: String,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn id_jag(&self) -> &str {
        assert_eq!(self.status, StatusCode::OK, "{}", self.raw);
        self.body["access_token"].as_str().unwrap()
    }

    /// Status, error code, no token, no-store.
    pub(crate) fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.raw);
        assert_eq!(self.body["error"], code, "{}", self.raw);
        assert!(self.body.get("access_token").is_none(), "{}", self.raw);
        assert!(self.body.get("refresh_token").is_none(), "{}", self.raw);
        assert_eq!(self.headers["cache-control"], "no-store");
        assert_eq!(self.headers["content-type"], "application/json");
    }
}

impl Harness {
    pub(crate) fn token_url(&self) -> String {
        self.idp.token_endpoint().to_string()
    }

    pub(crate) fn id_token(&self, user: &str, client: &str) -> String {
        self.users
            .id_token(user, &id(client))
            .unwrap()
            .secret()
            .to_owned()
    }

    /// A valid request: alice's ID token, Basic auth as the chat agent, the chat AS and MCP
    /// server, two allowed scopes.
    pub(crate) fn valid(&self) -> Form {
        self.valid_for("alice")
    }

    pub(crate) fn valid_for(&self, user: &str) -> Form {
        Form {
            params: Vec::new(),
            headers: Vec::new(),
        }
        .set("grant_type", wire::GRANT_TYPE_TOKEN_EXCHANGE)
        .set("requested_token_type", wire::TOKEN_TYPE_ID_JAG)
        .set("audience", CHAT_AS)
        .set("resource", CHAT_MCP)
        .set("scope", "chat.read chat.history")
        .subject(&self.id_token(user, AGENT), wire::TOKEN_TYPE_ID_TOKEN)
        .basic(AGENT, AGENT_SECRET)
    }

    pub(crate) async fn post(&self, form: &Form) -> Answer {
        self.send(
            form.body().into_bytes(),
            Some(wire::MEDIA_TYPE_FORM),
            &form.headers,
        )
        .await
    }

    pub(crate) async fn send(
        &self,
        body: Vec<u8>,
        content_type: Option<&str>,
        headers: &[(String, String)],
    ) -> Answer {
        let mut request = self.http.post(self.token_url()).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response.text().await.unwrap();
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            raw,
            body,
        }
    }

    /// The audit events emitted since the last call.
    pub(crate) fn take_audit(&self) -> Vec<Value> {
        let events: Vec<Value> = self
            .logs
            .json()
            .into_iter()
            .filter(|e| e["target"] == AUDIT_TARGET)
            .collect();
        let mut seen = self.audit_seen.lock().unwrap();
        let new = events[*seen..].to_vec();
        *seen = events.len();
        new
    }

    /// Exactly one audit event since the last call, and it is this denial.
    pub(crate) fn expect_denied(&self, reason: &str) {
        let events = self.take_audit();
        assert_eq!(events.len(), 1, "{events:#?}");
        let fields = &events[0]["fields"];
        assert_eq!(fields["decision"], "denied", "{fields}");
        assert_eq!(fields["reason"], reason, "{fields}");
    }

    /// Exactly one audit event since the last call, and it is an issuance.
    pub(crate) fn expect_issued(&self) -> Value {
        let events = self.take_audit();
        assert_eq!(events.len(), 1, "{events:#?}");
        assert_eq!(events[0]["fields"]["decision"], "issued");
        events[0]["fields"].clone()
    }

    /// The refusal: status, code, no token, one denial audit event with `reason`.
    pub(crate) async fn refused(
        &self,
        form: &Form,
        status: u16,
        code: &str,
        reason: &str,
    ) -> Answer {
        let answer = self.post(form).await;
        answer.assert_error(status, code);
        self.expect_denied(reason);
        answer
    }

    pub(crate) fn validator(&self, audience: &str) -> IdJagValidator {
        self.idp.id_jag_validator(Audience::new(audience).unwrap())
    }

    /// A live refresh token of alice for `client` (alice is set up in the store first).
    pub(crate) fn alice_refresh_token(&self, client: &str) -> RefreshToken {
        self.refresh
            .set_user(self.users.user("alice").unwrap().principal());
        self.refresh.issue(RefreshTokenRecord::new(
            id(client),
            Subject::new("alice").unwrap(),
            NumericDate::from_unix(NOW + 3600).unwrap(),
        ))
    }

    /// A private_key_jwt assertion of the jwt agent.
    pub(crate) fn client_assertion(&self, aud: Value, jti: &str) -> String {
        let claims = serde_json::json!({
            "iss": JWT_AGENT, "sub": JWT_AGENT, "aud": aud, "jti": jti,
            "iat": self.clock.now_unix(), "exp": self.clock.now_unix() + 60,
        });
        self.jwt_agent_key
            .sign_jwt(None, &claims)
            .unwrap()
            .secret()
            .to_owned()
    }
}
