//! From the configuration to a running issuer: every setting checked, with errors that name
//! the key; the store opened, the key schedule loaded (or started) and saved; the subject-token
//! validators chosen; the idjag-idp issuer built. `check-config` runs exactly this, without
//! listening.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use idjag_core::endpoint::check_endpoint;
use idjag_core::remote::{RemoteJwks, RemoteJwksConfig};
use idjag_core::server::{ClientAuthMethod, RegisteredClient, StaticClientRegistry};
use idjag_core::{AlgorithmSet, ClientId, Issuer, SharedClock, SystemClock};
use idjag_idp::{
    AuditSubject, BuildError, IdJagIssuer, RotationTiming, SubjectTokenErrorCode, TomlPolicy,
};
use idjag_ops::audit::TrustedProxies;
use idjag_store::{
    BackendConfig, KeyScheduleStore, MarkerKind, MemoryStore, Sealer, SingleUseMarkers, Store,
    StoreConfig,
};

use crate::config::{ClientConfig, Config, ConfigError, JwksCacheConfig, UpstreamConfig};
use crate::keys::{ConfiguredKey, KeySchedule};
use crate::material;
use crate::upstream::{
    ClaimMap, TokenEndpoint, UpstreamClients, UpstreamIdTokens, UpstreamRefreshTokens,
};

/// What one configuration plans: the issuer, its router and what its requests need. Rebuilt
/// on every configuration reload (the store stays the one opened at start-up).
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) issuer: IdJagIssuer,
    /// idjag-idp's router for `issuer`: the token exchange, the JWKS, both metadata forms.
    pub(crate) router: axum::Router,
    pub(crate) schedule: Arc<KeySchedule>,
    pub(crate) request_timeout: Duration,
    pub(crate) trusted_proxies: TrustedProxies,
    /// What was configured, for the start-up line and `check-config`.
    pub(crate) summary: String,
}

fn secs(value: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(value.unwrap_or(default))
}

fn positive(key: &str, value: Option<u64>) -> Result<(), ConfigError> {
    if value == Some(0) {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(())
}

fn issuer_url(key: &str, value: &str) -> Result<Issuer, ConfigError> {
    check_endpoint(value)
        .map_err(|e| ConfigError::new(key, format!("{value:?} is not usable: {e}")))?;
    Issuer::new(value).map_err(|_| ConfigError::new(key, "not a valid issuer identifier"))
}

/// What the assembly is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Serving: the key schedule is saved.
    Serve,
    /// `check-config`: nothing is written; `offline` does not open the store either (its
    /// settings are still checked).
    Check { offline: bool },
}

