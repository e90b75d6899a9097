//! `[[upstream]]`: the MCP servers behind the gateway, their access rules and per-tool
//! requirements.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::credential::CredentialConfig;
use super::tools::ToolConfig;
use idjag_ops::config::ConfigDuration;

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
    #[serde(default = "connect_timeout")]
    pub connect_timeout: ConfigDuration,
    /// Longest silence while waiting for or reading a response (there is no total
    /// timeout: SSE streams may run long). Keep it above the upstream's keep-alive
    /// interval (rmcp pings every 15 s). Default 60 s.
    #[serde(default = "read_timeout")]
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

fn connect_timeout() -> ConfigDuration {
    ConfigDuration::secs(5)
}

fn read_timeout() -> ConfigDuration {
    ConfigDuration::secs(60)
}
