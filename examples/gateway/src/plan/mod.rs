//! The one planning pass: a [`Config`] becomes the runtime [`Plan`].
//!
//! Every value is parsed once here (listener address, URLs, issuers, resources, scopes, tool
//! patterns, guard rules, header templates, header names) and every secret read once, from
//! the environment or its file ([`Environment`]). A problem is a [`ConfigError`] naming its
//! key; something accepted but worth a look is a [`Warning`]. `check-config`,
//! `serve`, the demo and the tests all plan this way, and the gateway is built from the plan
//! alone ([`crate::Gateway::builder`]), so what is checked is what runs.
//!
//! [`Plan::render`] writes the plan as stable JSON with every secret redacted (its origin
//! shown instead); the golden files under `examples/gateway/tests/api/golden/` pin the
//! shipped example's.
//!
//! | module | section |
//! |---|---|
//! | [`server`] | the public listener (TLS, limits), public URL, proxy settings, forwarded headers |
//! | [`idp`] | the IdP, its key cache, inbound token limits |
//! | [`client`] | a client registration: id, secret or key |
//! | [`upstream`] | routes: endpoint, transport, credential mode, access rules, guardrails |
//! | [`observe`] | audit sinks and arguments, metrics, telemetry |
//! | [`admin`] | the admin listener, the admin token, approvals, revocations |
//! | [`limits`] | per user, agent and upstream limits |
//! | [`review`] | `[approvals]`: the admin page, the webhook notification, status links |
//! | [`store`] | where revocations, approvals, session bindings and the authorization server's state live |
//! | [`authorization_server`] | the gateway's own authorization server: keys, clients, redirect URIs, allow-list |
//! | [`environment`] | where secrets are read from |

pub mod admin;
pub mod authorization_server;
pub mod client;
pub mod environment;
pub mod idp;
pub mod limits;
pub mod observe;
pub mod review;
pub mod server;
pub mod stdio;
pub mod store;
pub mod upstream;

use std::fmt;

use idjag_core::{Audience, ClientId};
use idjag_ops::listener::ListenerConfig;
use idjag_ops::reload::WatchOptions;
use idjag_ops::telemetry::TelemetryConfig;
use serde::Serialize;
use url::Url;

use crate::config::{Config, ConfigError, invalid};
use crate::inbound::{InboundSettings, TeamMap};

pub use admin::{AdminPlan, ApprovalPlan};
pub use authorization_server::{
    AllowList, AsClientPlan, AuthorizationServerPlan, HostPattern, MetadataDocumentsPlan,
    RedirectUri, RedirectUriError,
};
pub use client::ClientPlan;
pub use environment::{Environment, Secret, SecretOrigin, SystemEnvironment};
pub use idp::{IdpPlan, JwksTimings};
pub use limits::{LimitsPlan, PrincipalLimits, RatePlan};
pub use observe::{AuditPlan, MetricsPlan};
pub use review::{PagePlan, ReviewPlan, WebhookPlan};
pub use server::{ProxySettings, ServerPlan};
pub use store::StorePlan;
pub use upstream::{ClientCredentialsPlan, CredentialPlan, IdJagPlan, UpstreamPlan};

/// A configuration, every value parsed and every secret read: what the gateway runs.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The listener and what applies to every request.
    pub server: ServerPlan,
    /// The enterprise IdP and the gateway's registration there.
    pub idp: IdpPlan,
    /// How inbound tokens are validated.
    pub inbound: InboundSettings,
    /// IdP groups to gateway teams.
    pub teams: TeamMap,
    /// The audit log.
    pub audit: AuditPlan,
    /// The admin listener (`/metrics`, health, the admin API; `None`: none of them).
    pub admin_listener: Option<ListenerConfig>,
    /// The admin API (`None`: not mounted).
    pub admin: Option<AdminPlan>,
    /// Calls held for approval.
    pub approvals: ApprovalPlan,
    /// Per user, agent and upstream limits.
    pub limits: LimitsPlan,
    /// How people learn of held calls and act on them (`[approvals]`).
    pub review: ReviewPlan,
    /// Prometheus metrics.
    pub metrics: MetricsPlan,
    /// Logs and traces (set up once: a change needs a restart).
    pub telemetry: TelemetryConfig,
    /// What triggers a configuration reload.
    pub reload: WatchOptions,
    /// The routes, in configuration order.
    pub upstreams: Vec<UpstreamPlan>,
    /// The gateway's own authorization server (`None`: off).
    pub authorization_server: Option<AuthorizationServerPlan>,
    /// Where revocations, approvals, session bindings and the authorization server's
    /// state live.
    pub store: StorePlan,
    /// What is accepted but worth a look.
    pub warnings: Vec<Warning>,
}