/// Checks every setting and plans the issuer on `store` (opened once, at start-up, by
/// [`open_store`]); in [`Mode::Serve`] the key schedule is saved. `check-config` and every
/// reload run exactly this.
pub(crate) async fn plan(
    config: &Config,
    base: &Path,
    store: &Arc<dyn Store>,
    sealer: &Sealer,
    mode: Mode,
) -> Result<Plan, ConfigError> {
    let clock = SystemClock::shared();
    config.server.validate("server")?;
    if let Some(admin) = &config.admin {
        admin.validate("admin")?;
    }
    config.telemetry.validate("telemetry")?;
    config.audit.validate("audit")?;
    let trusted_proxies = TrustedProxies::parse(&config.trusted_proxies)
        .map_err(|e| ConfigError::new("trusted_proxies", e.to_string()))?;
    let s = &config.token_exchange;
    let issuer = issuer_url("token_exchange.issuer", &s.issuer)?;
    for (key, value) in [
        (
            "token_exchange.request_timeout_secs",
            s.request_timeout_secs,
        ),
        (
            "token_exchange.id_jag_lifetime_secs",
            s.id_jag_lifetime_secs,
        ),
        ("signing.lead_time_secs", config.signing.lead_time_secs),
        ("signing.retention_secs", config.signing.retention_secs),
    ] {
        positive(key, value)?;
    }
    let request_timeout = secs(s.request_timeout_secs, 30);

    let policy_path = material::resolve(base, &config.policy.file);
    let policy = TomlPolicy::from_path(&policy_path)
        .map_err(|e| ConfigError::new("policy.file", format!("{}: {e}", policy_path.display())))?;

    let (registry, upstream_clients) = clients(&config.clients, base, &clock)?;
    let quotas = config.store.as_ref().map(|s| s.quotas).unwrap_or_default();

    // The key schedule, loaded from the store or started, and saved.
    if config.signing.keys.is_empty() {
        return Err(ConfigError::new("signing.keys", "list at least one key"));
    }
    let mut configured: Vec<ConfiguredKey> = Vec::new();
    for (i, key) in config.signing.keys.iter().enumerate() {
        let at = format!("signing.keys[{i}]");
        let (signing, der) = material::signing_key_with_der(base, &at, key)?;
        if configured.iter().any(|c| c.key.kid() == signing.kid()) {
            return Err(ConfigError::new(
                format!("{at}.kid"),
                "another listed key has this kid",
            ));
        }
        configured.push(ConfiguredKey {
            key: signing,
            der,
            at,
        });
    }
    let timing = RotationTiming::new(
        secs(
            config.signing.lead_time_secs,
            RotationTiming::DEFAULT_LEAD_TIME.as_secs(),
        ),
        secs(
            config.signing.retention_secs,
            RotationTiming::DEFAULT_RETENTION.as_secs(),
        ),
    );
    let schedule = Arc::new(KeySchedule::new(
        KeyScheduleStore::new(store.clone(), sealer.clone()),
        configured,
        timing,
        clock.clone(),
    ));
    let keys = match mode {
        Mode::Serve => schedule.current().await,
        Mode::Check { .. } => schedule.preview().await,
    };
    let keys = keys.map_err(|e| match e {
        crate::keys::ScheduleError::KidConflict { at, kid } => ConfigError::new(
            format!("{at}.file"),
            format!("kid {kid} is already scheduled for a different key"),
        ),
        crate::keys::ScheduleError::Store(e) => {
            ConfigError::new("store", format!("the key schedule cannot be loaded: {e}"))
        }
        other => ConfigError::new("signing.keys", other.to_string()),
    })?;

    let mut builder =
        IdJagIssuer::builder(issuer.clone(), keys, Arc::new(registry), Arc::new(policy))
            .clock(clock.clone())
            .client_assertion_replay_cache(Arc::new(SingleUseMarkers::new(
                store.clone(),
                MarkerKind::ClientAssertion,
                quotas.client_assertion_per_client,
            )))
            .dpop_replay_cache(Arc::new(SingleUseMarkers::new(
                store.clone(),
                MarkerKind::Dpop,
                quotas.dpop_per_key,
            )));
    if let Some(lifetime) = s.id_jag_lifetime_secs {
        builder = builder.lifetime(Duration::from_secs(lifetime));
    }
    if let Some(tenant) = &s.tenant {
        builder = builder.tenant(tenant.clone());
    }
    if let Some(url) = &s.authorization_endpoint {
        builder = builder.authorization_endpoint(url.clone());
    }
    if let Some(max) = s.max_body_bytes {
        if max < 1024 {
            return Err(ConfigError::new(
                "token_exchange.max_body_bytes",
                "must be at least 1024",
            ));
        }
        builder = builder.max_body_bytes(max);
    }
    if s.dpop == Some(false) {
        builder = builder.without_dpop();
    }
    if s.accept_token_endpoint_as_assertion_audience {
        builder = builder.accept_token_endpoint_as_assertion_audience();
    }
    builder = builder.audit_subject(match s.audit_subjects.as_deref() {
        None | Some("hashed") => AuditSubject::Sha256,
        Some("plain") => AuditSubject::Plain,
        Some("omit") => AuditSubject::Omit,
        Some(other) => {
            return Err(ConfigError::new(
                "token_exchange.audit_subjects",
                format!("{other:?} is not \"hashed\", \"plain\" or \"omit\""),
            ));
        }
    });
    let subject = &config.subject_tokens;
    builder = builder.subject_token_error_code(match subject.error.as_deref() {
        None | Some("invalid_grant") => SubjectTokenErrorCode::InvalidGrant,
        Some("invalid_request") => SubjectTokenErrorCode::InvalidRequest,
        Some(other) => {
            return Err(ConfigError::new(
                "subject_tokens.error",
                format!("{other:?} is not \"invalid_grant\" or \"invalid_request\""),
            ));
        }
    });
    let id_tokens = match (subject.id_tokens.as_deref(), &config.upstream) {
        (None, None) | (Some("own"), _) => "own",
        (None | Some("upstream"), Some(_)) => "upstream",
        (Some("upstream"), None) => {
            return Err(ConfigError::new(
                "subject_tokens.id_tokens",
                "\"upstream\" needs an [upstream] section",
            ));
        }
        (Some(other), _) => {
            return Err(ConfigError::new(
                "subject_tokens.id_tokens",
                format!("{other:?} is not \"own\" or \"upstream\""),
            ));
        }
    };
    let refresh = match subject.refresh_tokens.as_deref() {
        None | Some("none") => false,
        Some("upstream") if config.upstream.is_some() => true,
        Some("upstream") => {
            return Err(ConfigError::new(
                "subject_tokens.refresh_tokens",
                "\"upstream\" needs an [upstream] section",
            ));
        }
        Some(other) => {
            return Err(ConfigError::new(
                "subject_tokens.refresh_tokens",
                format!("{other:?} is not \"none\" or \"upstream\""),
            ));
        }
    };
    if let Some(upstream) = &config.upstream {
        if upstream.issuer == s.issuer {
            return Err(ConfigError::new(
                "upstream.issuer",
                "the upstream IdP cannot be this issuer",
            ));
        }
        let id_validator = Arc::new(upstream_id_tokens(
            upstream,
            &clock,
            upstream_clients.clone(),
        )?);
        if id_tokens == "upstream" {
            builder = builder.id_token_validator(id_validator.clone());
        }
        if refresh {
            if upstream_clients.secrets.is_empty() {
                return Err(ConfigError::new(
                    "subject_tokens.refresh_tokens",
                    "no client has upstream_secret_env or upstream_secret_file",
                ));
            }
            let endpoint = match &upstream.token_endpoint {
                Some(url) => TokenEndpoint::Fixed(check_endpoint(url).map_err(|e| {
                    ConfigError::new(
                        "upstream.token_endpoint",
                        format!("{url:?} is not usable: {e}"),
                    )
                })?),
                None => TokenEndpoint::Discover(tokio::sync::OnceCell::new()),
            };
            let refresh_validator = UpstreamRefreshTokens::new(
                id_validator,
                endpoint,
                upstream
                    .refresh_scope
                    .clone()
                    .unwrap_or_else(|| "openid".into()),
            )
            .map_err(|e| ConfigError::new("upstream", format!("HTTP client: {e}")))?;
            builder = builder.refresh_token_validator(Arc::new(refresh_validator));
        }
    } else if !upstream_clients.secrets.is_empty() || !upstream_clients.ids.is_empty() {
        return Err(ConfigError::new(
            "clients",
            "upstream_client_id and upstream secrets need an [upstream] section",
        ));
    }

    let issuer_built = builder.build().map_err(build_error)?;
    let summary = format!(
        "issuer {issuer}, {} client(s), subject ID tokens {id_tokens}{}, {} signing key(s) listed, store {}",
        config.clients.len(),
        if refresh {
            ", upstream refresh tokens"
        } else {
            ""
        },
        config.signing.keys.len(),
        store.backend(),
    );
    Ok(Plan {
        router: issuer_built.router(),
        issuer: issuer_built,
        schedule,
        request_timeout,
        trusted_proxies,
        summary,
    })
}

