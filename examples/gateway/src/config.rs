//! The gateway's one TOML configuration file: its shape, its defaults and its checks.
//!
//! [`Config::from_toml_str`] parses (unknown keys are errors, so a typo never silently drops
//! a setting) and [`Config::validate`] checks everything that can be checked without the
//! network; secrets are read from the environment or files only when the gateway is built
//! ([`ClientConfig::credentials`]). The commented example `examples/gateway/gateway.toml`
//! documents every key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use idjag_client::ClientCredentials;
use idjag_client::auth::PrivateKeyJwt;
use idjag_core::endpoint::check_endpoint;
use idjag_core::{
    Algorithm, AlgorithmSet, ClientId, ClientSecret, Issuer, Resource, ScopeSet, SharedClock,
    SigningKey,
};
use serde::Deserialize;
use url::Url;

use crate::audit::ArgumentMode;
use crate::authz::ToolPattern;
use crate::headers::is_forbidden_forward;

/// Every MCP protocol version the gateway passes through by default.
pub const KNOWN_PROTOCOL_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// A configuration problem, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file is not valid TOML for this schema.
    #[error("{0}")]
    Parse(String),
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A value is not acceptable.
    #[error("{key}: {problem}")]
    Invalid {
        /// The key, e.g. `upstream[notes].url`.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// A duration written as `"500ms"`, `"10s"`, `"5m"`, `"1h"` or a number of seconds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl fmt::Debug for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl ConfigDuration {
    /// Parses `"500ms"`, `"10s"`, `"5m"` or `"1h"`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = s.split_at(split);
        let n: u64 = number.parse().ok()?;
        let duration = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        Some(Self(duration))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(n) => Ok(Self(Duration::from_secs(n))),
            Raw::Text(text) => Self::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?} (use e.g. \"500ms\", \"10s\", \"5m\", \"1h\")"
                ))
            }),
        }
    }
}

fn secs(n: u64) -> ConfigDuration {
    ConfigDuration(Duration::from_secs(n))
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`: listener, public URL, limits and timeouts.
    pub server: ServerConfig,
    /// `[idp]`: the enterprise IdP whose tokens come in and where ID-JAGs are asked for.
    pub idp: IdpConfig,
    /// `[inbound]`: which IdP tokens are accepted and how they become an identity.
    #[serde(default)]
    pub inbound: InboundConfig,
    /// `[teams]`: IdP group → gateway teams.
    #[serde(default)]
    pub teams: BTreeMap<String, Vec<String>>,
    /// `[audit]`: the JSON-lines audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[admin]`: the administrator API (approvals, revocations). Absent: off.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// `[metrics]`: Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[[upstream]]`: the MCP servers behind the gateway.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on, e.g. `"127.0.0.1:8080"`.
    pub listen: String,
    /// The URL clients use to reach the gateway (the base of every route's resource
    /// identifier and of its RFC 9728 metadata). `https`, or `http` on loopback.
    pub public_url: String,
    /// `Origin` values allowed (exact, e.g. `"https://app.example"`); requests without
    /// `Origin` pass. Default: none, so any request carrying `Origin` gets 403.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Most open client connections; more are closed at accept. Default 10 000.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Most requests in flight, SSE streams included; more get 503. Default 1 024.
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: usize,
    /// Largest request body. Default 1 MiB.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers); more gets 431. Default 16 KiB,
    /// at least 8 KiB.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Time to receive a request head; slower connections are closed. Default 10 s.
    #[serde(default = "defaults::header_read_timeout")]
    pub header_read_timeout: ConfigDuration,
    /// Time to receive a request body; slower requests get 408. Default 10 s.
    #[serde(default = "defaults::body_timeout")]
    pub body_timeout: ConfigDuration,
    /// How long shutdown waits for in-flight requests. Default 30 s.
    #[serde(default = "defaults::shutdown_grace")]
    pub shutdown_grace: ConfigDuration,
    /// `MCP-Protocol-Version` values passed through; others get 400. Default: every
    /// version in [`KNOWN_PROTOCOL_VERSIONS`].
    #[serde(default = "defaults::protocol_versions")]
    pub protocol_versions: Vec<String>,
    /// Largest `tools/list` JSON response the gateway filters (it must hold it whole).
    /// Default 4 MiB.
    #[serde(default = "defaults::max_filtered_response_bytes")]
    pub max_filtered_response_bytes: usize,
    /// Largest single SSE event. Default 4 MiB.
    #[serde(default = "defaults::max_sse_event_bytes")]
    pub max_sse_event_bytes: usize,
    /// What happens to an SSE stream when the inbound token expires. Default `close`.
    #[serde(default)]
    pub sse_on_token_expiry: SseExpiry,
    /// Extra request headers forwarded upstream, beyond the MCP ones. Hop-by-hop,
    /// credential and identity headers cannot be listed.
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

/// What happens to an SSE stream when the inbound token expires (SECURITY-CASES G21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SseExpiry {
    /// Send a final `event: close` (`{"reason":"token_expired"}`) and end the stream.
    #[default]
    Close,
    /// Let the stream run until the upstream ends it.
    Allow,
}

