//! From the configuration to a running resource authorization server: every setting checked,
//! with errors that name the key, then the library server and the store built. `check-config`
//! runs exactly this, without listening.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use idjag_core::endpoint::check_endpoint;
use idjag_core::remote::{RemoteJwks, RemoteJwksConfig};
use idjag_core::server::{ClientAuthMethod, RegisteredClient, StaticClientRegistry};
use idjag_core::{
    AlgorithmSet, Audience, ClientId, Issuer, Resource, Scope, ScopeSet, SharedClock, SystemClock,
};
use idjag_ops::audit::TrustedProxies;
use idjag_resource::{
    AbsentResource, AccessTokenLifetime, AuditSubjects, AuthorizationEndpoint, BuildError,
    RegisteredResource, ReplayPolicy, ResourceAuthorizationServer, TrustedIssuer,
    UngovernedResource,
};
use idjag_store::{BackendConfig, MarkerKind, MemoryStore, SingleUseMarkers, Store, StoreConfig};

use crate::config::{ClientConfig, Config, ConfigError, JwksCacheConfig, TrustedIdpConfig};
use crate::material;
use crate::subject;

/// What one configuration plans: the server and what its requests need. Rebuilt on every
/// configuration reload (the store stays the one opened at start-up).
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) server: ResourceAuthorizationServer,
    pub(crate) request_timeout: Duration,
    pub(crate) trusted_proxies: TrustedProxies,
    /// What was configured, for the start-up line and `check-config`.
    pub(crate) summary: String,
}

fn secs(value: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(value.unwrap_or(default))
}

fn issuer_url(key: &str, value: &str) -> Result<Issuer, ConfigError> {
    check_endpoint(value)
        .map_err(|e| ConfigError::new(key, format!("{value:?} is not usable: {e}")))?;
    Issuer::new(value).map_err(|_| ConfigError::new(key, "not a valid issuer identifier"))
}

fn resource_id(key: &str, value: &str) -> Result<Resource, ConfigError> {
    Resource::new(value).map_err(|_| {
        ConfigError::new(
            key,
            format!("{value:?} is not an absolute URI without fragment (RFC 8707)"),
        )
    })
}

/// Each value one RFC 6749 §3.3 scope token (a space inside one is an error, never a split).
fn scopes(key: &str, values: &[String]) -> Result<ScopeSet, ConfigError> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            Scope::new(value.as_str()).map_err(|_| {
                ConfigError::new(
                    format!("{key}[{i}]"),
                    format!("{value:?} is not an RFC 6749 scope token"),
                )
            })
        })
        .collect()
}