/// The client registry and the clients' upstream registrations.
fn clients(
    configs: &[ClientConfig],
    base: &Path,
    clock: &SharedClock,
) -> Result<(StaticClientRegistry, Arc<UpstreamClients>), ConfigError> {
    if configs.is_empty() {
        return Err(ConfigError::new(
            "clients",
            "register at least one client ([[clients]])",
        ));
    }
    let mut registry = StaticClientRegistry::new();
    let mut seen: Vec<ClientId> = Vec::new();
    let mut upstream = UpstreamClients::default();
    for (i, c) in configs.iter().enumerate() {
        let at = format!("clients[{i}]");
        let id = ClientId::new(c.client_id.as_str())
            .map_err(|_| ConfigError::new(format!("{at}.client_id"), "not a valid client id"))?;
        if seen.contains(&id) {
            return Err(ConfigError::new(
                format!("{at}.client_id"),
                format!("{} is registered twice", c.client_id),
            ));
        }
        let secret =
            material::secret(base, &at, c.secret_env.as_deref(), c.secret_file.as_deref())?;
        let methods = auth_methods(&at, c, secret.is_some())?;
        let client = match (secret, &c.jwks_uri) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    format!("{at}.jwks_uri"),
                    "a client has a secret or a jwks_uri, not both",
                ));
            }
            (Some(secret), None) => {
                RegisteredClient::with_secret(id.clone(), &secret).only_methods(&methods)
            }
            (None, Some(uri)) => {
                let label = Issuer::new(c.client_id.as_str()).map_err(|_| {
                    ConfigError::new(format!("{at}.client_id"), "not a valid client id")
                })?;
                let keys = RemoteJwks::from_jwks_uri(label, uri, clock.clone()).map_err(|e| {
                    ConfigError::new(
                        format!("{at}.jwks_uri"),
                        format!("{uri:?} is not usable: {e}"),
                    )
                })?;
                RegisteredClient::with_private_key_jwt(id.clone(), Arc::new(keys))
            }
            (None, None) => {
                return Err(ConfigError::new(
                    at,
                    "needs secret_env or secret_file (client_secret_basic/post), or jwks_uri \
                     (private_key_jwt)",
                ));
            }
        };
        if let Some(upstream_id) = &c.upstream_client_id {
            if upstream_id.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.upstream_client_id"),
                    "must not be empty",
                ));
            }
            upstream.ids.insert(id.clone(), upstream_id.clone());
        }
        let upstream_secret = material::secret(
            base,
            &format!("{at}.upstream"),
            c.upstream_secret_env.as_deref(),
            c.upstream_secret_file.as_deref(),
        )
        .map_err(|e| {
            ConfigError::new(
                e.key.replace(".upstream.secret_", ".upstream_secret_"),
                e.problem,
            )
        })?;
        if let Some(secret) = upstream_secret {
            upstream.secrets.insert(id.clone(), secret);
        }
        registry = registry.with(client);
        seen.push(id);
    }
    Ok((registry, Arc::new(upstream)))
}

