//! The crypto backend: key import and raw sign/verify, nothing else.
//!
//! Parsing, key policy and every claim rule live in idjag's own code; a backend only turns
//! key material into signers and verifiers (and seals values with an AEAD, [`AeadKey`]). Two
//! backends pass the same tests:
//!
//! - [`AwsLcBackend`] (feature `aws-lc-rs`, the default): what rustls, reqwest and rmcp
//!   already bring; no system OpenSSL.
//! - `JosekitBackend` (feature `josekit`): josekit on OpenSSL.
//!
//! Implement [`CryptoBackend`] (or just [`SignatureSigner`]) to sign in an HSM or a KMS.

use std::fmt;
use std::sync::Arc;

use crate::alg::Algorithm;
use crate::error::KeyError;
use crate::error::RandomError;
use crate::secret::SecretBytes;

mod aead;
#[cfg(feature = "aws-lc-rs")]
mod aws_lc;
#[cfg(feature = "josekit")]
mod josekit;

#[cfg(feature = "josekit")]
pub use self::josekit::JosekitBackend;
pub use aead::{AEAD_KEY_LEN, AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadAlgorithm, AeadError, AeadKey};
#[cfg(feature = "aws-lc-rs")]
pub use aws_lc::AwsLcBackend;

#[cfg(not(any(feature = "aws-lc-rs", feature = "josekit")))]
compile_error!("idjag-core needs a crypto backend: enable feature `aws-lc-rs` or `josekit`");

/// An elliptic curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcCurve {
    /// NIST P-256 (for ES256).
    P256,
    /// NIST P-384 (for ES384).
    P384,
}

impl EcCurve {
    /// The JWK `crv` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    /// Length of a coordinate (and of `d`) in bytes.
    pub const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    /// The algorithm pinned to this curve.
    pub const fn algorithm(self) -> Algorithm {
        match self {
            Self::P256 => Algorithm::Es256,
            Self::P384 => Algorithm::Es384,
        }
    }
}

/// Public key material, as big-endian bytes.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKeyMaterial {
    /// An EC point.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// The x coordinate, exactly [`EcCurve::coordinate_len`] bytes.
        x: Vec<u8>,
        /// The y coordinate, exactly [`EcCurve::coordinate_len`] bytes.
        y: Vec<u8>,
    },
    /// An RSA public key, without leading zero bytes.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
    },
    /// An Ed25519 public key (32 bytes).
    Ed25519 {
        /// The key.
        x: Vec<u8>,
    },
}

impl fmt::Debug for PublicKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ec { curve, .. } => write!(f, "PublicKeyMaterial::Ec({})", curve.name()),
            Self::Rsa { n, .. } => write!(f, "PublicKeyMaterial::Rsa({} bits)", n.len() * 8),
            Self::Ed25519 { .. } => f.write_str("PublicKeyMaterial::Ed25519"),
        }
    }
}

impl PublicKeyMaterial {
    /// Whether `alg` can be used with this key.
    pub fn fits(&self, alg: Algorithm) -> bool {
        match self {
            Self::Ec { curve, .. } => curve.algorithm() == alg,
            Self::Rsa { .. } => matches!(alg, Algorithm::Rs256 | Algorithm::Ps256),
            Self::Ed25519 { .. } => alg == Algorithm::EdDsa,
        }
    }
}

/// Private key material. Every secret part is wiped on drop; `Debug` shows no secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum PrivateKeyMaterial {
    /// A PKCS#8 `PrivateKeyInfo` in DER.
    Pkcs8(SecretBytes),
    /// EC private key components.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// The private scalar.
        d: SecretBytes,
        /// The public x coordinate.
        x: Vec<u8>,
        /// The public y coordinate.
        y: Vec<u8>,
    },
    /// RSA private key components (RFC 7518 §6.3.2).
    Rsa(Box<RsaPrivateComponents>),
    /// An Ed25519 seed and public key.
    Ed25519 {
        /// The 32-byte seed.
        seed: SecretBytes,
        /// The public key.
        x: Vec<u8>,
    },
}