mod defaults {
    use super::*;
    pub(super) fn max_connections() -> usize {
        10_000
    }
    pub(super) fn max_in_flight() -> usize {
        1024
    }
    pub(super) fn max_body_bytes() -> usize {
        1024 * 1024
    }
    pub(super) fn max_header_bytes() -> usize {
        16 * 1024
    }
    pub(super) fn header_read_timeout() -> ConfigDuration {
        secs(10)
    }
    pub(super) fn body_timeout() -> ConfigDuration {
        secs(10)
    }
    pub(super) fn shutdown_grace() -> ConfigDuration {
        secs(30)
    }
    pub(super) fn protocol_versions() -> Vec<String> {
        KNOWN_PROTOCOL_VERSIONS
            .iter()
            .map(|v| (*v).to_owned())
            .collect()
    }
    pub(super) fn max_filtered_response_bytes() -> usize {
        4 * 1024 * 1024
    }
    pub(super) fn max_sse_event_bytes() -> usize {
        4 * 1024 * 1024
    }
    pub(super) fn algorithms() -> Vec<String> {
        ["ES256", "RS256", "PS256", "EdDSA"]
            .iter()
            .map(|a| (*a).to_owned())
            .collect()
    }
    pub(super) fn leeway() -> ConfigDuration {
        secs(30)
    }
    pub(super) fn jwks_max_age() -> ConfigDuration {
        secs(600)
    }
    pub(super) fn jwks_stale_if_error() -> ConfigDuration {
        secs(3600)
    }
    pub(super) fn jwks_cooldown() -> ConfigDuration {
        secs(30)
    }
    pub(super) fn accept() -> Vec<InboundKind> {
        vec![InboundKind::IdToken, InboundKind::AccessToken]
    }
    pub(super) fn groups_claim() -> String {
        "groups".to_owned()
    }
    pub(super) fn max_token_bytes() -> usize {
        8 * 1024
    }
    pub(super) fn cache_capacity() -> u64 {
        10_000
    }
    pub(super) fn connect_timeout() -> ConfigDuration {
        secs(5)
    }
    pub(super) fn read_timeout() -> ConfigDuration {
        secs(60)
    }
    pub(super) fn redact_keys() -> Vec<String> {
        [
            "password",
            "passwd",
            "secret",
            "token",
            "authorization",
            "api_key",
            "apikey",
            "credential",
            "private_key",
        ]
        .iter()
        .map(|k| (*k).to_owned())
        .collect()
    }
    pub(super) fn max_argument_bytes() -> usize {
        2048
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn static_header() -> String {
        "authorization".to_owned()
    }
    pub(super) fn approval_ttl() -> ConfigDuration {
        secs(900)
    }
    pub(super) fn max_pending_approvals() -> usize {
        1000
    }
    pub(super) fn revocation_ttl() -> ConfigDuration {
        secs(24 * 3600)
    }
    pub(super) fn flush_interval() -> ConfigDuration {
        ConfigDuration(Duration::from_millis(10))
    }
}

/// `[idp]`: the enterprise IdP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IdpConfig {
    /// The IdP's issuer (`iss` of its tokens).
    pub issuer: String,
    /// Its JWKS URL; default: the `jwks_uri` of its RFC 8414 / OIDC metadata.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Its token endpoint (for the ID-JAG token exchange); default: from its metadata.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Algorithms accepted on inbound tokens. Default ES256, RS256, PS256, EdDSA.
    #[serde(default = "defaults::algorithms")]
    pub algorithms: Vec<String>,
    /// Clock-skew leeway on inbound tokens. Default 30 s, at most 5 min.
    #[serde(default = "defaults::leeway")]
    pub leeway: ConfigDuration,
    /// How long fetched IdP keys are used before a refresh. Default 10 min.
    #[serde(default = "defaults::jwks_max_age")]
    pub jwks_max_age: ConfigDuration,
    /// How long past `jwks_max_age` the last good keys stay usable while the IdP is
    /// unreachable. Default 1 h.
    #[serde(default = "defaults::jwks_stale_if_error")]
    pub jwks_stale_if_error: ConfigDuration,
    /// Least time between two key fetches (an unknown `kid` triggers one). Default 30 s.
    #[serde(default = "defaults::jwks_cooldown")]
    pub jwks_cooldown: ConfigDuration,
    /// The gateway's own registration at the IdP (it is the requesting app of the
    /// ID-JAG flow; inbound ID tokens must be issued to this client id).
    pub client: ClientConfig,
}

/// How a client authenticates at a token endpoint, and with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic with the client secret (the default).
    #[default]
    ClientSecretBasic,
    /// The client secret in the form body.
    ClientSecretPost,
    /// A signed client assertion (RFC 7523), with `key_file`.
    PrivateKeyJwt,
}

