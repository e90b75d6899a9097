//! The gateway assembled from its configuration: routes, health, metadata and serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::StatusCode;
use idjag_core::remote::{FetchError, RemoteJwks, RemoteJwksConfig};
use idjag_core::server::json_response;
use idjag_core::{
    Audience, Issuer, ProtectedResourceMetadata, Resource, ScopeSet, SharedClock, SystemClock,
};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use url::Url;

use crate::admin::AdminSettings;
use crate::approval::Approvals;
use crate::audit::{ArgumentRule, AuditSink, JsonLines};
use crate::authz::{AccessRule, Authorizer, RuleAuthorizer, Subjects, ToolPattern, UpstreamRules};
use crate::bridge::{
    ClientCredentialsGrant, ClientCredentialsTarget, HeaderTemplates, PassthroughCredential,
    StaticCredential, TemplateCredential, token_http,
};
use crate::config::{
    AuditOutput, Config, ConfigError, CredentialConfig, SecretSource, Warning, invalid,
};
use crate::guardrails::ToolGuard;
use crate::headers::ForwardPolicy;
use crate::identity::TeamMap;
use crate::inbound::{InboundAuth, InboundSettings};
use crate::metrics::{MeteredSink, Metrics};
use crate::proxy::{ProxySettings, Shared, Upstream, handle};
use crate::revocation::Revocations;
use crate::server::{ServerLimits, serve};
use crate::session::Sessions;
use crate::sse::StreamGauge;
use crate::upstream::{IdJagCredential, IdJagOutbound, IdJagTarget, UpstreamCredential};

