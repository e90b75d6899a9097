//! From a [`Plan`] to a running gateway's state: key sources, validators, credentials, HTTP
//! clients, the audit sinks, metrics. Nothing is parsed here: every value comes parsed from
//! the plan, and nothing is fetched yet (keys and metadata load on first use).
//!
//! A reload builds a new generation ([`Generation`]) from a new plan and shares with it what
//! outlives a reload ([`Persistent`]): the store (`[store]`, opened once: the embedded store's
//! file can be open only once) with the sessions, approvals and revocations on it, the audit
//! sinks, the concurrency limit, open streams, the shutdown switch, and the IdP's key cache
//! while `[idp]` names the same keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idjag_client::http::{ReqwestHttpClient, SharedHttpClient};
use idjag_core::remote::{RemoteJwks, RemoteJwksConfig};
use idjag_core::{Audience, SharedClock};
use idjag_ops::audit::Audit;
use idjag_ops::listener::ListenerConfig;
use idjag_ops::reload::Reloadable;
use idjag_store::Store;
use tokio::sync::{Semaphore, watch};

use crate::authorization_server::{AuthorizationServer, Continuity, Parts};
use crate::gateway::{BuildError, Gateway, Generation, Generations};
use crate::inbound::InboundAuth;
use crate::observe::audit::AuditSink;
use crate::observe::metrics::{MeteredSink, RequestMetrics};
use crate::observe::outbound::MeteredHttp;
use crate::observe::sinks::LineSink;
use crate::plan::{CredentialPlan, IdpPlan, Plan, UpstreamPlan};
use crate::policy::access::{Authorizer, RuleAuthorizer};
use crate::policy::approval::Approvals;
use crate::policy::fairness::Fairness;
use crate::policy::revocation::Revocations;
use crate::proxy::GatewayState;
use crate::proxy::review::Review;
use crate::proxy::session::Sessions;
use crate::proxy::stream::StreamGauge;
use crate::upstream::bridge::{
    ClientCredentialsGrant, ClientCredentialsTarget, PassthroughCredential,
};
use crate::upstream::stdio::{NoCredential, UserProcesses};
use crate::upstream::{
    Endpoint, HttpClients, IdJagCredential, IdJagOutbound, IdJagTarget, StdioUpstream, Upstream,
    UpstreamCredential,
};

/// The planning pass a reload runs: a file to a [`Plan`] (its error text is logged, so it
/// must hold no secret).
pub type Planner = Arc<dyn Fn(&Path) -> Result<Plan, String> + Send + Sync>;

/// The default planning pass: the file with the process's `IDJAG_GATEWAY__…` overrides,
/// planned with its secrets read from the environment and the file system.
pub fn plan_file(path: &Path) -> Result<Plan, String> {
    let config = crate::config::Config::load(path).map_err(|e| e.to_string())?;
    Plan::from_config(&config).map_err(|e| e.to_string())
}

/// Builds a [`Gateway`] from a [`Plan`].
pub struct GatewayBuilder {
    plan: Plan,
    clock: SharedClock,
    audit: Option<Arc<dyn AuditSink>>,
    authorizer: Option<Arc<dyn Authorizer>>,
    store: Option<Arc<dyn Store>>,
    reload: Option<(PathBuf, Planner)>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("plan", &self.plan)
            .field("audit", &self.audit)
            .field("reload", &self.reload.as_ref().map(|(path, _)| path))
            .finish_non_exhaustive()
    }
}

/// The settings that only a restart changes: a reload that changes them keeps the running
/// ones and says so.
#[derive(Debug, Clone, PartialEq)]
struct StartOnly {
    server: ListenerConfig,
    admin: Option<ListenerConfig>,
    audit: idjag_ops::audit::AuditConfig,
    telemetry: idjag_ops::telemetry::TelemetryConfig,
    max_in_flight: usize,
    approvals: (Duration, usize),
    reload: idjag_ops::reload::WatchOptions,
    /// `[store]` as planned (its rendered form: the store is opened once, at start-up).
    store: Option<serde_json::Value>,
}