/// A client registration: `id`, `auth` and exactly one secret source (`secret_env`,
/// `secret_file` or the inline `secret`), or `key_file` for `private_key_jwt`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The client id at that server.
    pub id: String,
    /// The authentication method.
    #[serde(default)]
    pub auth: AuthMethod,
    /// The secret inline (discouraged outside demos: `check-config` warns).
    #[serde(default)]
    pub secret: Option<ClientSecret>,
    /// The name of an environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// `private_key_jwt`: a PKCS#8 PEM private key file.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// `private_key_jwt`: the key's algorithm. Default ES256.
    #[serde(default)]
    pub key_alg: Option<String>,
    /// `private_key_jwt`: the `kid` to send. Default: the key's RFC 7638 thumbprint.
    #[serde(default)]
    pub key_id: Option<String>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("auth", &self.auth)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    fn check(&self, key: &str) -> Result<(), ConfigError> {
        ClientId::new(self.id.as_str()).map_err(|e| invalid(format!("{key}.id"), e.to_string()))?;
        let sources = [
            self.secret.is_some(),
            self.secret_env.is_some(),
            self.secret_file.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        match self.auth {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                if sources != 1 || self.key_file.is_some() {
                    return Err(invalid(
                        key,
                        "set exactly one of secret_env, secret_file or secret",
                    ));
                }
            }
            AuthMethod::PrivateKeyJwt => {
                if sources != 0 || self.key_file.is_none() {
                    return Err(invalid(key, "private_key_jwt takes key_file and no secret"));
                }
                self.key_algorithm(key)?;
            }
        }
        Ok(())
    }

    fn key_algorithm(&self, key: &str) -> Result<Algorithm, ConfigError> {
        let name = self.key_alg.as_deref().unwrap_or("ES256");
        Algorithm::from_name(name).ok_or_else(|| {
            invalid(
                format!("{key}.key_alg"),
                format!("unknown algorithm {name}"),
            )
        })
    }

    /// Whether the secret is written in the file itself.
    pub fn has_inline_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// Reads the secret or key and builds the credentials. `key` names this block in errors.
    pub fn credentials(
        &self,
        key: &str,
        clock: SharedClock,
    ) -> Result<ClientCredentials, ConfigError> {
        self.check(key)?;
        let client_id = ClientId::new(self.id.as_str())
            .map_err(|e| invalid(format!("{key}.id"), e.to_string()))?;
        let bad = |e: idjag_client::InputError| invalid(key, e.to_string());
        match self.auth {
            AuthMethod::PrivateKeyJwt => {
                let path = self
                    .key_file
                    .as_ref()
                    .ok_or_else(|| invalid(key, "key_file missing"))?;
                let pem = read_file(path)?;
                let alg = self.key_algorithm(key)?;
                let signing = SigningKey::from_pkcs8_pem(alg, &pem)
                    .map_err(|e| invalid(format!("{key}.key_file"), e.to_string()))?;
                let signing = match &self.key_id {
                    Some(kid) => signing.with_kid(
                        idjag_core::Kid::new(kid.as_str())
                            .map_err(|e| invalid(format!("{key}.key_id"), e.to_string()))?,
                    ),
                    None => signing.with_thumbprint_kid(),
                };
                Ok(ClientCredentials::private_key_jwt(
                    client_id,
                    PrivateKeyJwt::new(signing, clock),
                ))
            }
            method => {
                let secret = self.secret(key)?;
                if method == AuthMethod::ClientSecretPost {
                    ClientCredentials::secret_post(client_id, secret).map_err(bad)
                } else {
                    ClientCredentials::secret_basic(client_id, secret).map_err(bad)
                }
            }
        }
    }

    fn secret(&self, key: &str) -> Result<ClientSecret, ConfigError> {
        if let Some(secret) = &self.secret {
            return Ok(secret.clone());
        }
        let source = SecretSource::new(self.secret_env.as_ref(), self.secret_file.as_ref());
        source
            .read(key)?
            .ok_or_else(|| invalid(key, "no secret configured"))
    }
}

fn read_file(path: &PathBuf) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        reason: e.kind().to_string(),
    })
}

/// The kinds of inbound IdP token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InboundKind {
    /// An OIDC ID token issued to the gateway's client id at the IdP (`typ` absent or `JWT`).
    IdToken,
    /// An RFC 9068 access token of the IdP for the route's resource (`typ` `at+jwt`).
    AccessToken,
}

/// `[inbound]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InboundConfig {
    /// Accepted token kinds. Default both.
    #[serde(default = "defaults::accept")]
    pub accept: Vec<InboundKind>,
    /// The claim holding the user's groups. Default `groups`.
    #[serde(default = "defaults::groups_claim")]
    pub groups_claim: String,
    /// Longest token accepted; longer ones get 401 without being decoded. Default 8 KiB.
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: usize,
    /// Most validated tokens cached. Default 10 000.
    #[serde(default = "defaults::cache_capacity")]
    pub cache_capacity: u64,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            accept: defaults::accept(),
            groups_claim: defaults::groups_claim(),
            max_token_bytes: defaults::max_token_bytes(),
            cache_capacity: defaults::cache_capacity(),
        }
    }
}

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuditOutput {
    /// Standard output (the default).
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for AuditOutput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "stdout" | "-" => Self::Stdout,
            "stderr" => Self::Stderr,
            _ => Self::File(PathBuf::from(text)),
        })
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditConfig {
    /// `"stdout"` (default), `"stderr"` or a file path.
    #[serde(default)]
    pub output: AuditOutput,
    /// How tool arguments are recorded. Default `keys`.
    #[serde(default)]
    pub arguments: ArgumentMode,
    /// With `arguments = "redact"`: values under keys containing one of these
    /// (case-insensitive) are replaced by `"[redacted]"`.
    #[serde(default = "defaults::redact_keys")]
    pub redact_keys: Vec<String>,
    /// Longest recorded arguments (serialized); longer ones are replaced by a marker.
    /// Default 2 KiB.
    #[serde(default = "defaults::max_argument_bytes")]
    pub max_argument_bytes: usize,
    /// How often the audit writer writes what is queued (one write for many lines under
    /// load). `0` writes and flushes each line on its own. Default 10 ms.
    #[serde(default = "defaults::flush_interval")]
    pub flush_interval: ConfigDuration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            output: AuditOutput::default(),
            arguments: ArgumentMode::default(),
            redact_keys: defaults::redact_keys(),
            max_argument_bytes: defaults::max_argument_bytes(),
            flush_interval: defaults::flush_interval(),
        }
    }
}

/// `[[upstream]]`: one MCP server behind the gateway, served at `/mcp/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpstreamConfig {
    /// The route name: `[A-Za-z0-9_-]{1,64}`.
    pub name: String,
    /// The MCP endpoint (Streamable HTTP). `https`, or `http` on loopback.
    pub url: String,
    /// Time to connect. Default 5 s.
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout: ConfigDuration,
    /// Longest silence while waiting for or reading a response (there is no total
    /// timeout: SSE streams may run long). Keep it above the upstream's keep-alive
    /// interval (rmcp pings every 15 s). Default 60 s.
    #[serde(default = "defaults::read_timeout")]
    pub read_timeout: ConfigDuration,
    /// How the gateway authenticates to this upstream.
    pub credential: CredentialConfig,
    /// Who may use which tools (`[[upstream.access]]`). No rule: nobody.
    #[serde(default)]
    pub access: Vec<AccessRuleConfig>,
    /// Per-tool requirements (`[upstream.tools.<name>]`).
    #[serde(default)]
    pub tools: BTreeMap<String, ToolConfig>,
}

