//! Bridging to MCP servers that do not speak ID-JAG: the credential modes besides
//! [`IdJagCredential`](crate::upstream::IdJagCredential), chosen per upstream in the
//! configuration (`[upstream.credential] mode`). Each runs after the same inbound
//! authentication and tool-level authorization, and only for its own upstream: a secret is
//! read once at start-up (a missing one is a configuration error from `check-config` and
//! `serve`), kept in a redacted type, and set on that upstream's requests only.
//!
//! | mode | what the upstream gets |
//! |---|---|
//! | `client_credentials` | `Authorization: Bearer` with the gateway's own token (RFC 6749 §4.4), cached until 30 s before expiry, one fetch for concurrent callers; client authentication `client_secret_basic`, `client_secret_post` or `private_key_jwt` through `idjag-client` |
//! | `static` | `{header}: {scheme} {secret}`, the secret from `secret_env` or `secret_file` |
//! | `header_template` | headers rendered from a template over the caller's identity and the secret |
//! | `passthrough` | the caller's inbound IdP token (explicit opt-in; a warning at start-up) |
//!
//! ## Header templates
//!
//! A template is text with placeholders: `{user}` (`sub`), `{issuer}`, `{agent}`, `{teams}`
//! (comma-separated), `{secret}`; `{{` and `}}` are literal braces. Nothing else is
//! recognised (an unknown placeholder is a configuration error) and nothing is evaluated. A
//! rendered value with a control character is refused (no header injection), so is a header
//! the gateway owns (hop-by-hop, framing, MCP, `x-request-id`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use idjag_client::ClientCredentials;
use idjag_client::auth::{ClientAuth, basic_authorization};
use idjag_client::http::{HttpRequest, SharedHttpClient};
use idjag_core::{
    BoxFuture, ClientSecret, Issuer, OAuthErrorResponse, SharedClock, TokenResponse, wire,
};
use url::Url;

use crate::inbound::{Caller, InboundToken};
use crate::upstream::{CacheCounters, Credential, CredentialError, UpstreamCredential};

/// Headers a bridging mode may not set besides the hop-by-hop ones: the gateway owns them.
const OWNED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "accept",
    "last-event-id",
    crate::headers::REQUEST_ID,
];

/// Checks a header name a bridging mode sets.
pub fn check_bridge_header(name: &str) -> Result<HeaderName, String> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    let lower = header.as_str();
    if OWNED.contains(&lower) || crate::headers::is_hop_by_hop(lower) || lower.starts_with("mcp-") {
        return Err(format!("{name} is a header the gateway owns"));
    }
    Ok(header)
}

/// A mode without anything to refresh after a `401`: the same credential would be refused
/// again, so the call fails at once.
/// The caller's inbound token, as a string (passthrough only).
fn inbound_token(caller: &Caller) -> &str {
    match &caller.token {
        InboundToken::IdToken(token) => token.secret(),
        InboundToken::AccessToken(token) => token.secret(),
    }
}

/// A `static` credential: one header, fixed at start-up.
pub struct StaticCredential {
    credential: Credential,
}

impl fmt::Debug for StaticCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticCredential([redacted])")
    }
}

impl StaticCredential {
    /// `header: {scheme} {secret}`; the scheme defaults to `Bearer` for `authorization`.
    pub fn new(header: &str, scheme: Option<&str>, secret: &ClientSecret) -> Result<Self, String> {
        let name = check_bridge_header(header)?;
        let scheme = scheme.or((name == AUTHORIZATION).then_some("Bearer"));
        let text = match scheme {
            Some(scheme) => format!("{scheme} {}", secret.secret()),
            None => secret.secret().to_owned(),
        };
        let value = HeaderValue::try_from(text)
            .map_err(|_| "the secret is not a valid header value".to_owned())?;
        Ok(Self {
            credential: Credential::from_headers(vec![(name, value)]),
        })
    }
}

impl UpstreamCredential for StaticCredential {
    fn mode(&self) -> &'static str {
        "static"
    }

    fn credential<'a>(
        &'a self,
        _caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async move { Ok(self.credential.clone()) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    User,
    Issuer,
    Agent,
    Teams,
    Secret,
}