impl StartOnly {
    fn of(plan: &Plan) -> Self {
        Self {
            server: plan.server.listener.clone(),
            admin: plan.admin_listener.clone(),
            audit: plan.audit.sinks.clone(),
            telemetry: plan.telemetry.clone(),
            max_in_flight: plan.server.max_in_flight,
            approvals: (plan.approvals.ttl, plan.approvals.max_pending),
            reload: plan.reload,
            store: serde_json::to_value(&plan.store).ok(),
        }
    }

    /// The keys of `new` that differ from the running ones.
    fn changed(&self, new: &Self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |differs: bool, key| {
            if differs {
                keys.push(key);
            }
        };
        check(self.server != new.server, "server (listener)");
        check(self.admin != new.admin, "admin (listener)");
        check(self.audit != new.audit, "audit (sinks)");
        check(self.telemetry != new.telemetry, "telemetry");
        check(
            self.max_in_flight != new.max_in_flight,
            "server.max_in_flight",
        );
        check(self.approvals != new.approvals, "admin (approvals)");
        check(self.reload != new.reload, "reload");
        check(self.store != new.store, "store");
        keys
    }
}

/// The IdP's key source in use, what it was built from, and how many of its fetches were
/// counted in `idjag_gateway_jwks_fetches_total`.
type RunningJwks = (String, Arc<RemoteJwks>, Arc<AtomicU64>);

/// What every generation shares: built once, at start-up.
pub(crate) struct Persistent {
    clock: SharedClock,
    audit: Arc<dyn AuditSink>,
    pub(crate) audit_sinks: Option<Arc<Audit>>,
    authorizer: Option<Arc<dyn Authorizer>>,
    pub(crate) store: Arc<dyn Store>,
    sessions: Arc<Sessions>,
    approvals: Arc<Approvals>,
    revocations: Arc<Revocations>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    pub(crate) streams: Arc<StreamGauge>,
    pub(crate) shutdown: Arc<watch::Sender<bool>>,
    start_only: StartOnly,
    jwks: Mutex<Option<RunningJwks>>,
    /// The authorization server's keys and revocation index.
    authorization_server: Arc<Continuity>,
    generation: AtomicU64,
}

impl GatewayBuilder {
    pub(crate) fn new(plan: Plan, clock: SharedClock) -> Self {
        Self {
            plan,
            clock,
            audit: None,
            authorizer: None,
            store: None,
            reload: None,
        }
    }

    /// Reads time from `clock` (tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Writes audit records to `sink` instead of the configured sinks.
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Decides with `authorizer` instead of the configured rules.
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Keeps revocations, approvals and session bindings in `store` instead of the planned
    /// `[store]` (tests; several gateways of one process sharing a store; a gateway rebuilt
    /// in the same process taking over [`Gateway::store`]). A reload
    /// ([`Self::reload_from`]) keeps the running store by itself.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Reloads from `path` with `planner` (on [`Gateway::reload`] and, once
    /// [`Gateway::watch`] runs, on SIGHUP and when the file changes): the same planning pass
    /// as at start-up; a plan that fails is refused, its reason logged, the running one kept.
    pub fn reload_from(
        mut self,
        path: impl Into<PathBuf>,
        planner: impl Fn(&Path) -> Result<Plan, String> + Send + Sync + 'static,
    ) -> Self {
        self.reload = Some((path.into(), Arc::new(planner)));
        self
    }

