//! `[admin]`: the admin listener (`/metrics`, `/healthz`, `/readyz` and the administrator
//! API), never the public one.

use std::path::PathBuf;

use idjag_ops::config::ConfigDuration;
use idjag_ops::listener::ListenerConfig;
use serde::{Deserialize, Deserializer};

/// `[admin]`: the admin listener's keys ([`ListenerConfig`]) and the administrator API's
/// ([`AdminApiConfig`]) in one table. Absent: no admin listener, so no `/metrics`, no health
/// endpoints and no `/admin/` anywhere.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The admin listener.
    pub listener: ListenerConfig,
    /// The administrator API.
    pub api: AdminApiConfig,
}

impl<'de> Deserialize<'de> for AdminConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (listener, api) = super::split::split(deserializer, ListenerConfig::KEYS)?;
        Ok(Self { listener, api })
    }
}

/// The administrator API under `/admin/` (approvals, revocations), on the admin listener.
/// Without a token source it is not mounted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AdminApiConfig {
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
pub const DEFAULT_APPROVAL_TTL: ConfigDuration = ConfigDuration::secs(900);
/// Without `[admin]`: most calls held at once.
pub const DEFAULT_MAX_PENDING_APPROVALS: usize = 1000;

fn approval_ttl() -> ConfigDuration {
    DEFAULT_APPROVAL_TTL
}

fn max_pending_approvals() -> usize {
    DEFAULT_MAX_PENDING_APPROVALS
}

fn revocation_ttl() -> ConfigDuration {
    ConfigDuration::secs(24 * 3600)
}