/// Parsed header templates. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct HeaderTemplates {
    headers: Vec<(HeaderName, Vec<Part>)>,
}

impl HeaderTemplates {
    /// Parses `name → template`.
    pub fn parse(templates: &std::collections::BTreeMap<String, String>) -> Result<Self, String> {
        if templates.is_empty() {
            return Err("at least one header".to_owned());
        }
        let mut headers = Vec::new();
        for (name, template) in templates {
            headers.push((check_bridge_header(name)?, parse_template(template)?));
        }
        Ok(Self { headers })
    }

    /// Whether a template uses `{secret}`.
    pub fn uses_secret(&self) -> bool {
        self.headers
            .iter()
            .any(|(_, parts)| parts.contains(&Part::Secret))
    }

    fn render(
        &self,
        caller: &Caller,
        secret: Option<&ClientSecret>,
    ) -> Result<Credential, CredentialError> {
        let identity = &caller.identity;
        let mut out = Vec::with_capacity(self.headers.len());
        for (name, parts) in &self.headers {
            let mut text = String::new();
            for part in parts {
                match part {
                    Part::Text(t) => text.push_str(t),
                    Part::User => text.push_str(identity.user.as_str()),
                    Part::Issuer => text.push_str(identity.issuer.as_str()),
                    Part::Agent => text.push_str(identity.agent.as_deref().unwrap_or("")),
                    Part::Teams => text.push_str(&identity.teams.join(",")),
                    Part::Secret => text.push_str(secret.map_or("", ClientSecret::secret)),
                }
            }
            let value =
                HeaderValue::try_from(text).map_err(|_| CredentialError::InvalidTemplateValue)?;
            out.push((name.clone(), value));
        }
        Ok(Credential::from_headers(out))
    }
}

fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let part = match name.as_str() {
                    "user" => Part::User,
                    "issuer" => Part::Issuer,
                    "agent" => Part::Agent,
                    "teams" => Part::Teams,
                    "secret" => Part::Secret,
                    other => return Err(format!("unknown placeholder {{{other}}}")),
                };
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
            '}' => return Err("a lone } (write }} for a brace)".to_owned()),
            c if c.is_control() => return Err("a control character".to_owned()),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

/// A `header_template` credential.
pub struct TemplateCredential {
    templates: HeaderTemplates,
    secret: Option<ClientSecret>,
}

impl fmt::Debug for TemplateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateCredential")
            .field("headers", &self.templates.headers.len())
            .field("secret", &self.secret)
            .finish()
    }
}

impl TemplateCredential {
    /// Templates and the secret they may use.
    pub fn new(templates: HeaderTemplates, secret: Option<ClientSecret>) -> Self {
        Self { templates, secret }
    }
}

impl UpstreamCredential for TemplateCredential {
    fn mode(&self) -> &'static str {
        "header_template"
    }

    fn credential<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async move { self.templates.render(caller, self.secret.as_ref()) })
    }
}

/// `passthrough`: the inbound token, as is.
#[derive(Debug, Default)]
pub struct PassthroughCredential;

impl UpstreamCredential for PassthroughCredential {
    fn mode(&self) -> &'static str {
        "passthrough"
    }

    fn credential<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async move {
            HeaderValue::try_from(format!("Bearer {}", inbound_token(caller)))
                .map(|value| Credential::new(value, None))
                .map_err(|_| CredentialError::InvalidTemplateValue)
        })
    }
}

/// How long a client-credentials token is used when the server gives no `expires_in`.
const DEFAULT_LIFETIME: i64 = 60;
/// Margin before expiry at which a cached token is renewed.
const RENEW_MARGIN: i64 = 30;

#[derive(Clone)]
struct Cached {
    credential: Credential,
    value: HeaderValue,
    use_until: i64,
}