/// A configuration warning: accepted, but worth a look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Warning {
    /// The key.
    pub key: String,
    /// What to look at.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The planning pass: where secrets come from, and the warnings so far.
pub(crate) struct Planner<'a> {
    environment: &'a dyn Environment,
    warnings: Vec<Warning>,
}

impl Planner<'_> {
    fn warn(&mut self, key: &str, message: &str) {
        self.warnings.push(Warning {
            key: key.to_owned(),
            message: message.to_owned(),
        });
    }
}

impl Plan {
    /// Plans `config`, reading secrets from the process environment and the file system.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Self::with_environment(config, &SystemEnvironment)
    }

    /// Plans `config`, reading secrets from `environment`.
    pub fn with_environment(
        config: &Config,
        environment: &dyn Environment,
    ) -> Result<Self, ConfigError> {
        let mut planner = Planner {
            environment,
            warnings: Vec::new(),
        };
        let server = planner.server(&config.server)?;
        let (idp, validation) = planner.idp(&config.idp)?;
        planner.inbound(&config.inbound)?;
        let audit = planner.audit(&config.audit)?;
        let metrics = planner.metrics(&config.metrics);
        let telemetry = planner.telemetry(&config.telemetry)?;
        let (admin_listener, admin, approvals) =
            planner.admin(config.admin.as_ref(), &config.metrics)?;
        if admin_listener.is_none() {
            planner.warn(
                "admin",
                "no admin listener: no /metrics, /healthz or /readyz (the public listener never serves them)",
            );
        }
        let limits = planner.limits(&config.limits)?;
        let context = upstream::Context {
            public_url: &server.public_url,
            idp_issuer: &config.idp.issuer,
            accept: &config.inbound.accept,
            admin: admin.is_some(),
            secret_envs: &stdio::secret_envs(config),
        };
        let upstreams = planner.upstreams(&config.upstreams, &context)?;
        let admin_base = admin_listener.as_ref().map(|listener| {
            let scheme = if matches!(listener.tls, idjag_ops::listener::TlsSetting::Off) {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{}", listener.listen)
        });
        let review = planner.review(
            &config.approvals,
            &server.public_url,
            admin_base.as_deref(),
            admin.is_some(),
        )?;
        let authorization_server = config
            .authorization_server
            .as_ref()
            .map(|c| planner.authorization_server(c, &server.public_url))
            .transpose()?;
        if authorization_server.is_some()
            && !config
                .inbound
                .accept
                .contains(&crate::config::InboundKind::GatewayToken)
        {
            return Err(invalid(
                "inbound.accept",
                "[authorization_server] needs gateway_token among the accepted kinds",
            ));
        }
        let store = planner.store(config.store.as_ref())?;
        let client_id: &ClientId = idp.client.client_id();
        let inbound = InboundSettings {
            issuer: idp.issuer.clone(),
            client_id: client_id.clone(),
            gateway_resource: Audience::new(server.public_url.as_str())
                .map_err(|e| invalid("server.public_url", e.to_string()))?,
            route_resources: upstreams.iter().map(|u| u.resource.clone()).collect(),
            accept: config.inbound.accept.clone(),
            algorithms: validation.algorithms,
            leeway: validation.leeway,
            max_token_bytes: config.inbound.max_token_bytes,
            cache_capacity: config.inbound.cache_capacity,
            gateway_issuer: authorization_server.as_ref().map(|a| a.issuer.clone()),
        };
        Ok(Self {
            server,
            idp,
            inbound,
            teams: TeamMap::new(config.teams.clone(), config.inbound.groups_claim.clone())
                .with_max_groups(config.inbound.max_groups),
            audit,
            admin_listener,
            admin,
            approvals,
            limits,
            review,
            metrics,
            telemetry,
            reload: config.reload,
            upstreams,
            authorization_server,
            store,
            warnings: planner.warnings,
        })
    }

    /// The warnings.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The plan as JSON: every value in its parsed form, every secret replaced by where it
    /// came from. Stable: object members are sorted by name, whatever the build's
    /// `serde_json` features.
    pub fn to_json(&self) -> serde_json::Value {
        sorted(serde_json::to_value(self).unwrap_or(serde_json::Value::Null))
    }

    /// [`Self::to_json`], pretty-printed with a final newline (the golden files' form).
    pub fn render(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// `value` with the members of every object in name order.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut members: Vec<_> = map.into_iter().collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(members.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// An `https` URL, or `http` on loopback.
pub(crate) fn check_url(key: &str, value: &str) -> Result<Url, ConfigError> {
    idjag_core::endpoint::check_endpoint(value).map_err(|e| invalid(key, e.to_string()))
}

#[cfg(test)]
mod tests;
