//! Files and secrets a configuration names: paths relative to the configuration file, secrets
//! from an environment variable or a file, and PKCS#8 PEM private keys. Errors name the key and
//! the file, never the content; what is read is zeroized when dropped.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use idjag_ops::material;
//!
//! # fn main() -> Result<(), idjag_ops::config::ConfigError> {
//! let base = Path::new("/etc/idjag");
//! // clients[0] = { secret_env = "CHAT_AGENT_SECRET" }
//! let secret = material::secret(base, "clients[0]", Some("CHAT_AGENT_SECRET"), None)?;
//! // signing.key = { file = "keys/2026-01.pem", alg = "ES256" }
//! let der = material::pkcs8_pem_file(base, "signing.key", Path::new("keys/2026-01.pem"))?;
//! # let _ = (secret, der);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use zeroize::Zeroizing;

use crate::config::ConfigError;

/// `path` resolved against the configuration file's directory `base`.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The PKCS#8 DER of the private key in the PEM file `path` (`-----BEGIN PRIVATE KEY-----`);
/// errors name `{at}.file`.
pub fn pkcs8_pem_file(
    base: &Path,
    at: &str,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let path = resolve(base, path);
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
    Ok(Zeroizing::new(der.secret_pkcs8_der().to_vec()))
}

/// A secret from exactly one of `env` (a variable name; errors name `{at}.secret_env`) and
/// `file` (one trailing newline ignored; errors name `{at}.secret_file`). `None` when neither
/// is set; an empty secret is an error.
pub fn secret(
    base: &Path,
    at: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<Zeroizing<String>>, ConfigError> {
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
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("idjag-ops-material-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_secret_file_loses_one_trailing_newline_and_an_empty_one_is_refused() {
        let base = dir();
        std::fs::write(base.join("s1"), "hunter2\r\n").unwrap();
        let got = secret(&base, "clients[0]", None, Some(Path::new("s1"))).unwrap();
        assert_eq!(got.as_deref().map(String::as_str), Some("hunter2"));
        std::fs::write(base.join("s2"), "\n").unwrap();
        let error = secret(&base, "clients[0]", None, Some(Path::new("s2"))).unwrap_err();
        assert_eq!(
            error,
            ConfigError::new("clients[0].secret_file", "the secret is empty")
        );
        assert_eq!(secret(&base, "clients[0]", None, None).unwrap(), None);
    }

    #[test]
    fn both_sources_or_an_unset_variable_are_refused_by_key() {
        let base = dir();
        let error = secret(&base, "c", Some("X"), Some(Path::new("f"))).unwrap_err();
        assert_eq!(error.key, "c.secret_env");
        let error = secret(&base, "c", Some("IDJAG_OPS_TEST_UNSET_VARIABLE"), None).unwrap_err();
        assert_eq!(
            error,
            ConfigError::new(
                "c.secret_env",
                "environment variable IDJAG_OPS_TEST_UNSET_VARIABLE is not set"
            )
        );
    }

    #[test]
    fn a_pem_without_a_pkcs8_key_is_refused_without_its_content() {
        let base = dir();
        std::fs::write(
            base.join("k.pem"),
            "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        let error = pkcs8_pem_file(&base, "signing.key", Path::new("k.pem")).unwrap_err();
        assert_eq!(error.key, "signing.key.file");
        assert!(
            error.problem.contains("holds no PKCS#8 private key"),
            "{error}"
        );
        assert!(!error.problem.contains("c2VjcmV0"));
        let error = pkcs8_pem_file(&base, "signing.key", Path::new("absent.pem")).unwrap_err();
        assert_eq!(error.key, "signing.key.file");
    }
}