/// The secret methods of a client (empty for `private_key_jwt`).
fn auth_methods(
    at: &str,
    client: &ClientConfig,
    has_secret: bool,
) -> Result<Vec<ClientAuthMethod>, ConfigError> {
    let key = format!("{at}.auth_methods");
    let Some(names) = &client.auth_methods else {
        return Ok(if has_secret {
            vec![
                ClientAuthMethod::ClientSecretBasic,
                ClientAuthMethod::ClientSecretPost,
            ]
        } else {
            Vec::new()
        });
    };
    if names.is_empty() {
        return Err(ConfigError::new(key, "name at least one method"));
    }
    let mut methods = Vec::new();
    for name in names {
        match (name.as_str(), has_secret) {
            ("client_secret_basic", true) => methods.push(ClientAuthMethod::ClientSecretBasic),
            ("client_secret_post", true) => methods.push(ClientAuthMethod::ClientSecretPost),
            ("private_key_jwt", false) if client.jwks_uri.is_some() => {}
            ("client_secret_basic" | "client_secret_post", false) => {
                return Err(ConfigError::new(
                    key,
                    format!("{name} needs secret_env or secret_file"),
                ));
            }
            ("private_key_jwt", _) => {
                return Err(ConfigError::new(
                    key,
                    "private_key_jwt needs a jwks_uri and no secret",
                ));
            }
            (other, _) => {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{other:?} is not client_secret_basic, client_secret_post or private_key_jwt"
                    ),
                ));
            }
        }
    }
    Ok(methods)
}

