//! TLS for a listener: rustls with the aws-lc-rs provider, the certificate chain and private
//! key read from PEM files and reloaded when the files change.
//!
//! ## Defaults
//!
//! TLS 1.3 and TLS 1.2 (`min_version = "1.3"` drops 1.2); rustls offers only AEAD suites
//! (AES-GCM, ChaCha20-Poly1305) with ECDHE, and no renegotiation, compression or CBC. ALPN
//! offers `h2` then `http/1.1`. Client certificates are neither asked for nor accepted unless
//! `client_ca` names the CA bundle that must have issued them (then they are required).
//!
//! ## Reload
//!
//! A task polls both files every `reload_interval` (default 10 s): it reads them and compares
//! their SHA-256 with the pair in use. Polling is deliberate: it sees every way a file is
//! replaced (in-place writes, rename-over, `cp -p` that keeps the mtime, the atomic symlink
//! swap of a Kubernetes Secret volume, a bind mount replaced from outside, NFS), it needs no
//! inotify watches, and reading two small files every few seconds costs nothing. A changed
//! pair is parsed and checked (the key must match the first certificate); only then is it
//! swapped in, atomically, for new handshakes. Connections already open keep the certificate
//! they were established with. A pair that fails is logged once (`warn`, with the reason, never
//! key material) and the certificate in use stays; the next change is tried again.
//!
//! ## Key material
//!
//! The key file is read into a buffer that is zeroized when dropped, and the parsed DER key is
//! zeroized once aws-lc-rs has loaded it; aws-lc-rs zeroizes its own copy when the key is
//! dropped.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::config::{ConfigDuration, ConfigError, join};

/// `[server.tls]`: the certificate files and TLS options of a listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM file with the certificate chain, the server's certificate first. Required.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1). Required.
    pub key: PathBuf,
    /// PEM file of CA certificates; when set, clients must present a certificate issued by
    /// one of them (mutual TLS). Default: none, no client authentication. Read at start-up.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Lowest protocol version: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// ALPN protocols offered, in order of preference. Default `["h2", "http/1.1"]`.
    #[serde(default = "default_alpn")]
    pub alpn: Vec<String>,
    /// How often the files are checked for a new pair; `"0"` never. Default `"10s"`.
    #[serde(default = "default_reload_interval")]
    pub reload_interval: ConfigDuration,
}

fn default_alpn() -> Vec<String> {
    vec!["h2".to_owned(), "http/1.1".to_owned()]
}

fn default_reload_interval() -> ConfigDuration {
    ConfigDuration::secs(10)
}

impl TlsConfig {
    /// The files `cert` and `key`, every other setting at its default.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            min_version: TlsVersion::default(),
            alpn: default_alpn(),
            reload_interval: default_reload_interval(),
        }
    }

    /// Checks what serde cannot; `at` is the key of this table (e.g. `server.tls`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.cert.as_os_str().is_empty() {
            return Err(ConfigError::new(join(at, "cert"), "empty path"));
        }
        if self.key.as_os_str().is_empty() {
            return Err(ConfigError::new(join(at, "key"), "empty path"));
        }
        for (i, protocol) in self.alpn.iter().enumerate() {
            if !matches!(protocol.as_str(), "h2" | "http/1.1") {
                return Err(ConfigError::new(
                    format!("{}[{i}]", join(at, "alpn")),
                    format!("unsupported protocol {protocol:?} (use \"h2\" or \"http/1.1\")"),
                ));
            }
        }
        if self.alpn.is_empty() {
            return Err(ConfigError::new(join(at, "alpn"), "no protocol"));
        }
        Ok(())
    }
}

/// The lowest TLS version a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// Why a certificate pair (or the client CA bundle) could not be used. Never holds key
/// material; paths and parser messages only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {kind}")]
    Read {
        /// `certificate chain`, `private key` or `client CA bundle`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error kind.
        kind: std::io::ErrorKind,
    },
    /// A file is not valid PEM, or holds no item of the expected kind.
    #[error("{what} {path}: {reason}")]
    Pem {
        /// `certificate chain`, `private key` or `client CA bundle`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The PEM parser's reason.
        reason: String,
    },
    /// The private key is of a kind or curve the provider cannot sign with.
    #[error("private key {path}: unsupported key ({reason})")]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// The private key does not belong to the first certificate of the chain.
    #[error("private key {key} does not match the first certificate of {cert}")]
    KeyMismatch {
        /// The chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the configuration (e.g. the client CA bundle).
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The chain and key files, and the SHA-256 of the pair last tried.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    last_tried: Mutex<[u8; 32]>,
}

/// Serves the current certificate to every handshake and swaps in a new pair when the files
/// change. Shared by the listener's rustls configuration and its reload task.
pub struct CertReloader {
    current: ArcSwap<CertifiedKey>,
    files: Files,
    provider: Arc<CryptoProvider>,
    listener: String,
}

impl fmt::Debug for CertReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertReloader")
            .field("listener", &self.listener)
            .field("cert", &self.files.cert)
            .field("key", &self.files.key)
            .finish_non_exhaustive()
    }
}