/// How the gateway gets a credential for an upstream (see [`crate::bridge`] for the modes
/// that bridge to servers without ID-JAG). Every mode runs after the same inbound
/// authentication and tool-level authorization.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum CredentialConfig {
    /// The ID-JAG flow: the user's inbound ID token is exchanged at the IdP for an ID-JAG
    /// for `authorization_server`, redeemed there for an access token for `resource`.
    IdJag {
        /// The upstream's resource authorization server (its issuer).
        authorization_server: String,
        /// Its token endpoint; default: from its RFC 8414 metadata (exact issuer match).
        #[serde(default)]
        token_endpoint: Option<String>,
        /// The resource to ask for; default: the upstream URL.
        #[serde(default)]
        resource: Option<String>,
        /// Scopes to ask for. Default none (the IdP and the AS decide).
        #[serde(default)]
        scopes: Vec<String>,
        /// The gateway's registration at that authorization server.
        client: ClientConfig,
        /// Whether that server redeems one ID-JAG more than once. Default false.
        #[serde(default)]
        id_jag_reuse: bool,
    },
    /// OAuth client credentials (RFC 6749 §4.4): the gateway's own token at the upstream's
    /// authorization server, cached until it nears expiry. The upstream sees the gateway,
    /// not the user (the audit log keeps who called).
    ClientCredentials {
        /// The authorization server's issuer (the `aud` of `private_key_jwt` assertions).
        authorization_server: String,
        /// Its token endpoint.
        token_endpoint: String,
        /// Scopes to ask for. Default none.
        #[serde(default)]
        scopes: Vec<String>,
        /// An RFC 8707 `resource` to ask for. Default none.
        #[serde(default)]
        resource: Option<String>,
        /// The gateway's registration there.
        client: ClientConfig,
    },
    /// A static API key or bearer token, read from the environment or a file at start-up
    /// (never from this file), sent as `header: {scheme} {secret}`.
    Static {
        /// The header. Default `authorization`.
        #[serde(default = "defaults::static_header")]
        header: String,
        /// The scheme before the secret. Default `Bearer` for `authorization`, none for
        /// any other header.
        #[serde(default)]
        scheme: Option<String>,
        /// An environment variable holding the secret.
        #[serde(default)]
        secret_env: Option<String>,
        /// A file holding the secret (trailing newline ignored).
        #[serde(default)]
        secret_file: Option<PathBuf>,
    },
    /// Headers built from a template over the caller's identity and, optionally, a secret:
    /// `{user}`, `{issuer}`, `{agent}`, `{teams}` (comma-separated), `{request_id}`,
    /// `{secret}`; `{{` and `}}` are literal braces. Nothing else is evaluated.
    HeaderTemplate {
        /// Header name → template.
        headers: BTreeMap<String, String>,
        /// An environment variable holding `{secret}` (one source is required when a
        /// template uses it).
        #[serde(default)]
        secret_env: Option<String>,
        /// A file holding `{secret}`.
        #[serde(default)]
        secret_file: Option<PathBuf>,
    },
    /// The caller's inbound IdP token, sent to the upstream as is. Only for upstreams that
    /// validate the IdP's tokens themselves: the token leaves the gateway (SECURITY-CASES
    /// G03 does not hold), so the gateway warns at start-up.
    Passthrough {},
}

/// Where a bridging secret comes from: `secret_env` or `secret_file`, never the
/// configuration file itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecretSource {
    /// The name of an environment variable holding the secret.
    pub secret_env: Option<String>,
    /// A file holding the secret (trailing newline ignored).
    pub secret_file: Option<PathBuf>,
    names: (&'static str, &'static str),
}

impl SecretSource {
    /// A source from its two keys (`secret_env`, `secret_file`).
    pub fn new(secret_env: Option<&String>, secret_file: Option<&PathBuf>) -> Self {
        Self {
            secret_env: secret_env.cloned(),
            secret_file: secret_file.cloned(),
            names: ("secret_env", "secret_file"),
        }
    }

    /// Whether a source is configured.
    pub fn is_set(&self) -> bool {
        self.secret_env.is_some() || self.secret_file.is_some()
    }

    pub(crate) fn check(&self, key: &str, required: bool) -> Result<(), ConfigError> {
        let (env, file) = self.names;
        match (self.secret_env.is_some(), self.secret_file.is_some()) {
            (true, true) => Err(invalid(key, format!("set only one of {env} or {file}"))),
            (false, false) if required => Err(invalid(
                key,
                format!("set {env} or {file} (never the secret itself)"),
            )),
            _ => Ok(()),
        }
    }

    /// Reads the secret. `key` names the block in errors: a missing variable, an unreadable
    /// or empty file is a configuration error at start-up.
    pub fn read(&self, key: &str) -> Result<Option<ClientSecret>, ConfigError> {
        if let Some(name) = &self.secret_env {
            return std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| Some(ClientSecret::new(v)))
                .ok_or_else(|| {
                    invalid(
                        format!("{key}.{}", self.names.0),
                        format!("environment variable {name} is not set"),
                    )
                });
        }
        if let Some(path) = &self.secret_file {
            let text = read_file(path)?;
            let secret = text.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                return Err(invalid(
                    format!("{key}.{}", self.names.1),
                    "the file is empty",
                ));
            }
            return Ok(Some(ClientSecret::new(secret)));
        }
        Ok(None)
    }
}

