//! The configuration file: its TOML shape, read strictly (unknown keys are errors), and the
//! error that names the offending key. `issuer.toml` beside this crate's manifest is the
//! commented reference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use idjag_ops::audit::AuditConfig;
use idjag_ops::listener::ListenerConfig;
use idjag_ops::reload::WatchOptions;
use idjag_ops::telemetry::TelemetryConfig;
use serde::Deserialize;

pub(crate) use idjag_ops::config::ConfigError;

/// The prefix of environment overrides (`IDJAG_ISSUER__SERVER__LISTEN=...`).
pub(crate) const ENV_PREFIX: &str = "IDJAG_ISSUER";

/// A configuration file read with its environment overrides.
pub(crate) type Loaded = idjag_ops::env::LoadedFile<Config>;

/// Reads and parses `path` strictly (unknown keys are errors) with the environment's overrides
/// (idjag-ops: every key can be set by `IDJAG_ISSUER__<KEY>__<KEY>...`).
pub(crate) fn load(path: &Path) -> Result<Loaded, ConfigError> {
    idjag_ops::env::load_file(path, ENV_PREFIX)
}

/// The printer of `check-config --print`: idjag-ops' redaction rules, with the keys of this
/// file whose names only look secret (sections and settings about tokens, keys and
/// authorization, never a secret value) shown.
pub(crate) fn redactor() -> idjag_ops::env::Redactor {
    idjag_ops::env::Redactor::new()
        .shown("token_exchange")
        .shown("token_exchange.authorization_endpoint")
        .shown("token_exchange.accept_token_endpoint_as_assertion_audience")
        .shown("subject_tokens")
        .shown("subject_tokens.id_tokens")
        .shown("subject_tokens.refresh_tokens")
        .shown("upstream.token_endpoint")
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
    pub(crate) token_exchange: TokenExchangeConfig,
    pub(crate) policy: PolicyConfig,
    pub(crate) signing: SigningConfig,
    #[serde(default)]
    pub(crate) subject_tokens: SubjectTokensConfig,
    #[serde(default)]
    pub(crate) upstream: Option<UpstreamConfig>,
    #[serde(default)]
    pub(crate) clients: Vec<ClientConfig>,
    #[serde(default)]
    pub(crate) store: Option<idjag_store::StoreConfig>,
}

/// `[token_exchange]`: who this issuer is and how it issues.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenExchangeConfig {
    /// The issuer identifier: every ID-JAG's `iss`.
    pub(crate) issuer: String,
    /// The host's sign-in endpoint, advertised in the metadata (optional).
    #[serde(default)]
    pub(crate) authorization_endpoint: Option<String>,
    #[serde(default)]
    pub(crate) id_jag_lifetime_secs: Option<u64>,
    /// Put this `tenant` in every ID-JAG.
    #[serde(default)]
    pub(crate) tenant: Option<String>,
    /// Validate DPoP proofs and bind ID-JAGs to their key (default true).
    #[serde(default)]
    pub(crate) dpop: Option<bool>,
    /// Also accept client assertions whose `aud` is the token endpoint URL.
    #[serde(default)]
    pub(crate) accept_token_endpoint_as_assertion_audience: bool,
    #[serde(default)]
    pub(crate) max_body_bytes: Option<usize>,
    /// Deadline of one request (default 30 s).
    #[serde(default)]
    pub(crate) request_timeout_secs: Option<u64>,
    /// `"hashed"` (default), `"plain"` or `"omit"` subjects in audit lines.
    #[serde(default)]
    pub(crate) audit_subjects: Option<String>,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyConfig {
    /// The idjag-idp TOML policy file.
    pub(crate) file: PathBuf,
}

/// `[signing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SigningConfig {
    /// The rotation list, oldest first: new keys are appended.
    pub(crate) keys: Vec<KeyConfig>,
    /// How long a new key is published before it signs (default 600 s).
    #[serde(default)]
    pub(crate) lead_time_secs: Option<u64>,
    /// How long a retired key stays published (default 3900 s).
    #[serde(default)]
    pub(crate) retention_secs: Option<u64>,
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

