//! `[store]`, planned: where revocations, approvals and session bindings live, and how stale
//! the local copy of the revocations may get before the gateway refuses to forward.
//!
//! Without `[store]` the gateway keeps its state in the embedded durable store (redb) at
//! [`DEFAULT_STORE_PATH`], relative to the working directory: a single node keeps every
//! revocation and approval across restarts. Several instances share one Redis
//! (`kind = "redis"`); `kind = "memory"` (tests, the demo) forgets everything at exit.
//!
//! Planning checks every setting without connecting: the durations, the path, the Redis URL
//! (no credentials in it), that a password source and TLS files are named consistently and
//! that the password's variable or file exists. Opening, connecting and reading the password
//! happen when the gateway is built (`check-config` then pings the store).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::config::{BackendConfig, ConfigError, DEFAULT_STORE_PATH, StoreConfig, invalid};
use crate::plan::Planner;
use crate::plan::environment::{SecretOrigin, read_file};

/// Where the gateway's shared state lives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StorePlan {
    /// The section as the build opens it (the default filled in when absent).
    pub config: StoreConfig,
    /// How long the local copy of the revocations may go without a confirmed
    /// resynchronisation; past it, requests are refused (fail closed) until the store answers.
    pub max_staleness: Duration,
    /// How often the local copy is resynchronised in full (besides each notification).
    pub resync_interval: Duration,
    /// Whether `[store]` was absent (the single-node default).
    pub default: bool,
    /// Where the Redis password comes from, if any.
    pub password: Option<SecretOrigin>,
}

impl StorePlan {
    /// The backend's name: `memory`, `embedded` or `redis`.
    pub fn backend(&self) -> &'static str {
        match &self.config.backend {
            BackendConfig::Memory { .. } => "memory",
            BackendConfig::Embedded { .. } => "embedded",
            BackendConfig::Redis(_) => "redis",
            _ => "unknown",
        }
    }
}

impl Serialize for StorePlan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ms = |d: &Duration| crate::config::ConfigDuration(*d).to_string();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("backend", self.backend())?;
        map.serialize_entry("default", &self.default)?;
        map.serialize_entry("max_staleness", &ms(&self.max_staleness))?;
        map.serialize_entry("resync_interval", &ms(&self.resync_interval))?;
        match &self.config.backend {
            BackendConfig::Memory { capacity } => map.serialize_entry("capacity", capacity)?,
            BackendConfig::Embedded { path } => map.serialize_entry("path", path)?,
            BackendConfig::Redis(redis) => {
                map.serialize_entry("url", &redis.url)?;
                map.serialize_entry("username", &redis.username)?;
                map.serialize_entry("password", &self.password)?;
                map.serialize_entry("ca_file", &redis.ca_file)?;
                map.serialize_entry("cert_file", &redis.cert_file)?;
                map.serialize_entry("key_file", &redis.key_file)?;
                map.serialize_entry("connect_timeout_ms", &redis.connect_timeout_ms)?;
                map.serialize_entry("command_timeout_ms", &redis.command_timeout_ms)?;
                map.serialize_entry("key_prefix", &redis.key_prefix)?;
            }
            _ => {}
        }
        map.end()
    }
}

/// The `[store]` section when the file has none.
pub fn default_store() -> StoreConfig {
    StoreConfig::new(BackendConfig::Embedded {
        path: PathBuf::from(DEFAULT_STORE_PATH),
    })
}

fn store_error(error: idjag_store::ConfigError) -> ConfigError {
    match error {
        idjag_store::ConfigError::Invalid { field, problem } => {
            invalid(format!("store.{field}"), problem)
        }
        other => invalid("store", other.to_string()),
    }
}

impl Planner<'_> {
    /// `[store]`.
    pub(crate) fn store(&mut self, store: Option<&StoreConfig>) -> Result<StorePlan, ConfigError> {
        let (config, default) = match store {
            Some(config) => (config.clone(), false),
            None => (default_store(), true),
        };
        let options = config.replica_options().map_err(store_error)?;
        let mut password = None;
        match &config.backend {
            BackendConfig::Memory { capacity } => {
                if *capacity == Some(0) {
                    return Err(invalid("store.backend.capacity", "must be at least 1"));
                }
            }
            BackendConfig::Embedded { path } => {
                if path.as_os_str().is_empty() {
                    return Err(invalid("store.backend.path", "must not be empty"));
                }
            }
            BackendConfig::Redis(redis) => {
                let url = url::Url::parse(&redis.url)
                    .map_err(|_| invalid("store.backend.url", "not a URL"))?;
                if !matches!(url.scheme(), "redis" | "rediss") {
                    return Err(invalid(
                        "store.backend.url",
                        "must be redis://host:port/db or rediss://host:port/db",
                    ));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(invalid(
                        "store.backend.url",
                        "credentials go in username and password_env or password_file, not in the URL",
                    ));
                }
                password = match (&redis.password_env, &redis.password_file) {
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "store.backend",
                            "set only one of password_env or password_file",
                        ));
                    }
                    (Some(name), None) => {
                        if self.environment.var(name).is_none_or(|v| v.is_empty()) {
                            return Err(invalid(
                                "store.backend.password_env",
                                format!("environment variable {name} is not set"),
                            ));
                        }
                        Some(SecretOrigin::Env(name.clone()))
                    }
                    (None, Some(path)) => {
                        read_file("store.backend.password_file", path, self.environment)?;
                        Some(SecretOrigin::File(path.clone()))
                    }
                    (None, None) => None,
                };
                if redis.cert_file.is_some() != redis.key_file.is_some() {
                    return Err(invalid(
                        "store.backend",
                        "cert_file and key_file go together",
                    ));
                }
                for (key, ms) in [
                    ("store.backend.connect_timeout_ms", redis.connect_timeout_ms),
                    ("store.backend.command_timeout_ms", redis.command_timeout_ms),
                ] {
                    if ms.is_some_and(|ms| ms == 0 || ms > 60_000) {
                        return Err(invalid(key, "must be between 1 and 60000"));
                    }
                }
                if url.scheme() == "redis" && !is_loopback(&url) {
                    self.warn(
                        "store.backend.url",
                        "redis:// sends revocations, approvals and the password in clear: use rediss://",
                    );
                }
            }
            _ => return Err(invalid("store.backend", "unknown backend")),
        }
        if config.sealing_key_file.is_some() || config.sealing_key_env.is_some() {
            self.warn(
                "store.sealing_key_file",
                "the gateway stores nothing sealed (keys are digests); the key is not used",
            );
        }
        Ok(StorePlan {
            config,
            max_staleness: options.max_staleness,
            resync_interval: options.resync_interval,
            default,
            password,
        })
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}