    /// Starts the configured audit sinks (unless a sink was given), opens the store
    /// (`[store]`, unless one was given) and reads the revocations in it, and assembles the
    /// gateway. Nothing else is fetched yet: keys and metadata are loaded on first use (see
    /// [`Gateway::ready`]). A store that does not answer is not an error here: requests are
    /// refused until it does (see [`crate::policy::revocation`]).
    pub async fn build(self) -> Result<Gateway, BuildError> {
        let Self {
            plan,
            clock,
            audit,
            authorizer,
            store,
            reload,
        } = self;
        let (audit, audit_sinks): (Arc<dyn AuditSink>, _) = match audit {
            Some(sink) => (sink, None),
            None => {
                let sinks = Arc::new(Audit::start(&plan.audit.sinks).await?);
                let sink = LineSink::new(sinks.clone(), plan.audit.sinks.on_full);
                (Arc::new(sink), Some(sinks))
            }
        };
        let shared = super::store::open(&plan.store, store, &plan.approvals, &clock).await?;
        let persistent = Arc::new(Persistent {
            audit,
            audit_sinks,
            authorizer,
            store: shared.store,
            sessions: Arc::new(shared.sessions),
            approvals: Arc::new(shared.approvals),
            revocations: Arc::new(shared.revocations),
            in_flight: Arc::new(Semaphore::new(plan.server.max_in_flight)),
            max_in_flight: plan.server.max_in_flight,
            streams: Arc::new(StreamGauge::default()),
            shutdown: Arc::new(watch::channel(false).0),
            start_only: StartOnly::of(&plan),
            jwks: Mutex::new(None),
            authorization_server: Arc::new(Continuity::default()),
            generation: AtomicU64::new(0),
            clock,
        });
        let public_url = plan.server.public_url.clone();
        let server = plan.server.listener.clone();
        let admin = plan.admin_listener.clone();
        let warnings = plan.warnings.clone();
        let first = generation(plan, &persistent)?;
        let generations = match reload {
            None => Generations::Fixed(Arc::new(first)),
            Some((path, planner)) => {
                let shared = persistent.clone();
                let load = move |path: &Path| -> Result<Generation, String> {
                    let plan = planner(path)?;
                    let changed = shared.start_only.changed(&StartOnly::of(&plan));
                    if !changed.is_empty() {
                        tracing::warn!(
                            keys = %changed.join(", "),
                            "configuration reload: these settings need a restart; the running ones stay"
                        );
                    }
                    generation(plan, &shared).map_err(|e| e.to_string())
                };
                Generations::Reloading(Reloadable::with_plan(path, first, load))
            }
        };
        Ok(Gateway {
            generations,
            persistent,
            public_url,
            server,
            admin,
            warnings,
        })
    }
}

