//! Secret-bearing newtypes: client secrets, compact tokens and private key bytes.
//!
//! # Security
//!
//! Every type here prints `Name([redacted])` under `Debug`, has no `Display` and no
//! `Serialize`, and wipes its memory on drop. The value is reachable only through an explicit
//! accessor, so a secret reaches a log line, an error body or a URL only when code asks for it
//! by name. Equality, where offered, is constant-time ([`ClientSecret::ct_eq`]).

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<String>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Zeroizing::new(value.into()))
            }

            /// The secret value.
            ///
            /// # Security
            ///
            /// The returned string is a credential: never log it, put it in an error, a URL or
            /// any place a third party can read.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Length of the secret in bytes (safe to log).
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether the secret is empty.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// Constant-time equality with another secret of the same type.
            pub fn ct_eq(&self, other: &Self) -> bool {
                use subtle::ConstantTimeEq;
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::new)
            }
        }
    };
}

secret_string!(
    /// An OAuth client secret.
    ClientSecret
);
secret_string!(
    /// A compact-serialised ID-JAG, as issued by the IdP and redeemed at the resource AS.
    /// It is a credential (EMA §7.4.2; requirement EMA-13).
    IdJag
);
secret_string!(
    /// An access token (for example an RFC 9068 JWT access token).
    AccessToken
);
secret_string!(
    /// A refresh token.
    RefreshToken
);
secret_string!(
    /// An OIDC ID token.
    IdToken
);
secret_string!(
    /// A token-exchange subject token (ID token, refresh token or base64url SAML assertion).
    SubjectToken
);
secret_string!(
    /// A signed client assertion (RFC 7523 §2.2, `private_key_jwt`).
    ClientAssertion
);
secret_string!(
    /// Any compact JWS or JWT whose kind is not yet known.
    CompactJwt
);

/// Secret bytes, such as private key material. Wiped on drop.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The secret bytes.
    ///
    /// # Security
    ///
    /// Key material: never log, serialise or send it anywhere.
    pub fn secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

macro_rules! convert {
    ($from:ident => $to:ident) => {
        impl From<$from> for $to {
            fn from(token: $from) -> Self {
                $to(token.0)
            }
        }
    };
}

convert!(IdToken => SubjectToken);

impl CompactJwt {
    /// The same token, known to be an ID-JAG.
    pub fn into_id_jag(self) -> IdJag {
        IdJag(self.0)
    }

    /// The same token, known to be an access token.
    pub fn into_access_token(self) -> AccessToken {
        AccessToken(self.0)
    }

    /// The same token, known to be an ID token.
    pub fn into_id_token(self) -> IdToken {
        IdToken(self.0)
    }

    /// The same token, known to be a client assertion.
    pub fn into_client_assertion(self) -> ClientAssertion {
        ClientAssertion(self.0)
    }
}
convert!(RefreshToken => SubjectToken);
convert!(IdJag => CompactJwt);
convert!(AccessToken => CompactJwt);
convert!(IdToken => CompactJwt);
convert!(ClientAssertion => CompactJwt);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_in_constant_time_and_by_value() {
        assert!(ClientSecret::new("s3:cr3t").ct_eq(&ClientSecret::new("s3:cr3t")));
        assert!(!ClientSecret::new("s3:cr3t").ct_eq(&ClientSecret::new("s3:cr3T")));
        assert!(!ClientSecret::new("s3:cr3t").ct_eq(&ClientSecret::new("s3:cr3t!")));
    }
}
