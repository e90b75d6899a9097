//! Sealing values that must be read back (stored IdP tokens, the IdP's private signing keys):
//! AEAD through idjag-core's crypto backend, with the namespace and key as associated data.

use std::fmt;

use idjag_core::SecretBytes;
use idjag_core::crypto::{AEAD_KEY_LEN, AeadAlgorithm, AeadKey};

use crate::error::StoreError;
use crate::store::Namespace;

/// The first byte of every sealed value: the format (nonce || ciphertext || tag under the
/// store key).
const FORMAT: u8 = 1;

/// Seals and opens stored values under one AEAD key (AES-256-GCM or ChaCha20-Poly1305, a
/// random 96-bit nonce per value).
///
/// The associated data is the namespace name, a zero byte and the entry's key, so a sealed
/// value copied to another entry or namespace does not open.
///
/// # Security
///
/// The key is as sensitive as everything it seals: load it from a file or a secret manager,
/// never from the configuration file itself. `Debug` shows only the algorithm.
#[derive(Clone)]
pub struct Sealer {
    key: AeadKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("alg", &self.key.algorithm())
            .finish_non_exhaustive()
    }
}

fn aad(ns: Namespace, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(ns.name().len() + 1 + key.len());
    aad.extend_from_slice(ns.name().as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

impl Sealer {
    /// A sealer with a 32-byte key.
    pub fn new(alg: AeadAlgorithm, key: &[u8]) -> Result<Self, StoreError> {
        if key.len() != AEAD_KEY_LEN {
            return Err(StoreError::Sealing);
        }
        AeadKey::new(alg, key)
            .map(|key| Self { key })
            .map_err(|_| StoreError::Sealing)
    }

    /// A sealer with a fresh random key (tests, or a key written once to a secret file).
    pub fn generate(alg: AeadAlgorithm) -> Result<Self, StoreError> {
        let mut key = zeroize::Zeroizing::new([0u8; AEAD_KEY_LEN]);
        idjag_core::random::fill(key.as_mut()).map_err(|_| StoreError::Sealing)?;
        Self::new(alg, key.as_ref())
    }

    /// Seals `plaintext` for the entry `key` of `ns`.
    pub fn seal(&self, ns: Namespace, key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let sealed = self
            .key
            .seal(&aad(ns, key), plaintext)
            .map_err(|_| StoreError::Sealing)?;
        let mut out = Vec::with_capacity(1 + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value sealed for the entry `key` of `ns`.
    pub fn open(
        &self,
        ns: Namespace,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, StoreError> {
        match sealed.split_first() {
            Some((&FORMAT, rest)) => self
                .key
                .open(&aad(ns, key), rest)
                .map_err(|_| StoreError::Corrupt { namespace: ns }),
            _ => Err(StoreError::Corrupt { namespace: ns }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_their_entry() {
        let sealer = Sealer::new(AeadAlgorithm::ChaCha20Poly1305, &[3; 32]).unwrap();
        let sealed = sealer
            .seal(Namespace::SealedTokens, b"k1", b"refresh-token-value")
            .unwrap();
        assert_eq!(
            sealer
                .open(Namespace::SealedTokens, b"k1", &sealed)
                .unwrap()
                .secret(),
            b"refresh-token-value"
        );
        for (ns, key) in [
            (Namespace::SealedTokens, &b"k2"[..]),
            (Namespace::KeySchedule, &b"k1"[..]),
        ] {
            assert_eq!(
                sealer.open(ns, key, &sealed).unwrap_err(),
                StoreError::Corrupt { namespace: ns }
            );
        }
        let other = Sealer::generate(AeadAlgorithm::ChaCha20Poly1305).unwrap();
        assert_eq!(
            other
                .open(Namespace::SealedTokens, b"k1", &sealed)
                .unwrap_err(),
            StoreError::Corrupt {
                namespace: Namespace::SealedTokens
            }
        );
        assert_eq!(
            Sealer::new(AeadAlgorithm::Aes256Gcm, &[0; 16]).unwrap_err(),
            StoreError::Sealing
        );
        assert!(!format!("{sealer:?}").contains("03"));
    }
}