/// What one client-credentials upstream asks for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientCredentialsTarget {
    /// The authorization server's issuer (audience of client assertions).
    pub authorization_server: Issuer,
    /// Its token endpoint.
    pub token_endpoint: Url,
    /// The scope to ask for (space-separated), if any.
    pub scope: Option<String>,
    /// An RFC 8707 resource, if any.
    pub resource: Option<String>,
    /// The gateway's registration there.
    pub credentials: ClientCredentials,
}

/// `client_credentials`: the gateway's own token. See the [module docs](self).
pub struct ClientCredentialsGrant {
    target: ClientCredentialsTarget,
    http: SharedHttpClient,
    clock: SharedClock,
    current: RwLock<Option<Cached>>,
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    counters: CacheCounters,
}

impl fmt::Debug for ClientCredentialsGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsGrant")
            .field("target", &self.target)
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsGrant {
    /// The grant for `target` through `http`.
    pub fn new(
        target: ClientCredentialsTarget,
        http: SharedHttpClient,
        clock: SharedClock,
    ) -> Self {
        Self {
            target,
            http,
            clock,
            current: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            counters: CacheCounters::default(),
        }
    }

    /// Token requests sent so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn cached(&self, rejected: Option<&HeaderValue>) -> Option<Credential> {
        let now = self.clock.now_unix();
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|c| now < c.use_until && rejected != Some(&c.value))
            .map(|c| c.credential.clone())
    }

    async fn get(&self, rejected: Option<&HeaderValue>) -> Result<Credential, CredentialError> {
        if let Some(credential) = self.cached(rejected) {
            self.counters.hit();
            return Ok(credential);
        }
        self.counters.miss();
        let _single_flight = self.fetching.lock().await;
        if let Some(credential) = self.cached(rejected) {
            return Ok(credential);
        }
        let fetched = self.fetch().await?;
        let credential = fetched.credential.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(fetched);
        Ok(credential)
    }

    async fn request(&self) -> Result<HttpRequest, CredentialError> {
        let unavailable = || CredentialError::Unavailable {
            stage: "authorization_server",
        };
        let t = &self.target;
        let client_id = t.credentials.client_id();
        // The assertion first: the form serializer is not `Send`.
        let assertion = match t.credentials.auth() {
            ClientAuth::Assertion(provider) => Some(
                provider
                    .create_assertion(client_id, &t.authorization_server)
                    .await
                    .map_err(|_| unavailable())?,
            ),
            _ => None,
        };
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", wire::GRANT_TYPE_CLIENT_CREDENTIALS);
        if let Some(scope) = &t.scope {
            form.append_pair("scope", scope);
        }
        if let Some(resource) = &t.resource {
            form.append_pair("resource", resource);
        }
        let mut builder = http::Request::builder()
            .method(Method::POST)
            .uri(t.token_endpoint.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        match (t.credentials.auth(), &assertion) {
            (ClientAuth::SecretBasic(secret), _) => {
                let value = basic_authorization(client_id, secret).map_err(|_| unavailable())?;
                builder = builder.header(AUTHORIZATION, value);
            }
            (ClientAuth::SecretPost(secret), _) => {
                form.append_pair("client_id", client_id.as_str());
                form.append_pair("client_secret", secret.secret());
            }
            (_, Some(assertion)) => {
                form.append_pair("client_id", client_id.as_str());
                form.append_pair(
                    "client_assertion_type",
                    wire::CLIENT_ASSERTION_TYPE_JWT_BEARER,
                );
                form.append_pair("client_assertion", assertion.secret());
            }
            _ => {
                form.append_pair("client_id", client_id.as_str());
            }
        }
        builder
            .body(form.finish().into_bytes())
            .map_err(|_| unavailable())
    }

    async fn fetch(&self) -> Result<Cached, CredentialError> {
        let unavailable = || CredentialError::Unavailable {
            stage: "authorization_server",
        };
        let request = self.request().await?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let response = self.http.execute(request).await.map_err(|e| {
            tracing::warn!(error = %e, "client credentials: token endpoint unreachable");
            unavailable()
        })?;
        if response.status() != StatusCode::OK {
            return Err(
                match serde_json::from_slice::<OAuthErrorResponse>(response.body()) {
                    Ok(error) => CredentialError::Refused {
                        stage: "authorization_server",
                        code: error.error.as_str().to_owned(),
                    },
                    Err(_) => unavailable(),
                },
            );
        }
        let token: TokenResponse =
            serde_json::from_slice(response.body()).map_err(|_| unavailable())?;
        if !token.token_type.eq_ignore_ascii_case("bearer") || token.access_token.is_empty() {
            return Err(unavailable());
        }
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.access_token.secret()))
            .map_err(|_| unavailable())?;
        value.set_sensitive(true);
        let lifetime = token.expires_in.map_or(DEFAULT_LIFETIME, |s| {
            i64::try_from(s).unwrap_or(i64::MAX / 2)
        });
        let margin = RENEW_MARGIN.min(lifetime / 2);
        Ok(Cached {
            credential: Credential::new(value.clone(), Some(token.access_token)),
            value,
            use_until: self.clock.now_unix().saturating_add(lifetime - margin),
        })
    }
}

