//! `[admin]`, planned: the admin listener, the admin token read, approval and revocation
//! settings.

use std::time::Duration;

use serde::Serialize;

use crate::config::admin::{DEFAULT_APPROVAL_TTL, DEFAULT_MAX_PENDING_APPROVALS};
use idjag_ops::listener::ListenerConfig;

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
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub revocation_ttl: Duration,
}

/// Calls held for approval.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct ApprovalPlan {
    /// How long a held call waits, and an approval stays usable.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub ttl: Duration,
    /// Most calls waiting at once.
    pub max_pending: usize,
}

impl Planner<'_> {
    /// `[admin]`, with `[metrics] require_admin_token` (which needs the token): the admin
    /// listener, and the administrator API when a token source is set (its token read).
    pub(crate) fn admin(
        &mut self,
        admin: Option<&AdminConfig>,
        metrics: &MetricsConfig,
    ) -> Result<(Option<ListenerConfig>, Option<AdminPlan>, ApprovalPlan), ConfigError> {
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
            return Ok((None, None, approvals));
        };
        let listener = self.listener("admin", &admin.listener)?;
        let api = &admin.api;
        let source = SecretSource::token(api.token_env.as_ref(), api.token_file.as_ref());
        source.check("admin", false)?;
        if api.approval_ttl.0.is_zero() || api.revocation_ttl.0.is_zero() {
            return Err(invalid("admin", "durations must be positive"));
        }
        if api.max_pending_approvals == 0 {
            return Err(invalid("admin.max_pending_approvals", "must be positive"));
        }
        let approvals = ApprovalPlan {
            ttl: api.approval_ttl.0,
            max_pending: api.max_pending_approvals,
        };
        let Some(token) = source.read("admin", self.environment)? else {
            if metrics.require_admin_token {
                return Err(invalid(
                    "metrics.require_admin_token",
                    "needs an [admin] token (token_env or token_file)",
                ));
            }
            return Ok((Some(listener), None, approvals));
        };
        let plan = AdminPlan {
            token,
            revocation_ttl: api.revocation_ttl.0,
        };
        Ok((Some(listener), Some(plan), approvals))
    }
}
