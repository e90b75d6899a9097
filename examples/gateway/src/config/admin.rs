//! `[admin]`: the administrator API.

use std::path::PathBuf;

use serde::Deserialize;

use super::duration::{ConfigDuration, secs};

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
    #[serde(default = "approval_ttl")]
    pub approval_ttl: ConfigDuration,
    /// Most calls waiting for approval; more are refused. Default 1 000.
    #[serde(default = "max_pending_approvals")]
    pub max_pending_approvals: usize,
    /// How long a revocation lasts unless lifted or given its own duration. Default 24 h.
    #[serde(default = "revocation_ttl")]
    pub revocation_ttl: ConfigDuration,
}

/// Without `[admin]`: how long a held call would wait (calls can never be approved then).
pub const DEFAULT_APPROVAL_TTL: ConfigDuration =
    ConfigDuration(std::time::Duration::from_secs(900));
/// Without `[admin]`: most calls held at once.
pub const DEFAULT_MAX_PENDING_APPROVALS: usize = 1000;

fn approval_ttl() -> ConfigDuration {
    DEFAULT_APPROVAL_TTL
}

fn max_pending_approvals() -> usize {
    DEFAULT_MAX_PENDING_APPROVALS
}

fn revocation_ttl() -> ConfigDuration {
    secs(24 * 3600)
}
