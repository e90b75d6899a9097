//! Random identifiers from the crypto backend's generator: `jti`s, request and approval ids,
//! opaque handles. Every crate takes its randomness from here, so a build on either backend
//! needs no other source.
//!
//! ```
//! let jti = idjag_core::random::jti()?;
//! assert_eq!(jti.as_str().len(), 22); // 128 bits, base64url
//! let id = idjag_core::random::hex_id(16)?;
//! assert_eq!(id.len(), 32);
//! # Ok::<(), idjag_core::RandomError>(())
//! ```

use crate::crypto::default_backend;
use crate::error::RandomError;
use crate::id::Jti;
use crate::jose::base64url;

/// Fills `out` from the default backend's cryptographically secure generator.
pub fn fill(out: &mut [u8]) -> Result<(), RandomError> {
    default_backend().fill_random(out)
}

/// A fresh `jti` of 128 random bits, base64url without padding (22 characters).
pub fn jti() -> Result<Jti, RandomError> {
    Jti::new(url_safe(16)?).map_err(|_| RandomError)
}

/// `bytes` random bytes as base64url without padding.
pub fn url_safe(bytes: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf)?;
    Ok(base64url::encode(&buf))
}

/// `bytes` random bytes as lowercase hexadecimal (`2 * bytes` characters).
pub fn hex_id(bytes: usize) -> Result<String, RandomError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = vec![0u8; bytes];
    fill(&mut buf)?;
    let mut id = String::with_capacity(bytes * 2);
    for b in buf {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 15)]));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_documented_shape_and_differ() {
        let a = hex_id(16).unwrap();
        let b = hex_id(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        let token = url_safe(32).unwrap();
        assert_eq!(token.len(), 43);
        assert!(base64url::decode(&token).is_ok());
        assert_eq!(jti().unwrap().as_str().len(), 22);
    }

    #[test]
    fn every_backend_fills_all_bytes() {
        for backend in crate::crypto::all_backends() {
            let mut buf = [0u8; 64];
            backend.fill_random(&mut buf).unwrap();
            // 64 zero bytes from a working generator: probability 2^-512.
            assert_ne!(buf, [0u8; 64], "{}", backend.name());
        }
    }
}
