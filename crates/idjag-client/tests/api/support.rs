//! A loopback world: a mock IdP and a mock resource AS (wiremock), an IdP signing key, a test
//! clock, and helpers to mint tokens and read requests back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use idjag_client::dpop::DpopKey;
use idjag_client::*;
use idjag_core::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub use idjag_test_support::clock::NOW as T0;
pub use idjag_test_support::forge::{with, without};
pub const RESOURCE: &str = "https://mcp.chat.example/mcp";
pub const IDP_CLIENT: &str = "idp-client";
pub const IDP_SECRET: &str = "idp-s3cret";
pub const RAS_CLIENT: &str = "gw client";
pub const RAS_SECRET: &str = "s3:cr3t";
pub const ID_TOKEN_EXP: i64 = T0 + 3600;

pub struct World {
    pub idp: MockServer,
    pub ras: MockServer,
    pub clock: TestClock,
    pub idp_key: SigningKey,
    /// The user's ID token (ES256 signatures are randomised, so it is minted once).
    pub id_token: IdToken,
}

impl World {
    pub async fn new() -> Self {
        let idp = MockServer::start().await;
        let idp_key = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_thumbprint_kid();
        let id_token = mint_id_token(&idp_key, &idp.uri(), ID_TOKEN_EXP);
        Self {
            idp,
            ras: MockServer::start().await,
            clock: TestClock::at_unix(T0),
            idp_key,
            id_token,
        }
    }

    pub fn idp_issuer(&self) -> Issuer {
        Issuer::new(self.idp.uri()).unwrap()
    }

    pub fn ras_issuer(&self) -> Issuer {
        Issuer::new(self.ras.uri()).unwrap()
    }

    pub fn idp_token_endpoint(&self) -> String {
        format!("{}/token", self.idp.uri())
    }

    pub fn ras_token_endpoint(&self) -> String {
        format!("{}/token", self.ras.uri())
    }

    pub fn idp_credentials() -> ClientCredentials {
        ClientCredentials::secret_basic(
            ClientId::new(IDP_CLIENT).unwrap(),
            ClientSecret::new(IDP_SECRET),
        )
        .unwrap()
    }

    pub fn ras_credentials() -> ClientCredentials {
        ClientCredentials::secret_basic(
            ClientId::new(RAS_CLIENT).unwrap(),
            ClientSecret::new(RAS_SECRET),
        )
        .unwrap()
    }

    pub fn identity_provider(&self, credentials: ClientCredentials) -> IdentityProvider {
        IdentityProvider::new(self.idp_issuer(), &self.idp_token_endpoint(), credentials).unwrap()
    }

    pub fn client_with(&self, idp_credentials: ClientCredentials) -> IdJagClient {
        IdJagClient::new(self.identity_provider(idp_credentials))
            .unwrap()
            .with_clock(self.clock.shared())
    }

    pub fn client(&self) -> IdJagClient {
        self.client_with(Self::idp_credentials())
    }

    pub fn resource_as_with(&self, credentials: ClientCredentials) -> ResourceAsTarget {
        ResourceAsTarget::new(self.ras_issuer(), &self.ras_token_endpoint(), credentials).unwrap()
    }

    pub fn request_with(&self, credentials: ClientCredentials) -> AccessRequest {
        AccessRequest::new(self.resource_as_with(credentials))
            .with_resource(Resource::new(RESOURCE).unwrap())
            .with_scope(ScopeSet::parse("chat.read chat.history").unwrap())
    }

    pub fn request(&self) -> AccessRequest {
        self.request_with(Self::ras_credentials())
    }

    /// An ID token from the IdP for our IdP client, valid for an hour from T0.
    pub fn id_token_until(&self, exp: i64) -> IdToken {
        mint_id_token(&self.idp_key, &self.idp.uri(), exp)
    }

    pub fn subject(&self) -> UserToken {
        UserToken::id_token(self.id_token.clone())
    }

    /// Valid ID-JAG claims for the default request, issued now by the test clock.
    pub fn claims(&self) -> IdJagClaims {
        claims_at(
            &self.idp.uri(),
            &self.ras.uri(),
            self.clock.now_unix(),
            "jti-1",
        )
    }

    pub fn sign(&self, claims: &impl serde::Serialize) -> String {
        self.sign_typ(Some(wire::TYP_ID_JAG), claims)
    }

    pub fn sign_typ(&self, typ: Option<&str>, claims: &impl serde::Serialize) -> String {
        self.idp_key
            .sign_jwt(typ, claims)
            .unwrap()
            .secret()
            .to_owned()
    }

    pub fn id_jag(&self) -> String {
        self.sign(&self.claims())
    }

    pub async fn mount_idp(&self, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(response)
            .mount(&self.idp)
            .await;
    }