fn jwks_config(cache: Option<&JwksCacheConfig>) -> Result<RemoteJwksConfig, ConfigError> {
    let mut config = RemoteJwksConfig::default();
    let Some(cache) = cache else {
        return Ok(config);
    };
    for (name, value) in [
        ("max_age_secs", cache.max_age_secs),
        ("cooldown_secs", cache.cooldown_secs),
        ("timeout_secs", cache.timeout_secs),
    ] {
        positive(&format!("upstream.jwks_cache.{name}"), value)?;
    }
    if let Some(v) = cache.max_age_secs {
        config.max_age = Duration::from_secs(v);
    }
    if let Some(v) = cache.stale_if_error_secs {
        config.stale_if_error = Duration::from_secs(v);
    }
    if let Some(v) = cache.cooldown_secs {
        config.cooldown = Duration::from_secs(v);
    }
    if let Some(v) = cache.timeout_secs {
        config.timeout = Duration::from_secs(v);
    }
    Ok(config)
}

fn upstream_id_tokens(
    upstream: &UpstreamConfig,
    clock: &SharedClock,
    clients: Arc<UpstreamClients>,
) -> Result<UpstreamIdTokens, ConfigError> {
    let issuer = issuer_url("upstream.issuer", &upstream.issuer)?;
    let remote = match &upstream.jwks_uri {
        Some(uri) => {
            RemoteJwks::from_jwks_uri(issuer.clone(), uri, clock.clone()).map_err(|e| {
                ConfigError::new("upstream.jwks_uri", format!("{uri:?} is not usable: {e}"))
            })?
        }
        None => RemoteJwks::from_issuer(issuer.clone(), clock.clone())
            .map_err(|e| ConfigError::new("upstream.issuer", e.to_string()))?,
    }
    .with_config(jwks_config(upstream.jwks_cache.as_ref())?)
    .map_err(|e| ConfigError::new("upstream.jwks_cache", e.to_string()))?;
    let algorithms = match &upstream.algorithms {
        None => AlgorithmSet::all(),
        Some(names) => {
            let mut set = AlgorithmSet::empty();
            for (i, name) in names.iter().enumerate() {
                set = set.with(material::algorithm(
                    &format!("upstream.algorithms[{i}]"),
                    name,
                )?);
            }
            if set.is_empty() {
                return Err(ConfigError::new(
                    "upstream.algorithms",
                    "name at least one algorithm",
                ));
            }
            set
        }
    };
    positive("upstream.max_age_secs", upstream.max_age_secs)?;
    let leeway = secs(upstream.leeway_secs, 30);
    if leeway > Duration::from_secs(300) {
        return Err(ConfigError::new(
            "upstream.leeway_secs",
            "must be at most 300",
        ));
    }
    let claim_name = |key: &str, value: &Option<String>, default: Option<&str>| match value
        .as_deref()
        .or(default)
    {
        Some("") => Err(ConfigError::new(key, "must name a claim")),
        other => Ok(other.map(str::to_owned)),
    };
    let required: BTreeMap<String, String> = upstream.required_claims.clone();
    Ok(UpstreamIdTokens::new(
        issuer,
        Arc::new(remote),
        algorithms,
        clock.clone(),
        leeway,
        secs(upstream.max_age_secs, 86_400),
        ClaimMap {
            subject: claim_name(
                "upstream.subject_claim",
                &upstream.subject_claim,
                Some("sub"),
            )?
            .unwrap_or_default(),
            groups: claim_name("upstream.groups_claim", &upstream.groups_claim, None)?,
            email: claim_name("upstream.email_claim", &upstream.email_claim, Some("email"))?
                .unwrap_or_default(),
            tenant: claim_name("upstream.tenant_claim", &upstream.tenant_claim, None)?,
            required,
        },
        clients,
    ))
}

