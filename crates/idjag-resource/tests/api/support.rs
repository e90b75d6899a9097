//! Test fixtures: a resource AS on 127.0.0.1:0, an IdP that signs ID-JAGs, an audit capture.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use idjag_core::crypto::{PublicKeyMaterial, SignatureSigner, default_backend};
use idjag_core::server::{InMemoryReplayCache, RegisteredClient, StaticClientRegistry};
use idjag_core::*;
use idjag_resource::audit::AUDIT_TARGET;
use idjag_resource::{
    RegisteredResource, ResourceAuthorizationServer, ResourceAuthorizationServerBuilder,
    TrustedIssuer,
};
use serde_json::{Map, Value, json};

pub(crate) use idjag_test_support::clock::NOW;
pub(crate) const IDP: &str = "https://acme.idp.example";
pub(crate) const RESOURCE: &str = "https://mcp.chat.example/mcp";
pub(crate) const RESOURCE_B: &str = "https://files.chat.example/mcp";
pub(crate) const CLIENT: &str = "chat-agent";
pub(crate) const SECRET: &str = "s3cr3t:value-9f2c";
pub(crate) const OTHER_CLIENT: &str = "other-agent";
pub(crate) const OTHER_SECRET: &str = "other-secret-77ab";
pub(crate) const JWT_CLIENT: &str = "jwt-agent";
pub(crate) const PUBLIC_CLIENT: &str = "public-agent";
pub(crate) const POLICY_SCOPES: &str = "chat.read chat.history chat.write";
pub(crate) const IDJAG_SCOPES: &str = "chat.read chat.history";

// ---------------------------------------------------------------------------------------------
// Audit capture: idjag-test-support's process-wide capture; each harness filters its own
// events by its issuer (every harness listens on its own port).

pub(crate) use idjag_test_support::logs::{Event as Captured, install as install_capture};

/// Every captured event, rendered.
pub(crate) fn all_captured_text() -> String {
    idjag_test_support::logs::text()
}

/// The audit events of every server that had the address `issuer`, in order.
fn audit_events(issuer: &str) -> Vec<Captured> {
    idjag_test_support::logs::events()
        .into_iter()
        .filter(|e| {
            e.target == AUDIT_TARGET && e.fields.get("server").map(String::as_str) == Some(issuer)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Keys and tokens.

pub(crate) use idjag_test_support::forge::{b64, hmac_sha256};

/// A signer that counts signatures, to prove no token was minted.
#[derive(Debug)]
pub(crate) struct CountingSigner {
    key: SigningKey,
    count: Arc<AtomicUsize>,
}

impl SignatureSigner for CountingSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.key.sign(message)
    }
    fn public_key(&self) -> PublicKeyMaterial {
        self.key.public_material().clone()
    }
}

pub(crate) fn counting_key(count: Arc<AtomicUsize>) -> SigningKey {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    SigningKey::from_signer(
        Algorithm::Es256,
        Some(Kid::new("as-key-1").unwrap()),
        Arc::new(CountingSigner { key, count }),
        default_backend(),
    )
    .unwrap()
}

/// An IdP that signs ID-JAGs for one resource AS.
#[derive(Debug, Clone)]
pub(crate) struct Idp {
    pub(crate) issuer: String,
    pub(crate) key: SigningKey,
    pub(crate) audience: String,
}

fn next_jti() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("jti-{}", N.fetch_add(1, Ordering::SeqCst))
}

impl Idp {
    pub(crate) fn new(issuer: &str, kid: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            key: SigningKey::generate(Algorithm::Es256)
                .unwrap()
                .with_kid(Kid::new(kid).unwrap()),
            audience: audience.to_owned(),
        }
    }

    pub(crate) fn keys(&self) -> Arc<KeySet> {
        Arc::new(KeySet::new([self.key.verifying_key().unwrap()]).unwrap())
    }

    pub(crate) fn header(&self) -> Value {
        json!({"alg": self.key.alg().as_str(), "typ": wire::TYP_ID_JAG, "kid": self.key.kid().unwrap().as_str()})
    }

    /// The default claims: a valid ID-JAG for `CLIENT` at `NOW`.
    pub(crate) fn claims(&self) -> Map<String, Value> {
        json!({
            "iss": self.issuer,
            "sub": "alice@acme",
            "aud": self.audience,
            "client_id": CLIENT,
            "jti": next_jti(),
            "iat": NOW,
            "exp": NOW + 300,
            "resource": RESOURCE,
            "scope": IDJAG_SCOPES,
        })
        .as_object()
        .unwrap()
        .clone()
    }

    /// Signs raw header and payload bytes.
    pub(crate) fn jws_raw(&self, header: &[u8], payload: &[u8]) -> String {
        idjag_test_support::forge::sign_raw(&self.key, header, payload)
    }

    pub(crate) fn jws(&self, header: &Value, claims: &Value) -> String {
        self.jws_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// A valid ID-JAG.
    pub(crate) fn id_jag(&self) -> String {
        self.with(|_| {})
    }

    /// An ID-JAG with modified claims.
    pub(crate) fn with(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        self.jws(&self.header(), &Value::Object(claims))
    }

    /// The default claims with some set (a `Null` value removes the claim).
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

    /// An ID-JAG with some claims set (a `Null` value removes the claim).
    pub(crate) fn set(&self, changes: &[(&str, Value)]) -> String {
        self.jws(&self.header(), &Value::Object(self.claims_with(changes)))
    }

    /// An ID-JAG without the claim `name`.
    pub(crate) fn without(&self, name: &str) -> String {
        self.set(&[(name, Value::Null)])
    }

    /// An ID-JAG with a modified header.
    pub(crate) fn with_header(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut header = self.header().as_object().unwrap().clone();
        edit(&mut header);
        self.jws(&Value::Object(header), &Value::Object(self.claims()))
    }
}

