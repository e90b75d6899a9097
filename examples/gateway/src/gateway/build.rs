//! From a [`Plan`] to a running gateway's state: key sources, validators, credentials, HTTP
//! clients, the audit sink, metrics. Nothing is parsed here: every value comes parsed from
//! the plan, and nothing is fetched yet (keys and metadata load on first use).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use idjag_client::http::{ReqwestHttpClient, SharedHttpClient};
use idjag_core::SharedClock;
use idjag_core::remote::{RemoteJwks, RemoteJwksConfig};
use tokio::sync::{Semaphore, watch};

use idjag_store::{MemoryStore, Store};

use crate::authorization_server::{AuthorizationServer, Parts, signing_keys};
use crate::config::AuditOutput;
use crate::gateway::{BuildError, Gateway};
use crate::inbound::InboundAuth;
use crate::observe::audit::AuditSink;
use crate::observe::metrics::{MeteredSink, Metrics};
use crate::observe::sinks::JsonLines;
use crate::plan::{CredentialPlan, IdpPlan, Plan, UpstreamPlan};
use crate::policy::access::{Authorizer, RuleAuthorizer};
use crate::policy::approval::Approvals;
use crate::policy::revocation::Revocations;
use crate::proxy::GatewayState;
use crate::proxy::session::Sessions;
use crate::proxy::stream::StreamGauge;
use crate::upstream::bridge::{
    ClientCredentialsGrant, ClientCredentialsTarget, PassthroughCredential,
};
use crate::upstream::{
    HttpClients, IdJagCredential, IdJagOutbound, IdJagTarget, Upstream, UpstreamCredential,
};

/// Most MCP sessions remembered, and how long an unused one is kept.
const SESSION_CAPACITY: u64 = 100_000;
const SESSION_IDLE: Duration = Duration::from_secs(3600);

/// Builds a [`Gateway`] from a [`Plan`].
#[derive(Debug)]
pub struct GatewayBuilder {
    plan: Plan,
    clock: SharedClock,
    audit: Option<Arc<dyn AuditSink>>,
    authorizer: Option<Arc<dyn Authorizer>>,
    store: Option<Arc<dyn Store>>,
}

impl GatewayBuilder {
    pub(crate) fn new(plan: Plan, clock: SharedClock) -> Self {
        Self {
            plan,
            clock,
            audit: None,
            authorizer: None,
            store: None,
        }
    }

