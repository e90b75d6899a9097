//! The josekit backend (OpenSSL underneath). Only josekit's raw sign/verify and key import
//! are used: its JWT layer accepts tokens without `aud` or `exp` and ignores `typ`, so no
//! token ever passes through it.

use std::sync::Arc;

use josekit::jwk::alg::ec::{EcCurve as JkCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair as _};
use josekit::jws;
use serde_json::Value;

use super::{
    AEAD_KEY_LEN, AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadAlgorithm, AeadError, CryptoBackend, EcCurve,
    PrivateKeyMaterial, PublicKeyMaterial, SignatureSigner, SignatureVerifier,
};
use crate::alg::Algorithm;
use crate::error::KeyError;
use crate::error::RandomError;
use crate::jose::base64url;
use crate::secret::SecretBytes;

/// The josekit backend (feature `josekit`).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct JosekitBackend;

#[derive(Debug)]
struct Verifier(Box<dyn jws::JwsVerifier>);

impl SignatureVerifier for Verifier {
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify(message, signature).is_ok()
    }
}

#[derive(Debug)]
struct Signer {
    inner: Box<dyn jws::JwsSigner>,
    public: PublicKeyMaterial,
}

impl SignatureSigner for Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.inner.sign(message).map_err(|_| KeyError::Backend)
    }

    fn public_key(&self) -> PublicKeyMaterial {
        self.public.clone()
    }
}

fn set(jwk: &mut Jwk, name: &str, bytes: &[u8]) -> Result<(), KeyError> {
    jwk.set_parameter(name, Some(Value::String(base64url::encode(bytes))))
        .map_err(|_| KeyError::InvalidKey)
}

fn public_jwk(key: &PublicKeyMaterial) -> Result<Jwk, KeyError> {
    let mut jwk;
    match key {
        PublicKeyMaterial::Ec { curve, x, y } => {
            jwk = Jwk::new("EC");
            jwk.set_curve(curve.name());
            set(&mut jwk, "x", x)?;
            set(&mut jwk, "y", y)?;
        }
        PublicKeyMaterial::Rsa { n, e } => {
            jwk = Jwk::new("RSA");
            set(&mut jwk, "n", n)?;
            set(&mut jwk, "e", e)?;
        }
        PublicKeyMaterial::Ed25519 { x } => {
            jwk = Jwk::new("OKP");
            jwk.set_curve("Ed25519");
            set(&mut jwk, "x", x)?;
        }
    }
    Ok(jwk)
}

fn private_jwk(key: &PrivateKeyMaterial) -> Result<Jwk, KeyError> {
    let mut jwk;
    match key {
        PrivateKeyMaterial::Ec { curve, d, x, y } => {
            jwk = public_jwk(&PublicKeyMaterial::Ec {
                curve: *curve,
                x: x.clone(),
                y: y.clone(),
            })?;
            set(&mut jwk, "d", d.secret())?;
        }
        PrivateKeyMaterial::Rsa(c) => {
            jwk = public_jwk(&PublicKeyMaterial::Rsa {
                n: c.n.clone(),
                e: c.e.clone(),
            })?;
            for (name, value) in [
                ("d", &c.d),
                ("p", &c.p),
                ("q", &c.q),
                ("dp", &c.dp),
                ("dq", &c.dq),
                ("qi", &c.qi),
            ] {
                set(&mut jwk, name, value.secret())?;
            }
        }
        PrivateKeyMaterial::Ed25519 { seed, x } => {
            jwk = public_jwk(&PublicKeyMaterial::Ed25519 { x: x.clone() })?;
            set(&mut jwk, "d", seed.secret())?;
        }
        PrivateKeyMaterial::Pkcs8(_) => return Err(KeyError::Backend),
    }
    Ok(jwk)
}

fn param(jwk: &Jwk, name: &str) -> Result<Vec<u8>, KeyError> {
    match jwk.parameter(name) {
        Some(Value::String(s)) => base64url::decode(s).map_err(|_| KeyError::InvalidKey),
        _ => Err(KeyError::InvalidKey),
    }
}