// ---------------------------------------------------------------------------------------------
// The harness.

type BuilderEdit = Box<
    dyn FnOnce(ResourceAuthorizationServerBuilder) -> ResourceAuthorizationServerBuilder + Send,
>;
type TrustEdit = Box<dyn FnOnce(TrustedIssuer) -> TrustedIssuer + Send>;

/// How to set a harness up, beyond the defaults.
pub(crate) struct Setup {
    pub(crate) builder: BuilderEdit,
    pub(crate) trust: TrustEdit,
    pub(crate) idp_keys: Option<Arc<dyn KeySource>>,
    pub(crate) clock: TestClock,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            builder: Box::new(|b| b),
            trust: Box::new(|t| t),
            idp_keys: None,
            clock: TestClock::at_unix(NOW),
        }
    }
}

impl Setup {
    pub(crate) fn builder(
        edit: impl FnOnce(ResourceAuthorizationServerBuilder) -> ResourceAuthorizationServerBuilder
        + Send
        + 'static,
    ) -> Self {
        Self {
            builder: Box::new(edit),
            ..Self::default()
        }
    }

    pub(crate) fn trust(
        edit: impl FnOnce(TrustedIssuer) -> TrustedIssuer + Send + 'static,
    ) -> Self {
        Self {
            trust: Box::new(edit),
            ..Self::default()
        }
    }
}

/// The JWT client's signing key (private_key_jwt).
pub(crate) fn jwt_client_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid(Kid::new("client-key").unwrap())
    })
}

pub(crate) fn registry() -> StaticClientRegistry {
    let jwt_keys = KeySet::new([jwt_client_key().verifying_key().unwrap()]).unwrap();
    StaticClientRegistry::new()
        .with(RegisteredClient::with_secret(
            ClientId::new(CLIENT).unwrap(),
            &ClientSecret::new(SECRET),
        ))
        .with(RegisteredClient::with_secret(
            ClientId::new(OTHER_CLIENT).unwrap(),
            &ClientSecret::new(OTHER_SECRET),
        ))
        .with(RegisteredClient::with_private_key_jwt(
            ClientId::new(JWT_CLIENT).unwrap(),
            Arc::new(jwt_keys),
        ))
        .with(RegisteredClient::public(
            ClientId::new(PUBLIC_CLIENT).unwrap(),
        ))
}

/// What a request got back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
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

    /// The access token of a success.
    pub(crate) fn access_token(&self) -> &str {
        self.json["access_token"].as_str().expect("an access token")
    }
}

pub(crate) struct Harness {
    pub(crate) base: String,
    pub(crate) server: ResourceAuthorizationServer,
    pub(crate) replay: Arc<InMemoryReplayCache>,
    pub(crate) signatures: Arc<AtomicUsize>,
    pub(crate) idp: Idp,
    pub(crate) clock: TestClock,
    pub(crate) http: reqwest::Client,
    committed: Mutex<Committed>,
    audit_base: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Committed {
    replay_entries: usize,
    signatures: usize,
    audit_events: usize,
}

pub(crate) use idjag_test_support::form::{basic, body as form};

/// Sends a request with extra headers and reads the whole answer.
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

pub(crate) use idjag_test_support::net::{loopback as bind, serve};

impl Harness {
    pub(crate) async fn start(setup: Setup) -> Self {
        install_capture();
        let (listener, base) = bind().await;
        let clock = setup.clock;
        let idp = Idp::new(IDP, "idp-key-1", &base);
        let keys: Arc<dyn KeySource> = setup.idp_keys.unwrap_or_else(|| idp.keys());
        let signatures = Arc::new(AtomicUsize::new(0));
        let replay = Arc::new(InMemoryReplayCache::new(10_000, clock.shared()));
        let trust = (setup.trust)(TrustedIssuer::new(Issuer::new(IDP).unwrap(), keys));
        let builder = ResourceAuthorizationServer::builder(
            Issuer::new(base.clone()).unwrap(),
            counting_key(signatures.clone()),
        )
        .trust(trust)
        .resource(
            RegisteredResource::new(Resource::new(RESOURCE).unwrap())
                .with_scopes(ScopeSet::parse(POLICY_SCOPES).unwrap()),
        )
        .clients(registry())
        .clock(clock.shared())
        .replay_cache(replay.clone());
        let server = (setup.builder)(builder).build().unwrap();
        serve(listener, server.router());
        let audit_base = audit_events(&base).len();
        Self {
            base,
            server,
            replay,
            signatures,
            idp,
            clock,
            http: reqwest::Client::new(),
            committed: Mutex::new(Committed::default()),
            audit_base,
        }
    }