/// Most MCP sessions remembered, and how long an unused one is kept.
const SESSION_CAPACITY: u64 = 100_000;
const SESSION_IDLE: Duration = Duration::from_secs(3600);

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The IdP's key source could not be set up.
    #[error("IdP keys: {0}")]
    Jwks(#[from] FetchError),
    /// A validator setting is out of range.
    #[error("inbound validation: {0}")]
    Validator(#[from] idjag_core::ValidatorConfigError),
    /// The outbound client could not be set up.
    #[error("outbound client: {0}")]
    Client(#[from] idjag_client::ClientError),
    /// The audit log could not be opened.
    #[error("audit log: {0}")]
    Audit(std::io::Error),
}

/// A running gateway's handle: its router, shutdown switch and counters.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    public_url: String,
    limits: ServerLimits,
    shutdown: Arc<watch::Sender<bool>>,
    outbound: Arc<IdJagOutbound>,
    warnings: Vec<Warning>,
    max_in_flight: usize,
}

/// Builds a [`Gateway`] from a [`Config`].
#[derive(Debug)]
pub struct GatewayBuilder {
    config: Config,
    clock: SharedClock,
    audit: Option<Arc<dyn AuditSink>>,
    authorizer: Option<Arc<dyn Authorizer>>,
}

impl GatewayBuilder {
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

    /// Validates the configuration, reads the secrets and assembles the gateway. Nothing is
    /// fetched yet: keys and metadata are loaded on first use (see [`Gateway::ready`]).
    pub fn build(self) -> Result<Gateway, BuildError> {
        let config = self.config;
        let clock = self.clock;
        let warnings = config.validate()?;
        let public_url = config.server.public_url.trim_end_matches('/').to_owned();
        let idp_issuer = Issuer::new(config.idp.issuer.as_str())
            .map_err(|e| invalid("idp.issuer", e.to_string()))?;

        let jwks = match &config.idp.jwks_uri {
            Some(uri) => RemoteJwks::from_jwks_uri(idp_issuer.clone(), uri, clock.clone())?,
            None => RemoteJwks::from_issuer(idp_issuer.clone(), clock.clone())?,
        };
        let mut jwks_config = RemoteJwksConfig::default();
        jwks_config.max_age = config.idp.jwks_max_age.0;
        jwks_config.stale_if_error = config.idp.jwks_stale_if_error.0;
        jwks_config.cooldown = config.idp.jwks_cooldown.0;
        let jwks = jwks.with_config(jwks_config)?;
        let route_resource = |name: &str| Audience::new(format!("{public_url}/mcp/{name}"));
        let settings = InboundSettings {
            issuer: idp_issuer.clone(),
            client_id: idjag_core::ClientId::new(config.idp.client.id.as_str())
                .map_err(|e| invalid("idp.client.id", e.to_string()))?,
            gateway_resource: Audience::new(public_url.as_str())
                .map_err(|e| invalid("server.public_url", e.to_string()))?,
            route_resources: config
                .upstreams
                .iter()
                .map(|u| route_resource(&u.name))
                .collect::<Result<_, _>>()
                .map_err(|e| invalid("upstream", e.to_string()))?,
            accept: config.inbound.accept.clone(),
            algorithms: config.algorithms()?,
            leeway: config.idp.leeway.0,
            max_token_bytes: config.inbound.max_token_bytes,
            cache_capacity: config.inbound.cache_capacity,
        };
        let teams = TeamMap::new(config.teams.clone(), config.inbound.groups_claim.clone());
        let inbound = InboundAuth::new(settings, Arc::new(jwks), teams, clock.clone())?;

        let outbound = Arc::new(IdJagOutbound::new(
            idp_issuer,
            config.idp.token_endpoint.clone(),
            config.idp.client.credentials("idp.client", clock.clone())?,
            clock.clone(),
        )?);

        let mut upstreams = HashMap::new();
        let mut guards = HashMap::new();
        let mut rules = RuleAuthorizer::new();
        for u in &config.upstreams {
            let key = format!("upstream[{}]", u.name);
            let credential: Arc<dyn UpstreamCredential> = match &u.credential {
                CredentialConfig::IdJag {
                    authorization_server,
                    token_endpoint,
                    resource,
                    scopes,
                    client,
                    id_jag_reuse,
                } => Arc::new(IdJagCredential::new(
                    outbound.clone(),
                    IdJagTarget {
                        authorization_server: Issuer::new(authorization_server.as_str())
                            .map_err(|e| invalid(&key, e.to_string()))?,
                        token_endpoint: token_endpoint.clone(),
                        resource: Resource::new(resource.as_deref().unwrap_or(&u.url))
                            .map_err(|e| invalid(&key, e.to_string()))?,
                        scope: ScopeSet::parse(&scopes.join(" "))
                            .map_err(|e| invalid(&key, e.to_string()))?,
                        credentials: client
                            .credentials(&format!("{key}.credential.client"), clock.clone())?,
                        id_jag_reuse: *id_jag_reuse,
                    },
                )),
                other => bridge_credential(&key, other, clock.clone())?,
            };
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(u.connect_timeout.0)
                .read_timeout(u.read_timeout.0)
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
                .map_err(|_| invalid(&key, "HTTP client setup failed"))?;
            let upstream = Upstream {
                name: u.name.clone(),
                url: Url::parse(&u.url)
                    .map_err(|e| invalid(format!("{key}.url"), e.to_string()))?,
                resource: route_resource(&u.name).map_err(|e| invalid(&key, e.to_string()))?,
                metadata_url: format!(
                    "{public_url}/.well-known/oauth-protected-resource/mcp/{}",
                    u.name
                ),
                credential,
                http,
            };
            upstreams.insert(u.name.clone(), Arc::new(upstream));
            rules = rules.with_upstream(u.name.clone(), upstream_rules(&key, u)?);
            let mut tools = HashMap::new();
            for (tool, tool_config) in &u.tools {
                let guard = ToolGuard::from_config(tool_config)
                    .map_err(|p| invalid(format!("{key}.tools.{tool}"), p))?;
                if !guard.is_empty() {
                    tools.insert(tool.clone(), guard);
                }
            }
            guards.insert(u.name.clone(), tools);
        }

        let mut audit: Arc<dyn AuditSink> = match self.audit {
            Some(sink) => sink,
            None => Arc::new(open_audit(
                &config.audit.output,
                config.audit.flush_interval.0,
            )?),
        };
        let metrics = config.metrics.enabled.then(|| {
            Arc::new(Metrics::new(
                config.upstreams.iter().map(|u| u.name.clone()).collect(),
            ))
        });
        if let Some(metrics) = &metrics {
            audit = Arc::new(MeteredSink {
                inner: audit,
                metrics: metrics.clone(),
            });
        }
        let admin = match &config.admin {
            Some(admin) => Some(AdminSettings {
                token: admin
                    .token()
                    .read("admin")?
                    .ok_or_else(|| invalid("admin", "set secret_env or secret_file"))?,
                revocation_ttl: admin.revocation_ttl.0,
            }),
            None => None,
        };
        let (approval_ttl, max_pending) = config
            .admin
            .as_ref()
            .map_or((Duration::from_secs(900), 1000), |a| {
                (a.approval_ttl.0, a.max_pending_approvals)
            });
        let approvals = Arc::new(Approvals::new(
            i64::try_from(approval_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            max_pending,
            clock.clone(),
        ));
        let revocations = Arc::new(Revocations::new(clock.clone()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let s = &config.server;
        let shared = Shared {
            settings: ProxySettings {
                allowed_origins: s.allowed_origins.clone(),
                protocol_versions: s.protocol_versions.clone(),
                max_body_bytes: s.max_body_bytes,
                body_timeout: s.body_timeout.0,
                max_filtered_response_bytes: s.max_filtered_response_bytes,
                max_sse_event_bytes: s.max_sse_event_bytes,
                sse_on_token_expiry: s.sse_on_token_expiry,
            },
            inbound,
            authorizer: self.authorizer.unwrap_or_else(|| Arc::new(rules)),
            upstreams,
            sessions: Sessions::new(SESSION_CAPACITY, SESSION_IDLE),
            audit,
            arguments: ArgumentRule::new(
                config.audit.arguments,
                &config.audit.redact_keys,
                config.audit.max_argument_bytes,
            ),
            forward: ForwardPolicy::new(&s.forward_headers),
            clock,
            in_flight: Arc::new(Semaphore::new(s.max_in_flight)),
            streams: Arc::new(StreamGauge::default()),
            shutdown: shutdown_rx,
            guards,
            approvals,
            revocations,
            admin,
            metrics,
            metrics_require_admin: config.metrics.require_admin_token,
            outbound: outbound.clone(),
        };
        Ok(Gateway {
            shared: Arc::new(shared),
            public_url,
            limits: ServerLimits {
                max_connections: s.max_connections,
                max_header_bytes: s.max_header_bytes,
                header_read_timeout: s.header_read_timeout.0,
                shutdown_grace: s.shutdown_grace.0,
            },
            shutdown: Arc::new(shutdown),
            outbound,
            warnings,
            max_in_flight: s.max_in_flight,
        })
    }
}

/// The credential of a bridging mode (every mode but `id_jag`); reads its secret now, so a
/// missing one is a configuration error at start-up.
fn bridge_credential(
    key: &str,
    config: &CredentialConfig,
    clock: SharedClock,
) -> Result<Arc<dyn UpstreamCredential>, BuildError> {
    let ckey = format!("{key}.credential");
    Ok(match config {
        CredentialConfig::ClientCredentials {
            authorization_server,
            token_endpoint,
            scopes,
            resource,
            client,
        } => Arc::new(ClientCredentialsGrant::new(
            ClientCredentialsTarget {
                authorization_server: Issuer::new(authorization_server.as_str())
                    .map_err(|e| invalid(&ckey, e.to_string()))?,
                token_endpoint: Url::parse(token_endpoint)
                    .map_err(|e| invalid(format!("{ckey}.token_endpoint"), e.to_string()))?,
                scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
                resource: resource.clone(),
                credentials: client.credentials(&format!("{ckey}.client"), clock.clone())?,
            },
            token_http()?,
            clock,
        )),
        CredentialConfig::Static {
            header,
            scheme,
            secret_env,
            secret_file,
        } => {
            let secret = SecretSource::new(secret_env.as_ref(), secret_file.as_ref())
                .read(&ckey)?
                .ok_or_else(|| invalid(&ckey, "set secret_env or secret_file"))?;
            Arc::new(
                StaticCredential::new(header, scheme.as_deref(), &secret)
                    .map_err(|p| invalid(&ckey, p))?,
            )
        }
        CredentialConfig::HeaderTemplate {
            headers,
            secret_env,
            secret_file,
        } => Arc::new(TemplateCredential::new(
            HeaderTemplates::parse(headers).map_err(|p| invalid(format!("{ckey}.headers"), p))?,
            SecretSource::new(secret_env.as_ref(), secret_file.as_ref()).read(&ckey)?,
        )),
        CredentialConfig::Passthrough {} => {
            tracing::warn!(
                credential = %ckey,
                "passthrough: the caller's IdP token is sent to this upstream as is"
            );
            Arc::new(PassthroughCredential)
        }
        _ => return Err(invalid(&ckey, "unsupported mode").into()),
    })
}

fn upstream_rules(
    key: &str,
    u: &crate::config::UpstreamConfig,
) -> Result<UpstreamRules, ConfigError> {
    let patterns = |list: &[String]| -> Result<Vec<ToolPattern>, ConfigError> {
        list.iter()
            .map(|p| ToolPattern::new(p).map_err(|e| invalid(key, e)))
            .collect()
    };
    let mut access = Vec::new();
    for rule in &u.access {
        access.push(AccessRule::new(
            Subjects {
                users: rule.users.clone(),
                teams: rule.teams.clone(),
                everyone: rule.everyone,
            },
            patterns(&rule.allow)?,
            patterns(&rule.deny)?,
        ));
    }
    let mut scopes = HashMap::new();
    for (tool, config) in &u.tools {
        if !config.scopes.is_empty() {
            let set = ScopeSet::parse(&config.scopes.join(" "))
                .map_err(|e| invalid(key, e.to_string()))?;
            scopes.insert(tool.clone(), set);
        }
    }
    Ok(UpstreamRules::new(access, scopes))
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

impl Gateway {
    /// A builder for `config`, with the system clock and the configured audit output.
    pub fn builder(config: Config) -> GatewayBuilder {
        GatewayBuilder {
            config,
            clock: SystemClock::shared(),
            audit: None,
            authorizer: None,
        }
    }

    /// The configuration warnings.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The routes: `/mcp/{name}`, their RFC 9728 metadata, `/healthz`, `/readyz`,
    /// `/metrics` and the admin API under `/admin/` ([`crate::admin`]).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/mcp/{name}", any(handle))
            .route("/metrics", get(metrics))
            .merge(crate::admin::router())
            .route(
                "/.well-known/oauth-protected-resource/mcp/{name}",
                get(route_metadata),
            )
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then shuts down gracefully.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let switch = self.shutdown.clone();
        serve(listener, self.router(), self.limits, shutdown, move || {
            let _ = switch.send(true);
        })
        .await
    }

    /// Tells open SSE streams to end (part of [`Self::serve`]'s shutdown).
    pub fn close_streams(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Whether the IdP's keys and every upstream's credential setup are available.
    pub async fn ready(&self) -> bool {
        readiness(&self.shared).await
    }

    /// Token exchanges at the IdP so far.
    pub fn exchange_count(&self) -> u64 {
        self.outbound.exchange_count()
    }

    /// Redemptions at resource authorization servers so far.
    pub fn redemption_count(&self) -> u64 {
        self.outbound.redemption_count()
    }

    /// Requests for the IdP's JWK Set sent so far.
    pub fn jwks_fetch_count(&self) -> u64 {
        self.shared
            .inbound
            .jwks()
            .map_or(0, |jwks| jwks.fetch_count())
    }

    /// Responses being streamed now (SSE and JSON).
    pub fn live_streams(&self) -> usize {
        self.shared.streams.live()
    }

    /// Requests in flight now (SSE streams included).
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.shared.in_flight.available_permits()
    }

    /// The public URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The connection limits.
    pub fn limits(&self) -> ServerLimits {
        self.limits
    }
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: http::HeaderMap) -> Response {
    let Some(metrics) = &shared.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if shared.metrics_require_admin
        && let Err(response) = crate::admin::authorized(&shared, &headers)
    {
        return *response;
    }
    metrics.set_total(
        "idjag_gateway_token_exchanges_total",
        &[],
        shared.outbound.exchange_count(),
    );
    metrics.set_total(
        "idjag_gateway_redemptions_total",
        &[],
        shared.outbound.redemption_count(),
    );
    metrics.set_total(
        "idjag_gateway_jwks_fetches_total",
        &[],
        shared.inbound.jwks().map_or(0, |jwks| jwks.fetch_count()),
    );
    let (hits, misses) = shared.inbound.cache_stats();
    metrics.set_total(
        "idjag_gateway_identity_cache_total",
        &[("result", "hit".into())],
        hits,
    );
    metrics.set_total(
        "idjag_gateway_identity_cache_total",
        &[("result", "miss".into())],
        misses,
    );
    for upstream in shared.upstreams.values() {
        let (hits, misses) = upstream.credential.cache_stats();
        let name = || ("upstream", upstream.name.clone());
        metrics.set_total(
            "idjag_gateway_credential_cache_total",
            &[name(), ("result", "hit".into())],
            hits,
        );
        metrics.set_total(
            "idjag_gateway_credential_cache_total",
            &[name(), ("result", "miss".into())],
            misses,
        );
        if let Some(fetches) = upstream.credential.fetch_count() {
            metrics.set_total(
                "idjag_gateway_client_credentials_fetches_total",
                &[name()],
                fetches,
            );
        }
    }
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn readiness(shared: &Shared) -> bool {
    if *shared.shutdown.borrow() || !shared.inbound.ready().await {
        return false;
    }
    for upstream in shared.upstreams.values() {
        if !upstream.credential.ready().await {
            return false;
        }
    }
    true
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if readiness(&shared).await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn route_metadata(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let Some(upstream) = shared.upstreams.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(resource) = Resource::new(upstream.resource.as_str()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut metadata =
        ProtectedResourceMetadata::new(resource, vec![shared.inbound.issuer().clone()]);
    metadata.resource_name = Some(format!("{name} (through idjag-gateway)"));
    metadata.bearer_methods_supported = Some(vec!["header".to_owned()]);
    let response = json_response(StatusCode::OK, &metadata);
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}
