//! `[upstream.stdio]`: an MCP server run as a child process and spoken to over MCP's stdio
//! transport, instead of an MCP endpoint URL.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use idjag_ops::config::ConfigDuration;

/// `[upstream.stdio]`: the command the gateway runs, its environment and its lifecycle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StdioConfig {
    /// The program: an absolute path, or a name looked up in the child's `PATH` (which must
    /// then be allow-listed or set in `env`).
    pub program: String,
    /// Its arguments, passed as they are (no shell).
    #[serde(default)]
    pub args: Vec<String>,
    /// Its working directory. Default: the gateway's.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// Names of the gateway's environment variables the child gets (when set). The child's
    /// environment starts empty: nothing else of the gateway's is inherited.
    #[serde(default)]
    pub env_allow: Vec<String>,
    /// Variables set in the child's environment, name → value (not for secrets: use a
    /// credential mode and `credential_env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The variable that receives the upstream credential of the `[upstream.credential]`
    /// mode: the token of an `Authorization: Bearer` value, else the mode's one header
    /// value. Required unless the mode is `none`.
    #[serde(default)]
    pub credential_env: Option<String>,
    /// `per_user` (default): one process per user; `shared`: one process for everyone
    /// (only for modes without a per-user credential: `none`, `static`,
    /// `client_credentials`).
    #[serde(default)]
    pub isolation: Isolation,
    /// A process unused this long is ended. Default 5 min.
    #[serde(default = "idle_timeout")]
    pub idle_timeout: ConfigDuration,
    /// Most processes of this upstream at once (all users). Default 32.
    #[serde(default = "max_processes")]
    pub max_processes: usize,
    /// The first wait before a crashed process is started again; doubled after each crash
    /// in a row, up to `max_restart_backoff`. Default 1 s.
    #[serde(default = "restart_backoff")]
    pub restart_backoff: ConfigDuration,
    /// The longest wait before a restart. Default 60 s.
    #[serde(default = "max_restart_backoff")]
    pub max_restart_backoff: ConfigDuration,
}

/// Who shares a stdio upstream's process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Isolation {
    /// One process per user: no state is shared between users.
    #[default]
    PerUser,
    /// One process for every user.
    Shared,
}

fn idle_timeout() -> ConfigDuration {
    ConfigDuration::secs(300)
}

fn max_processes() -> usize {
    32
}

fn restart_backoff() -> ConfigDuration {
    ConfigDuration::secs(1)
}

fn max_restart_backoff() -> ConfigDuration {
    ConfigDuration::secs(60)
}
