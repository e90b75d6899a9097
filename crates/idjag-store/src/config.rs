//! The `[store]` section of the servers' TOML files.
//!
//! ```toml
//! [store]
//! max_staleness_secs = 30          # revocation replicas fail closed past this
//! sealing_key_file = "/run/secrets/idjag-store-key"   # 64 hex digits (32 bytes)
//! sealing_algorithm = "A256GCM"    # or "C20P"
//!
//! [store.backend]
//! kind = "redis"                   # "memory" | "embedded" | "redis"
//! url = "rediss://redis.internal:6380/0"
//! username = "idjag"
//! password_file = "/run/secrets/redis-password"   # or password_env = "REDIS_PASSWORD"
//! ca_file = "/etc/idjag/redis-ca.pem"
//! connect_timeout_ms = 2000
//! command_timeout_ms = 500
//! key_prefix = "idjag:"
//!
//! [store.quotas]
//! id_jag_per_client = 100000
//! client_assertion_per_client = 100000
//! dpop_per_key = 100000
//! ```
//!
//! `kind = "embedded"` takes `path = "/var/lib/idjag/state.redb"`; `kind = "memory"` takes an
//! optional `capacity`. Without a `[store]` section the servers keep their in-memory state.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use idjag_core::SharedClock;
use idjag_core::crypto::AeadAlgorithm;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::replay::DEFAULT_MARKERS_PER_HOLDER;
use crate::revocation::ReplicaOptions;
use crate::seal::Sealer;
use crate::store::Store;

/// The `[store]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The backend.
    pub backend: BackendConfig,
    /// Revocation replicas fail closed after this many seconds without a successful full
    /// resynchronisation (default 30).
    #[serde(default = "default_staleness")]
    pub max_staleness_secs: u64,
    /// How often replicas resynchronise (default: a third of `max_staleness_secs`).
    #[serde(default)]
    pub resync_interval_secs: Option<u64>,
    /// A file holding the 32-byte sealing key as 64 hex digits.
    #[serde(default)]
    pub sealing_key_file: Option<PathBuf>,
    /// An environment variable holding the sealing key as 64 hex digits.
    #[serde(default)]
    pub sealing_key_env: Option<String>,
    /// `"A256GCM"` (default) or `"C20P"`.
    #[serde(default)]
    pub sealing_algorithm: Option<String>,
    /// Per-client quotas of single-use markers.
    #[serde(default)]
    pub quotas: QuotaConfig,
}

fn default_staleness() -> u64 {
    30
}

/// The backend of the `[store.backend]` table, chosen by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum BackendConfig {
    /// In memory: one process, lost on restart.
    Memory {
        /// The most live entries (default 1 000 000).
        #[serde(default)]
        capacity: Option<usize>,
    },
    /// The embedded durable database (the single-node default).
    Embedded {
        /// The database file (created if missing; its directory must exist).
        path: PathBuf,
    },
    /// Redis, for many instances.
    Redis(RedisConfig),
}

/// `kind = "redis"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://host:port/db` or `rediss://host:port/db`, without credentials.
    pub url: String,
    /// The ACL user.
    #[serde(default)]
    pub username: Option<String>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for `rediss://` instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Connection timeout in milliseconds (default 2000).
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Command timeout in milliseconds (default 500).
    #[serde(default)]
    pub command_timeout_ms: Option<u64>,
    /// Prefix of every key and channel (default `idjag:`).
    #[serde(default)]
    pub key_prefix: Option<String>,
}

/// `[store.quotas]`: live single-use markers per client (or DPoP key).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct QuotaConfig {
    /// Redeemed ID-JAGs per client.
    #[serde(default = "default_quota")]
    pub id_jag_per_client: u32,
    /// Client assertions per client.
    #[serde(default = "default_quota")]
    pub client_assertion_per_client: u32,
    /// DPoP proofs per key.
    #[serde(default = "default_quota")]
    pub dpop_per_key: u32,
}

fn default_quota() -> u32 {
    DEFAULT_MARKERS_PER_HOLDER
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            id_jag_per_client: DEFAULT_MARKERS_PER_HOLDER,
            client_assertion_per_client: DEFAULT_MARKERS_PER_HOLDER,
            dpop_per_key: DEFAULT_MARKERS_PER_HOLDER,
        }
    }
}

