//! The JOSE header and its policy (RFC 7515 §4; requirements JWT-02, JWT-03).

use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::JoseError;
use crate::id::Kid;

/// Header members that are refused outright: idjag understands no `crit` extension, never
/// processes nested or unencoded payloads, and never decompresses (threats V10, V11).
const FORBIDDEN: [&str; 4] = ["crit", "cty", "b64", "zip"];

/// A parsed, policy-checked JOSE header.
///
/// `jwk`, `jku`, `x5u`, `x5c` and `x5t` are never read: keys come only from the configured key
/// set of the configured issuer (RFC 8725 §3.10; threat V13).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    alg: Algorithm,
    typ: Option<String>,
    kid: Option<Kid>,
}

impl Header {
    /// A header for signing.
    pub fn new(alg: Algorithm, typ: Option<&str>, kid: Option<Kid>) -> Self {
        Self {
            alg,
            typ: typ.map(str::to_owned),
            kid,
        }
    }

    /// Checks a decoded header object against the policy.
    pub fn from_object(map: &Map<String, Value>) -> Result<Self, JoseError> {
        Self::check(|name| map.get(name))
    }

    pub(crate) fn from_members(members: &[(String, Value)]) -> Result<Self, JoseError> {
        Self::check(|name| members.iter().find(|(k, _)| k == name).map(|(_, v)| v))
    }

    fn check<'a>(get: impl Fn(&str) -> Option<&'a Value>) -> Result<Self, JoseError> {
        if let Some(member) = FORBIDDEN.into_iter().find(|m| get(m).is_some()) {
            return Err(JoseError::ForbiddenHeader { member });
        }
        let alg = match get("alg") {
            None => return Err(JoseError::MissingAlgorithm),
            Some(Value::String(name)) => {
                Algorithm::from_name(name).ok_or(JoseError::UnsupportedAlgorithm)?
            }
            Some(_) => return Err(JoseError::InvalidHeader { member: "alg" }),
        };
        let typ = match get("typ") {
            None => None,
            Some(Value::String(typ)) => Some(typ.clone()),
            Some(_) => return Err(JoseError::InvalidHeader { member: "typ" }),
        };
        let kid = match get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(
                Kid::new(kid.as_str()).map_err(|_| JoseError::InvalidHeader { member: "kid" })?,
            ),
            Some(_) => return Err(JoseError::InvalidHeader { member: "kid" }),
        };
        Ok(Self { alg, typ, kid })
    }

    /// The signature algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `typ` value, as given.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The key id.
    pub fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }

    /// The header as JSON, members in a fixed order (`alg`, `typ`, `kid`).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str(r#"{"alg":""#);
        out.push_str(self.alg.as_str());
        out.push('"');
        for (name, value) in [
            ("typ", self.typ.as_deref()),
            ("kid", self.kid.as_ref().map(Kid::as_str)),
        ] {
            if let Some(value) = value {
                out.push_str(",\"");
                out.push_str(name);
                out.push_str("\":");
                out.push_str(&Value::String(value.to_owned()).to_string());
            }
        }
        out.push('}');
        out
    }
}

/// Whether a `typ` value names the media type `expected` (RFC 7515 §4.1.9: compared without
/// case, and a value without `application/` means the same as one with it; decision D-07).
///
/// ```
/// use idjag_core::jose::typ_matches;
/// assert!(typ_matches("oauth-id-jag+jwt", "oauth-id-jag+jwt"));
/// assert!(typ_matches("application/oauth-id-jag+jwt", "oauth-id-jag+jwt"));
/// assert!(typ_matches("OAUTH-ID-JAG+JWT", "oauth-id-jag+jwt"));
/// assert!(!typ_matches("oauth-id-jag+jwt ", "oauth-id-jag+jwt"));
/// assert!(!typ_matches("JWT", "oauth-id-jag+jwt"));
/// ```
pub fn typ_matches(typ: &str, expected: &str) -> bool {
    const PREFIX: &str = "application/";
    let bare = match typ.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => &typ[PREFIX.len()..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case(expected)
}
