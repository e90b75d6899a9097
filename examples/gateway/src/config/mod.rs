//! The gateway's one TOML configuration file: its shape and its defaults, section by
//! section. Nothing here checks values beyond their types: [`crate::plan`] turns a
//! [`Config`] into the runtime plan, parsing every value once and naming the key of any
//! problem. Parsing is strict (unknown keys are errors, so a typo never silently drops a
//! setting). The commented example `examples/gateway/gateway.toml` documents every key.
//!
//! | module | section |
//! |---|---|
//! | [`server`] | `[server]`: the public listener (`idjag-ops`), public URL, proxy limits |
//! | [`idp`] | `[idp]`: the enterprise IdP |
//! | [`client`] | a client registration (`[idp.client]`, an upstream credential's `client`) |
//! | [`inbound`] | `[inbound]`: accepted token kinds, groups and limits |
//! | [`upstream`] | `[[upstream]]` and `[[upstream.access]]` |
//! | [`credential`] | `[upstream.credential]`: ID-JAG and the bridging modes |
//! | [`stdio`] | `[upstream.stdio]`: an MCP server run as a child process |
//! | [`tools`] | `[upstream.tools.<name>]`: scopes, approval, argument rules |
//! | [`audit`] | `[audit]`: sinks (`idjag-ops`) and tool arguments |
//! | [`admin`] | `[admin]`: the admin listener (`idjag-ops`) and the administrator API |
//! | [`authorization_server`] | `[authorization_server]`: the gateway's own OAuth authorization server |
//! | [`limits`] | `[limits]`: per user, agent and upstream |
//! | [`approvals`] | `[approvals]`: the admin page, the webhook notification, elicitation |
//! | [`metrics`] | `[metrics]` |
//! | `[store]` | where revocations, approvals and session bindings live: idjag-store's [`StoreConfig`] |
//!
//! `[telemetry]` and `[reload]` are `idjag-ops`'s shapes as they are
//! ([`TelemetryConfig`], [`WatchOptions`]). Durations are
//! [`ConfigDuration`]s (`"500ms"`, `"10s"`, `"5m"`, `"1h"` or a number of seconds), problems
//! [`ConfigError`]s naming their key.
//!
//! ## Environment overrides
//!
//! Every key can be set from the environment: `IDJAG_GATEWAY__` then the keys from the top of
//! the file, upper-cased, separated by two underscores, array elements by index
//! (`IDJAG_GATEWAY__SERVER__LISTEN=0.0.0.0:8443`,
//! `IDJAG_GATEWAY__UPSTREAM__0__URL=https://notes.internal/mcp`). See [`Config::load`] and
//! `idjag_ops::env`.

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod authorization_server;
pub mod client;
pub mod credential;
pub mod idp;
pub mod inbound;
pub mod limits;
pub mod metrics;
pub mod server;
mod split;
pub mod stdio;
pub mod tools;
pub mod upstream;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use idjag_ops::env::{EnvError, Overrides, Redactor};
use idjag_ops::reload::WatchOptions;
use idjag_ops::telemetry::TelemetryConfig;
use serde::Deserialize;

pub use admin::{AdminApiConfig, AdminConfig};
pub use approvals::{ApprovalsConfig, WebhookConfig};
pub use audit::{ArgumentMode, ArgumentsConfig, AuditSettings};
pub use authorization_server::{
    AllowedClients, AsClientConfig, AuthorizationServerConfig, EgressSubject,
    MetadataDocumentsConfig, RegistrationMode,
};
pub use client::{AuthMethod, ClientRegistration};
pub use credential::CredentialConfig;
pub use idjag_ops::config::{ConfigDuration, ConfigError};
pub use idp::IdpConfig;
pub use inbound::{InboundConfig, InboundKind};
pub use limits::{LimitsConfig, PrincipalLimitsConfig, RateConfig};
pub use metrics::MetricsConfig;
pub use server::{KNOWN_PROTOCOL_VERSIONS, ProxyConfig, ServerConfig, SseExpiry};
pub use stdio::{Isolation, StdioConfig};
pub use tools::{GuardRuleConfig, ToolConfig};
pub use upstream::{AccessRuleConfig, UpstreamConfig};