/// What one check of the certificate files found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertReload {
    /// The files are the pair in use (or the pair last refused).
    Unchanged,
    /// A new pair is in use for new handshakes.
    Reloaded,
    /// The new pair was refused; the previous certificate stays in use.
    Refused(TlsError),
}

fn read(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|error| TlsError::Read {
            what,
            path: path.to_owned(),
            kind: error.kind(),
        })
}

fn pair_digest(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((cert.len() as u64).to_be_bytes());
    hash.update(cert);
    hash.update(key);
    hash.finalize().into()
}

fn parse_certs(
    what: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            what,
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_owned(),
            reason: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain = parse_certs("certificate chain", cert_path, cert_pem)?;
    let mut key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| TlsError::Pem {
        what: "private key",
        path: key_path.to_owned(),
        // The PEM parser's messages name the problem, never the content.
        reason: match error {
            rustls_pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY block".to_owned(),
            other => other.to_string(),
        },
    })?;
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key);
    key.zeroize();
    let signing_key = signing_key.map_err(|error| TlsError::UnsupportedKey {
        path: key_path.to_owned(),
        reason: error.to_string(),
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        }),
        Err(other) => Err(TlsError::Pem {
            what: "certificate chain",
            path: cert_path.to_owned(),
            reason: other.to_string(),
        }),
    }
}

impl CertReloader {
    /// Loads the pair named by `config`; `listener` names it in logs and metrics.
    pub fn load(listener: &str, config: &TlsConfig) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cert_pem = read("certificate chain", &config.cert)?;
        let key_pem = read("private key", &config.key)?;
        let certified = load_pair(&config.cert, &config.key, &cert_pem, &key_pem)?;
        Ok(Arc::new(Self {
            current: ArcSwap::from_pointee(certified),
            files: Files {
                cert: config.cert.clone(),
                key: config.key.clone(),
                last_tried: Mutex::new(pair_digest(&cert_pem, &key_pem)),
            },
            provider,
            listener: listener.to_owned(),
        }))
    }

    /// The certificate chain served to new handshakes.
    pub fn current_chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.load().cert.clone()
    }

    /// Reads the files and swaps in a new pair if they changed and are valid. Logs and counts
    /// the outcome (`idjag_tls_reloads_total{listener, outcome}`).
    pub fn check(&self) -> CertReload {
        let outcome = self.try_reload();
        let label = match &outcome {
            CertReload::Unchanged => return outcome,
            CertReload::Reloaded => {
                tracing::info!(
                    listener = %self.listener,
                    cert = %self.files.cert.display(),
                    "TLS certificate reloaded; new handshakes use it"
                );
                "reloaded"
            }
            CertReload::Refused(reason) => {
                tracing::warn!(
                    listener = %self.listener,
                    reason = %reason,
                    "TLS certificate reload refused; keeping the certificate in use"
                );
                "refused"
            }
        };
        metrics::counter!(
            "idjag_tls_reloads_total",
            "listener" => self.listener.clone(),
            "outcome" => label
        )
        .increment(1);
        outcome
    }

    fn try_reload(&self) -> CertReload {
        let pair = read("certificate chain", &self.files.cert)
            .and_then(|cert| read("private key", &self.files.key).map(|key| (cert, key)));
        let (cert_pem, key_pem) = match pair {
            Ok(pair) => pair,
            Err(error) => {
                // A missing file mid-rotation: keep serving; say so once per distinct state.
                let digest = pair_digest(error.to_string().as_bytes(), b"");
                let mut last = self
                    .files
                    .last_tried
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if *last == digest {
                    return CertReload::Unchanged;
                }
                *last = digest;
                return CertReload::Refused(error);
            }
        };
        let digest = pair_digest(&cert_pem, &key_pem);
        {
            let mut last = self
                .files
                .last_tried
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if *last == digest {
                return CertReload::Unchanged;
            }
            *last = digest;
        }
        match load_pair(&self.files.cert, &self.files.key, &cert_pem, &key_pem) {
            Ok(certified) => {
                self.current.store(Arc::new(certified));
                CertReload::Reloaded
            }
            Err(error) => CertReload::Refused(error),
        }
    }

    /// Checks the files every `interval` until `stop` resolves. The listener runs this.
    pub(crate) async fn watch(
        self: Arc<Self>,
        interval: Duration,
        stop: crate::listener::Shutdown,
    ) {
        if interval.is_zero() {
            return;
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.triggered() => return,
            }
            let this = self.clone();
            // File reads and key parsing stay off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || this.check()).await;
        }
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The rustls server configuration of a listener: versions, ALPN, client authentication and
/// the reloading certificate resolver.
pub(crate) fn server_config(
    config: &TlsConfig,
    certs: Arc<CertReloader>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match config.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(certs.provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let pem = read("client CA bundle", path)?;
            let mut roots = RootCertStore::empty();
            for cert in parse_certs("client CA bundle", path, &pem)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    what: "client CA bundle",
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                certs.provider.clone(),
            )
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_cert_resolver(certs);
    server.alpn_protocols = config.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(server))
}