/// `[subject_tokens]`: which subject tokens are accepted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectTokensConfig {
    /// `"own"` (ID tokens this issuer's keys signed, with its issuer; the default without
    /// `[upstream]`) or `"upstream"` (the default with it).
    #[serde(default)]
    pub(crate) id_tokens: Option<String>,
    /// `"none"` (default) or `"upstream"`: upstream refresh tokens, redeemed at the upstream
    /// token endpoint with the client's upstream credentials.
    #[serde(default)]
    pub(crate) refresh_tokens: Option<String>,
    /// `"invalid_grant"` (default) or `"invalid_request"` for a refused subject token.
    #[serde(default)]
    pub(crate) error: Option<String>,
}

/// `[upstream]`: the OpenID provider whose ID tokens this issuer bridges.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamConfig {
    /// Its issuer identifier, exactly as in its ID tokens' `iss`.
    pub(crate) issuer: String,
    /// A fixed JWKS URL (default: from its discovery document).
    #[serde(default)]
    pub(crate) jwks_uri: Option<String>,
    /// Its token endpoint, for refresh tokens (default: from its discovery document).
    #[serde(default)]
    pub(crate) token_endpoint: Option<String>,
    /// Accepted ID-token algorithms (default: every supported asymmetric one).
    #[serde(default)]
    pub(crate) algorithms: Option<Vec<String>>,
    /// The claim naming the user (default `sub`; a dotted path reaches nested claims).
    #[serde(default)]
    pub(crate) subject_claim: Option<String>,
    /// The claim holding the user's groups (a string or an array of strings; default none).
    #[serde(default)]
    pub(crate) groups_claim: Option<String>,
    /// The claim holding the email (default `email`).
    #[serde(default)]
    pub(crate) email_claim: Option<String>,
    /// The claim holding the tenant (default none).
    #[serde(default)]
    pub(crate) tenant_claim: Option<String>,
    /// Claims that must be present with exactly these string values.
    #[serde(default)]
    pub(crate) required_claims: BTreeMap<String, String>,
    /// Oldest accepted ID token `iat` (default 86400 s).
    #[serde(default)]
    pub(crate) max_age_secs: Option<u64>,
    /// Clock-skew leeway (default 30 s, at most 300).
    #[serde(default)]
    pub(crate) leeway_secs: Option<u64>,
    /// The `scope` sent with a refresh (default `openid`).
    #[serde(default)]
    pub(crate) refresh_scope: Option<String>,
    #[serde(default)]
    pub(crate) jwks_cache: Option<JwksCacheConfig>,
}

/// `[upstream.jwks_cache]`.
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

/// `[[clients]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientConfig {
    pub(crate) client_id: String,
    #[serde(default)]
    pub(crate) auth_methods: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) secret_env: Option<String>,
    #[serde(default)]
    pub(crate) secret_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) jwks_uri: Option<String>,
    /// Its client id at the upstream IdP: the upstream ID tokens' `aud` (default `client_id`).
    #[serde(default)]
    pub(crate) upstream_client_id: Option<String>,
    /// Its secret at the upstream IdP, only to redeem upstream refresh tokens.
    #[serde(default)]
    pub(crate) upstream_secret_env: Option<String>,
    #[serde(default)]
    pub(crate) upstream_secret_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_the_line_never_the_value() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"\nplain_http_reason = \"t\"\n\
                    [token_exchange]\nissuer = \"http://127.0.0.1:1\"\n\
                    [policy]\nfile = \"p.toml\"\n\
                    [signing]\nkeys = [{ file = \"k.pem\", alg = \"ES256\" }]\n\
                    [[clients]]\nclient_id = \"a\"\nsecret = \"hunter2\"\n";
        let error = idjag_ops::config::parse_toml::<Config>(text).unwrap_err();
        assert_eq!(error.key, "clients[0].secret (line 13)");
        assert!(!error.to_string().contains("hunter2"));
        let error = idjag_ops::config::parse_toml::<Config>(
            "[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"\n",
        )
        .unwrap_err();
        assert!(
            error.problem.contains("missing field `token_exchange`"),
            "{error}"
        );
    }
}