/// Why the `[store]` section is not usable. Messages name the setting, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting has an invalid value.
    #[error("store.{field}: {problem}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// A file named by a setting cannot be read.
    #[error("store.{field}: cannot read {path}: {source}")]
    File {
        /// The setting.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An environment variable named by a setting is not set (or not UTF-8).
    #[error("store.{field}: environment variable {name} is not set")]
    Env {
        /// The setting.
        field: &'static str,
        /// The variable.
        name: String,
    },
    /// The backend was not compiled in.
    #[error("store.backend: the {0} backend is not compiled in (enable the idjag-store feature)")]
    NotCompiled(&'static str),
    /// The embedded database cannot be opened.
    #[cfg(feature = "embedded")]
    #[error("store.backend.path: {0}")]
    Embedded(#[from] crate::embedded::EmbeddedOpenError),
    /// The Redis settings are not usable.
    #[cfg(feature = "redis")]
    #[error("store.backend: {0}")]
    Redis(#[from] crate::redis_store::RedisConfigError),
    /// The store was opened but does not answer.
    #[error("store: {0}")]
    Unreachable(StoreError),
}

fn read_file(field: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| ConfigError::File {
            field,
            path: path.to_path_buf(),
            source,
        })
}

fn read_env(field: &'static str, name: &str) -> Result<Zeroizing<String>, ConfigError> {
    std::env::var(name)
        .map(Zeroizing::new)
        .map_err(|_| ConfigError::Env {
            field,
            name: name.to_owned(),
        })
}

fn parse_key_hex(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let invalid = ConfigError::Invalid {
        field: "sealing_key",
        problem: "must be 64 hexadecimal digits (32 bytes)",
    };
    let trimmed = text.trim_ascii();
    if trimmed.len() != 64 {
        return Err(invalid);
    }
    let lower: Zeroizing<Vec<u8>> = Zeroizing::new(trimmed.to_ascii_lowercase());
    crate::store::unhex(&lower)
        .map(Zeroizing::new)
        .ok_or(invalid)
}

impl StoreConfig {
    /// A configuration with `backend` and every default.
    pub fn new(backend: BackendConfig) -> Self {
        Self {
            backend,
            max_staleness_secs: default_staleness(),
            resync_interval_secs: None,
            sealing_key_file: None,
            sealing_key_env: None,
            sealing_algorithm: None,
            quotas: QuotaConfig::default(),
        }
    }

    /// Checks every setting that can be checked without connecting: durations, quotas, the
    /// sealing key, the Redis URL, the files and variables named. For `check-config`.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.replica_options()?;
        for (field, q) in [
            ("quotas.id_jag_per_client", self.quotas.id_jag_per_client),
            (
                "quotas.client_assertion_per_client",
                self.quotas.client_assertion_per_client,
            ),
            ("quotas.dpop_per_key", self.quotas.dpop_per_key),
        ] {
            if q == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    problem: "must be at least 1",
                });
            }
        }
        self.sealer()?;
        match &self.backend {
            BackendConfig::Memory { capacity } => {
                if *capacity == Some(0) {
                    return Err(ConfigError::Invalid {
                        field: "backend.capacity",
                        problem: "must be at least 1",
                    });
                }
            }
            BackendConfig::Embedded { path } => {
                if path.as_os_str().is_empty() {
                    return Err(ConfigError::Invalid {
                        field: "backend.path",
                        problem: "must not be empty",
                    });
                }
                #[cfg(not(feature = "embedded"))]
                return Err(ConfigError::NotCompiled("embedded"));
            }
            #[cfg(feature = "redis")]
            BackendConfig::Redis(redis) => {
                redis.options()?;
            }
            #[cfg(not(feature = "redis"))]
            BackendConfig::Redis(_) => return Err(ConfigError::NotCompiled("redis")),
        }
        Ok(())
    }

    /// The replica options for [`crate::RevocationReplica`].
    pub fn replica_options(&self) -> Result<ReplicaOptions, ConfigError> {
        if self.max_staleness_secs == 0 {
            return Err(ConfigError::Invalid {
                field: "max_staleness_secs",
                problem: "must be at least 1",
            });
        }
        let mut options =
            ReplicaOptions::with_max_staleness(Duration::from_secs(self.max_staleness_secs));
        if let Some(every) = self.resync_interval_secs {
            if every == 0 || every >= self.max_staleness_secs {
                return Err(ConfigError::Invalid {
                    field: "resync_interval_secs",
                    problem: "must be at least 1 and below max_staleness_secs",
                });
            }
            options = options.resync_every(Duration::from_secs(every));
        }
        Ok(options)
    }

    /// The sealer, if a sealing key is configured.
    pub fn sealer(&self) -> Result<Option<Sealer>, ConfigError> {
        let alg = match self.sealing_algorithm.as_deref() {
            None | Some("A256GCM") => AeadAlgorithm::Aes256Gcm,
            Some("C20P") => AeadAlgorithm::ChaCha20Poly1305,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    field: "sealing_algorithm",
                    problem: "must be \"A256GCM\" or \"C20P\"",
                });
            }
        };
        let key = match (&self.sealing_key_file, &self.sealing_key_env) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    field: "sealing_key_file",
                    problem: "set sealing_key_file or sealing_key_env, not both",
                });
            }
            (Some(path), None) => parse_key_hex(&read_file("sealing_key_file", path)?)?,
            (None, Some(name)) => parse_key_hex(read_env("sealing_key_env", name)?.as_bytes())?,
            (None, None) => return Ok(None),
        };
        Sealer::new(alg, &key)
            .map(Some)
            .map_err(|_| ConfigError::Invalid {
                field: "sealing_key",
                problem: "the crypto backend refused the key",
            })
    }

    /// Opens the store (Redis: inside a Tokio runtime; it connects lazily).
    pub fn open(&self, clock: SharedClock) -> Result<Arc<dyn Store>, ConfigError> {
        self.check()?;
        Ok(match &self.backend {
            BackendConfig::Memory { capacity } => Arc::new(crate::MemoryStore::with_capacity(
                capacity.unwrap_or(crate::memory::DEFAULT_MEMORY_CAPACITY),
                clock,
            )),
            #[cfg(feature = "embedded")]
            BackendConfig::Embedded { path } => Arc::new(crate::EmbeddedStore::open(path, clock)?),
            #[cfg(not(feature = "embedded"))]
            BackendConfig::Embedded { .. } => return Err(ConfigError::NotCompiled("embedded")),
            #[cfg(feature = "redis")]
            BackendConfig::Redis(redis) => {
                Arc::new(crate::RedisStore::new(redis.options()?, clock)?)
            }
            #[cfg(not(feature = "redis"))]
            BackendConfig::Redis(_) => return Err(ConfigError::NotCompiled("redis")),
        })
    }

    /// Opens the store and pings it: `check-config --connect` and startup.
    pub async fn open_and_ping(&self, clock: SharedClock) -> Result<Arc<dyn Store>, ConfigError> {
        let store = self.open(clock)?;
        store.ping().await.map_err(ConfigError::Unreachable)?;
        Ok(store)
    }
}

