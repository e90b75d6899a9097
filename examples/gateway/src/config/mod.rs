//! The gateway's one TOML configuration file: its shape and its defaults, section by
//! section. Nothing here checks values beyond their types: [`crate::plan`] turns a
//! [`Config`] into the runtime plan, parsing every value once and naming the key of any
//! problem. Parsing is strict (unknown keys are errors, so a typo never silently drops a
//! setting). The commented example `examples/gateway/gateway.toml` documents every key.
//!
//! | module | section |
//! |---|---|
//! | [`server`] | `[server]`: listener, public URL, limits and timeouts |
//! | [`idp`] | `[idp]`: the enterprise IdP |
//! | [`client`] | a client registration (`[idp.client]`, an upstream credential's `client`) |
//! | [`inbound`] | `[inbound]`: accepted token kinds and limits |
//! | [`upstream`] | `[[upstream]]` and `[[upstream.access]]` |
//! | [`credential`] | `[upstream.credential]`: ID-JAG and the bridging modes |
//! | [`tools`] | `[upstream.tools.<name>]`: scopes, approval, argument rules |
//! | [`audit`] | `[audit]` |
//! | [`admin`] | `[admin]` |
//! | [`authorization_server`] | `[authorization_server]`: the gateway's own OAuth authorization server |
//! | [`metrics`] | `[metrics]` |
//! | [`duration`] | durations as `"500ms"`, `"10s"`, `"5m"`, `"1h"` |

pub mod admin;
pub mod audit;
pub mod authorization_server;
pub mod client;
pub mod credential;
pub mod duration;
pub mod idp;
pub mod inbound;
pub mod metrics;
pub mod server;
pub mod tools;
pub mod upstream;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub use admin::AdminConfig;
pub use audit::{ArgumentMode, AuditConfig, AuditOutput};
pub use authorization_server::{
    AllowedClients, AsClientConfig, AuthorizationServerConfig, EgressSubject,
    MetadataDocumentsConfig, RegistrationMode,
};
pub use client::{AuthMethod, ClientRegistration};
pub use credential::CredentialConfig;
pub use duration::ConfigDuration;
pub use idp::IdpConfig;
pub use inbound::{InboundConfig, InboundKind};
pub use metrics::MetricsConfig;
pub use server::{KNOWN_PROTOCOL_VERSIONS, ServerConfig, SseExpiry};
pub use tools::{GuardRuleConfig, ToolConfig};
pub use upstream::{AccessRuleConfig, UpstreamConfig};

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

/// [`ConfigError::Invalid`] for `key`.
pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
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
    /// `[authorization_server]`: the gateway as the OAuth authorization server of its
    /// routes. Absent: off.
    #[serde(default)]
    pub authorization_server: Option<AuthorizationServerConfig>,
    /// `[[upstream]]`: the MCP servers behind the gateway.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
}

impl Config {
    /// Parses a configuration (without checking its values: see [`crate::plan::Plan`]).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Reads and parses a file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.kind().to_string(),
        })?;
        Self::from_toml_str(&text)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    /// The smallest file: a listener, an IdP and one upstream open to everyone.
    pub(crate) const MINIMAL: &str = r#"
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
    fn durations_are_written_in_their_largest_whole_unit() {
        for (duration, text) in [
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_millis(10), "10ms"),
            (Duration::ZERO, "0s"),
        ] {
            let written = ConfigDuration(duration).to_string();
            assert_eq!(written, text);
            assert_eq!(ConfigDuration::parse(&written).unwrap().0, duration);
        }
    }

    #[test]
    fn a_minimal_file_takes_the_documented_defaults() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.server.max_body_bytes, 1024 * 1024);
        assert_eq!(config.server.header_read_timeout.0, Duration::from_secs(10));
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
            config.server.protocol_versions.len(),
            KNOWN_PROTOCOL_VERSIONS.len()
        );
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
