//! Where secrets come from: an environment variable or a file, read once while planning
//! (never the configuration file itself, except the discouraged inline client secret).
//! [`Environment`] is the seam: the process environment and file system by default, a
//! stand-in in tests.

use std::fmt;
use std::path::{Path, PathBuf};

use idjag_core::ClientSecret;
use serde::Serialize;

use crate::config::{ConfigError, invalid};

/// The environment variables and files secrets are read from.
pub trait Environment {
    /// The value of the environment variable `name`, if it is set.
    fn var(&self, name: &str) -> Option<String>;
    /// The contents of the file at `path`.
    fn read_file(&self, path: &Path) -> std::io::Result<String>;
}

/// The process environment and the file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnvironment;

impl Environment for SystemEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Where a secret was read from (printed instead of the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretOrigin {
    /// Written in the configuration file itself.
    Inline,
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
}

impl fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline => f.write_str("[redacted] inline"),
            Self::Env(name) => write!(f, "[redacted] from env {name}"),
            Self::File(path) => write!(f, "[redacted] from file {}", path.display()),
        }
    }
}

impl Serialize for SecretOrigin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A secret and where it came from. `Debug` and `Serialize` show the origin only.
#[derive(Clone)]
pub struct Secret {
    value: ClientSecret,
    origin: SecretOrigin,
}

impl Secret {
    /// The secret.
    ///
    /// # Security
    ///
    /// The value goes into one outbound header or form field; never log or print it.
    pub fn value(&self) -> &ClientSecret {
        &self.value
    }

    /// Where it came from.
    pub fn origin(&self) -> &SecretOrigin {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.origin)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.origin.serialize(serializer)
    }
}

/// A `*_env` / `*_file` pair of keys naming where a secret is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecretSource<'a> {
    env: Option<&'a String>,
    file: Option<&'a PathBuf>,
    names: (&'static str, &'static str),
}

impl<'a> SecretSource<'a> {
    /// `secret_env` and `secret_file`.
    pub(crate) fn secret(env: Option<&'a String>, file: Option<&'a PathBuf>) -> Self {
        Self {
            env,
            file,
            names: ("secret_env", "secret_file"),
        }
    }

    /// `token_env` and `token_file` (the admin token).
    pub(crate) fn token(env: Option<&'a String>, file: Option<&'a PathBuf>) -> Self {
        Self {
            env,
            file,
            names: ("token_env", "token_file"),
        }
    }

    /// `url_env` and `url_file` (a webhook URL).
    pub(crate) fn url(env: Option<&'a String>, file: Option<&'a PathBuf>) -> Self {
        Self {
            env,
            file,
            names: ("url_env", "url_file"),
        }
    }

    /// A pair of keys with other names (`seal_key_env` / `seal_key_file`, ...).
    pub(crate) fn named(
        env: Option<&'a String>,
        file: Option<&'a PathBuf>,
        names: (&'static str, &'static str),
    ) -> Self {
        Self { env, file, names }
    }

    /// Whether a source is configured.
    pub(crate) fn is_set(&self) -> bool {
        self.env.is_some() || self.file.is_some()
    }

    /// At most one source, and one when `required`. `key` names the block.
    pub(crate) fn check(&self, key: &str, required: bool) -> Result<(), ConfigError> {
        let (env, file) = self.names;
        match (self.env.is_some(), self.file.is_some()) {
            (true, true) => Err(invalid(key, format!("set only one of {env} or {file}"))),
            (false, false) if required => Err(invalid(
                key,
                format!("set {env} or {file} (never the secret itself)"),
            )),
            _ => Ok(()),
        }
    }

    /// Reads the secret: a variable that is unset or empty, or a file that cannot be read or
    /// is empty (a trailing newline is not part of the secret), is an error naming its key.
    pub(crate) fn read(
        &self,
        key: &str,
        environment: &dyn Environment,
    ) -> Result<Option<Secret>, ConfigError> {
        if let Some(name) = self.env {
            let value = environment
                .var(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    invalid(
                        format!("{key}.{}", self.names.0),
                        format!("environment variable {name} is not set"),
                    )
                })?;
            return Ok(Some(Secret {
                value: ClientSecret::new(value),
                origin: SecretOrigin::Env(name.clone()),
            }));
        }
        if let Some(path) = self.file {
            let file_key = format!("{key}.{}", self.names.1);
            let text = read_file(&file_key, path, environment)?;
            let secret = text.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                return Err(invalid(file_key, "the file is empty"));
            }
            return Ok(Some(Secret {
                value: ClientSecret::new(secret),
                origin: SecretOrigin::File(path.clone()),
            }));
        }
        Ok(None)
    }
}

/// An inline secret from the configuration file.
pub(crate) fn inline(secret: &ClientSecret) -> Secret {
    Secret {
        value: secret.clone(),
        origin: SecretOrigin::Inline,
    }
}

/// Reads the file of `key`; an error names the key, the path and why.
pub(crate) fn read_file(
    key: &str,
    path: &Path,
    environment: &dyn Environment,
) -> Result<String, ConfigError> {
    environment
        .read_file(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {}", path.display(), e.kind())))
}
