//! `[upstream.tools.<name>]`: what a call of one tool needs besides an allowing rule
//! (scopes, approval) and its argument rules (guardrails).

use serde::Deserialize;

/// `[upstream.tools.<name>]`: what a call of this tool needs besides an allowing rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ToolConfig {
    /// Scopes the inbound token must carry to call the tool (RFC 9068 access tokens carry
    /// `scope`; ID tokens carry none, so such a tool needs an access token).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Calls are held until an administrator approves them (through the admin API).
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

/// `[[upstream.tools.<name>.rules]]`: one argument rule.
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
