//! Key and secret material named by the configuration: PKCS#8 PEM key files, and client
//! secrets from an environment variable or a file. Errors name the key and the file, never
//! the content.

use std::path::{Path, PathBuf};

use idjag_core::{Algorithm, ClientSecret, Kid, SigningKey};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use zeroize::Zeroizing;

use crate::config::{ConfigError, KeyConfig};

/// `path` resolved against the configuration file's directory.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The algorithm named `name` (`ES256`, `RS256`, `EdDSA`, ...).
pub(crate) fn algorithm(key: &str, name: &str) -> Result<Algorithm, ConfigError> {
    Algorithm::from_name(name).ok_or_else(|| {
        ConfigError::new(
            key,
            format!("unknown algorithm {name:?} (ES256, ES384, RS256, PS256, EdDSA, ...)"),
        )
    })
}

/// A signing key from a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`), with its `kid`
/// (default: the RFC 7638 thumbprint), and the PKCS#8 DER it was read from.
pub(crate) fn signing_key_with_der(
    base: &Path,
    at: &str,
    config: &KeyConfig,
) -> Result<(SigningKey, Zeroizing<Vec<u8>>), ConfigError> {
    let alg = algorithm(&format!("{at}.alg"), &config.alg)?;
    let path = resolve(base, &config.file);
    let pem = Zeroizing::new(std::fs::read(&path).map_err(|e| {
        ConfigError::new(
            format!("{at}.file"),
            format!("cannot read {}: {e}", path.display()),
        )
    })?);
    let der = PrivatePkcs8KeyDer::from_pem_slice(&pem).map_err(|_| {
        ConfigError::new(
            format!("{at}.file"),
            format!(
                "{} holds no PKCS#8 private key (-----BEGIN PRIVATE KEY-----); convert one with \
                 `openssl pkcs8 -topk8 -nocrypt -in old.pem -out new.pem`",
                path.display()
            ),
        )
    })?;
    let der = Zeroizing::new(der.secret_pkcs8_der().to_vec());
    let key = SigningKey::from_pkcs8_der(alg, &der).map_err(|e| {
        ConfigError::new(
            format!("{at}.file"),
            format!(
                "{} is not a usable {} key: {e}",
                path.display(),
                alg.as_str()
            ),
        )
    })?;
    let key = match &config.kid {
        Some(kid) => key.with_kid(
            Kid::new(kid.as_str())
                .map_err(|_| ConfigError::new(format!("{at}.kid"), "not a valid key id"))?,
        ),
        None => key.with_thumbprint_kid(),
    };
    Ok((key, der))
}

/// A secret from exactly one of `env` (a variable name) and `file` (one trailing newline
/// ignored). `None` when neither is set.
pub(crate) fn secret(
    base: &Path,
    at: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<ClientSecret>, ConfigError> {
    let text: Zeroizing<String> = match (env, file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                format!("{at}.secret_env"),
                "set secret_env or secret_file, not both",
            ));
        }
        (Some(name), None) => Zeroizing::new(std::env::var(name).map_err(|_| {
            ConfigError::new(
                format!("{at}.secret_env"),
                format!("environment variable {name} is not set"),
            )
        })?),
        (None, Some(path)) => {
            let path = resolve(base, path);
            let raw = Zeroizing::new(std::fs::read(&path).map_err(|e| {
                ConfigError::new(
                    format!("{at}.secret_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?);
            let text = std::str::from_utf8(&raw).map_err(|_| {
                ConfigError::new(format!("{at}.secret_file"), "the secret is not UTF-8")
            })?;
            let text = text
                .strip_suffix("\r\n")
                .or_else(|| text.strip_suffix('\n'))
                .unwrap_or(text);
            Zeroizing::new(text.to_owned())
        }
        (None, None) => return Ok(None),
    };
    if text.is_empty() {
        let key = if env.is_some() {
            "secret_env"
        } else {
            "secret_file"
        };
        return Err(ConfigError::new(
            format!("{at}.{key}"),
            "the secret is empty",
        ));
    }
    Ok(Some(ClientSecret::new(text.as_str())))
}
