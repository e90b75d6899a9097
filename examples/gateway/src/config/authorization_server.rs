//! `[authorization_server]`: the gateway as the OAuth authorization server of its own routes
//! (MCP authorization: RFC 8414 metadata, client registration, the authorization code flow
//! with PKCE, refresh-token rotation, RFC 7009 revocation, and the RFC 7523 JWT-bearer grant
//! with ID-JAGs from the enterprise IdP). The user signs in at the enterprise IdP (`[idp]`):
//! the gateway is an OIDC confidential client there, with the `[idp.client]` registration.
//! Absent: off, and the routes' metadata names the IdP as before.

use std::path::PathBuf;

use idjag_core::ClientSecret;
use serde::Deserialize;

use idjag_ops::config::ConfigDuration;

/// `[authorization_server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorizationServerConfig {
    /// A PKCS#8 PEM file with the key that signs the gateway's access tokens. Absent: a key
    /// is generated at start (tokens do not survive a restart; `check-config` warns).
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// The signing key's algorithm. Default ES256.
    #[serde(default = "signing_alg")]
    pub signing_alg: String,
    /// The environment variable holding the 32-byte sealing key (64 hex digits or 43
    /// base64url characters): it encrypts the stored IdP tokens, the login state and the
    /// dynamically registered client ids. Set at most one of `seal_key_env`, `seal_key_file`.
    #[serde(default)]
    pub seal_key_env: Option<String>,
    /// A file holding the sealing key. Absent (with `seal_key_env`): generated at start
    /// (`check-config` warns).
    #[serde(default)]
    pub seal_key_file: Option<PathBuf>,
    /// Lifetime of the gateway's access tokens. Default 5 min, at most 1 h.
    #[serde(default = "access_token_lifetime")]
    pub access_token_lifetime: ConfigDuration,
    /// Lifetime of a refresh-token family (from the sign-in; rotation does not extend it).
    /// Default 24 h.
    #[serde(default = "refresh_token_lifetime")]
    pub refresh_token_lifetime: ConfigDuration,
    /// Lifetime of an authorization code. Default 60 s, at most 10 min.
    #[serde(default = "code_lifetime")]
    pub code_lifetime: ConfigDuration,
    /// How long the user has to sign in at the IdP. Default 10 min.
    #[serde(default = "login_timeout")]
    pub login_timeout: ConfigDuration,
    /// The IdP's authorization endpoint; default: from its OIDC metadata.
    #[serde(default)]
    pub idp_authorization_endpoint: Option<String>,
    /// The scope asked of the IdP. Default `openid offline_access` (the refresh token lets
    /// the gateway renew the user's ID token for ID-JAG upstreams).
    #[serde(default = "idp_scope")]
    pub idp_scope: String,
    /// What the gateway presents as the token-exchange subject for ID-JAG upstreams: the
    /// user's stored ID token (`id_token`, the default; renewed with the stored IdP refresh
    /// token when it has expired) or the stored IdP refresh token itself (`refresh_token`,
    /// for IdPs that accept one, requirement TX-06).
    #[serde(default)]
    pub egress_subject: EgressSubject,
    /// Whether the token endpoint also takes the RFC 7523 JWT-bearer grant with ID-JAGs the
    /// IdP issued for this authorization server (EMA clients). Default true.
    #[serde(default = "yes")]
    pub id_jag: bool,
    /// RFC 7591 dynamic client registration: `off`, `open` or `token` (an initial access
    /// token from `registration_token_env` / `registration_token_file`). Default `open`.
    #[serde(default)]
    pub registration: RegistrationMode,
    /// The initial access token of `registration = "token"`, from this variable.
    #[serde(default)]
    pub registration_token_env: Option<String>,
    /// The initial access token of `registration = "token"`, from this file.
    #[serde(default)]
    pub registration_token_file: Option<PathBuf>,
    /// Client ID Metadata Documents (an `https` URL as `client_id`).
    #[serde(default)]
    pub client_metadata_documents: MetadataDocumentsConfig,
    /// Which clients may sign users in. Absent: every client that can be resolved
    /// (configured, registered or with a valid metadata document).
    #[serde(default)]
    pub allowed_clients: Option<AllowedClients>,
    /// `[[authorization_server.client]]`: pre-registered clients.
    #[serde(default, rename = "client")]
    pub clients: Vec<AsClientConfig>,
}