pub use idjag_store::{BackendConfig, RedisConfig, StoreConfig};

/// The prefix of the gateway's environment overrides (`IDJAG_GATEWAY__SERVER__LISTEN`).
pub const ENV_PREFIX: &str = "IDJAG_GATEWAY";

/// [`ConfigError`] for `key`.
pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(key, problem)
}

/// Writes a duration the way the configuration reads it (`"1h"`, `"5m"`, `"10s"`,
/// `"500ms"`), for the rendered plan.
pub fn serialize_duration<S: serde::Serializer>(
    duration: &Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(&ConfigDuration(*duration))
}

/// Why a configuration could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not TOML.
    #[error("{0}")]
    Syntax(String),
    /// An environment override is not acceptable (it is named).
    #[error(transparent)]
    Env(EnvError),
    /// A value is not acceptable for this schema (its key is named).
    #[error("{}", invalid_text(.0))]
    Invalid(#[from] ConfigError),
}

/// `key: problem`, or the problem alone for the file as a whole.
fn invalid_text(error: &ConfigError) -> String {
    if error.key.is_empty() {
        error.problem.clone()
    } else {
        error.to_string()
    }
}

impl From<EnvError> for LoadError {
    fn from(error: EnvError) -> Self {
        match error {
            EnvError::Config(error) => Self::Invalid(error),
            other => Self::Env(other),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`: the public listener, public URL, limits and timeouts.
    pub server: ServerConfig,
    /// `[idp]`: the enterprise IdP whose tokens come in and where ID-JAGs are asked for.
    pub idp: IdpConfig,
    /// `[inbound]`: which IdP tokens are accepted and how they become an identity.
    #[serde(default)]
    pub inbound: InboundConfig,
    /// `[teams]`: IdP group → gateway teams.
    #[serde(default)]
    pub teams: BTreeMap<String, Vec<String>>,
    /// `[audit]`: the audit sinks and what they record.
    #[serde(default)]
    pub audit: AuditSettings,
    /// `[admin]`: the admin listener and the administrator API. Absent: neither.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// `[approvals]`: the admin page, the webhook notification, elicitation.
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    /// `[metrics]`: Prometheus metrics on the admin listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[authorization_server]`: the gateway as the OAuth authorization server of its
    /// routes. Absent: off.
    #[serde(default)]
    pub authorization_server: Option<AuthorizationServerConfig>,
    /// `[limits]`: per user, agent and upstream. Absent: none.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[telemetry]`: logs and OpenTelemetry traces.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// `[reload]`: configuration reload on SIGHUP and on file change.
    #[serde(default)]
    pub reload: WatchOptions,
    /// `[[upstream]]`: the MCP servers behind the gateway.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
    /// `[store]`: where revocations, approvals and session bindings live (idjag-store's
    /// section, shared with the other idjag servers). Absent: the embedded durable store at
    /// [`DEFAULT_STORE_PATH`], relative to the working directory.
    #[serde(default)]
    pub store: Option<StoreConfig>,
}

/// Values `check-config --print` redacts beyond `idjag-ops`'s name and value rules: header
/// maps that may carry an API key under any name.
pub const SECRET_PATHS: &[&str] = &[
    "audit.sinks[*].headers.*",
    "telemetry.traces.headers.*",
    "upstream[*].credential.headers.*",
];

/// The embedded store's file when the configuration has no `[store]` section: relative to
/// the gateway's working directory (run it from its state directory, e.g. systemd's
/// `StateDirectory=`).
pub const DEFAULT_STORE_PATH: &str = "idjag-gateway.redb";

impl Config {
    /// Parses a configuration (without checking its values: see [`crate::plan::Plan`]) and
    /// without environment overrides.
    pub fn from_toml_str(text: &str) -> Result<Self, LoadError> {
        Self::from_toml_str_with(text, &Overrides::default())
    }

    /// Parses a configuration with `overrides` applied.
    pub fn from_toml_str_with(text: &str, overrides: &Overrides) -> Result<Self, LoadError> {
        Ok(overrides.deserialize(Self::table(text)?)?)
    }

    /// Reads and parses a file, without environment overrides.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::from_path_with(path, &Overrides::default())
    }

    /// Reads and parses a file with `overrides` applied.
    pub fn from_path_with(
        path: impl AsRef<Path>,
        overrides: &Overrides,
    ) -> Result<Self, LoadError> {
        Self::from_toml_str_with(&read(path.as_ref())?, overrides)
    }

    /// What `serve` and `check-config` read: the file, with the process's
    /// `IDJAG_GATEWAY__…` overrides.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::from_path_with(path, &Overrides::from_env(ENV_PREFIX)?)
    }