    pub(crate) fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    /// POSTs a form to the token endpoint with extra headers.
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

    /// Redeems every token at once, as `CLIENT`.
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

    /// Redeems `assertion` as `CLIENT` with client_secret_basic.
    pub(crate) async fn redeem(&self, assertion: &str) -> Reply {
        self.redeem_with(assertion, &[]).await
    }

    /// Redeems with extra form parameters.
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

    fn state(&self) -> Committed {
        Committed {
            replay_entries: self.replay.len(),
            signatures: self.signatures.load(Ordering::SeqCst),
            audit_events: self.audit().len(),
        }
    }

    /// This harness's audit events. A port can be reused by a later test once a test's
    /// runtime is gone, so events before this harness started are skipped.
    pub(crate) fn audit(&self) -> Vec<Captured> {
        audit_events(&self.base).split_off(self.audit_base)
    }

    /// The next audit event of this server, which must be the only new one.
    fn one_new_audit_event(&self, before: usize) -> Captured {
        let events = self.audit();
        assert_eq!(
            events.len(),
            before + 1,
            "exactly one audit event per decision: {:?}",
            &events[before.min(events.len())..]
        );
        events.last().unwrap().clone()
    }

    /// Asserts a success: 200, a Bearer token, no refresh token, no-store, one token minted,
    /// one replay entry (in single-use mode), one `granted` audit event.
    pub(crate) fn granted(&self, reply: &Reply) -> AccessTokenClaims {
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("pragma"), Some("no-cache"));
        assert_eq!(reply.json["token_type"], "Bearer");
        assert!(
            reply.json.get("refresh_token").is_none(),
            "J04: no refresh token"
        );
        let mut committed = self.committed.lock().unwrap();
        let event = self.one_new_audit_event(committed.audit_events);
        assert_eq!(event.level, tracing::Level::INFO);
        assert_eq!(event.fields["decision"], "granted");
        assert_eq!(event.fields["reason"], "ok");
        let now = self.state();
        assert_eq!(now.signatures, committed.signatures + 1, "one token signed");
        assert!(now.replay_entries <= committed.replay_entries + 1);
        *committed = now;
        drop(committed);
        self.decode(reply.access_token())
    }

    /// Asserts a refusal: status, code, generic description, JSON with no-store, nothing
    /// minted, no replay entry written, exactly one `denied` audit event with `reason`.
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
        let code = OAuthErrorCode::from_wire(code).expect("a known code");
        assert_eq!(
            body["error_description"],
            idjag_resource::generic_description(code),
            "J03: generic description"
        );
        let mut committed = self.committed.lock().unwrap();
        let event = self.one_new_audit_event(committed.audit_events);
        assert_eq!(event.level, tracing::Level::WARN);
        assert_eq!(event.fields["decision"], "denied");
        assert_eq!(event.fields["reason"], reason, "audit reason");
        let now = self.state();
        if matches!(reason, "replayed" | "replay_store_unavailable") {
            // The commit to the replay store runs after signing: when it refuses, the token
            // is thrown away, never released.
            assert!(now.signatures <= committed.signatures + 1);
        } else {
            assert_eq!(now.signatures, committed.signatures, "no token minted");
        }
        assert_eq!(
            now.replay_entries, committed.replay_entries,
            "no replay entry written"
        );
        *committed = now;
    }

    /// Redeems `token` and asserts an `invalid_grant` refusal for `reason`.
    pub(crate) async fn invalid_grant(&self, token: &str, reason: &str) {
        let reply = self.redeem(token).await;
        self.refused(&reply, 400, "invalid_grant", reason);
    }

    /// Redeems `token` and asserts a success.
    pub(crate) async fn grants(&self, token: &str) -> AccessTokenClaims {
        let reply = self.redeem(token).await;
        self.granted(&reply)
    }

    /// Decodes an access token with this server's keys (any audience it serves).
    pub(crate) fn decode(&self, token: &str) -> AccessTokenClaims {
        let validator = AccessTokenValidator::new(
            TrustedIssuers::new().with(
                Issuer::new(self.base.clone()).unwrap(),
                Arc::new(self.server.verification_keys()),
            ),
            Audience::new(RESOURCE).unwrap(),
            AlgorithmSet::all(),
            self.clock.shared(),
        )
        .with_audience_alias(Audience::new(RESOURCE_B).unwrap());
        validator
            .validate(token)
            .expect("a valid access token")
            .into_claims()
    }

    /// Takes the audit events seen so far as committed (after bulk requests).
    pub(crate) fn sync_audit(&self) {
        *self.committed.lock().unwrap() = self.state();
    }
}
