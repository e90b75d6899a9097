//! `[authorization_server]`, planned: the signing and sealing keys read, lifetimes checked,
//! the pre-registered clients with their redirect URIs and secrets, the allow-list; and the
//! rules every redirect URI and host pattern follows, wherever it comes from (configuration,
//! RFC 7591 registration, Client ID Metadata Document).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use idjag_core::{Algorithm, ClientId, Issuer, ScopeSet, SigningKey};
use serde::Serialize;
use serde::ser::SerializeMap;
use url::Url;

use crate::config::{
    AuthorizationServerConfig, ConfigError, EgressSubject, RegistrationMode, invalid,
};
use crate::plan::environment::{Secret, SecretSource, inline, read_file};
use crate::plan::{Planner, check_url};

/// The longest redirect URI accepted.
pub const MAX_REDIRECT_URI_BYTES: usize = 512;
/// Most redirect URIs per client.
pub const MAX_REDIRECT_URIS: usize = 8;

/// The gateway's own authorization server.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AuthorizationServerPlan {
    /// Its issuer: the gateway's public URL.
    pub issuer: Issuer,
    /// The key that signs access tokens (`None`: generated at start).
    pub signing_key: Option<PlannedKey>,
    /// Its algorithm.
    #[serde(serialize_with = "algorithm_name")]
    pub signing_alg: Algorithm,
    /// The 32-byte sealing key (`None`: generated at start).
    pub seal_key: Option<SealKey>,
    /// Lifetime of access tokens.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub access_token_lifetime: Duration,
    /// Lifetime of a refresh-token family.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub refresh_token_lifetime: Duration,
    /// Lifetime of an authorization code.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub code_lifetime: Duration,
    /// Time to sign in at the IdP.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub login_timeout: Duration,
    /// The IdP's authorization endpoint (`None`: from its metadata).
    pub idp_authorization_endpoint: Option<Url>,
    /// The scope asked of the IdP.
    pub idp_scope: ScopeSet,
    /// The gateway's redirect URI at the IdP: `{public_url}/oauth/callback`.
    pub idp_redirect_uri: Url,
    /// The token-exchange subject for ID-JAG upstreams.
    pub egress_subject: EgressSubject,
    /// Whether the JWT-bearer grant with ID-JAGs is accepted.
    pub id_jag: bool,
    /// RFC 7591 registration.
    pub registration: RegistrationMode,
    /// Its initial access token (`registration = "token"`).
    pub registration_token: Option<Secret>,
    /// Client ID Metadata Documents.
    pub metadata_documents: MetadataDocumentsPlan,
    /// The allow-list (`None`: every resolvable client).
    pub allowed_clients: Option<AllowList>,
    /// Pre-registered clients.
    pub clients: Vec<AsClientPlan>,
}

fn algorithm_name<S: serde::Serializer>(alg: &Algorithm, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(alg.as_str())
}

/// A signing key read from its file.
#[derive(Clone)]
pub struct PlannedKey {
    /// The key (with its thumbprint as `kid`).
    pub key: SigningKey,
    /// Where it was read.
    pub file: PathBuf,
}

impl fmt::Debug for PlannedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlannedKey")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Serialize for PlannedKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("file", &self.file)?;
        map.serialize_entry("kid", &self.key.kid().map(|k| k.as_str()))?;
        map.end()
    }
}

/// The sealing key: 32 bytes.
#[derive(Clone)]
pub struct SealKey {
    bytes: zeroize::Zeroizing<Vec<u8>>,
    origin: Secret,
}

impl SealKey {
    /// The 32 bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealKey")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Serialize for SealKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.origin.serialize(serializer)
    }
}

/// Client ID Metadata Documents.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct MetadataDocumentsPlan {
    /// Whether accepted.
    pub enabled: bool,
    /// Largest document.
    pub max_bytes: usize,
    /// Time to fetch one.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub timeout: Duration,
    /// How long one is used.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub cache_ttl: Duration,
    /// Tests only: `http` on loopback.
    pub allow_loopback: bool,
}

/// The operator's allow-list.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AllowList {
    /// Exact client ids.
    pub ids: Vec<String>,
    /// Host patterns.
    pub hosts: Vec<HostPattern>,
}

impl AllowList {
    /// Whether the exact id is listed.
    pub fn has_id(&self, id: &str) -> bool {
        self.ids.iter().any(|i| i == id)
    }

    /// Whether `host` matches a pattern.
    pub fn has_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|p| p.matches(host))
    }
}

/// `example.com` (exactly) or `*.example.com` (any subdomain, not the domain itself),
/// compared in ASCII lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HostPattern(String);

