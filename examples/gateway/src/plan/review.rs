//! `[approvals]`, planned: the admin page, the webhook notification, the status links.

use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::config::{ApprovalsConfig, ConfigError, invalid};
use crate::plan::Planner;
use crate::plan::environment::{Secret, SecretSource};

/// How people learn of held calls and act on them.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ReviewPlan {
    /// The admin page (`None`: off).
    pub page: Option<PagePlan>,
    /// The base of the admin links in notifications (no trailing slash): `[approvals]
    /// admin_url`, else the admin listener's address.
    pub admin_url: String,
    /// The base of each held call's status page: `<public_url>/approval-status/`.
    pub status_url: String,
    /// The webhook told of each newly held call.
    pub webhook: Option<WebhookPlan>,
    /// Whether clients that declared URL-mode elicitation are pointed at the status page.
    pub elicitation: bool,
}

/// The admin page's sign-ins.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct PagePlan {
    /// How long a sign-in lasts.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub session_ttl: Duration,
    /// Most sign-ins at once.
    pub max_sessions: u64,
    /// Whether the session cookie is `Secure` (all but plain `http` on loopback).
    pub secure_cookie: bool,
}

/// The notification webhook.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WebhookPlan {
    /// The URL (a secret: incoming-webhook URLs carry their credential).
    pub url: Secret,
    /// Attempts per notification.
    pub attempts: u32,
    /// Time allowed per attempt.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub timeout: Duration,
}

/// Most attempts per notification.
pub const MAX_WEBHOOK_ATTEMPTS: u32 = 10;

impl Planner<'_> {
    /// `[approvals]`; `admin` tells whether `[admin]` is configured.
    pub(crate) fn review(
        &mut self,
        config: &ApprovalsConfig,
        public_url: &str,
        admin_listener: Option<&str>,
        admin: bool,
    ) -> Result<ReviewPlan, ConfigError> {
        let base = public_url.trim_end_matches('/');
        let admin_url = match &config.admin_url {
            Some(url) => {
                idjag_core::endpoint::check_endpoint(url)
                    .map_err(|e| invalid("approvals.admin_url", e.to_string()))?;
                url.trim_end_matches('/').to_owned()
            }
            None => admin_listener.unwrap_or(base).to_owned(),
        };
        let page = if config.page {
            if !admin {
                return Err(invalid(
                    "approvals.page",
                    "needs [admin] (people sign in with the admin token)",
                ));
            }
            if config.session_ttl.0.is_zero() || config.max_sessions == 0 {
                return Err(invalid(
                    "approvals",
                    "session_ttl and max_sessions must be positive",
                ));
            }
            let secure_cookie = Url::parse(&admin_url)
                .map(|url| url.scheme() != "http" || !is_loopback(&url))
                .unwrap_or(true);
            Some(PagePlan {
                session_ttl: config.session_ttl.0,
                max_sessions: config.max_sessions,
                secure_cookie,
            })
        } else {
            None
        };
        let webhook = match &config.webhook {
            None => None,
            Some(webhook) => {
                let source = SecretSource::url(webhook.url_env.as_ref(), webhook.url_file.as_ref());
                source.check("approvals.webhook", true)?;
                if webhook.attempts == 0 || webhook.attempts > MAX_WEBHOOK_ATTEMPTS {
                    return Err(invalid(
                        "approvals.webhook.attempts",
                        format!("from 1 to {MAX_WEBHOOK_ATTEMPTS}"),
                    ));
                }
                if webhook.timeout.0.is_zero() {
                    return Err(invalid("approvals.webhook.timeout", "must be positive"));
                }
                let url = source
                    .read("approvals.webhook", self.environment)?
                    .ok_or_else(|| invalid("approvals.webhook", "set url_env or url_file"))?;
                // The error names the problem, never the URL (a secret).
                idjag_core::endpoint::check_endpoint(url.value().secret())
                    .map_err(|e| invalid("approvals.webhook", e.to_string()))?;
                Some(WebhookPlan {
                    url,
                    attempts: webhook.attempts,
                    timeout: webhook.timeout.0,
                })
            }
        };
        if webhook.is_some() && !admin {
            self.warn(
                "approvals.webhook",
                "without [admin] held calls cannot be decided: the notification links nowhere",
            );
        }
        Ok(ReviewPlan {
            page,
            admin_url,
            status_url: format!("{base}/approval-status/"),
            webhook,
            elicitation: config.elicitation,
        })
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
