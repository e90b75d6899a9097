//! Authenticated encryption (AEAD) for values a server must store and read back: an IdP's
//! private signing keys in a shared key schedule, stored upstream tokens.
//!
//! [`AeadKey::seal`] draws a fresh 96-bit nonce from the backend's generator for every
//! message and returns `nonce || ciphertext || tag`; [`AeadKey::open`] checks the tag
//! (and the associated data) before it returns a byte. Both backends implement the two
//! algorithms and open each other's output.
//!
//! ```
//! use idjag_core::crypto::{AeadAlgorithm, AeadKey};
//! let key = AeadKey::new(AeadAlgorithm::Aes256Gcm, &[7u8; 32])?;
//! let sealed = key.seal(b"sealed-tokens/abc", b"refresh-token")?;
//! assert_eq!(key.open(b"sealed-tokens/abc", &sealed)?.secret(), b"refresh-token");
//! assert!(key.open(b"sealed-tokens/xyz", &sealed).is_err()); // other associated data
//! # Ok::<(), idjag_core::crypto::AeadError>(())
//! ```
//!
//! # Security
//!
//! Random 96-bit nonces are safe for about 2^32 messages under one key (NIST SP 800-38D
//! §8.3); rotate the key well before that. Bind every ciphertext to where it is stored by
//! passing that location as the associated data, so a value moved to another slot fails to
//! open.

use std::fmt;

use super::{CryptoBackend, default_backend};
use crate::secret::SecretBytes;

/// Length of an AEAD key in bytes (both algorithms take 256-bit keys).
pub const AEAD_KEY_LEN: usize = 32;
/// Length of the nonce at the start of a sealed value.
pub const AEAD_NONCE_LEN: usize = 12;
/// Length of the authentication tag at the end of a sealed value.
pub const AEAD_TAG_LEN: usize = 16;

/// An AEAD algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AeadAlgorithm {
    /// AES-256 in Galois/Counter Mode.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 8439).
    ChaCha20Poly1305,
}

impl AeadAlgorithm {
    /// A short name ("A256GCM", "C20P"), as used in configuration files.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "A256GCM",
            Self::ChaCha20Poly1305 => "C20P",
        }
    }
}

/// Why sealing or opening failed. Carries nothing about the key or the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AeadError {
    /// The key is not [`AEAD_KEY_LEN`] bytes.
    #[error("an AEAD key must be 32 bytes")]
    InvalidKey,
    /// The value is too short, was altered, was sealed under another key or with other
    /// associated data.
    #[error("the sealed value does not open under this key")]
    Open,
    /// The backend failed (or does not implement AEAD).
    #[error("the crypto backend cannot seal")]
    Backend,
    /// No nonce could be drawn from the random generator.
    #[error("the system random generator failed")]
    Random,
}

