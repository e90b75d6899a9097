//! Signature algorithms. Only asymmetric algorithms exist here: `none` and HMAC cannot be
//! represented, so no configuration can enable them (threats V01, V03; requirement JWT-01).

use std::fmt;

/// A JWS signature algorithm idjag supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256, raw `r || s` signature (RFC 7518 §3.4).
    Es256,
    /// ECDSA with P-384 and SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256, salt length 32.
    Ps256,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::EdDsa,
    ];

    /// The `alg` header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named by an `alg` value. JOSE algorithm names are case-sensitive, so
    /// `es256`, `none`, `None` and every HMAC name give `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The exact signature length in bytes, for algorithms whose length is fixed.
    pub const fn fixed_signature_len(self) -> Option<usize> {
        match self {
            Self::Es256 | Self::EdDsa => Some(64),
            Self::Es384 => Some(96),
            Self::Rs256 | Self::Ps256 => None,
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Es256 => 1,
            Self::Es384 => 2,
            Self::Rs256 => 4,
            Self::Ps256 => 8,
            Self::EdDsa => 16,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An allow-list of algorithms (requirements JWT-01, EMA-10).
///
/// ```
/// use idjag_core::{Algorithm, AlgorithmSet};
/// let allowed = AlgorithmSet::from([Algorithm::Es256, Algorithm::EdDsa]);
/// assert!(allowed.contains(Algorithm::Es256));
/// assert!(!allowed.contains(Algorithm::Rs256));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AlgorithmSet(u8);

impl AlgorithmSet {
    /// The empty set (every token is refused).
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Every supported algorithm.
    pub const fn all() -> Self {
        Self(31)
    }

    /// Adds an algorithm.
    pub const fn with(self, alg: Algorithm) -> Self {
        Self(self.0 | alg.bit())
    }

    /// Whether `alg` is allowed.
    pub const fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// Whether no algorithm is allowed.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The allowed algorithms.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl<const N: usize> From<[Algorithm; N]> for AlgorithmSet {
    fn from(algs: [Algorithm; N]) -> Self {
        algs.into_iter().collect()
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_are_not_representable() {
        for name in [
            "none", "None", "NONE", "HS256", "HS384", "HS512", "es256", "ES512", "",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
        }
    }
}
