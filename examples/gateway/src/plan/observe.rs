//! `[audit]` and `[metrics]`, planned.

use std::time::Duration;

use serde::Serialize;

use crate::config::{AuditConfig, AuditOutput, ConfigError, MetricsConfig, invalid};
use crate::observe::arguments::ArgumentRule;
use crate::plan::Planner;

/// Longest `audit.flush_interval`.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The audit log.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AuditPlan {
    /// Where lines go.
    pub output: AuditOutput,
    /// What is recorded of tool arguments.
    pub arguments: ArgumentRule,
    /// How often queued lines are written (zero: each at once).
    #[serde(serialize_with = "crate::config::duration::serialize")]
    pub flush_interval: Duration,
}

/// Prometheus metrics.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct MetricsPlan {
    /// Whether `/metrics` is served.
    pub enabled: bool,
    /// Whether it asks for the admin token.
    pub require_admin_token: bool,
}

impl Planner<'_> {
    /// `[audit]`.
    pub(crate) fn audit(&mut self, audit: &AuditConfig) -> Result<AuditPlan, ConfigError> {
        if audit.max_argument_bytes == 0 {
            return Err(invalid("audit.max_argument_bytes", "must be positive"));
        }
        if audit.flush_interval.0 > MAX_FLUSH_INTERVAL {
            return Err(invalid("audit.flush_interval", "at most 1 s"));
        }
        Ok(AuditPlan {
            output: audit.output.clone(),
            arguments: ArgumentRule::new(
                audit.arguments,
                &audit.redact_keys,
                audit.max_argument_bytes,
            ),
            flush_interval: audit.flush_interval.0,
        })
    }

    /// `[metrics]`; the admin token it may ask for is checked with `[admin]`.
    pub(crate) fn metrics(&mut self, metrics: &MetricsConfig) -> MetricsPlan {
        MetricsPlan {
            enabled: metrics.enabled,
            require_admin_token: metrics.require_admin_token,
        }
    }
}