    /// Keeps the authorization server's state (codes, refresh-token families, sealed IdP
    /// tokens, single-use markers) in `store`; default: idjag-store's in-memory store (one
    /// instance; a restart forgets every sign-in).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Reads time from `clock` (tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Writes audit records to `sink` instead of the configured output.
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Decides with `authorizer` instead of the configured rules.
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Assembles the gateway. Nothing is fetched yet: keys and metadata are loaded on first
    /// use (see [`Gateway::ready`]).
    pub fn build(self) -> Result<Gateway, BuildError> {
        let Self {
            plan,
            clock,
            audit,
            authorizer,
            store,
        } = self;
        let jwks = Arc::new(idp_keys(&plan.idp, clock.clone())?);
        let groups_claim = plan.teams.claim().to_owned();
        let idp_algorithms = plan.inbound.algorithms;
        let leeway = plan.inbound.leeway;
        let route_resources = plan.inbound.route_resources.clone();
        let mut inbound = InboundAuth::new(plan.inbound, jwks.clone(), plan.teams, clock.clone())?;
        let as_keys = match &plan.authorization_server {
            Some(as_plan) => {
                let keys = signing_keys(as_plan, clock.clone())?;
                inbound =
                    inbound.with_gateway_tokens(Arc::new(keys.clone()), as_plan.signing_alg)?;
                Some(keys)
            }
            None => None,
        };
        let inbound = Arc::new(inbound);
        // One client for every token request: the IdP's and each authorization server's.
        let token_http: SharedHttpClient = Arc::new(ReqwestHttpClient::new()?);
        let outbound = Arc::new(IdJagOutbound::new(
            plan.idp.issuer.clone(),
            plan.idp.token_endpoint.clone(),
            plan.idp.client.credentials(clock.clone()),
            token_http.clone(),
            clock.clone(),
        ));
        let mut clients = HttpClients::new();
        let mut upstreams = HashMap::with_capacity(plan.upstreams.len());
        let mut rules = RuleAuthorizer::new();
        let mut names = Vec::with_capacity(plan.upstreams.len());
        for route in plan.upstreams {
            let UpstreamPlan {
                name,
                url,
                resource,
                metadata_url,
                transport,
                credential,
                rules: route_rules,
                guards,
                ..
            } = route;
            let credential = credential_of(&name, credential, &outbound, &token_http, &clock);
            let http = clients.get(transport).map_err(|_| BuildError::HttpClient {
                upstream: name.clone(),
            })?;
            let upstream = Upstream {
                name: name.clone(),
                url,
                resource,
                metadata_url,
                credential,
                http,
                guards,
            };
            rules = rules.with_upstream(name.clone(), route_rules);
            upstreams.insert(name.clone(), Arc::new(upstream));
            names.push(name);
        }
        let mut audit: Arc<dyn AuditSink> = match audit {
            Some(sink) => sink,
            None => Arc::new(open_audit(&plan.audit.output, plan.audit.flush_interval)?),
        };
        let metrics = plan.metrics.enabled.then(|| Arc::new(Metrics::new(names)));
        if let Some(metrics) = &metrics {
            audit = Arc::new(MeteredSink {
                inner: audit,
                metrics: metrics.clone(),
            });
        }
        let approvals = Arc::new(Approvals::new(
            i64::try_from(plan.approvals.ttl.as_secs()).unwrap_or(i64::MAX / 2),
            plan.approvals.max_pending,
            clock.clone(),
        ));
        let revocations = Arc::new(Revocations::new(clock.clone()));
        let authorization_server = match (plan.authorization_server, as_keys) {
            (Some(as_plan), Some(keys)) => Some(AuthorizationServer::build(Parts {
                plan: as_plan,
                idp: plan.idp.clone(),
                idp_keys: jwks,
                idp_algorithms,
                leeway,
                keys,
                store: store.unwrap_or_else(|| Arc::new(MemoryStore::new(clock.clone()))),
                inbound: inbound.clone(),
                outbound: outbound.clone(),
                revocations: revocations.clone(),
                audit: audit.clone(),
                routes: route_resources,
                groups_claim,
                clock: clock.clone(),
            })?),
            _ => None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = plan.server;
        let state = GatewayState {
            settings: server.proxy,
            inbound,
            authorizer: authorizer.unwrap_or_else(|| Arc::new(rules)),
            upstreams,
            sessions: Sessions::new(SESSION_CAPACITY, SESSION_IDLE),
            audit,
            arguments: plan.audit.arguments,
            forward: server.forward_headers,
            clock,
            in_flight: Arc::new(Semaphore::new(server.max_in_flight)),
            streams: Arc::new(StreamGauge::default()),
            shutdown: shutdown_rx,
            approvals,
            revocations,
            admin: plan.admin,
            metrics,
            metrics_require_admin: plan.metrics.require_admin_token,
            outbound: outbound.clone(),
            authorization_server,
        };
        Ok(Gateway {
            state: Arc::new(state),
            public_url: server.public_url,
            listen: server.listen,
            limits: server.limits,
            shutdown: Arc::new(shutdown),
            outbound,
            warnings: plan.warnings,
            max_in_flight: server.max_in_flight,
            upstream_clients: clients.len(),
        })
    }
}

/// The IdP's key source: its `jwks_uri`, else the one of its metadata.
fn idp_keys(idp: &IdpPlan, clock: SharedClock) -> Result<RemoteJwks, BuildError> {
    let jwks = match &idp.jwks_uri {
        Some(uri) => RemoteJwks::from_jwks_uri(idp.issuer.clone(), uri.as_str(), clock)?,
        None => RemoteJwks::from_issuer(idp.issuer.clone(), clock)?,
    };
    let mut config = RemoteJwksConfig::default();
    config.max_age = idp.jwks.max_age;
    config.stale_if_error = idp.jwks.stale_if_error;
    config.cooldown = idp.jwks.cooldown;
    Ok(jwks.with_config(config)?)
}

/// The credential of one route's mode.
fn credential_of(
    name: &str,
    plan: CredentialPlan,
    outbound: &Arc<IdJagOutbound>,
    token_http: &SharedHttpClient,
    clock: &SharedClock,
) -> Arc<dyn UpstreamCredential> {
    match plan {
        CredentialPlan::IdJag(plan) => Arc::new(IdJagCredential::new(
            outbound.clone(),
            IdJagTarget {
                authorization_server: plan.authorization_server,
                token_endpoint: plan.token_endpoint,
                resource: plan.resource,
                scope: plan.scope,
                credentials: plan.client.credentials(clock.clone()),
                id_jag_reuse: plan.id_jag_reuse,
            },
        )),
        CredentialPlan::ClientCredentials(plan) => Arc::new(ClientCredentialsGrant::new(
            ClientCredentialsTarget {
                authorization_server: plan.authorization_server,
                token_endpoint: plan.token_endpoint,
                scope: plan.scope,
                resource: plan.resource,
                credentials: plan.client.credentials(clock.clone()),
            },
            token_http.clone(),
            clock.clone(),
        )),
        CredentialPlan::Static { credential, .. } => Arc::new(credential),
        CredentialPlan::HeaderTemplate { credential, .. } => Arc::new(credential),
        CredentialPlan::Passthrough => {
            tracing::warn!(
                credential = %format!("upstream[{name}].credential"),
                "passthrough: the caller's IdP token is sent to this upstream as is"
            );
            Arc::new(PassthroughCredential)
        }
    }
}

fn open_audit(output: &AuditOutput, interval: Duration) -> Result<JsonLines, BuildError> {
    Ok(match output {
        AuditOutput::Stdout => JsonLines::with_interval(Box::new(std::io::stdout()), interval),
        AuditOutput::Stderr => JsonLines::with_interval(Box::new(std::io::stderr()), interval),
        AuditOutput::File(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(BuildError::Audit)?;
            JsonLines::with_interval(Box::new(file), interval)
        }
    })
}
