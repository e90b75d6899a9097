//! `[approvals]`: how people learn of held calls and act on them: the admin page, the
//! webhook notification, the status page linked from MCP URL-mode elicitation.

use std::path::PathBuf;

use serde::Deserialize;

use idjag_ops::config::ConfigDuration;

/// `[approvals]`. Absent: no page, no notification; calls are still held and decided through
/// the admin API (`[admin]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApprovalsConfig {
    /// The admin page under `/admin/page` (needs `[admin]`: people sign in with the admin
    /// token). Default off.
    #[serde(default)]
    pub page: bool,
    /// Where people reach the admin API and page (e.g. the admin listener behind its proxy):
    /// the base of links in notifications. Default the admin listener's address. A cookie set
    /// over `https` (or any host but loopback) is `Secure`.
    #[serde(default)]
    pub admin_url: Option<String>,
    /// How long a page sign-in lasts. Default 1 h.
    #[serde(default = "session_ttl")]
    pub session_ttl: ConfigDuration,
    /// Most page sign-ins at once (the oldest are forgotten beyond). Default 1 000.
    #[serde(default = "max_sessions")]
    pub max_sessions: u64,
    /// A webhook told of each newly held call (Slack- and Teams-style incoming webhooks).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Whether a held call of a client that declared URL-mode elicitation (MCP 2025-11-25)
    /// points it at the call's status page. Default on.
    #[serde(default = "yes")]
    pub elicitation: bool,
}

/// `[approvals.webhook]`: its URL is a secret (incoming-webhook URLs carry their own
/// credential), read from the environment or a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// An environment variable holding the webhook URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// A file holding the webhook URL.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Attempts per notification (a network error, 429 or 5xx is tried again, with backoff).
    /// Default 3, at most 10.
    #[serde(default = "attempts")]
    pub attempts: u32,
    /// Time allowed for each attempt. Default 5 s.
    #[serde(default = "timeout")]
    pub timeout: ConfigDuration,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            page: false,
            admin_url: None,
            session_ttl: session_ttl(),
            max_sessions: max_sessions(),
            webhook: None,
            elicitation: true,
        }
    }
}

fn session_ttl() -> ConfigDuration {
    ConfigDuration::secs(3600)
}

fn max_sessions() -> u64 {
    1000
}

fn yes() -> bool {
    true
}

fn attempts() -> u32 {
    3
}

fn timeout() -> ConfigDuration {
    ConfigDuration::secs(5)
}