#[cfg(feature = "redis")]
impl RedisConfig {
    /// The store options, with the password and TLS files read.
    pub fn options(&self) -> Result<crate::RedisOptions, ConfigError> {
        let mut options = crate::RedisOptions::new(self.url.clone());
        options.username = self.username.clone();
        options.password = match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    field: "backend.password_file",
                    problem: "set password_file or password_env, not both",
                });
            }
            (Some(name), None) => Some(read_env("backend.password_env", name)?),
            (None, Some(path)) => {
                let raw = read_file("backend.password_file", path)?;
                let text = std::str::from_utf8(&raw).map_err(|_| ConfigError::Invalid {
                    field: "backend.password_file",
                    problem: "must be UTF-8",
                })?;
                Some(Zeroizing::new(
                    text.trim_end_matches(['\r', '\n']).to_owned(),
                ))
            }
            (None, None) => None,
        };
        if let Some(path) = &self.ca_file {
            options.tls.root_certificates_pem = Some(read_file("backend.ca_file", path)?.to_vec());
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                options.tls.client_identity_pem = Some((
                    read_file("backend.cert_file", cert)?.to_vec(),
                    read_file("backend.key_file", key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError::Invalid {
                    field: "backend.cert_file",
                    problem: "cert_file and key_file go together",
                });
            }
        }
        for (field, ms, target) in [
            (
                "backend.connect_timeout_ms",
                self.connect_timeout_ms,
                &mut options.connect_timeout,
            ),
            (
                "backend.command_timeout_ms",
                self.command_timeout_ms,
                &mut options.command_timeout,
            ),
        ] {
            if let Some(ms) = ms {
                if ms == 0 || ms > 60_000 {
                    return Err(ConfigError::Invalid {
                        field,
                        problem: "must be between 1 and 60000",
                    });
                }
                *target = Duration::from_millis(ms);
            }
        }
        if let Some(prefix) = &self.key_prefix {
            options.key_prefix = prefix.clone();
        }
        // Parse the URL and TLS material now, without connecting.
        crate::redis_store::validate(&options)?;
        Ok(options)
    }
}