impl fmt::Debug for PrivateKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pkcs8(_) => "PrivateKeyMaterial::Pkcs8([redacted])",
            Self::Ec { .. } => "PrivateKeyMaterial::Ec([redacted])",
            Self::Rsa(_) => "PrivateKeyMaterial::Rsa([redacted])",
            Self::Ed25519 { .. } => "PrivateKeyMaterial::Ed25519([redacted])",
        })
    }
}

/// RSA private key components, big-endian.
#[derive(Clone)]
#[allow(missing_docs)]
pub struct RsaPrivateComponents {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub d: SecretBytes,
    pub p: SecretBytes,
    pub q: SecretBytes,
    pub dp: SecretBytes,
    pub dq: SecretBytes,
    pub qi: SecretBytes,
}

impl fmt::Debug for RsaPrivateComponents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaPrivateComponents([redacted])")
    }
}

/// Verifies raw signatures with one public key under one algorithm.
pub trait SignatureVerifier: fmt::Debug + Send + Sync {
    /// Whether `signature` is a valid signature of `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool;
}

/// Makes raw signatures with one private key under one algorithm.
pub trait SignatureSigner: fmt::Debug + Send + Sync {
    /// Signs `message` (JWS form: raw `r || s` for ECDSA).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// The matching public key.
    fn public_key(&self) -> PublicKeyMaterial;
}

/// A crypto backend: key import, key generation, raw sign and verify.
pub trait CryptoBackend: fmt::Debug + Send + Sync + 'static {
    /// A short name for reports ("aws-lc-rs", "josekit").
    fn name(&self) -> &'static str;

    /// A verifier for `key` under `alg`. The caller has already checked that `alg` fits the
    /// key type; the backend checks the material (for example that an EC point is on the curve).
    fn verifier(
        &self,
        alg: Algorithm,
        key: &PublicKeyMaterial,
    ) -> Result<Arc<dyn SignatureVerifier>, KeyError>;

    /// A signer for `key` under `alg`.
    fn signer(
        &self,
        alg: Algorithm,
        key: &PrivateKeyMaterial,
    ) -> Result<Arc<dyn SignatureSigner>, KeyError>;

    /// A fresh private key for `alg`, as PKCS#8 (RSA keys have 2048 bits).
    fn generate(&self, alg: Algorithm) -> Result<PrivateKeyMaterial, KeyError>;

    /// Fills `out` from the backend's cryptographically secure generator.
    fn fill_random(&self, out: &mut [u8]) -> Result<(), RandomError>;

    /// AEAD-encrypts `plaintext` under a 32-byte `key` and a 12-byte `nonce` the caller never
    /// reuses with this key; returns `ciphertext || tag`. Prefer [`AeadKey::seal`], which
    /// draws the nonce. Backends without AEAD keep this default, which refuses.
    fn aead_seal(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        let _ = (alg, key, nonce, aad, plaintext);
        Err(AeadError::Backend)
    }

    /// Checks the tag of `ciphertext || tag` (with `aad`) and decrypts it.
    fn aead_open(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<SecretBytes, AeadError> {
        let _ = (alg, key, nonce, aad, ciphertext_and_tag);
        Err(AeadError::Backend)
    }
}

/// The default backend: aws-lc-rs when compiled in, josekit otherwise.
pub fn default_backend() -> &'static dyn CryptoBackend {
    #[cfg(feature = "aws-lc-rs")]
    {
        &AwsLcBackend
    }
    #[cfg(not(feature = "aws-lc-rs"))]
    {
        &JosekitBackend
    }
}

/// Every backend compiled into this build, the default first.
pub fn all_backends() -> Vec<&'static dyn CryptoBackend> {
    let backends: [Option<&'static dyn CryptoBackend>; 2] = [
        #[cfg(feature = "aws-lc-rs")]
        Some(&AwsLcBackend),
        #[cfg(not(feature = "aws-lc-rs"))]
        None,
        #[cfg(feature = "josekit")]
        Some(&JosekitBackend),
        #[cfg(not(feature = "josekit"))]
        None,
    ];
    backends.into_iter().flatten().collect()
}

/// Strips leading zero bytes of a big-endian unsigned integer.
pub(crate) fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Uncompressed SEC1 point `04 || x || y`.
#[cfg_attr(not(feature = "aws-lc-rs"), allow(dead_code))]
pub(crate) fn sec1_uncompressed(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(4);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}