fn aead_cipher(alg: AeadAlgorithm, key: &[u8]) -> Result<openssl::symm::Cipher, AeadError> {
    if key.len() != AEAD_KEY_LEN {
        return Err(AeadError::InvalidKey);
    }
    Ok(match alg {
        AeadAlgorithm::Aes256Gcm => openssl::symm::Cipher::aes_256_gcm(),
        AeadAlgorithm::ChaCha20Poly1305 => openssl::symm::Cipher::chacha20_poly1305(),
    })
}

/// The public key of a josekit key pair, read back from its public JWK.
fn public_from_pair(alg: Algorithm, jwk: &Jwk) -> Result<PublicKeyMaterial, KeyError> {
    Ok(match alg {
        Algorithm::Es256 | Algorithm::Es384 => PublicKeyMaterial::Ec {
            curve: if alg == Algorithm::Es256 {
                EcCurve::P256
            } else {
                EcCurve::P384
            },
            x: param(jwk, "x")?,
            y: param(jwk, "y")?,
        },
        Algorithm::Rs256 | Algorithm::Ps256 => PublicKeyMaterial::Rsa {
            n: param(jwk, "n")?,
            e: param(jwk, "e")?,
        },
        Algorithm::EdDsa => PublicKeyMaterial::Ed25519 {
            x: param(jwk, "x")?,
        },
    })
}