/// RFC 7591 dynamic client registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RegistrationMode {
    /// No registration endpoint.
    Off,
    /// Anyone may register (the clients still pass the allow-list).
    #[default]
    Open,
    /// Registration needs the initial access token (RFC 7591 §3).
    Token,
}

/// What the gateway presents as the token-exchange subject for ID-JAG upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EgressSubject {
    /// The user's stored IdP ID token, renewed when expired.
    #[default]
    IdToken,
    /// The user's stored IdP refresh token.
    RefreshToken,
}

/// Client ID Metadata Documents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MetadataDocumentsConfig {
    /// Whether an `https` URL is accepted as a `client_id`. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Largest document. Default 5 KiB.
    #[serde(default = "metadata_max_bytes")]
    pub max_bytes: usize,
    /// Time to fetch one. Default 5 s.
    #[serde(default = "metadata_timeout")]
    pub timeout: ConfigDuration,
    /// How long a fetched document is used. Default 5 min.
    #[serde(default = "metadata_cache_ttl")]
    pub cache_ttl: ConfigDuration,
    /// **Tests only.** Also fetch `http` URLs on loopback (127.0.0.0/8, `[::1]`,
    /// `localhost`), which the address policy otherwise refuses. Default false.
    #[serde(default)]
    pub allow_loopback: bool,
}

impl Default for MetadataDocumentsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: metadata_max_bytes(),
            timeout: metadata_timeout(),
            cache_ttl: metadata_cache_ttl(),
            allow_loopback: false,
        }
    }
}

/// The operator's allow-list of clients.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AllowedClients {
    /// Exact client ids (a metadata document URL, a configured id).
    #[serde(default)]
    pub ids: Vec<String>,
    /// Host patterns: `claude.ai` exactly, or `*.example.com` for any subdomain. A metadata
    /// document is allowed when its URL's host matches; a dynamically registered client
    /// when every redirect URI's host does.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// A pre-registered client (`[[authorization_server.client]]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AsClientConfig {
    /// The client id.
    pub id: String,
    /// A name shown on pages.
    #[serde(default)]
    pub name: Option<String>,
    /// Its redirect URIs (exact; loopback ones match any port, RFC 8252 §7.3). Empty: the
    /// client can use only the JWT-bearer grant.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The secret inline (demos only).
    #[serde(default)]
    pub secret: Option<ClientSecret>,
    /// The environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the secret. No secret at all: a public client.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

impl std::fmt::Debug for AsClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsClientConfig")
            .field("id", &self.id)
            .field("redirect_uris", &self.redirect_uris)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .finish_non_exhaustive()
    }
}

fn yes() -> bool {
    true
}

fn signing_alg() -> String {
    "ES256".to_owned()
}

fn access_token_lifetime() -> ConfigDuration {
    ConfigDuration::secs(300)
}

fn refresh_token_lifetime() -> ConfigDuration {
    ConfigDuration::secs(24 * 3600)
}

fn code_lifetime() -> ConfigDuration {
    ConfigDuration::secs(60)
}

fn login_timeout() -> ConfigDuration {
    ConfigDuration::secs(600)
}

fn idp_scope() -> String {
    "openid offline_access".to_owned()
}

fn metadata_max_bytes() -> usize {
    5 * 1024
}

fn metadata_timeout() -> ConfigDuration {
    ConfigDuration::secs(5)
}

fn metadata_cache_ttl() -> ConfigDuration {
    ConfigDuration::secs(300)
}