/// The sealer of resolved store settings: from the sealing key, or a fresh one for the memory
/// backend (nothing outlives the process there). Other backends need a sealing key: the
/// issuer keeps its signing keys in the store.
pub(crate) fn sealer_of(config: &StoreConfig) -> Result<Sealer, ConfigError> {
    match (config.sealer().map_err(store_error)?, &config.backend) {
        (Some(sealer), _) => Ok(sealer),
        (None, BackendConfig::Memory { .. }) => {
            Sealer::generate(idjag_core::crypto::AeadAlgorithm::Aes256Gcm)
                .map_err(|e| ConfigError::new("store", e.to_string()))
        }
        (None, _) => Err(ConfigError::new(
            "store.sealing_key_file",
            "the issuer keeps its signing keys in the store, sealed: set sealing_key_file \
             or sealing_key_env (64 hex digits)",
        )),
    }
}

/// The store settings with their relative paths (the embedded database, Redis credential
/// and TLS files, the sealing key file) resolved against the configuration's directory.
pub(crate) fn resolve_store(config: &StoreConfig, base: &Path) -> StoreConfig {
    let mut config = config.clone();
    if let BackendConfig::Embedded { path, .. } = &mut config.backend {
        *path = material::resolve(base, path);
    }
    if let BackendConfig::Redis(redis) = &mut config.backend {
        for file in [
            &mut redis.password_file,
            &mut redis.ca_file,
            &mut redis.cert_file,
            &mut redis.key_file,
        ]
        .into_iter()
        .flatten()
        {
            *file = material::resolve(base, file);
        }
    }
    if let Some(file) = &mut config.sealing_key_file {
        *file = material::resolve(base, file);
    }
    config
}

/// The `[store]` section with its paths resolved against the configuration's directory, the
/// store opened (memory when there is no section), and the sealer of the key schedule.
pub(crate) fn open_store(
    config: Option<&StoreConfig>,
    base: &Path,
    clock: &SharedClock,
) -> Result<(Arc<dyn Store>, Sealer), ConfigError> {
    let Some(config) = config else {
        let sealer = Sealer::generate(idjag_core::crypto::AeadAlgorithm::Aes256Gcm)
            .map_err(|e| ConfigError::new("store", e.to_string()))?;
        return Ok((Arc::new(MemoryStore::new(clock.clone())), sealer));
    };
    let config = resolve_store(config, base);
    let sealer = sealer_of(&config)?;
    let store = config.open(clock.clone()).map_err(store_error)?;
    Ok((store, sealer))
}

/// idjag-store's errors already name their key (`store.backend.path: ...`).
pub(crate) fn store_error(error: idjag_store::ConfigError) -> ConfigError {
    let text = error.to_string();
    match text.split_once(": ") {
        Some((key, problem)) if key.starts_with("store") => ConfigError::new(key, problem),
        _ => ConfigError::new("store", text),
    }
}

fn build_error(error: BuildError) -> ConfigError {
    let key = match &error {
        BuildError::Issuer => "token_exchange.issuer",
        BuildError::Endpoint { endpoint, .. } if *endpoint == "authorization_endpoint" => {
            "token_exchange.authorization_endpoint"
        }
        BuildError::Endpoint { .. } => "token_exchange.issuer",
        BuildError::Lifetime => "token_exchange.id_jag_lifetime_secs",
        BuildError::RetentionTooShort => "signing.retention_secs",
        BuildError::BodyLimit => "token_exchange.max_body_bytes",
        _ => "(configuration)",
    };
    ConfigError::new(key, error.to_string())
}
