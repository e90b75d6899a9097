//! Identifier newtypes: issuers, clients, audiences, resources, subjects, token ids, key ids and scopes.
//!
//! Each keeps the exact string it was given and compares it byte for byte (RFC 7519 §2
//! StringOrURI comparison, RFC 8414 §3.3, RFC 9728 §3.3). Nothing is normalised: no case
//! folding, no trailing-slash trimming, no percent-decoding, no Unicode normalisation.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest identifier accepted, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 2048;
/// Longest `kid` accepted, in bytes. A `kid` is attacker-controlled input (requirement JWT-03).
pub const MAX_KID_LEN: usize = 256;

/// Why a string is not a valid identifier. Carries no part of the rejected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidIdentifier {
    /// The string is empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which identifier.
        kind: &'static str,
    },
    /// The string is longer than allowed.
    #[error("{kind} is longer than {max} bytes")]
    TooLong {
        /// Which identifier.
        kind: &'static str,
        /// The limit.
        max: usize,
    },
    /// The string holds an ASCII control character.
    #[error("{kind} contains a control character")]
    ControlCharacter {
        /// Which identifier.
        kind: &'static str,
    },
    /// A resource indicator is not an absolute URI (RFC 8707 §2).
    #[error("resource is not an absolute URI")]
    NotAbsoluteUri,
    /// A resource indicator carries a fragment (RFC 8707 §2).
    #[error("resource has a fragment")]
    Fragment,
    /// A scope token holds a character outside RFC 6749 §3.3 `scope-token`.
    #[error("scope token has a character outside RFC 6749 §3.3")]
    ScopeCharacter,
    /// A scope string has an empty token (leading, trailing or doubled space).
    #[error("scope string has an empty token")]
    EmptyScopeToken,
}

fn check_plain(kind: &'static str, s: &str, max: usize) -> Result<(), InvalidIdentifier> {
    if s.is_empty() {
        return Err(InvalidIdentifier::Empty { kind });
    }
    if s.len() > max {
        return Err(InvalidIdentifier::TooLong { kind, max });
    }
    if s.bytes().any(|b| b.is_ascii_control()) {
        return Err(InvalidIdentifier::ControlCharacter { kind });
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $kind:literal, check = $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps `value`, keeping it exactly as given.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidIdentifier> {
                let value = value.into();
                let check: fn(&str) -> Result<(), InvalidIdentifier> = $check;
                check(&value)?;
                Ok(Self(value))
            }

            /// The identifier as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidIdentifier;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidIdentifier;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidIdentifier;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        identifier!($(#[$doc])* $name, $kind, check = |s: &str| check_plain($kind, s, $max));
    };
}

identifier!(
    /// An issuer identifier (`iss`; RFC 8414 §2). For an ID-JAG, the IdP's issuer; the
    /// resource AS issuer is also the value clients send as `audience`.
    Issuer, "issuer", MAX_IDENTIFIER_LEN
);
identifier!(
    /// An OAuth client identifier. A client may have a different one at the IdP and at each
    /// resource AS (ID-JAG -04 §5; requirement IDJAG-07).
    ClientId, "client_id", MAX_IDENTIFIER_LEN
);
identifier!(
    /// A JWT audience value (`aud`). ID-JAGs carry exactly one (requirement IDJAG-06).
    Audience, "audience", MAX_IDENTIFIER_LEN
);
identifier!(
    /// A subject identifier (`sub`): unique per issuer (and tenant). Requirements IDJAG-04,
    /// IDJAG-05.
    Subject, "sub", MAX_IDENTIFIER_LEN
);
identifier!(
    /// A JWT ID (`jti`), used for replay detection. Requirements IDJAG-08, EMA-12.
    Jti, "jti", MAX_IDENTIFIER_LEN
);
identifier!(
    /// A key identifier (`kid`). Treated as an opaque map key, never as a path or query
    /// (requirement JWT-03); capped at [`MAX_KID_LEN`] bytes.
    Kid, "kid", MAX_KID_LEN
);
identifier!(
    /// An RFC 8707 resource indicator: an absolute URI without a fragment (requirements TX-04,
    /// IDJAG-09).
    Resource, "resource", check = check_resource
);

fn check_resource(s: &str) -> Result<(), InvalidIdentifier> {
    check_plain("resource", s, MAX_IDENTIFIER_LEN)?;
    if s.contains('#') {
        return Err(InvalidIdentifier::Fragment);
    }
    match url::Url::parse(s) {
        Ok(url) if !url.cannot_be_a_base() || url.scheme() == "urn" => Ok(()),
        _ => Err(InvalidIdentifier::NotAbsoluteUri),
    }
}