    /// The effective configuration (the file with `overrides`) as TOML, secrets redacted:
    /// `check-config --print`.
    pub fn print_effective(
        path: impl AsRef<Path>,
        overrides: &Overrides,
    ) -> Result<String, LoadError> {
        let mut table = Self::table(&read(path.as_ref())?)?;
        overrides.apply(&mut table)?;
        let redactor = SECRET_PATHS
            .iter()
            .fold(Redactor::new(), |redactor, path| redactor.secret(path));
        Ok(redactor.print(&table))
    }

    fn table(text: &str) -> Result<toml::Table, LoadError> {
        toml::from_str(text).map_err(|e| LoadError::Syntax(e.to_string().trim_end().to_owned()))
    }
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| LoadError::Read {
        path: path.display().to_string(),
        reason: e.kind().to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    /// The smallest file: a listener, an IdP and one upstream open to everyone.
    pub(crate) const MINIMAL: &str = r#"
        [server]
        listen = "127.0.0.1:8080"
        tls = "off"
        plain_http_reason = "tests on loopback"
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
    fn a_minimal_file_takes_the_documented_defaults() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.server.proxy.max_body_bytes, 1024 * 1024);
        assert_eq!(
            config.server.listener.header_read_timeout.0,
            Duration::from_secs(10)
        );
        assert_eq!(
            config.inbound.accept,
            vec![
                InboundKind::IdToken,
                InboundKind::AccessToken,
                InboundKind::GatewayToken
            ]
        );
        assert!(config.authorization_server.is_none());
        assert_eq!(
            config.server.proxy.protocol_versions.len(),
            KNOWN_PROTOCOL_VERSIONS.len()
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = MINIMAL.replace("[server]", "[server]\nlisten_addr = \"x\"");
        let error = Config::from_toml_str(&text).unwrap_err();
        let LoadError::Invalid(error) = error else {
            panic!("{error:?}")
        };
        assert_eq!(error.key, "server");
        assert!(
            error.problem.starts_with("unknown field `listen_addr`"),
            "{error}"
        );
    }

    #[test]
    fn the_commented_example_parses() {
        let config = Config::from_toml_str(include_str!("../../gateway.toml")).unwrap();
        assert_eq!(config.upstreams[0].access.len(), 3);
        assert_eq!(config.teams["sre"], ["engineering", "oncall"]);
    }

    #[test]
    fn secrets_never_print() {
        let client = ClientRegistration {
            id: "gw".into(),
            auth: AuthMethod::ClientSecretBasic,
            secret: Some(idjag_core::ClientSecret::new("inline-secret-value")),
            secret_env: None,
            secret_file: None,
            key_file: None,
            key_alg: None,
            key_id: None,
        };
        assert!(!format!("{client:?}").contains("inline-secret-value"));
    }
}