impl CryptoBackend for JosekitBackend {
    fn name(&self) -> &'static str {
        "josekit"
    }

    fn verifier(
        &self,
        alg: Algorithm,
        key: &PublicKeyMaterial,
    ) -> Result<Arc<dyn SignatureVerifier>, KeyError> {
        if !key.fits(alg) {
            return Err(KeyError::AlgorithmMismatch);
        }
        let jwk = public_jwk(key)?;
        let invalid = |_| KeyError::InvalidKey;
        let verifier: Box<dyn jws::JwsVerifier> = match alg {
            Algorithm::Es256 => Box::new(jws::ES256.verifier_from_jwk(&jwk).map_err(invalid)?),
            Algorithm::Es384 => Box::new(jws::ES384.verifier_from_jwk(&jwk).map_err(invalid)?),
            Algorithm::Rs256 => Box::new(jws::RS256.verifier_from_jwk(&jwk).map_err(invalid)?),
            Algorithm::Ps256 => Box::new(jws::PS256.verifier_from_jwk(&jwk).map_err(invalid)?),
            Algorithm::EdDsa => Box::new(jws::EdDSA.verifier_from_jwk(&jwk).map_err(invalid)?),
        };
        Ok(Arc::new(Verifier(verifier)))
    }

    fn signer(
        &self,
        alg: Algorithm,
        key: &PrivateKeyMaterial,
    ) -> Result<Arc<dyn SignatureSigner>, KeyError> {
        let invalid = |_| KeyError::InvalidKey;
        let (inner, public): (Box<dyn jws::JwsSigner>, PublicKeyMaterial) = match key {
            PrivateKeyMaterial::Pkcs8(der) => {
                let der = der.secret();
                match alg {
                    Algorithm::Es256 => (
                        Box::new(jws::ES256.signer_from_der(der).map_err(invalid)?),
                        public_from_pair(
                            alg,
                            &jws::ES256
                                .key_pair_from_der(der)
                                .map_err(invalid)?
                                .to_jwk_public_key(),
                        )?,
                    ),
                    Algorithm::Es384 => (
                        Box::new(jws::ES384.signer_from_der(der).map_err(invalid)?),
                        public_from_pair(
                            alg,
                            &jws::ES384
                                .key_pair_from_der(der)
                                .map_err(invalid)?
                                .to_jwk_public_key(),
                        )?,
                    ),
                    Algorithm::Rs256 => (
                        Box::new(jws::RS256.signer_from_der(der).map_err(invalid)?),
                        public_from_pair(
                            alg,
                            &jws::RS256
                                .key_pair_from_der(der)
                                .map_err(invalid)?
                                .to_jwk_public_key(),
                        )?,
                    ),
                    Algorithm::Ps256 => (
                        Box::new(jws::PS256.signer_from_der(der).map_err(invalid)?),
                        public_from_pair(
                            alg,
                            &jws::RS256
                                .key_pair_from_der(der)
                                .map_err(invalid)?
                                .to_jwk_public_key(),
                        )?,
                    ),
                    Algorithm::EdDsa => (
                        Box::new(jws::EdDSA.signer_from_der(der).map_err(invalid)?),
                        public_from_pair(
                            alg,
                            &jws::EdDSA
                                .key_pair_from_der(der)
                                .map_err(invalid)?
                                .to_jwk_public_key(),
                        )?,
                    ),
                }
            }
            components => {
                let jwk = private_jwk(components)?;
                let public = public_from_pair(alg, &jwk)?;
                if !public.fits(alg) {
                    return Err(KeyError::AlgorithmMismatch);
                }
                let inner: Box<dyn jws::JwsSigner> = match alg {
                    Algorithm::Es256 => {
                        Box::new(jws::ES256.signer_from_jwk(&jwk).map_err(invalid)?)
                    }
                    Algorithm::Es384 => {
                        Box::new(jws::ES384.signer_from_jwk(&jwk).map_err(invalid)?)
                    }
                    Algorithm::Rs256 => {
                        Box::new(jws::RS256.signer_from_jwk(&jwk).map_err(invalid)?)
                    }
                    Algorithm::Ps256 => {
                        Box::new(jws::PS256.signer_from_jwk(&jwk).map_err(invalid)?)
                    }
                    Algorithm::EdDsa => {
                        Box::new(jws::EdDSA.signer_from_jwk(&jwk).map_err(invalid)?)
                    }
                };
                (inner, public)
            }
        };
        if let PublicKeyMaterial::Rsa { n, .. } = &public {
            let bits = super::trim_leading_zeros(n).len() * 8;
            if bits < 2048 {
                return Err(KeyError::RsaTooSmall { bits });
            }
        }
        Ok(Arc::new(Signer { inner, public }))
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), RandomError> {
        openssl::rand::rand_bytes(out).map_err(|_| RandomError)
    }

    fn aead_seal(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        let cipher = aead_cipher(alg, key)?;
        let mut tag = [0u8; AEAD_TAG_LEN];
        let mut sealed =
            openssl::symm::encrypt_aead(cipher, key, Some(nonce), aad, plaintext, &mut tag)
                .map_err(|_| AeadError::Backend)?;
        sealed.extend_from_slice(&tag);
        Ok(sealed)
    }

    fn aead_open(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<SecretBytes, AeadError> {
        let cipher = aead_cipher(alg, key)?;
        let split = ciphertext_and_tag
            .len()
            .checked_sub(AEAD_TAG_LEN)
            .ok_or(AeadError::Open)?;
        let (ciphertext, tag) = ciphertext_and_tag.split_at(split);
        openssl::symm::decrypt_aead(cipher, key, Some(nonce), aad, ciphertext, tag)
            .map(SecretBytes::new)
            .map_err(|_| AeadError::Open)
    }

    fn generate(&self, alg: Algorithm) -> Result<PrivateKeyMaterial, KeyError> {
        let backend = |_| KeyError::Backend;
        let der = match alg {
            Algorithm::Es256 => EcKeyPair::generate(JkCurve::P256)
                .map_err(backend)?
                .to_der_private_key(),
            Algorithm::Es384 => EcKeyPair::generate(JkCurve::P384)
                .map_err(backend)?
                .to_der_private_key(),
            Algorithm::Rs256 | Algorithm::Ps256 => RsaKeyPair::generate(2048)
                .map_err(backend)?
                .to_der_private_key(),
            Algorithm::EdDsa => EdKeyPair::generate(EdCurve::Ed25519)
                .map_err(backend)?
                .to_der_private_key(),
        };
        Ok(PrivateKeyMaterial::Pkcs8(SecretBytes::new(der)))
    }
}
