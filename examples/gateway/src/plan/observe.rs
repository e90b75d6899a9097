//! `[audit]`, `[metrics]` and `[telemetry]`, planned.

use idjag_ops::audit::AuditConfig;
use idjag_ops::telemetry::TelemetryConfig;
use serde::Serialize;

use crate::config::{AuditSettings, ConfigError, MetricsConfig, invalid};
use crate::observe::arguments::ArgumentRule;
use crate::plan::Planner;

/// The audit log.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AuditPlan {
    /// The sinks, their queues and what a full queue means (started once: a change needs a
    /// restart).
    pub sinks: AuditConfig,
    /// What is recorded of tool arguments.
    pub arguments: ArgumentRule,
}

/// Prometheus metrics.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct MetricsPlan {
    /// Whether `/metrics` is served (on the admin listener).
    pub enabled: bool,
    /// Whether it asks for the admin token.
    pub require_admin_token: bool,
}

impl Planner<'_> {
    /// `[audit]`.
    pub(crate) fn audit(&mut self, audit: &AuditSettings) -> Result<AuditPlan, ConfigError> {
        audit.sinks.validate("audit")?;
        let arguments = &audit.arguments;
        if arguments.max_argument_bytes == 0 {
            return Err(invalid("audit.max_argument_bytes", "must be positive"));
        }
        Ok(AuditPlan {
            sinks: audit.sinks.clone(),
            arguments: ArgumentRule::new(
                arguments.arguments,
                &arguments.redact_keys,
                arguments.max_argument_bytes,
            ),
        })
    }

    /// `[metrics]`; the admin token it may ask for is checked with `[admin]`.
    pub(crate) fn metrics(&mut self, metrics: &MetricsConfig) -> MetricsPlan {
        MetricsPlan {
            enabled: metrics.enabled,
            require_admin_token: metrics.require_admin_token,
        }
    }

    /// `[telemetry]`: `idjag-ops`'s checks (log filter, sampling ratio, OTLP endpoint).
    pub(crate) fn telemetry(
        &mut self,
        telemetry: &TelemetryConfig,
    ) -> Result<TelemetryConfig, ConfigError> {
        telemetry.validate("telemetry")?;
        Ok(telemetry.clone())
    }
}