impl Issuer {
    /// The audience value that names this issuer (an ID-JAG's `aud` is the resource AS issuer).
    pub fn to_audience(&self) -> Audience {
        Audience(self.0.clone())
    }
}

impl From<Issuer> for Audience {
    fn from(issuer: Issuer) -> Self {
        Audience(issuer.0)
    }
}

impl From<Resource> for Audience {
    fn from(resource: Resource) -> Self {
        Audience(resource.0)
    }
}

/// One scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`, so no space, `"` or `\`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Checks and wraps one scope token.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidIdentifier> {
        let value = value.into();
        if value.is_empty() {
            return Err(InvalidIdentifier::EmptyScopeToken);
        }
        if value.len() > MAX_IDENTIFIER_LEN {
            return Err(InvalidIdentifier::TooLong {
                kind: "scope",
                max: MAX_IDENTIFIER_LEN,
            });
        }
        if !value
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        {
            return Err(InvalidIdentifier::ScopeCharacter);
        }
        Ok(Self(value))
    }

    /// The scope token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scope").field(&self.0).finish()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of scope tokens, written as one space-delimited string on the wire.
///
/// Sets are ordered, so the wire form is deterministic. The empty string parses as the
/// empty set; a leading, trailing or doubled space is an error (it would hide an empty token).
///
/// ```
/// use idjag_core::ScopeSet;
/// let requested = ScopeSet::parse("chat.read chat.history admin").unwrap();
/// let allowed = ScopeSet::parse("chat.read chat.history").unwrap();
/// assert_eq!(requested.intersection(&allowed).to_string(), "chat.history chat.read");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-delimited scope string.
    pub fn parse(s: &str) -> Result<Self, InvalidIdentifier> {
        if s.is_empty() {
            return Ok(Self::new());
        }
        s.split(' ')
            .map(Scope::new)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.0 == scope)
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) -> bool {
        self.0.insert(scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes in both sets.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// The scopes of `self` that are not in `other`.
    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    /// The scopes in either set.
    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter().map(|s| &s.0)).finish()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(&scope.0)?;
        }
        Ok(())
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl std::str::FromStr for ScopeSet {
    type Err = InvalidIdentifier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_compare_byte_for_byte() {
        let a = Issuer::new("https://idp.example").unwrap();
        assert_ne!(a, Issuer::new("https://idp.example/").unwrap());
        assert_ne!(a, Issuer::new("https://IDP.example").unwrap());
        assert_ne!(a, Issuer::new("https://idp.example.evil").unwrap());
        assert_eq!(a, "https://idp.example");
    }

    #[test]
    fn identifiers_reject_empty_long_and_control() {
        assert_eq!(Kid::new(""), Err(InvalidIdentifier::Empty { kind: "kid" }));
        assert_eq!(
            Kid::new("k".repeat(MAX_KID_LEN + 1)),
            Err(InvalidIdentifier::TooLong {
                kind: "kid",
                max: MAX_KID_LEN
            })
        );
        assert_eq!(
            ClientId::new("a\nb"),
            Err(InvalidIdentifier::ControlCharacter { kind: "client_id" })
        );
    }

    #[test]
    fn resources_are_absolute_uris_without_fragment() {
        assert!(Resource::new("https://mcp.example/mcp").is_ok());
        assert!(Resource::new("urn:example:resource").is_ok());
        assert_eq!(
            Resource::new("/relative"),
            Err(InvalidIdentifier::NotAbsoluteUri)
        );
        assert_eq!(
            Resource::new("mcp.example"),
            Err(InvalidIdentifier::NotAbsoluteUri)
        );
        assert_eq!(
            Resource::new("https://mcp.example/#x"),
            Err(InvalidIdentifier::Fragment)
        );
    }

    #[test]
    fn scope_tokens_follow_rfc6749() {
        for bad in ["a\"b", "a\\b", "a\tb", "é"] {
            assert_eq!(
                Scope::new(bad),
                Err(InvalidIdentifier::ScopeCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(
            ScopeSet::parse("a  b"),
            Err(InvalidIdentifier::EmptyScopeToken)
        );
        assert_eq!(
            ScopeSet::parse(" a"),
            Err(InvalidIdentifier::EmptyScopeToken)
        );
        assert!(ScopeSet::parse("").unwrap().is_empty());
        assert_eq!(ScopeSet::parse("b a b").unwrap().to_string(), "a b");
    }
}