/// A 256-bit AEAD key with its algorithm and backend. `Debug` shows no key material; the key
/// is wiped on drop.
#[derive(Clone)]
pub struct AeadKey {
    alg: AeadAlgorithm,
    key: SecretBytes,
    backend: &'static dyn CryptoBackend,
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadKey")
            .field("alg", &self.alg)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl AeadKey {
    /// A key for `alg` on the default backend.
    pub fn new(alg: AeadAlgorithm, key: &[u8]) -> Result<Self, AeadError> {
        Self::new_with(alg, key, default_backend())
    }

    /// A key for `alg` on `backend`.
    pub fn new_with(
        alg: AeadAlgorithm,
        key: &[u8],
        backend: &'static dyn CryptoBackend,
    ) -> Result<Self, AeadError> {
        if key.len() != AEAD_KEY_LEN {
            return Err(AeadError::InvalidKey);
        }
        Ok(Self {
            alg,
            key: SecretBytes::new(key),
            backend,
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> AeadAlgorithm {
        self.alg
    }

    /// Encrypts `plaintext` bound to `aad` under a fresh random nonce:
    /// `nonce (12) || ciphertext || tag (16)`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, AeadError> {
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        self.backend
            .fill_random(&mut nonce)
            .map_err(|_| AeadError::Random)?;
        let body = self
            .backend
            .aead_seal(self.alg, self.key.secret(), &nonce, aad, plaintext)?;
        let mut sealed = Vec::with_capacity(AEAD_NONCE_LEN + body.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Checks and decrypts a value made by [`seal`](Self::seal) with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, AeadError> {
        if sealed.len() < AEAD_NONCE_LEN + AEAD_TAG_LEN {
            return Err(AeadError::Open);
        }
        let (nonce, body) = sealed.split_at(AEAD_NONCE_LEN);
        let nonce: &[u8; AEAD_NONCE_LEN] = nonce.try_into().map_err(|_| AeadError::Open)?;
        self.backend
            .aead_open(self.alg, self.key.secret(), nonce, aad, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::all_backends;

    const ALGS: [AeadAlgorithm; 2] = [AeadAlgorithm::Aes256Gcm, AeadAlgorithm::ChaCha20Poly1305];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn known_answers_on_every_backend() {
        // RFC 8439 §2.8.2 (ChaCha20-Poly1305) and the AES-256-GCM test case 16 of the GCM
        // specification (McGrew and Viega), whose nonce is 96 bits.
        let rfc8439_plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you \
only one tip for the future, sunscreen would be it.";
        let cases = [
            (
                AeadAlgorithm::ChaCha20Poly1305,
                "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
                "070000004041424344454647",
                "50515253c0c1c2c3c4c5c6c7",
                rfc8439_plaintext.to_vec(),
                "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116\
1ae10b594f09e26a7e902ecbd0600691",
            ),
            (
                AeadAlgorithm::Aes256Gcm,
                "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
                "cafebabefacedbaddecaf888",
                "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                unhex(
                    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
                ),
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
76fc6ece0f4e1768cddf8853bb2d551b",
            ),
        ];
        for backend in all_backends() {
            for (alg, key, nonce, aad, plaintext, expected) in &cases {
                let nonce: [u8; 12] = unhex(nonce).try_into().unwrap();
                let sealed = backend
                    .aead_seal(*alg, &unhex(key), &nonce, &unhex(aad), plaintext)
                    .unwrap();
                assert_eq!(sealed, unhex(expected), "{} {alg:?}", backend.name());
                let opened = backend
                    .aead_open(*alg, &unhex(key), &nonce, &unhex(aad), &sealed)
                    .unwrap();
                assert_eq!(opened.secret(), &plaintext[..]);
            }
        }
    }

    #[test]
    fn sealed_values_round_trip_across_backends_and_use_fresh_nonces() {
        for alg in ALGS {
            for sealer in all_backends() {
                let key = AeadKey::new_with(alg, &[9u8; 32], sealer).unwrap();
                let a = key.seal(b"ns/k", b"secret value").unwrap();
                let b = key.seal(b"ns/k", b"secret value").unwrap();
                assert_ne!(a[..12], b[..12], "nonces repeat");
                assert_eq!(a.len(), 12 + 12 + 16);
                for opener in all_backends() {
                    let key = AeadKey::new_with(alg, &[9u8; 32], opener).unwrap();
                    assert_eq!(key.open(b"ns/k", &a).unwrap().secret(), b"secret value");
                }
            }
        }
    }

    #[test]
    fn any_change_fails_to_open() {
        for backend in all_backends() {
            for alg in ALGS {
                let key = AeadKey::new_with(alg, &[1u8; 32], backend).unwrap();
                let sealed = key.seal(b"aad", b"plaintext").unwrap();
                for i in 0..sealed.len() {
                    let mut bad = sealed.clone();
                    bad[i] ^= 1;
                    assert_eq!(key.open(b"aad", &bad).unwrap_err(), AeadError::Open);
                }
                assert_eq!(key.open(b"aae", &sealed).unwrap_err(), AeadError::Open);
                assert_eq!(
                    key.open(b"aad", &sealed[..27]).unwrap_err(),
                    AeadError::Open
                );
                let other = AeadKey::new_with(alg, &[2u8; 32], backend).unwrap();
                assert_eq!(other.open(b"aad", &sealed).unwrap_err(), AeadError::Open);
            }
        }
        let gcm = AeadKey::new(AeadAlgorithm::Aes256Gcm, &[1u8; 32]).unwrap();
        let chacha = AeadKey::new(AeadAlgorithm::ChaCha20Poly1305, &[1u8; 32]).unwrap();
        let sealed = gcm.seal(b"", b"x").unwrap();
        assert_eq!(chacha.open(b"", &sealed).unwrap_err(), AeadError::Open);
    }

    #[test]
    fn keys_must_be_32_bytes_and_never_print() {
        for len in [0, 16, 31, 33] {
            assert_eq!(
                AeadKey::new(AeadAlgorithm::Aes256Gcm, &vec![0; len]).unwrap_err(),
                AeadError::InvalidKey
            );
        }
        let key = AeadKey::new(AeadAlgorithm::Aes256Gcm, &[0x41; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("65") && !shown.contains("AAAA"), "{shown}");
    }
}
