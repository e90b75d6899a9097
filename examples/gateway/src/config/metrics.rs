//! `[metrics]`: Prometheus metrics at `/metrics` on the admin listener.

use serde::Deserialize;

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics` (on the admin listener). Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Require the admin token on `/metrics`. Default false.
    #[serde(default)]
    pub require_admin_token: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            require_admin_token: false,
        }
    }
}

fn yes() -> bool {
    true
}
