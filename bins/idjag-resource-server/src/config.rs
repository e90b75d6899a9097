//! The configuration file: its TOML shape, read strictly (unknown keys are errors), and the
//! error that names the offending key. `resource-server.toml` beside this crate's manifest is
//! the commented reference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use idjag_ops::audit::AuditConfig;
use idjag_ops::listener::ListenerConfig;
use idjag_ops::reload::WatchOptions;
use idjag_ops::telemetry::TelemetryConfig;
use serde::Deserialize;

pub(crate) use idjag_ops::config::ConfigError;

/// The prefix of environment overrides (`IDJAG_RESOURCE__SERVER__LISTEN=...`).
pub(crate) const ENV_PREFIX: &str = "IDJAG_RESOURCE";

/// A configuration file read with its environment overrides.
pub(crate) type Loaded = idjag_ops::env::LoadedFile<Config>;

/// Reads and parses `path` strictly (unknown keys are errors) with the environment's overrides
/// (idjag-ops: every key can be set by `IDJAG_RESOURCE__<KEY>__<KEY>...`).
pub(crate) fn load(path: &Path) -> Result<Loaded, ConfigError> {
    idjag_ops::env::load_file(path, ENV_PREFIX)
}

/// The printer of `check-config --print`: idjag-ops' redaction rules, with the keys of this
/// file whose names only look secret (sections and settings about tokens, keys and
/// authorization, never a secret value) shown.
pub(crate) fn redactor() -> idjag_ops::env::Redactor {
    idjag_ops::env::Redactor::new()
        .shown("authorization_server")
        .shown("authorization_server.authorization_endpoint")
        .shown("signing.key")
        .shown("signing.published[*]")
        .shown("tokens")
        .shown("tokens.access_token_lifetime_secs")
        .shown("resources[*].authorization_detail_types")
        .shown("clients[*].introspect_all_tokens")
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The public listener (idjag-ops: address, TLS or `tls = "off"` with a reason, limits).
    pub(crate) server: ListenerConfig,
    /// The admin listener: `/healthz`, `/readyz`, `/metrics`.
    #[serde(default)]
    pub(crate) admin: Option<ListenerConfig>,
    #[serde(default)]
    pub(crate) telemetry: TelemetryConfig,
    /// Audit sinks (idjag-ops).
    #[serde(default)]
    pub(crate) audit: AuditConfig,
    #[serde(default)]
    pub(crate) reload: WatchOptions,
    /// Proxies whose `Forwarded`/`X-Forwarded-For` name the client in audit lines.
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) authorization_server: AuthorizationServerConfig,
    pub(crate) signing: SigningConfig,
    #[serde(default)]
    pub(crate) tokens: TokenConfig,
    #[serde(default)]
    pub(crate) trusted_idps: Vec<TrustedIdpConfig>,
    #[serde(default)]
    pub(crate) resources: Vec<ResourceConfig>,
    #[serde(default)]
    pub(crate) clients: Vec<ClientConfig>,
    #[serde(default)]
    pub(crate) store: Option<idjag_store::StoreConfig>,
}

/// `[authorization_server]`: who this server is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthorizationServerConfig {
    /// The issuer identifier (RFC 8414): every ID-JAG's `aud`.
    pub(crate) issuer: String,
    /// Exact extra values accepted as an ID-JAG's `aud`.
    #[serde(default)]
    pub(crate) audience_aliases: Vec<String>,
    /// `"none"` (default), `"refusing"`, or the URL of the host's own authorization endpoint.
    #[serde(default)]
    pub(crate) authorization_endpoint: Option<String>,
    /// Token and introspection request bodies (default 65536).
    #[serde(default)]
    pub(crate) max_body_bytes: Option<usize>,
    /// Deadline of one request (default 30 s).
    #[serde(default)]
    pub(crate) request_timeout_secs: Option<u64>,
    /// `"hashed"` (default) or `"plain"` local subjects in audit lines.
    #[serde(default)]
    pub(crate) audit_subjects: Option<String>,
}

/// `[signing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SigningConfig {
    /// The key that signs access tokens.
    pub(crate) key: KeyConfig,
    /// Other keys published in the JWKS: the previous signing key until the tokens it signed
    /// have expired, or the next one before it signs.
    #[serde(default)]
    pub(crate) published: Vec<KeyConfig>,
}

/// One key: a PKCS#8 PEM file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyConfig {
    pub(crate) file: PathBuf,
    pub(crate) alg: String,
    #[serde(default)]
    pub(crate) kid: Option<String>,
}