impl UpstreamCredential for ClientCredentialsGrant {
    fn mode(&self) -> &'static str {
        "client_credentials"
    }

    fn credential<'a>(
        &'a self,
        _caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(self.get(None))
    }

    fn after_unauthorized<'a>(
        &'a self,
        _caller: &'a Caller,
        rejected: &'a Credential,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(self.get(rejected.authorization()))
    }

    fn cache_stats(&self) -> (u64, u64) {
        self.counters.get()
    }

    fn fetch_count(&self) -> Option<u64> {
        Some(self.fetches.load(Ordering::Relaxed))
    }
}

/// A shared HTTP client for token requests (`idjag-client`'s seam).
pub(crate) fn token_http() -> Result<SharedHttpClient, idjag_client::ClientError> {
    Ok(Arc::new(idjag_client::http::ReqwestHttpClient::new()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_placeholders_and_escapes_only() {
        assert_eq!(
            parse_template("u={user};{{x}}").unwrap(),
            [
                Part::Text("u=".into()),
                Part::User,
                Part::Text(";{x}".into())
            ]
        );
        for (template, error) in [
            ("{env:HOME}", "unknown placeholder {env:HOME}"),
            ("a}b", "a lone } (write }} for a brace)"),
            ("a\nb", "a control character"),
        ] {
            assert_eq!(parse_template(template).unwrap_err(), error);
        }
    }

    #[test]
    fn no_header_can_be_injected_through_a_claim() {
        use idjag_core::{Audience, IdTokenClaims, NumericDate, Subject};
        let templates = HeaderTemplates::parse(&std::collections::BTreeMap::from([(
            "x-user".to_owned(),
            "{user}".to_owned(),
        )]))
        .unwrap();
        let caller = |user: &str| {
            let claims = IdTokenClaims::new(
                Issuer::new("https://idp.example").unwrap(),
                Subject::new(user).unwrap(),
                Audience::new("gw").unwrap(),
                NumericDate::from_unix(1).unwrap(),
                NumericDate::from_unix(2).unwrap(),
            );
            Caller {
                identity: Arc::new(crate::identity::TeamMap::default().from_id_token(&claims)),
                token: InboundToken::IdToken(idjag_core::IdToken::new("t")),
                token_digest: [0; 32],
            }
        };
        let ok = templates.render(&caller("alice"), None).unwrap();
        assert_eq!(ok.headers()[0].1, "alice");
        assert!(ok.headers()[0].1.is_sensitive());
        // A CR/LF never reaches a template: verified identifiers refuse control characters,
        // and a value that could not be a header would be refused when rendered.
        assert!(Subject::new("alice\r\nx-admin: 1").is_err());
        assert!(HeaderValue::try_from("alice\r\nx-admin: 1".to_owned()).is_err());
    }

    #[test]
    fn owned_headers_cannot_be_set() {
        for name in [
            "host",
            "Content-Length",
            "mcp-session-id",
            "x-request-id",
            "te",
        ] {
            assert!(check_bridge_header(name).is_err(), "{name}");
        }
        assert!(check_bridge_header("x-api-key").is_ok());
        assert!(check_bridge_header("authorization").is_ok());
    }

    type Seen = Arc<std::sync::Mutex<Vec<HttpRequest>>>;

    fn grant(credentials: ClientCredentials, seen: Seen) -> ClientCredentialsGrant {
        let http = idjag_client::http::from_fn(move |request: HttpRequest| {
            seen.lock().unwrap().push(request);
            async {
                Ok(http::Response::builder()
                    .status(200)
                    .body(
                        br#"{"access_token":"cc-1","token_type":"bearer","expires_in":120}"#
                            .to_vec(),
                    )
                    .unwrap())
            }
        });
        ClientCredentialsGrant::new(
            ClientCredentialsTarget {
                authorization_server: Issuer::new("https://as.example").unwrap(),
                token_endpoint: Url::parse("https://as.example/token").unwrap(),
                scope: Some("a b".into()),
                resource: Some("https://api.example/mcp".into()),
                credentials,
            },
            Arc::new(http),
            idjag_core::TestClock::at_unix(1_000).shared(),
        )
    }

    fn form(request: &HttpRequest) -> Vec<(String, String)> {
        url::form_urlencoded::parse(request.body())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[tokio::test]
    async fn client_secret_post_sends_the_secret_in_the_form_and_caches_the_token() {
        let seen = Seen::default();
        let credentials = ClientCredentials::secret_post(
            idjag_core::ClientId::new("gw").unwrap(),
            ClientSecret::new("s3cret"),
        )
        .unwrap();
        let g = grant(credentials, seen.clone());
        let first = g.get(None).await.unwrap();
        let again = g.get(None).await.unwrap();
        assert_eq!(first.authorization().unwrap(), "Bearer cc-1");
        assert_eq!(again.authorization().unwrap(), "Bearer cc-1");
        let requests = seen.lock().unwrap();
        assert_eq!(requests.len(), 1, "cached");
        assert!(requests[0].headers().get(AUTHORIZATION).is_none());
        assert_eq!(
            form(&requests[0]),
            [
                ("grant_type", "client_credentials"),
                ("scope", "a b"),
                ("resource", "https://api.example/mcp"),
                ("client_id", "gw"),
                ("client_secret", "s3cret"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(g.cache_stats(), (1, 1));
    }

    #[tokio::test]
    async fn private_key_jwt_signs_an_assertion_for_the_authorization_server() {
        let key = idjag_core::SigningKey::generate(idjag_core::Algorithm::Es256)
            .unwrap()
            .with_thumbprint_kid();
        let verifying = key.verifying_key().unwrap();
        let clock = idjag_core::TestClock::at_unix(1_000).shared();
        let credentials = ClientCredentials::private_key_jwt(
            idjag_core::ClientId::new("gw").unwrap(),
            idjag_client::auth::PrivateKeyJwt::new(key, clock),
        );
        let seen = Seen::default();
        let g = grant(credentials, seen.clone());
        g.get(None).await.unwrap();
        let requests = seen.lock().unwrap();
        let fields = form(&requests[0]);
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).unwrap().1.clone();
        assert_eq!(get("client_id"), "gw");
        assert_eq!(
            get("client_assertion_type"),
            wire::CLIENT_ASSERTION_TYPE_JWT_BEARER
        );
        let assertion = get("client_assertion");
        let (signed, signature) = assertion.rsplit_once('.').unwrap();
        let signature = idjag_core::jose::base64url::decode(signature).unwrap();
        assert!(verifying.verify(signed.as_bytes(), &signature));
        let payload = signed.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&idjag_core::jose::base64url::decode(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], "gw");
        assert_eq!(claims["sub"], "gw");
        assert_eq!(claims["aud"], "https://as.example");
        assert!(requests[0].headers().get(AUTHORIZATION).is_none());
    }

    #[test]
    fn a_static_key_never_prints() {
        let key = StaticCredential::new("x-api-key", None, &ClientSecret::new("k-123")).unwrap();
        assert!(!format!("{key:?}").contains("k-123"));
        assert!(key.credential.headers()[0].1.is_sensitive());
    }
}