impl HostPattern {
    /// Parses a pattern: a host name or IP literal, optionally behind `*.`.
    pub fn parse(pattern: &str) -> Option<Self> {
        let lower = pattern.to_ascii_lowercase();
        let name = lower.strip_prefix("*.").unwrap_or(&lower);
        let ok = !name.is_empty()
            && name.len() <= 253
            && !name.contains('*')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            && !name.starts_with('.')
            && !name.ends_with('.');
        ok.then_some(Self(lower))
    }

    /// Whether `host` matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self.0.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
            None => host == self.0,
        }
    }
}

/// A pre-registered client.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AsClientPlan {
    /// Its id.
    pub id: ClientId,
    /// Its display name.
    pub name: Option<String>,
    /// Its redirect URIs.
    pub redirect_uris: Vec<RedirectUri>,
    /// Its secret (`None`: a public client).
    pub secret: Option<Secret>,
}

/// A redirect URI that passed the rules: absolute, no fragment, no user info; `https`, or
/// `http` on a loopback host (`127.0.0.1`, `[::1]`, `localhost`), or a private-use scheme
/// (RFC 8252 §7.1) other than `javascript`, `data`, `file`, `blob`, `vbscript`, `about`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

/// Why a redirect URI is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectUriError {
    /// Not an absolute URI, or too long.
    #[error("not an absolute URI")]
    Malformed,
    /// Has a fragment or user info.
    #[error("has a fragment or user info")]
    Fragment,
    /// `http` off loopback, or a dangerous scheme.
    #[error("must be https, http on loopback, or a private-use scheme")]
    Scheme,
}

const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "file", "blob", "vbscript", "about"];

impl RedirectUri {
    /// Checks `uri` against the rules.
    pub fn parse(uri: &str) -> Result<Self, RedirectUriError> {
        if uri.is_empty() || uri.len() > MAX_REDIRECT_URI_BYTES {
            return Err(RedirectUriError::Malformed);
        }
        let url = Url::parse(uri).map_err(|_| RedirectUriError::Malformed)?;
        if url.fragment().is_some() || uri.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::Fragment);
        }
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if is_loopback_host(&url) => {}
            "http" | "https" => return Err(RedirectUriError::Scheme),
            scheme if FORBIDDEN_SCHEMES.contains(&scheme) => {
                return Err(RedirectUriError::Scheme);
            }
            _ => {}
        }
        Ok(Self(uri.to_owned()))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a presented `redirect_uri` matches this registered one: the same string, or,
    /// for `http` on a loopback host, the same URI on any port (RFC 8252 §7.3).
    pub fn matches(&self, presented: &str) -> bool {
        if self.0 == presented {
            return true;
        }
        let (Ok(registered), Ok(presented)) = (Url::parse(&self.0), Url::parse(presented)) else {
            return false;
        };
        registered.scheme() == "http"
            && presented.scheme() == "http"
            && is_loopback_host(&registered)
            && registered.host() == presented.host()
            && registered.path() == presented.path()
            && registered.query() == presented.query()
            && presented.fragment().is_none()
            && presented.username().is_empty()
            && presented.password().is_none()
    }

    /// The host (for the allow-list), when there is one.
    pub fn host(&self) -> Option<String> {
        Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    }
}

/// `127.0.0.1` (any of 127.0.0.0/8), `[::1]` or `localhost`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Decodes a 32-byte key written as 64 hex digits or 43 base64url characters.
fn decode_key(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect();
    }
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
        .filter(|k| k.len() == 32)
}