/// One generation: the state built from `plan` and its routers.
fn generation(plan: Plan, persistent: &Persistent) -> Result<Generation, BuildError> {
    let clock = persistent.clock.clone();
    let (jwks, jwks_observed) = idp_keys(&plan.idp, persistent)?;
    let groups_claim = plan.teams.claim().to_owned();
    let idp_algorithms = plan.inbound.algorithms;
    let leeway = plan.inbound.leeway;
    let route_resources = plan.inbound.route_resources.clone();
    let mut inbound = InboundAuth::new(plan.inbound, jwks.clone(), plan.teams, clock.clone())?;
    let as_keys = match &plan.authorization_server {
        Some(as_plan) => {
            let keys = persistent
                .authorization_server
                .signing_keys(as_plan, clock.clone())?;
            inbound = inbound.with_gateway_tokens(Arc::new(keys.clone()), as_plan.signing_alg)?;
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
        Arc::new(MeteredHttp::new(token_http.clone(), None)),
        clock.clone(),
    ));
    let mut clients = HttpClients::new();
    let user_processes = Arc::new(UserProcesses::new(plan.server.max_stdio_processes_per_user));
    let mut upstreams = HashMap::with_capacity(plan.upstreams.len());
    let mut rules = RuleAuthorizer::new();
    let mut names = Vec::with_capacity(plan.upstreams.len());
    for route in plan.upstreams {
        let UpstreamPlan {
            name,
            url,
            stdio,
            resource,
            metadata_url,
            transport,
            credential,
            rules: route_rules,
            guards,
            ..
        } = route;
        let credential =
            credential_of(&name, &resource, credential, &outbound, &token_http, &clock);
        let http = clients.get(transport).map_err(|_| BuildError::HttpClient {
            upstream: name.clone(),
        })?;
        let endpoint = match (url, stdio) {
            (_, Some(spec)) => Endpoint::Stdio(StdioUpstream::new(
                name.clone(),
                spec,
                user_processes.clone(),
            )),
            (Some(url), None) => Endpoint::Http(url),
            (None, None) => {
                return Err(BuildError::Config(crate::config::invalid(
                    format!("upstream[{name}]"),
                    "set url or [upstream.stdio]",
                )));
            }
        };
        let upstream = Upstream {
            name: name.clone(),
            endpoint,
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
    let audit: Arc<dyn AuditSink> = Arc::new(MeteredSink {
        inner: persistent.audit.clone(),
        metrics: Arc::new(RequestMetrics::new(names)),
    });
    // Its state goes to the gateway's store; what it keeps in memory outlives reloads.
    let authorization_server = match (plan.authorization_server, as_keys) {
        (Some(as_plan), Some(keys)) => Some(AuthorizationServer::build(Parts {
            plan: as_plan,
            idp: plan.idp.clone(),
            idp_keys: jwks,
            idp_algorithms,
            leeway,
            keys,
            continuity: persistent.authorization_server.clone(),
            store: persistent.store.clone(),
            inbound: inbound.clone(),
            outbound: outbound.clone(),
            revocations: persistent.revocations.clone(),
            audit: audit.clone(),
            routes: route_resources,
            groups_claim,
            clock: clock.clone(),
        })?),
        _ => None,
    };
    let number = persistent
        .generation
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
        + 1;
    let server = plan.server;
    let state = Arc::new(GatewayState {
        settings: server.proxy,
        inbound,
        authorizer: persistent
            .authorizer
            .clone()
            .unwrap_or_else(|| Arc::new(rules)),
        upstreams,
        sessions: persistent.sessions.clone(),
        audit,
        arguments: plan.audit.arguments,
        forward: server.forward_headers,
        clock,
        in_flight: persistent.in_flight.clone(),
        fairness: Fairness::new(&plan.limits),
        streams: persistent.streams.clone(),
        shutdown: persistent.shutdown.subscribe(),
        approvals: persistent.approvals.clone(),
        revocations: persistent.revocations.clone(),
        admin: plan.admin,
        metrics_enabled: plan.metrics.enabled,
        metrics_require_admin: plan.metrics.require_admin_token,
        outbound,
        trusted_proxies: server.trusted_proxies,
        max_in_flight: persistent.max_in_flight,
        jwks_observed,
        store: persistent.store.clone(),
        audit_sinks: persistent.audit_sinks.clone(),
        generation: number,
        review: Review::new(plan.review, plan.approvals.ttl).map_err(|_| BuildError::Review)?,
        authorization_server,
    });
    // This generation's caches follow the revocations until it is dropped.
    super::store::listen(Arc::downgrade(&state), persistent.revocations.events());
    Ok(Generation::new(state, plan.warnings, clients.len()))
}

/// The IdP's key source: its `jwks_uri`, else the one of its metadata; the running one when
/// `[idp]` names the same keys with the same timings (a reload keeps the cache, so a reload
/// while the IdP is down does not lose the keys).
fn idp_keys(
    idp: &IdpPlan,
    persistent: &Persistent,
) -> Result<(Arc<RemoteJwks>, Arc<AtomicU64>), BuildError> {
    let key = format!(
        "{}|{:?}|{:?}",
        idp.issuer.as_str(),
        idp.jwks_uri.as_ref().map(url::Url::as_str),
        idp.jwks
    );
    let mut running = persistent.jwks.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((known, jwks, observed)) = running.as_ref()
        && *known == key
    {
        return Ok((jwks.clone(), observed.clone()));
    }
    let clock = persistent.clock.clone();
    let jwks = match &idp.jwks_uri {
        Some(uri) => RemoteJwks::from_jwks_uri(idp.issuer.clone(), uri.as_str(), clock)?,
        None => RemoteJwks::from_issuer(idp.issuer.clone(), clock)?,
    };
    let mut config = RemoteJwksConfig::default();
    config.max_age = idp.jwks.max_age;
    config.stale_if_error = idp.jwks.stale_if_error;
    config.cooldown = idp.jwks.cooldown;
    let jwks = Arc::new(jwks.with_config(config)?);
    let observed = Arc::new(AtomicU64::new(0));
    *running = Some((key, jwks.clone(), observed.clone()));
    Ok((jwks, observed))
}

/// The credential of one route's mode.
fn credential_of(
    name: &str,
    resource: &Audience,
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
            Arc::new(MeteredHttp::new(token_http.clone(), Some(name.to_owned()))),
            clock.clone(),
        )),
        CredentialPlan::Static { credential, .. } => Arc::new(credential),
        CredentialPlan::HeaderTemplate { credential, .. } => Arc::new(credential),
        CredentialPlan::Passthrough => {
            tracing::warn!(
                credential = %format!("upstream[{name}].credential"),
                "passthrough: the caller's IdP token is sent to this upstream as is"
            );
            Arc::new(PassthroughCredential::new(resource.clone()))
        }
        CredentialPlan::None => Arc::new(NoCredential),
    }
}