/// `[[upstream.access]]`: one rule. It applies to the listed users, the members of the
/// listed teams, or `everyone`; `deny` beats `allow` across all rules that apply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AccessRuleConfig {
    /// Teams the rule applies to.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Users (`sub`) the rule applies to.
    #[serde(default)]
    pub users: Vec<String>,
    /// Applies to every authenticated user.
    #[serde(default)]
    pub everyone: bool,
    /// Tools allowed: names, or patterns with `*`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Tools denied: names, or patterns with `*`.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `[upstream.tools.<name>]`: what a call of this tool needs besides an allowing rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ToolConfig {
    /// Scopes the inbound token must carry to call the tool (RFC 9068 access tokens carry
    /// `scope`; ID tokens carry none, so such a tool needs an access token).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Calls are held until an administrator approves them (see [`crate::approval`]).
    #[serde(default)]
    pub approval: bool,
    /// Largest serialized `arguments`; larger calls are blocked.
    #[serde(default)]
    pub max_argument_bytes: Option<usize>,
    /// Argument rules (`[[upstream.tools.<name>.rules]]`), checked in order.
    #[serde(default)]
    pub rules: Vec<GuardRuleConfig>,
}

impl ToolConfig {
    /// A tool that needs `scopes`.
    pub fn with_scopes(scopes: &[&str]) -> Self {
        Self {
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Self::default()
        }
    }
}

/// `[[upstream.tools.<name>.rules]]`: one argument rule (see [`crate::guardrails`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardRuleConfig {
    /// The rule's name, given back to the agent when it blocks a call.
    pub name: String,
    /// An RFC 6901 JSON pointer into `arguments` (`""` is the whole object).
    pub pointer: String,
    /// Values allowed (patterns with `*`); any other value is blocked.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Values blocked (patterns with `*`).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Largest serialized value.
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// Whether a call without the value is blocked. Default false.
    #[serde(default)]
    pub required: bool,
}

/// `[admin]`: the administrator API under `/admin/` (approvals, revocations). Absent: the
/// API is off (404).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AdminConfig {
    /// An environment variable holding the admin bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// A file holding the admin bearer token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// How long a held call waits for a decision, and how long an approval stays usable.
    /// Default 15 min.
    #[serde(default = "defaults::approval_ttl")]
    pub approval_ttl: ConfigDuration,
    /// Most calls waiting for approval; more are refused. Default 1 000.
    #[serde(default = "defaults::max_pending_approvals")]
    pub max_pending_approvals: usize,
    /// How long a revocation lasts unless lifted or given its own duration. Default 24 h.
    #[serde(default = "defaults::revocation_ttl")]
    pub revocation_ttl: ConfigDuration,
}