impl Planner<'_> {
    /// `[authorization_server]`: reads the keys, the clients' secrets and the registration
    /// token.
    pub(crate) fn authorization_server(
        &mut self,
        config: &AuthorizationServerConfig,
        public_url: &str,
    ) -> Result<AuthorizationServerPlan, ConfigError> {
        const KEY: &str = "authorization_server";
        let issuer =
            Issuer::new(public_url).map_err(|e| invalid("server.public_url", e.to_string()))?;
        let signing_alg = Algorithm::from_name(&config.signing_alg).ok_or_else(|| {
            invalid(
                format!("{KEY}.signing_alg"),
                format!("unknown algorithm {}", config.signing_alg),
            )
        })?;
        let signing_key = match &config.signing_key_file {
            Some(file) => {
                let key = format!("{KEY}.signing_key_file");
                let pem = read_file(&key, file, self.environment)?;
                let signing = SigningKey::from_pkcs8_pem(signing_alg, &pem)
                    .map_err(|e| invalid(&key, e.to_string()))?
                    .with_thumbprint_kid();
                Some(PlannedKey {
                    key: signing,
                    file: file.clone(),
                })
            }
            None => {
                self.warn(
                    &format!("{KEY}.signing_key_file"),
                    "absent: a signing key is generated at start, so the gateway's tokens do not survive a restart",
                );
                None
            }
        };
        let seal_source = SecretSource::named(
            config.seal_key_env.as_ref(),
            config.seal_key_file.as_ref(),
            ("seal_key_env", "seal_key_file"),
        );
        seal_source.check(KEY, false)?;
        let seal_key = match seal_source.read(KEY, self.environment)? {
            Some(secret) => {
                let bytes = decode_key(secret.value().secret()).ok_or_else(|| {
                    invalid(
                        format!("{KEY}.seal_key"),
                        "expected 32 bytes: 64 hex digits or 43 base64url characters",
                    )
                })?;
                Some(SealKey {
                    bytes: zeroize::Zeroizing::new(bytes),
                    origin: secret,
                })
            }
            None => {
                self.warn(
                    &format!("{KEY}.seal_key_env"),
                    "absent: a sealing key is generated at start, so sign-ins and registered clients do not survive a restart",
                );
                None
            }
        };
        let access = config.access_token_lifetime.0;
        if access.is_zero() || access > Duration::from_secs(3600) {
            return Err(invalid(
                format!("{KEY}.access_token_lifetime"),
                "between 1 s and 1 h",
            ));
        }
        let code = config.code_lifetime.0;
        if code.is_zero() || code > Duration::from_secs(600) {
            return Err(invalid(
                format!("{KEY}.code_lifetime"),
                "between 1 s and 10 min",
            ));
        }
        for (name, value) in [
            ("refresh_token_lifetime", config.refresh_token_lifetime.0),
            ("login_timeout", config.login_timeout.0),
            (
                "client_metadata_documents.timeout",
                config.client_metadata_documents.timeout.0,
            ),
        ] {
            if value.is_zero() {
                return Err(invalid(format!("{KEY}.{name}"), "must be positive"));
            }
        }
        if config.refresh_token_lifetime.0 < access {
            return Err(invalid(
                format!("{KEY}.refresh_token_lifetime"),
                "shorter than access_token_lifetime",
            ));
        }
        let docs = &config.client_metadata_documents;
        if docs.max_bytes == 0 || docs.max_bytes > 64 * 1024 {
            return Err(invalid(
                format!("{KEY}.client_metadata_documents.max_bytes"),
                "between 1 byte and 64 KiB",
            ));
        }
        if docs.allow_loopback {
            self.warn(
                &format!("{KEY}.client_metadata_documents.allow_loopback"),
                "on: metadata documents are fetched over http from loopback (tests only)",
            );
        }
        let idp_authorization_endpoint = config
            .idp_authorization_endpoint
            .as_deref()
            .map(|uri| check_url(&format!("{KEY}.idp_authorization_endpoint"), uri))
            .transpose()?;
        let idp_scope = ScopeSet::parse(&config.idp_scope)
            .map_err(|e| invalid(format!("{KEY}.idp_scope"), e.to_string()))?;
        if !idp_scope.contains("openid") {
            return Err(invalid(format!("{KEY}.idp_scope"), "must contain openid"));
        }
        let idp_redirect_uri = Url::parse(&format!("{public_url}/oauth/callback"))
            .map_err(|e| invalid("server.public_url", e.to_string()))?;
        let token_source = SecretSource::named(
            config.registration_token_env.as_ref(),
            config.registration_token_file.as_ref(),
            ("registration_token_env", "registration_token_file"),
        );
        let registration_token = match config.registration {
            RegistrationMode::Token => {
                token_source.check(KEY, true)?;
                token_source.read(KEY, self.environment)?
            }
            _ if token_source.is_set() => {
                return Err(invalid(
                    format!("{KEY}.registration"),
                    "a registration token is set but registration is not \"token\"",
                ));
            }
            _ => None,
        };
        let allowed_clients = match &config.allowed_clients {
            None => None,
            Some(list) => {
                let hosts = list
                    .hosts
                    .iter()
                    .map(|h| {
                        HostPattern::parse(h).ok_or_else(|| {
                            invalid(
                                format!("{KEY}.allowed_clients.hosts"),
                                format!("{h:?} is not a host or *.domain pattern"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(AllowList {
                    ids: list.ids.clone(),
                    hosts,
                })
            }
        };
        let mut clients = Vec::with_capacity(config.clients.len());
        for (i, client) in config.clients.iter().enumerate() {
            let key = format!("{KEY}.client[{i}]");
            let id = ClientId::new(client.id.as_str())
                .map_err(|e| invalid(format!("{key}.id"), e.to_string()))?;
            if clients.iter().any(|c: &AsClientPlan| c.id == id) {
                return Err(invalid(format!("{key}.id"), "another client has this id"));
            }
            if client.id.starts_with("https://") || client.id.starts_with(DCR_PREFIX) {
                return Err(invalid(
                    format!("{key}.id"),
                    "https URLs and ids starting with \"dcr.\" are reserved for metadata documents and registered clients",
                ));
            }
            if client.redirect_uris.len() > MAX_REDIRECT_URIS {
                return Err(invalid(
                    format!("{key}.redirect_uris"),
                    format!("at most {MAX_REDIRECT_URIS}"),
                ));
            }
            let redirect_uris = client
                .redirect_uris
                .iter()
                .map(|uri| {
                    RedirectUri::parse(uri).map_err(|e| {
                        invalid(format!("{key}.redirect_uris"), format!("{uri:?}: {e}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sources = [
                client.secret.is_some(),
                client.secret_env.is_some(),
                client.secret_file.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            if sources > 1 {
                return Err(invalid(
                    &key,
                    "set at most one of secret_env, secret_file or secret",
                ));
            }
            let secret = match &client.secret {
                Some(secret) => {
                    self.warn(
                        &format!("{key}.secret"),
                        "inline secret: use secret_env or secret_file",
                    );
                    Some(inline(secret))
                }
                None => {
                    SecretSource::secret(client.secret_env.as_ref(), client.secret_file.as_ref())
                        .read(&key, self.environment)?
                }
            };
            if secret.is_none() && redirect_uris.is_empty() {
                return Err(invalid(
                    &key,
                    "a public client needs redirect_uris (the JWT-bearer grant needs a secret)",
                ));
            }
            clients.push(AsClientPlan {
                id,
                name: client.name.clone(),
                redirect_uris,
                secret,
            });
        }
        Ok(AuthorizationServerPlan {
            issuer,
            signing_key,
            signing_alg,
            seal_key,
            access_token_lifetime: access,
            refresh_token_lifetime: config.refresh_token_lifetime.0,
            code_lifetime: code,
            login_timeout: config.login_timeout.0,
            idp_authorization_endpoint,
            idp_scope,
            idp_redirect_uri,
            egress_subject: config.egress_subject,
            id_jag: config.id_jag,
            registration: config.registration,
            registration_token,
            metadata_documents: MetadataDocumentsPlan {
                enabled: docs.enabled,
                max_bytes: docs.max_bytes,
                timeout: docs.timeout.0,
                cache_ttl: docs.cache_ttl.0,
                allow_loopback: docs.allow_loopback,
            },
            allowed_clients,
            clients,
        })
    }
}

/// The prefix of dynamically registered client ids.
pub const DCR_PREFIX: &str = "dcr.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_the_rules() {
        for good in [
            "https://app.example/cb",
            "http://127.0.0.1:33418/callback",
            "http://[::1]/cb",
            "http://localhost:6274/oauth/callback",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
        ] {
            assert!(RedirectUri::parse(good).is_ok(), "{good}");
        }
        for (bad, error) in [
            ("http://app.example/cb", RedirectUriError::Scheme),
            ("javascript:alert(1)", RedirectUriError::Scheme),
            ("https://app.example/cb#x", RedirectUriError::Fragment),
            ("https://u:p@app.example/cb", RedirectUriError::Fragment),
            ("/cb", RedirectUriError::Malformed),
        ] {
            assert_eq!(RedirectUri::parse(bad), Err(error), "{bad}");
        }
    }

    #[test]
    fn loopback_redirect_uris_match_any_port_and_nothing_else() {
        let uri = RedirectUri::parse("http://127.0.0.1/callback").unwrap();
        assert!(uri.matches("http://127.0.0.1:51234/callback"));
        assert!(uri.matches("http://127.0.0.1/callback"));
        assert!(!uri.matches("http://127.0.0.1:51234/other"));
        assert!(!uri.matches("http://127.0.0.2:51234/callback"));
        assert!(!uri.matches("https://127.0.0.1:51234/callback"));
        let https = RedirectUri::parse("https://app.example/cb").unwrap();
        assert!(https.matches("https://app.example/cb"));
        assert!(!https.matches("https://app.example:444/cb"));
        assert!(!https.matches("https://app.example/cb?x=1"));
        assert!(!https.matches("https://APP.example/cb"));
    }

    #[test]
    fn host_patterns_match_exactly_or_subdomains() {
        let any = HostPattern::parse("*.Example.com").unwrap();
        assert!(any.matches("a.example.com"));
        assert!(any.matches("a.b.EXAMPLE.com"));
        assert!(!any.matches("example.com"));
        assert!(!any.matches("evilexample.com"));
        let one = HostPattern::parse("claude.ai").unwrap();
        assert!(one.matches("claude.ai"));
        assert!(!one.matches("x.claude.ai"));
        assert!(HostPattern::parse("*").is_none());
        assert!(HostPattern::parse("a.*.com").is_none());
    }

    #[test]
    fn keys_decode_from_hex_or_base64url() {
        assert_eq!(decode_key(&"ab".repeat(32)), Some(vec![0xab; 32]));
        assert_eq!(
            decode_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            Some(vec![0; 32])
        );
        assert_eq!(decode_key("short"), None);
    }
}