    pub async fn mount_ras(&self, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(response)
            .mount(&self.ras)
            .await;
    }

    /// A good IdP and a good resource AS.
    pub async fn mount_happy_path(&self) {
        self.mount_idp(ok(exchange_body(&self.id_jag()))).await;
        self.mount_ras(ok(redeem_body("at-1"))).await;
    }

    /// An IdP that mints a fresh ID-JAG (`jti-N`, 300 s) at the test clock's current time.
    pub async fn mount_minting_idp(&self) -> Arc<AtomicU64> {
        let count = Arc::new(AtomicU64::new(0));
        let (counter, idp, ras, clock, key) = (
            count.clone(),
            self.idp.uri(),
            self.ras.uri(),
            self.clock.clone(),
            self.idp_key.clone(),
        );
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(move |_: &wiremock::Request| {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let claims = claims_at(&idp, &ras, clock.now_unix(), &format!("jti-{n}"));
                let jag = key.sign_jwt(Some(wire::TYP_ID_JAG), &claims).unwrap();
                ok(exchange_body(jag.secret()))
            })
            .mount(&self.idp)
            .await;
        count
    }

    /// A resource AS answering `at-1`, `at-2`, ... with `expires_in` 600.
    pub async fn mount_counting_ras(&self) -> Arc<AtomicU64> {
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(move |_: &wiremock::Request| {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                ok(json!({"access_token": format!("at-{n}"), "token_type": "Bearer", "expires_in": 600}))
            })
            .mount(&self.ras)
            .await;
        count
    }

    pub async fn idp_requests(&self) -> Vec<wiremock::Request> {
        self.idp.received_requests().await.unwrap_or_default()
    }

    pub async fn ras_requests(&self) -> Vec<wiremock::Request> {
        self.ras.received_requests().await.unwrap_or_default()
    }
}

pub fn mint_id_token(key: &SigningKey, idp: &str, exp: i64) -> IdToken {
    let claims = json!({
        "iss": idp, "sub": "alice", "aud": IDP_CLIENT,
        "iat": exp - 3600, "exp": exp,
    });
    key.sign_jwt(Some("JWT"), &claims).unwrap().into_id_token()
}

pub fn claims_at(idp: &str, ras: &str, now: i64, jti: &str) -> IdJagClaims {
    let mut claims = IdJagClaims::new(
        Issuer::new(idp).unwrap(),
        idjag_core::Subject::new("alice").unwrap(),
        Audience::new(ras).unwrap(),
        ClientId::new(RAS_CLIENT).unwrap(),
        Jti::new(jti).unwrap(),
        NumericDate::from_unix(now).unwrap(),
        NumericDate::from_unix(now + 300).unwrap(),
    );
    claims.resource = Some(vec![Resource::new(RESOURCE).unwrap()]);
    claims.scope = Some(ScopeSet::parse("chat.read chat.history").unwrap());
    claims
}

pub fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("cache-control", "no-store")
        .set_body_json(body)
}

pub fn oauth_error(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

pub fn exchange_body(id_jag: &str) -> Value {
    json!({
        "issued_token_type": wire::TOKEN_TYPE_ID_JAG,
        "access_token": id_jag,
        "token_type": "N_A",
        "scope": "chat.history chat.read",
        "expires_in": 300,
    })
}

pub fn redeem_body(token: &str) -> Value {
    json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": "chat.read"})
}

/// The form fields of a request, in order.
pub fn form(request: &wiremock::Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

pub fn header<'a>(request: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).map(|v| v.to_str().unwrap())
}

/// A JWS with a hand-made header (for `alg: none` and friends).
pub fn raw_jws(header: &Value, claims: &impl serde::Serialize, signature: &str) -> String {
    let b64 = idjag_test_support::forge::b64;
    format!(
        "{}.{}.{signature}",
        b64(header.to_string()),
        b64(serde_json::to_string(claims).unwrap())
    )
}

/// A fresh ES256 DPoP key on the world's clock.
pub fn dpop_key(w: &World) -> DpopKey {
    DpopKey::new(
        SigningKey::generate(Algorithm::Es256).unwrap(),
        w.clock.shared(),
    )
}

/// Secrets that must never show up in `Debug` output or logs.
pub const SECRETS: [&str; 5] = [
    IDP_SECRET,
    RAS_SECRET,
    "at-s3cret-1",
    "rt-s3cret",
    "s3:cr3t",
];

/// Fails when `text` holds a known secret or one of `extra`.
pub fn assert_no_secret(text: &str, extra: &[&str]) {
    let secrets: Vec<&str> = SECRETS.iter().chain(extra).copied().collect();
    idjag_test_support::logs::assert_no_secret(text, &secrets);
}