impl AdminConfig {
    /// Where the admin token is.
    pub fn token(&self) -> SecretSource {
        SecretSource {
            secret_env: self.token_env.clone(),
            secret_file: self.token_file.clone(),
            names: ("token_env", "token_file"),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics`. Default true.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Require the admin token on `/metrics`. Default false.
    #[serde(default)]
    pub require_admin_token: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            require_admin_token: false,
        }
    }
}

/// A configuration warning: accepted, but worth a look.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// The key.
    pub key: String,
    /// What to look at.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// An upstream credential's `client`: valid, and a warning for an inline secret.
fn client_block(
    ckey: &str,
    client: &ClientConfig,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    client.check(&format!("{ckey}.client"))?;
    if client.has_inline_secret() {
        warnings.push(Warning {
            key: format!("{ckey}.client.secret"),
            message: "inline secret: prefer secret_env or secret_file".to_owned(),
        });
    }
    Ok(())
}

/// An upstream credential's `authorization_server`: a URL and an issuer identifier.
fn authorization_server_block(ckey: &str, value: &str) -> Result<(), ConfigError> {
    check_url(&format!("{ckey}.authorization_server"), value)?;
    Issuer::new(value).map_err(|e| invalid(ckey, e.to_string()))?;
    Ok(())
}

fn check_url(key: &str, value: &str) -> Result<Url, ConfigError> {
    check_endpoint(value).map_err(|e| invalid(key, e.to_string()))
}

fn check_scopes(key: &str, scopes: &[String]) -> Result<ScopeSet, ConfigError> {
    ScopeSet::parse(&scopes.join(" ")).map_err(|e| invalid(key, e.to_string()))
}

pub(crate) fn check_upstream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Config {
    /// Parses a configuration (without validating it: see [`Self::validate`]).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Reads and parses a file.
    pub fn from_path(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let path = path.into();
        Self::from_toml_str(&read_file(&path)?)
    }

    /// Checks every value that can be checked offline; returns the warnings.
    pub fn validate(&self) -> Result<Vec<Warning>, ConfigError> {
        let mut warnings = Vec::new();
        let warn = |warnings: &mut Vec<Warning>, key: &str, message: &str| {
            warnings.push(Warning {
                key: key.to_owned(),
                message: message.to_owned(),
            });
        };
        let s = &self.server;
        s.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|_| invalid("server.listen", "expected an address like 127.0.0.1:8080"))?;
        check_url("server.public_url", &s.public_url)?;
        for origin in &s.allowed_origins {
            let url = Url::parse(origin).map_err(|_| {
                invalid(
                    "server.allowed_origins",
                    format!("{origin:?} is not an origin"),
                )
            })?;
            if url.origin().ascii_serialization() != *origin {
                return Err(invalid(
                    "server.allowed_origins",
                    format!("{origin:?} is not an origin (scheme://host[:port], no path)"),
                ));
            }
        }
        if s.allowed_origins.is_empty() {
            warn(
                &mut warnings,
                "server.allowed_origins",
                "empty: every request carrying an Origin header (browsers) gets 403",
            );
        }
        for (key, value) in [
            ("server.max_connections", s.max_connections),
            ("server.max_in_flight", s.max_in_flight),
            ("server.max_body_bytes", s.max_body_bytes),
            (
                "server.max_filtered_response_bytes",
                s.max_filtered_response_bytes,
            ),
            ("server.max_sse_event_bytes", s.max_sse_event_bytes),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be positive"));
            }
        }
        if s.max_header_bytes < 8192 {
            return Err(invalid("server.max_header_bytes", "must be at least 8192"));
        }
        for (key, value) in [
            ("server.header_read_timeout", s.header_read_timeout),
            ("server.body_timeout", s.body_timeout),
        ] {
            if value.0.is_zero() {
                return Err(invalid(key, "must be positive"));
            }
        }
        if s.protocol_versions.is_empty() {
            return Err(invalid("server.protocol_versions", "must not be empty"));
        }
        for header in &s.forward_headers {
            let name = http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                invalid(
                    "server.forward_headers",
                    format!("{header:?} is not a header name"),
                )
            })?;
            if is_forbidden_forward(&name) {
                return Err(invalid(
                    "server.forward_headers",
                    format!("{header} is a hop-by-hop, credential or identity header"),
                ));
            }
        }

        let idp = &self.idp;
        check_url("idp.issuer", &idp.issuer)?;
        Issuer::new(idp.issuer.as_str()).map_err(|e| invalid("idp.issuer", e.to_string()))?;
        if let Some(uri) = &idp.jwks_uri {
            check_url("idp.jwks_uri", uri)?;
        }
        if let Some(uri) = &idp.token_endpoint {
            check_url("idp.token_endpoint", uri)?;
        }
        self.algorithms()?;
        if idp.leeway.0 > idjag_core::MAX_LEEWAY {
            return Err(invalid("idp.leeway", "at most 5 minutes"));
        }
        idp.client.check("idp.client")?;
        if idp.client.has_inline_secret() {
            warn(
                &mut warnings,
                "idp.client.secret",
                "inline secret: prefer secret_env or secret_file",
            );
        }

        if self.inbound.accept.is_empty() {
            return Err(invalid("inbound.accept", "must not be empty"));
        }
        if self.inbound.max_token_bytes == 0 || self.inbound.cache_capacity == 0 {
            return Err(invalid("inbound", "limits must be positive"));
        }
        if self.audit.max_argument_bytes == 0 {
            return Err(invalid("audit.max_argument_bytes", "must be positive"));
        }
        if self.audit.flush_interval.0 > Duration::from_secs(1) {
            return Err(invalid("audit.flush_interval", "at most 1 s"));
        }

        if let Some(admin) = &self.admin {
            admin.token().check("admin", true)?;
            if admin.approval_ttl.0.is_zero() || admin.revocation_ttl.0.is_zero() {
                return Err(invalid("admin", "durations must be positive"));
            }
            if admin.max_pending_approvals == 0 {
                return Err(invalid("admin.max_pending_approvals", "must be positive"));
            }
        } else if self.metrics.require_admin_token {
            return Err(invalid(
                "metrics.require_admin_token",
                "needs an [admin] token",
            ));
        }
        if self.upstreams.is_empty() {
            warn(&mut warnings, "upstream", "no upstream configured");
        }
        let mut names = BTreeSet::new();
        for upstream in &self.upstreams {
            let key = format!("upstream[{}]", upstream.name);
            if !check_upstream_name(&upstream.name) {
                return Err(invalid(&key, "name must match [A-Za-z0-9_-]{1,64}"));
            }
            if !names.insert(upstream.name.as_str()) {
                return Err(invalid(&key, "duplicate name"));
            }
            check_url(&format!("{key}.url"), &upstream.url)?;
            if upstream.connect_timeout.0.is_zero() || upstream.read_timeout.0.is_zero() {
                return Err(invalid(&key, "timeouts must be positive"));
            }
            match &upstream.credential {
                CredentialConfig::IdJag {
                    authorization_server,
                    token_endpoint,
                    resource,
                    scopes,
                    client,
                    ..
                } => {
                    let ckey = format!("{key}.credential");
                    authorization_server_block(&ckey, authorization_server)?;
                    if authorization_server == &idp.issuer {
                        return Err(invalid(&ckey, "the authorization server cannot be the IdP"));
                    }
                    if let Some(uri) = token_endpoint {
                        check_url(&format!("{ckey}.token_endpoint"), uri)?;
                    }
                    let resource = resource.as_deref().unwrap_or(&upstream.url);
                    Resource::new(resource)
                        .map_err(|e| invalid(format!("{ckey}.resource"), e.to_string()))?;
                    if !scopes.is_empty() {
                        check_scopes(&format!("{ckey}.scopes"), scopes)?;
                    }
                    client_block(&ckey, client, &mut warnings)?;
                }
                CredentialConfig::ClientCredentials {
                    authorization_server,
                    token_endpoint,
                    scopes,
                    resource,
                    client,
                } => {
                    let ckey = format!("{key}.credential");
                    authorization_server_block(&ckey, authorization_server)?;
                    check_url(&format!("{ckey}.token_endpoint"), token_endpoint)?;
                    if !scopes.is_empty() {
                        check_scopes(&format!("{ckey}.scopes"), scopes)?;
                    }
                    if let Some(resource) = resource {
                        Resource::new(resource.as_str())
                            .map_err(|e| invalid(format!("{ckey}.resource"), e.to_string()))?;
                    }
                    client_block(&ckey, client, &mut warnings)?;
                }
                CredentialConfig::Static {
                    header,
                    scheme,
                    secret_env,
                    secret_file,
                } => {
                    let ckey = format!("{key}.credential");
                    let secret = SecretSource::new(secret_env.as_ref(), secret_file.as_ref());
                    secret.check(&ckey, true)?;
                    crate::bridge::check_bridge_header(header)
                        .map_err(|p| invalid(format!("{ckey}.header"), p))?;
                    if let Some(scheme) = scheme
                        && (scheme.is_empty()
                            || !scheme
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
                    {
                        return Err(invalid(format!("{ckey}.scheme"), "not an auth scheme"));
                    }
                }
                CredentialConfig::HeaderTemplate {
                    headers,
                    secret_env,
                    secret_file,
                } => {
                    let ckey = format!("{key}.credential");
                    let secret = SecretSource::new(secret_env.as_ref(), secret_file.as_ref());
                    let uses_secret = crate::bridge::HeaderTemplates::parse(headers)
                        .map_err(|p| invalid(format!("{ckey}.headers"), p))?
                        .uses_secret();
                    secret.check(&ckey, uses_secret)?;
                    if secret.is_set() && !uses_secret {
                        return Err(invalid(
                            &ckey,
                            "a secret is configured but no template uses {secret}",
                        ));
                    }
                }
                CredentialConfig::Passthrough {} => warn(
                    &mut warnings,
                    &format!("{key}.credential"),
                    "passthrough: the caller's IdP token is sent to this upstream as is",
                ),
            }
            if upstream.access.is_empty() {
                warn(
                    &mut warnings,
                    &format!("{key}.access"),
                    "no access rule: every call is denied",
                );
            }
            for (i, rule) in upstream.access.iter().enumerate() {
                let rkey = format!("{key}.access[{i}]");
                if !rule.everyone && rule.teams.is_empty() && rule.users.is_empty() {
                    return Err(invalid(&rkey, "name teams, users or set everyone = true"));
                }
                for pattern in rule.allow.iter().chain(&rule.deny) {
                    ToolPattern::new(pattern).map_err(|p| invalid(&rkey, p))?;
                }
            }
            for (tool, config) in &upstream.tools {
                let tkey = format!("{key}.tools.{tool}");
                check_scopes(&tkey, &config.scopes)?;
                crate::guardrails::ToolGuard::from_config(config).map_err(|p| invalid(&tkey, p))?;
                if config.approval && self.admin.is_none() {
                    warn(
                        &mut warnings,
                        &tkey,
                        "approval required but no [admin] API: calls can never be approved",
                    );
                }
                if !config.scopes.is_empty()
                    && !self.inbound.accept.contains(&InboundKind::AccessToken)
                {
                    warn(
                        &mut warnings,
                        &tkey,
                        "needs scopes but inbound access tokens are not accepted: never callable",
                    );
                }
            }
        }
        Ok(warnings)
    }

    /// The accepted inbound algorithms.
    pub fn algorithms(&self) -> Result<AlgorithmSet, ConfigError> {
        self.idp
            .algorithms
            .iter()
            .map(|name| {
                Algorithm::from_name(name)
                    .ok_or_else(|| invalid("idp.algorithms", format!("unknown algorithm {name}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [server]
        listen = "127.0.0.1:8080"
        public_url = "http://127.0.0.1:8080"
        [idp]
        issuer = "https://idp.example"
        client = { id = "gw", secret = "s" }
        [[upstream]]
        name = "notes"
        url = "https://notes.example/mcp"
        credential = { mode = "id_jag", authorization_server = "https://as.example", client = { id = "gw-at-as", secret_env = "X" } }
        [[upstream.access]]
        everyone = true
        allow = ["*"]
    "#;

    #[test]
    fn the_commented_example_is_valid_and_has_no_warning() {
        let config = Config::from_toml_str(include_str!("../gateway.toml")).unwrap();
        assert_eq!(config.validate().unwrap(), []);
        assert_eq!(config.upstreams[0].access.len(), 3);
        assert_eq!(config.teams["sre"], ["engineering", "oncall"]);
    }

    #[test]
    fn durations_parse_with_units_or_as_seconds() {
        assert_eq!(
            ConfigDuration::parse("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            ConfigDuration::parse("10s").unwrap().0,
            Duration::from_secs(10)
        );
        assert_eq!(
            ConfigDuration::parse("2m").unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(
            ConfigDuration::parse("1h").unwrap().0,
            Duration::from_secs(3600)
        );
        assert!(ConfigDuration::parse("10").is_none());
        assert!(ConfigDuration::parse("s").is_none());
        assert!(ConfigDuration::parse("1d").is_none());
    }

    #[test]
    fn a_minimal_file_takes_the_documented_defaults() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        let warnings = config.validate().unwrap();
        assert_eq!(config.server.max_body_bytes, 1024 * 1024);
        assert_eq!(config.server.header_read_timeout.0, Duration::from_secs(10));
        assert_eq!(
            config.inbound.accept,
            vec![InboundKind::IdToken, InboundKind::AccessToken]
        );
        assert_eq!(
            config.server.protocol_versions.len(),
            KNOWN_PROTOCOL_VERSIONS.len()
        );
        let keys: Vec<_> = warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(keys, ["server.allowed_origins", "idp.client.secret"]);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = MINIMAL.replace("[server]", "[server]\nlisten_addr = \"x\"");
        assert!(matches!(
            Config::from_toml_str(&text),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            (
                "public_url = \"http://127.0.0.1:8080\"",
                "public_url = \"http://gw.example\"",
                "server.public_url",
            ),
            ("name = \"notes\"", "name = \"no/tes\"", "upstream[no/tes]"),
            (
                "everyone = true",
                "everyone = false",
                "upstream[notes].access[0]",
            ),
            (
                "allow = [\"*\"]",
                "allow = [\"\"]",
                "upstream[notes].access[0]",
            ),
            (
                "client = { id = \"gw\", secret = \"s\" }",
                "client = { id = \"gw\" }",
                "idp.client",
            ),
            (
                "authorization_server = \"https://as.example\"",
                "authorization_server = \"https://idp.example\"",
                "upstream[notes].credential",
            ),
        ];
        for (from, to, key) in cases {
            let config = Config::from_toml_str(&MINIMAL.replace(from, to)).unwrap();
            match config.validate() {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{to}"),
                other => panic!("{to}: {other:?}"),
            }
        }
    }

    fn with_upstream(block: &str) -> Result<Vec<Warning>, ConfigError> {
        let text = format!(
            "{MINIMAL}\n[[upstream]]\nname = \"b\"\nurl = \"https://b.example/mcp\"\n{block}\n\
             [[upstream.access]]\neveryone = true\nallow = [\"*\"]\n"
        );
        Config::from_toml_str(&text)?.validate()
    }

    #[test]
    fn bridging_modes_are_checked_offline() {
        let key = |r: Result<Vec<Warning>, ConfigError>| match r {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key(with_upstream(
                "credential = { mode = \"static\", secret_env = \"A\", secret_file = \"f\" }"
            )),
            "upstream[b].credential"
        );
        assert_eq!(
            key(with_upstream("credential = { mode = \"static\" }")),
            "upstream[b].credential"
        );
        assert_eq!(
            key(with_upstream(
                "credential = { mode = \"static\", header = \"host\", secret_env = \"A\" }"
            )),
            "upstream[b].credential.header"
        );
        assert_eq!(
            key(with_upstream(
                "credential = { mode = \"header_template\", headers = { \"x-u\" = \"{env}\" } }"
            )),
            "upstream[b].credential.headers"
        );
        assert_eq!(
            key(with_upstream(
                "credential = { mode = \"header_template\", headers = { \"x-u\" = \"{user}\" }, secret_env = \"A\" }"
            )),
            "upstream[b].credential"
        );
        assert_eq!(
            key(with_upstream(
                "credential = { mode = \"header_template\", headers = { \"x-k\" = \"{secret}\" } }"
            )),
            "upstream[b].credential"
        );
        assert_eq!(
            key(with_upstream(
                "credential = { mode = \"client_credentials\", authorization_server = \"https://as.b\", token_endpoint = \"http://as.b/token\", client = { id = \"g\", secret_env = \"A\" } }"
            )),
            "upstream[b].credential.token_endpoint"
        );
        // The secret itself is not a key of the bridging modes.
        assert!(matches!(
            Config::from_toml_str(&format!(
                "{MINIMAL}\n[[upstream]]\nname = \"b\"\nurl = \"https://b.example/mcp\"\n\
                 credential = {{ mode = \"static\", secret = \"x\" }}\n"
            )),
            Err(ConfigError::Parse(_))
        ));
        let warnings = with_upstream("credential = { mode = \"passthrough\" }").unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.key == "upstream[b].credential" && w.message.starts_with("passthrough")),
            "{warnings:?}"
        );
        with_upstream(
            "credential = { mode = \"header_template\", headers = { \"x-user\" = \"{user}\", \"authorization\" = \"Token {secret}\" }, secret_file = \"/run/k\" }",
        )
        .unwrap();
    }

    #[test]
    fn the_admin_block_needs_one_token_source() {
        for (admin, ok) in [
            ("[admin]\ntoken_env = \"T\"", true),
            ("[admin]\n", false),
            ("[admin]\ntoken_env = \"T\"\ntoken_file = \"f\"", false),
            ("[admin]\ntoken_env = \"T\"\napproval_ttl = 0", false),
            ("[metrics]\nrequire_admin_token = true", false),
        ] {
            let config = Config::from_toml_str(&format!("{MINIMAL}\n{admin}\n")).unwrap();
            assert_eq!(config.validate().is_ok(), ok, "{admin}");
        }
    }

    #[test]
    fn forwarding_a_credential_or_hop_by_hop_header_is_refused() {
        for header in [
            "authorization",
            "Connection",
            "x-forwarded-user",
            "cookie",
            "host",
        ] {
            let text = MINIMAL.replace(
                "public_url = \"http://127.0.0.1:8080\"",
                &format!(
                    "public_url = \"http://127.0.0.1:8080\"\nforward_headers = [\"{header}\"]"
                ),
            );
            let config = Config::from_toml_str(&text).unwrap();
            assert!(
                matches!(config.validate(), Err(ConfigError::Invalid { ref key, .. }) if key == "server.forward_headers"),
                "{header}"
            );
        }
    }

    #[test]
    fn secrets_come_from_the_environment_and_never_print() {
        let client = ClientConfig {
            id: "gw".into(),
            auth: AuthMethod::ClientSecretBasic,
            secret: Some(ClientSecret::new("inline-secret-value")),
            secret_env: None,
            secret_file: None,
            key_file: None,
            key_alg: None,
            key_id: None,
        };
        assert!(!format!("{client:?}").contains("inline-secret-value"));
        let from_env = ClientConfig {
            secret: None,
            secret_env: Some("IDJAG_GATEWAY_TEST_UNSET_VARIABLE".into()),
            ..client
        };
        match from_env.credentials("idp.client", idjag_core::SystemClock::shared()) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "idp.client.secret_env"),
            other => panic!("{other:?}"),
        }
    }
}
