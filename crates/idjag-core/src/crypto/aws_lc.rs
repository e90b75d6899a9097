//! The aws-lc-rs backend.

use std::sync::Arc;

use aws_lc_rs::aead;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, Ed25519KeyPair,
    KeyPair as _, ParsedPublicKey, RsaKeyPair,
};

use super::{
    AEAD_NONCE_LEN, AeadAlgorithm, AeadError, CryptoBackend, EcCurve, PrivateKeyMaterial,
    PublicKeyMaterial, SignatureSigner, SignatureVerifier, sec1_uncompressed,
};
use crate::alg::Algorithm;
use crate::error::KeyError;
use crate::error::RandomError;
use crate::secret::SecretBytes;

/// The aws-lc-rs backend (the default).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct AwsLcBackend;

#[derive(Debug)]
struct Verifier(ParsedPublicKey);

impl SignatureVerifier for Verifier {
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(message, signature).is_ok()
    }
}

fn ecdsa_verification(alg: Algorithm) -> Option<&'static EcdsaVerificationAlgorithm> {
    match alg {
        Algorithm::Es256 => Some(&signature::ECDSA_P256_SHA256_FIXED),
        Algorithm::Es384 => Some(&signature::ECDSA_P384_SHA384_FIXED),
        _ => None,
    }
}

fn ecdsa_signing(alg: Algorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match alg {
        Algorithm::Es256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::Es384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

fn rsa_verification(alg: Algorithm) -> Option<&'static signature::RsaParameters> {
    match alg {
        Algorithm::Rs256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::Ps256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
        _ => None,
    }
}

impl CryptoBackend for AwsLcBackend {
    fn name(&self) -> &'static str {
        "aws-lc-rs"
    }

    fn verifier(
        &self,
        alg: Algorithm,
        key: &PublicKeyMaterial,
    ) -> Result<Arc<dyn SignatureVerifier>, KeyError> {
        if !key.fits(alg) {
            return Err(KeyError::AlgorithmMismatch);
        }
        let parsed = match key {
            PublicKeyMaterial::Ec { x, y, .. } => {
                let verification = ecdsa_verification(alg).ok_or(KeyError::AlgorithmMismatch)?;
                ParsedPublicKey::new(verification, sec1_uncompressed(x, y))
            }
            PublicKeyMaterial::Rsa { n, e } => {
                let params = rsa_verification(alg).ok_or(KeyError::AlgorithmMismatch)?;
                PublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                }
                .to_parsed_public_key(params)
            }
            PublicKeyMaterial::Ed25519 { x } => ParsedPublicKey::new(&signature::ED25519, x),
        };
        let parsed = parsed.map_err(|_| KeyError::InvalidKey)?;
        Ok(Arc::new(Verifier(parsed)))
    }

    fn signer(
        &self,
        alg: Algorithm,
        key: &PrivateKeyMaterial,
    ) -> Result<Arc<dyn SignatureSigner>, KeyError> {
        let signer: Arc<dyn SignatureSigner> = match alg {
            Algorithm::Es256 | Algorithm::Es384 => {
                let signing = ecdsa_signing(alg).ok_or(KeyError::AlgorithmMismatch)?;
                let pair = match key {
                    PrivateKeyMaterial::Pkcs8(der) => {
                        EcdsaKeyPair::from_pkcs8(signing, der.secret())
                    }
                    PrivateKeyMaterial::Ec { curve, d, x, y } if curve.algorithm() == alg => {
                        EcdsaKeyPair::from_private_key_and_public_key(
                            signing,
                            d.secret(),
                            &sec1_uncompressed(x, y),
                        )
                    }
                    _ => return Err(KeyError::AlgorithmMismatch),
                }
                .map_err(|_| KeyError::InvalidKey)?;
                let curve = if alg == Algorithm::Es256 {
                    EcCurve::P256
                } else {
                    EcCurve::P384
                };
                Arc::new(EcSigner { pair, curve })
            }
            Algorithm::EdDsa => {
                let pair = match key {
                    PrivateKeyMaterial::Pkcs8(der) => {
                        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret())
                    }
                    PrivateKeyMaterial::Ed25519 { seed, x } => {
                        Ed25519KeyPair::from_seed_and_public_key(seed.secret(), x)
                    }
                    _ => return Err(KeyError::AlgorithmMismatch),
                }
                .map_err(|_| KeyError::InvalidKey)?;
                Arc::new(EdSigner(pair))
            }
            Algorithm::Rs256 | Algorithm::Ps256 => {
                let pair = match key {
                    PrivateKeyMaterial::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret()),
                    PrivateKeyMaterial::Rsa(c) => RsaKeyPair::from_components(&KeyPairComponents {
                        public_key: PublicKeyComponents {
                            n: c.n.as_slice(),
                            e: c.e.as_slice(),
                        },
                        d: c.d.secret(),
                        p: c.p.secret(),
                        q: c.q.secret(),
                        dP: c.dp.secret(),
                        dQ: c.dq.secret(),
                        qInv: c.qi.secret(),
                    }),
                    _ => return Err(KeyError::AlgorithmMismatch),
                }
                .map_err(|_| KeyError::InvalidKey)?;
                let bits = pair.public_modulus_len() * 8;
                if bits < 2048 {
                    return Err(KeyError::RsaTooSmall { bits });
                }
                Arc::new(RsaSigner {
                    pair,
                    pss: alg == Algorithm::Ps256,
                })
            }
        };
        Ok(signer)
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), RandomError> {
        aws_lc_rs::rand::fill(out).map_err(|_| RandomError)
    }

    fn aead_seal(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        let key = aead_key(alg, key)?;
        let mut in_out = plaintext.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(*nonce),
            aead::Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| AeadError::Backend)?;
        Ok(in_out)
    }

    fn aead_open(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<SecretBytes, AeadError> {
        let key = aead_key(alg, key)?;
        let mut in_out = zeroize::Zeroizing::new(ciphertext_and_tag.to_vec());
        let plaintext = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                &mut in_out,
            )
            .map_err(|_| AeadError::Open)?;
        Ok(SecretBytes::new(plaintext.to_vec()))
    }

    fn generate(&self, alg: Algorithm) -> Result<PrivateKeyMaterial, KeyError> {
        let rng = SystemRandom::new();
        let der = match alg {
            Algorithm::Es256 | Algorithm::Es384 => {
                let signing = ecdsa_signing(alg).ok_or(KeyError::Backend)?;
                EcdsaKeyPair::generate_pkcs8(signing, &rng)
                    .map_err(|_| KeyError::Backend)?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Backend)?
                .as_ref()
                .to_vec(),
            Algorithm::Rs256 | Algorithm::Ps256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|pair| pair.as_der())
                .map_err(|_| KeyError::Backend)?
                .as_ref()
                .to_vec(),
        };
        Ok(PrivateKeyMaterial::Pkcs8(SecretBytes::new(der)))
    }
}