fn positive(key: &str, value: Option<u64>) -> Result<(), ConfigError> {
    if value == Some(0) {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(())
}

/// Checks every setting and plans the server on `store` (opened once, at start-up, by
/// [`open_store`]). `check-config` and every reload run exactly this.
pub(crate) fn plan(
    config: &Config,
    base: &Path,
    store: &Arc<dyn Store>,
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
    let as_cfg = &config.authorization_server;
    let issuer = issuer_url("authorization_server.issuer", &as_cfg.issuer)?;
    positive(
        "authorization_server.request_timeout_secs",
        as_cfg.request_timeout_secs,
    )?;
    let request_timeout = secs(as_cfg.request_timeout_secs, 30);

    let signing_key = material::signing_key(base, "signing.key", &config.signing.key)?;
    let mut builder = ResourceAuthorizationServer::builder(issuer.clone(), signing_key)
        .ungoverned_resource(UngovernedResource::InvalidTarget)
        .clock(clock.clone());
    for (i, published) in config.signing.published.iter().enumerate() {
        let at = format!("signing.published[{i}]");
        let key = material::signing_key(base, &at, published)?;
        let public = key
            .verifying_key()
            .map_err(|e| ConfigError::new(format!("{at}.file"), e.to_string()))?;
        builder = builder.published_key(public);
    }

    // Resources first: trusted IdPs and the token policy refer to them.
    if config.resources.is_empty() {
        return Err(ConfigError::new(
            "resources",
            "configure at least one [[resources]]",
        ));
    }
    let mut governed: Vec<Resource> = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let at = format!("resources[{i}]");
        let resource = resource_id(&format!("{at}.resource"), &r.resource)?;
        if governed.contains(&resource) {
            return Err(ConfigError::new(
                format!("{at}.resource"),
                format!("{} is configured twice", r.resource),
            ));
        }
        let mut registered = RegisteredResource::new(resource.clone())
            .with_scopes(scopes(&format!("{at}.scopes"), &r.scopes)?);
        if let Some(types) = &r.authorization_detail_types {
            registered = registered.with_authorization_detail_types(types.iter().cloned());
        }
        builder = builder.resource(registered);
        governed.push(resource);
    }

    let (registry, client_ids, introspectors) = clients(&config.clients, base, &clock)?;
    builder = builder.clients(registry);
    for id in introspectors {
        builder = builder.introspection_client(id);
    }

    if config.trusted_idps.is_empty() {
        return Err(ConfigError::new(
            "trusted_idps",
            "trust at least one IdP ([[trusted_idps]])",
        ));
    }
    let mut seen_issuers = BTreeSet::new();
    for (i, idp) in config.trusted_idps.iter().enumerate() {
        let at = format!("trusted_idps[{i}]");
        if !seen_issuers.insert(idp.issuer.clone()) {
            return Err(ConfigError::new(
                format!("{at}.issuer"),
                format!("{} is trusted twice", idp.issuer),
            ));
        }
        if idp.issuer == as_cfg.issuer {
            return Err(ConfigError::new(
                format!("{at}.issuer"),
                "this server's own issuer cannot be trusted (it never redeems its own grants)",
            ));
        }
        builder = builder.trust(trusted_idp(&at, idp, &client_ids, &governed, &clock)?);
    }

    builder = tokens(config, builder, &governed)?;
    for (i, alias) in as_cfg.audience_aliases.iter().enumerate() {
        let alias = Audience::new(alias.as_str()).map_err(|_| {
            ConfigError::new(
                format!("authorization_server.audience_aliases[{i}]"),
                "not a valid audience",
            )
        })?;
        builder = builder.audience_alias(alias);
    }
    builder = builder.authorization_endpoint(match as_cfg.authorization_endpoint.as_deref() {
        None | Some("none") => AuthorizationEndpoint::None,
        Some("refusing") => AuthorizationEndpoint::Refusing,
        Some(url) => AuthorizationEndpoint::Host(url.to_owned()),
    });
    if let Some(max) = as_cfg.max_body_bytes {
        if max < 1024 {
            return Err(ConfigError::new(
                "authorization_server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        builder = builder.max_body_bytes(max);
    }
    builder = builder.audit_subjects(match as_cfg.audit_subjects.as_deref() {
        None | Some("hashed") => AuditSubjects::Hashed,
        Some("plain") => AuditSubjects::Plain,
        Some(other) => {
            return Err(ConfigError::new(
                "authorization_server.audit_subjects",
                format!("{other:?} is not \"hashed\" or \"plain\""),
            ));
        }
    });

    let quotas = config.store.as_ref().map(|s| s.quotas).unwrap_or_default();
    builder = builder
        .replay_cache(Arc::new(SingleUseMarkers::new(
            store.clone(),
            MarkerKind::IdJag,
            quotas.id_jag_per_client,
        )))
        .client_assertion_replay_cache(Arc::new(SingleUseMarkers::new(
            store.clone(),
            MarkerKind::ClientAssertion,
            quotas.client_assertion_per_client,
        )));

    let server = builder.build().map_err(build_error)?;
    let summary = format!(
        "issuer {}, {} trusted IdP(s), {} resource(s), {} client(s), store {}",
        issuer,
        config.trusted_idps.len(),
        config.resources.len(),
        config.clients.len(),
        store.backend(),
    );
    Ok(Plan {
        server,
        request_timeout,
        trusted_proxies,
        summary,
    })
}

/// The client registry, the configured ids and the clients that may introspect every token.
fn clients(
    configs: &[ClientConfig],
    base: &Path,
    clock: &SharedClock,
) -> Result<(StaticClientRegistry, Vec<ClientId>, Vec<ClientId>), ConfigError> {
    if configs.is_empty() {
        return Err(ConfigError::new(
            "clients",
            "register at least one client ([[clients]])",
        ));
    }
    let mut registry = StaticClientRegistry::new();
    let mut ids: Vec<ClientId> = Vec::new();
    let mut introspectors = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let at = format!("clients[{i}]");
        let id = ClientId::new(c.client_id.as_str())
            .map_err(|_| ConfigError::new(format!("{at}.client_id"), "not a valid client id"))?;
        if ids.contains(&id) {
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
                    at.clone(),
                    "needs secret_env or secret_file (client_secret_basic/post), or jwks_uri \
                     (private_key_jwt)",
                ));
            }
        };
        if c.introspect_all_tokens {
            introspectors.push(id.clone());
        }
        registry = registry.with(client);
        ids.push(id);
    }
    Ok((registry, ids, introspectors))
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

