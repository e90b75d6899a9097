//! Key and secret material named by the configuration: PKCS#8 PEM key files, and client
//! secrets from an environment variable or a file. Errors name the key and the file, never
//! the content.

use std::path::Path;

use idjag_core::{Algorithm, ClientSecret, Kid, SigningKey};
use zeroize::Zeroizing;

use crate::config::{ConfigError, KeyConfig};

pub(crate) use idjag_ops::material::resolve;

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
/// (default: the RFC 7638 thumbprint).
pub(crate) fn signing_key(
    base: &Path,
    at: &str,
    config: &KeyConfig,
) -> Result<SigningKey, ConfigError> {
    let (key, _) = signing_key_with_der(base, at, config)?;
    Ok(key)
}

/// [`signing_key`] and the PKCS#8 DER it was read from.
pub(crate) fn signing_key_with_der(
    base: &Path,
    at: &str,
    config: &KeyConfig,
) -> Result<(SigningKey, Zeroizing<Vec<u8>>), ConfigError> {
    let alg = algorithm(&format!("{at}.alg"), &config.alg)?;
    let der = idjag_ops::material::pkcs8_pem_file(base, at, &config.file)?;
    let key = SigningKey::from_pkcs8_der(alg, &der).map_err(|e| {
        ConfigError::new(
            format!("{at}.file"),
            format!(
                "{} is not a usable {} key: {e}",
                resolve(base, &config.file).display(),
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

/// A client secret from exactly one of `env` and `file` (idjag-ops' rules); `None` when
/// neither is set.
pub(crate) fn secret(
    base: &Path,
    at: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<ClientSecret>, ConfigError> {
    let secret = idjag_ops::material::secret(base, at, env, file)?;
    Ok(secret.map(|text| ClientSecret::new(text.as_str())))
}