/// `[tokens]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenConfig {
    #[serde(default)]
    pub(crate) access_token_lifetime_secs: Option<u64>,
    #[serde(default)]
    pub(crate) beyond_id_jag_secs: Option<u64>,
    #[serde(default)]
    pub(crate) max_id_jag_lifetime_secs: Option<u64>,
    #[serde(default)]
    pub(crate) max_id_jag_age_secs: Option<u64>,
    #[serde(default)]
    pub(crate) leeway_secs: Option<u64>,
    #[serde(default)]
    pub(crate) max_assertion_bytes: Option<usize>,
    /// `"single_use"` (default) or `"allow_same_client"`.
    #[serde(default)]
    pub(crate) replay: Option<String>,
    /// `"refuse"` or `"bind"`: what an ID-JAG without `resource` gets.
    #[serde(default)]
    pub(crate) absent_resource: Option<String>,
    /// The resource an ID-JAG without `resource` is bound to (with `absent_resource = "bind"`).
    #[serde(default)]
    pub(crate) default_resource: Option<String>,
    /// Accepted signature algorithms (default: every supported asymmetric one).
    #[serde(default)]
    pub(crate) algorithms: Option<Vec<String>>,
}

/// `[[trusted_idps]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrustedIdpConfig {
    pub(crate) issuer: String,
    /// A fixed JWKS URL; without it, keys are found through the issuer's metadata.
    #[serde(default)]
    pub(crate) jwks_uri: Option<String>,
    /// Clients this IdP may vouch for (default: every client).
    #[serde(default)]
    pub(crate) clients: Option<Vec<String>>,
    /// Resources this IdP may vouch for (default: every resource).
    #[serde(default)]
    pub(crate) resources: Option<Vec<String>>,
    /// Accepted `tenant` claim values (default: no tenant check).
    #[serde(default)]
    pub(crate) tenants: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) subject: Option<SubjectConfig>,
    #[serde(default)]
    pub(crate) jwks_cache: Option<JwksCacheConfig>,
}

/// `[trusted_idps.subject]`: the IdP's user to the local subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectConfig {
    /// The ID-JAG claim naming the user (default `sub`).
    #[serde(default)]
    pub(crate) claim: Option<String>,
    /// IdP value -> local subject.
    #[serde(default)]
    pub(crate) map: BTreeMap<String, String>,
    /// `"refuse"` or `"use_claim"` for users not in `map` (default: `refuse` with a map,
    /// `use_claim` without one).
    #[serde(default)]
    pub(crate) unmapped: Option<String>,
    /// Prepended to claim values used as they are (not to mapped subjects).
    #[serde(default)]
    pub(crate) prefix: Option<String>,
}

/// `[trusted_idps.jwks_cache]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JwksCacheConfig {
    #[serde(default)]
    pub(crate) max_age_secs: Option<u64>,
    #[serde(default)]
    pub(crate) stale_if_error_secs: Option<u64>,
    #[serde(default)]
    pub(crate) cooldown_secs: Option<u64>,
    #[serde(default)]
    pub(crate) timeout_secs: Option<u64>,
}

/// `[[resources]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourceConfig {
    pub(crate) resource: String,
    pub(crate) scopes: Vec<String>,
    #[serde(default)]
    pub(crate) authorization_detail_types: Option<Vec<String>>,
}

/// `[[clients]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientConfig {
    pub(crate) client_id: String,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` (default: both secret
    /// methods with a secret, `private_key_jwt` with a `jwks_uri`).
    #[serde(default)]
    pub(crate) auth_methods: Option<Vec<String>>,
    /// An environment variable holding the secret.
    #[serde(default)]
    pub(crate) secret_env: Option<String>,
    /// A file holding the secret (one trailing newline ignored).
    #[serde(default)]
    pub(crate) secret_file: Option<PathBuf>,
    /// Where the client publishes its `private_key_jwt` keys.
    #[serde(default)]
    pub(crate) jwks_uri: Option<String>,
    /// May introspect every token of this server (a resource server).
    #[serde(default)]
    pub(crate) introspect_all_tokens: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_the_line_never_the_value() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"\nplain_http_reason = \"t\"\n\
                    [authorization_server]\nissuer = \"http://127.0.0.1:1\"\n\
                    [signing]\nkey = { file = \"k.pem\", alg = \"ES256\" }\n\
                    [[clients]]\nclient_id = \"a\"\nsecret = \"hunter2\"\n";
        let error = idjag_ops::config::parse_toml::<Config>(text).unwrap_err();
        assert_eq!(error.key, "clients[0].secret (line 11)");
        assert!(
            error.problem.starts_with("unknown field `secret`"),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"));

        let error = idjag_ops::config::parse_toml::<Config>("[server]\nlisten = 1\n").unwrap_err();
        assert_eq!(error.key, "server.listen (line 2)");
        let error = idjag_ops::config::parse_toml::<Config>("[server\n").unwrap_err();
        assert!(error.key.starts_with("(file)"), "{error}");
    }
}
