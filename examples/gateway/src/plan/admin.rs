//! `[admin]`, planned: the admin token read, approval and revocation settings.

use std::time::Duration;

use serde::Serialize;

use crate::config::admin::{DEFAULT_APPROVAL_TTL, DEFAULT_MAX_PENDING_APPROVALS};
use crate::config::{AdminConfig, ConfigError, MetricsConfig, invalid};
use crate::plan::Planner;
use crate::plan::environment::{Secret, SecretSource};

/// The administrator API.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AdminPlan {
    /// The bearer token of `/admin/` (and of `/metrics` when asked for).
    pub token: Secret,
    /// How long a revocation lasts unless given its own duration.
    #[serde(serialize_with = "crate::config::duration::serialize")]
    pub revocation_ttl: Duration,
}

/// Calls held for approval.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct ApprovalPlan {
    /// How long a held call waits, and an approval stays usable.
    #[serde(serialize_with = "crate::config::duration::serialize")]
    pub ttl: Duration,
    /// Most calls waiting at once.
    pub max_pending: usize,
}

impl Planner<'_> {
    /// `[admin]`, with `[metrics] require_admin_token` (which needs it); reads the token.
    pub(crate) fn admin(
        &mut self,
        admin: Option<&AdminConfig>,
        metrics: &MetricsConfig,
    ) -> Result<(Option<AdminPlan>, ApprovalPlan), ConfigError> {
        let Some(admin) = admin else {
            if metrics.require_admin_token {
                return Err(invalid(
                    "metrics.require_admin_token",
                    "needs an [admin] token",
                ));
            }
            let approvals = ApprovalPlan {
                ttl: DEFAULT_APPROVAL_TTL.0,
                max_pending: DEFAULT_MAX_PENDING_APPROVALS,
            };
            return Ok((None, approvals));
        };
        let source = SecretSource::token(admin.token_env.as_ref(), admin.token_file.as_ref());
        source.check("admin", true)?;
        if admin.approval_ttl.0.is_zero() || admin.revocation_ttl.0.is_zero() {
            return Err(invalid("admin", "durations must be positive"));
        }
        if admin.max_pending_approvals == 0 {
            return Err(invalid("admin.max_pending_approvals", "must be positive"));
        }
        let token = source
            .read("admin", self.environment)?
            .ok_or_else(|| invalid("admin", "set token_env or token_file"))?;
        let plan = AdminPlan {
            token,
            revocation_ttl: admin.revocation_ttl.0,
        };
        let approvals = ApprovalPlan {
            ttl: admin.approval_ttl.0,
            max_pending: admin.max_pending_approvals,
        };
        Ok((Some(plan), approvals))
    }
}
