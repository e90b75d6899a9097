//! Typed claims. Required claims are non-`Option` fields; a claim with the wrong JSON type is
//! a hard error, never treated as absent (CVE-2026-25537 class; threats V20 to V23).
//!
//! Claims are read from a duplicate-free JSON object by [`ClaimReader`]; the members it does
//! not know are kept in each type's `extra` map.

mod access_token;
mod client_assertion;
mod id_jag;
mod id_token;
mod reader;

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

pub use access_token::AccessTokenClaims;
pub use client_assertion::ClientAssertionClaims;
pub use id_jag::{AuthorizationDetail, Confirmation, IdJagClaims, SubjectIdentifier};
pub use id_token::IdTokenClaims;
pub use reader::ClaimReader;

use crate::error::{ClaimError, Segment, ValidationError};
use crate::id::{Audience, Issuer};
use crate::jose::parse_object;

/// The largest NumericDate accepted: 2^53 - 1 seconds, the exactly representable range.
pub const MAX_NUMERIC_DATE: i64 = (1 << 53) - 1;

/// A JWT NumericDate (RFC 7519 §2): whole seconds since the Unix epoch.
///
/// Accepted on input: a finite JSON number in `[0, 2^53)`. A fractional value is floored to
/// the second (RFC 7519 allows fractions); negatives, `1e400`, `9223372036854775808`, strings,
/// booleans and everything else are rejected (threats V22, V23).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NumericDate(i64);

impl NumericDate {
    /// A date `secs` seconds after the epoch, if in range.
    pub fn from_unix(secs: i64) -> Option<Self> {
        (0..=MAX_NUMERIC_DATE).contains(&secs).then_some(Self(secs))
    }

    /// Seconds since the epoch.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// This date moved by `secs` seconds, if still in range.
    pub fn plus(self, secs: i64) -> Option<Self> {
        self.0.checked_add(secs).and_then(Self::from_unix)
    }

    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let Value::Number(n) = value else { return None };
        if let Some(i) = n.as_i64() {
            return Self::from_unix(i);
        }
        if n.is_u64() {
            return None; // above i64::MAX, so above 2^53
        }
        let f = n.as_f64()?;
        if f.is_finite() && (0.0..(MAX_NUMERIC_DATE as f64 + 1.0)).contains(&f) {
            #[allow(clippy::cast_possible_truncation)]
            Self::from_unix(f.floor() as i64)
        } else {
            None
        }
    }
}

impl fmt::Debug for NumericDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NumericDate({})", self.0)
    }
}

impl Serialize for NumericDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

/// The registered claims every validator checks.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Registered<'a> {
    /// `iss`.
    pub iss: &'a Issuer,
    /// `aud`.
    pub aud: &'a Audience,
    /// `exp`.
    pub exp: NumericDate,
    /// `iat`, when present.
    pub iat: Option<NumericDate>,
    /// `nbf`, when present.
    pub nbf: Option<NumericDate>,
}

/// A claim set that can be read from a JWT payload.
pub trait JwtClaims: Sized + Serialize + fmt::Debug + Clone + Send + Sync + 'static {
    /// Reads the claims, taking each known one out of `reader`; the rest become extra claims.
    fn from_reader(reader: ClaimReader) -> Result<Self, ClaimError>;

    /// Reads the claims from a payload object.
    fn from_claims(map: Map<String, Value>) -> Result<Self, ClaimError> {
        Self::from_reader(ClaimReader::new(map))
    }

    /// The registered claims.
    fn registered(&self) -> Registered<'_>;

    /// Parses a JSON payload (duplicate members rejected) into claims. The result is not
    /// verified: use a [`crate::Validator`] for tokens.
    fn from_json_slice(bytes: &[u8]) -> Result<Self, ValidationError> {
        let map = parse_object(bytes, Segment::Payload).map_err(ValidationError::Malformed)?;
        Self::from_claims(map).map_err(ValidationError::Claim)
    }
}