fn aead_key(alg: AeadAlgorithm, key: &[u8]) -> Result<aead::LessSafeKey, AeadError> {
    let algorithm = match alg {
        AeadAlgorithm::Aes256Gcm => &aead::AES_256_GCM,
        AeadAlgorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
    };
    aead::UnboundKey::new(algorithm, key)
        .map(aead::LessSafeKey::new)
        .map_err(|_| AeadError::InvalidKey)
}

#[derive(Debug)]
struct EcSigner {
    pair: EcdsaKeyPair,
    curve: EcCurve,
}

impl SignatureSigner for EcSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| KeyError::Backend)
    }

    fn public_key(&self) -> PublicKeyMaterial {
        let point = self.pair.public_key().as_ref();
        let len = self.curve.coordinate_len();
        PublicKeyMaterial::Ec {
            curve: self.curve,
            x: point[1..1 + len].to_vec(),
            y: point[1 + len..].to_vec(),
        }
    }
}

#[derive(Debug)]
struct EdSigner(Ed25519KeyPair);

impl SignatureSigner for EdSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(self.0.sign(message).as_ref().to_vec())
    }

    fn public_key(&self) -> PublicKeyMaterial {
        PublicKeyMaterial::Ed25519 {
            x: self.0.public_key().as_ref().to_vec(),
        }
    }
}

#[derive(Debug)]
struct RsaSigner {
    pair: RsaKeyPair,
    pss: bool,
}

impl SignatureSigner for RsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let encoding: &'static dyn signature::RsaEncoding = if self.pss {
            &signature::RSA_PSS_SHA256
        } else {
            &signature::RSA_PKCS1_SHA256
        };
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(encoding, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| KeyError::Backend)?;
        Ok(sig)
    }

    fn public_key(&self) -> PublicKeyMaterial {
        let public = self.pair.public_key();
        PublicKeyMaterial::Rsa {
            n: public.modulus().big_endian_without_leading_zero().to_vec(),
            e: public.exponent().big_endian_without_leading_zero().to_vec(),
        }
    }
}