fn jwks_config(at: &str, cache: Option<&JwksCacheConfig>) -> Result<RemoteJwksConfig, ConfigError> {
    let mut config = RemoteJwksConfig::default();
    let Some(cache) = cache else {
        return Ok(config);
    };
    for (name, value) in [
        ("max_age_secs", cache.max_age_secs),
        ("cooldown_secs", cache.cooldown_secs),
        ("timeout_secs", cache.timeout_secs),
    ] {
        positive(&format!("{at}.jwks_cache.{name}"), value)?;
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

fn trusted_idp(
    at: &str,
    idp: &TrustedIdpConfig,
    clients: &[ClientId],
    governed: &[Resource],
    clock: &SharedClock,
) -> Result<TrustedIssuer, ConfigError> {
    let issuer = issuer_url(&format!("{at}.issuer"), &idp.issuer)?;
    let remote = match &idp.jwks_uri {
        Some(uri) => {
            RemoteJwks::from_jwks_uri(issuer.clone(), uri, clock.clone()).map_err(|e| {
                ConfigError::new(
                    format!("{at}.jwks_uri"),
                    format!("{uri:?} is not usable: {e}"),
                )
            })?
        }
        None => RemoteJwks::from_issuer(issuer.clone(), clock.clone())
            .map_err(|e| ConfigError::new(format!("{at}.issuer"), e.to_string()))?,
    }
    .with_config(jwks_config(at, idp.jwks_cache.as_ref())?)
    .map_err(|e| ConfigError::new(format!("{at}.jwks_cache"), e.to_string()))?;
    let mut trusted = TrustedIssuer::new(issuer, Arc::new(remote)).with_subject_mapping(
        subject::mapping(&format!("{at}.subject"), idp.subject.as_ref())?,
    );
    if let Some(names) = &idp.clients {
        let mut allowed = Vec::new();
        for (j, name) in names.iter().enumerate() {
            let known = clients.iter().find(|c| c.as_str() == name).ok_or_else(|| {
                ConfigError::new(
                    format!("{at}.clients[{j}]"),
                    format!("{name} is not a configured client"),
                )
            })?;
            allowed.push(known.clone());
        }
        trusted = trusted.for_clients(allowed);
    }
    if let Some(names) = &idp.resources {
        let mut allowed = Vec::new();
        for (j, name) in names.iter().enumerate() {
            let known = governed
                .iter()
                .find(|r| r.as_str() == name)
                .ok_or_else(|| {
                    ConfigError::new(
                        format!("{at}.resources[{j}]"),
                        format!("{name} is not a configured resource"),
                    )
                })?;
            allowed.push(known.clone());
        }
        trusted = trusted.for_resources(allowed);
    }
    for tenant in idp.tenants.iter().flatten() {
        trusted = trusted.with_tenant(tenant.clone());
    }
    Ok(trusted)
}

fn tokens(
    config: &Config,
    mut builder: idjag_resource::ResourceAuthorizationServerBuilder,
    governed: &[Resource],
) -> Result<idjag_resource::ResourceAuthorizationServerBuilder, ConfigError> {
    let t = &config.tokens;
    for (key, value) in [
        (
            "tokens.access_token_lifetime_secs",
            t.access_token_lifetime_secs,
        ),
        (
            "tokens.max_id_jag_lifetime_secs",
            t.max_id_jag_lifetime_secs,
        ),
        ("tokens.max_id_jag_age_secs", t.max_id_jag_age_secs),
    ] {
        positive(key, value)?;
    }
    let mut lifetime = AccessTokenLifetime::new(secs(t.access_token_lifetime_secs, 300));
    if let Some(beyond) = t.beyond_id_jag_secs {
        lifetime = lifetime.beyond_id_jag(Duration::from_secs(beyond));
    }
    builder = builder.token_lifetime(lifetime);
    if let Some(v) = t.max_id_jag_lifetime_secs {
        if v > 3600 {
            return Err(ConfigError::new(
                "tokens.max_id_jag_lifetime_secs",
                "must be at most 3600",
            ));
        }
        builder = builder.max_id_jag_lifetime(Duration::from_secs(v));
    }
    if let Some(v) = t.max_id_jag_age_secs {
        builder = builder.max_id_jag_age(Duration::from_secs(v));
    }
    if let Some(v) = t.leeway_secs {
        if v > 300 {
            return Err(ConfigError::new(
                "tokens.leeway_secs",
                "must be at most 300",
            ));
        }
        builder = builder.leeway(Duration::from_secs(v));
    }
    if let Some(v) = t.max_assertion_bytes {
        if !(1024..=1024 * 1024).contains(&v) {
            return Err(ConfigError::new(
                "tokens.max_assertion_bytes",
                "must be between 1024 and 1048576",
            ));
        }
        builder = builder.max_assertion_bytes(v);
    }
    builder = builder.replay_policy(match t.replay.as_deref() {
        None | Some("single_use") => ReplayPolicy::SingleUse,
        Some("allow_same_client") => ReplayPolicy::AllowSameClient,
        Some(other) => {
            return Err(ConfigError::new(
                "tokens.replay",
                format!("{other:?} is not \"single_use\" or \"allow_same_client\""),
            ));
        }
    });
    let default_resource = t
        .default_resource
        .as_deref()
        .map(|r| {
            let resource = resource_id("tokens.default_resource", r)?;
            if governed.contains(&resource) {
                Ok(resource)
            } else {
                Err(ConfigError::new(
                    "tokens.default_resource",
                    format!("{r} is not a configured resource"),
                ))
            }
        })
        .transpose()?;
    match (t.absent_resource.as_deref(), default_resource) {
        (Some("refuse"), None) => builder = builder.when_resource_absent(AbsentResource::Refuse),
        (Some("refuse"), Some(_)) => {
            return Err(ConfigError::new(
                "tokens.default_resource",
                "only with absent_resource = \"bind\"",
            ));
        }
        (Some("bind") | None, Some(resource)) => {
            builder = builder.when_resource_absent(AbsentResource::BindTo(resource));
        }
        (Some("bind"), None) => match governed {
            [only] => builder = builder.when_resource_absent(AbsentResource::BindTo(only.clone())),
            _ => {
                return Err(ConfigError::new(
                    "tokens.default_resource",
                    "absent_resource = \"bind\" with several resources needs default_resource",
                ));
            }
        },
        (None, None) => {}
        (Some(other), _) => {
            return Err(ConfigError::new(
                "tokens.absent_resource",
                format!("{other:?} is not \"refuse\" or \"bind\""),
            ));
        }
    }
    if let Some(names) = &t.algorithms {
        let mut set = AlgorithmSet::empty();
        for (i, name) in names.iter().enumerate() {
            set = set.with(material::algorithm(
                &format!("tokens.algorithms[{i}]"),
                name,
            )?);
        }
        if set.is_empty() {
            return Err(ConfigError::new(
                "tokens.algorithms",
                "name at least one algorithm",
            ));
        }
        builder = builder.algorithms(set);
    }
    Ok(builder)
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

/// The `[store]` section with its paths resolved against the configuration's directory, and
/// the store opened (memory when there is no section).
pub(crate) fn open_store(
    config: Option<&StoreConfig>,
    base: &Path,
    clock: &SharedClock,
) -> Result<(Arc<dyn Store>, &'static str), ConfigError> {
    let Some(config) = config else {
        return Ok((Arc::new(MemoryStore::new(clock.clone())), "memory"));
    };
    let config = resolve_store(config, base);
    let store = config.open(clock.clone()).map_err(store_error)?;
    let name = store.backend();
    Ok((store, name))
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
        BuildError::Issuer(_) => "authorization_server.issuer",
        BuildError::AuthorizationEndpoint(_) => "authorization_server.authorization_endpoint",
        BuildError::EndpointAlias => "authorization_server.audience_aliases",
        BuildError::DefaultResourceNotRegistered => "tokens.default_resource",
        BuildError::Limit(_) => "tokens",
        BuildError::ZeroLifetime => "tokens.access_token_lifetime_secs",
        BuildError::NoTrustedIssuer | BuildError::DuplicateIssuer(_) | BuildError::SelfTrust => {
            "trusted_idps"
        }
        BuildError::NoResource | BuildError::DuplicateResource(_) => "resources",
        BuildError::NoClients => "clients",
        _ => "(configuration)",
    };
    ConfigError::new(key, error.to_string())
}
