//! The claims of an RFC 7523 §2.2 client assertion (`private_key_jwt`).

use serde::Serialize;
use serde_json::{Map, Value};

use super::{ClaimReader, JwtClaims, NumericDate, Registered};
use crate::error::ClaimError;
use crate::id::{Audience, Issuer, Jti, Subject};

/// Client assertion claims. `iss` and `sub` are both the client id (checked by the
/// validator); `jti` is required so the server can refuse replays, although RFC 7523 makes it
/// optional; `iat` is optional.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClientAssertionClaims {
    /// `iss`: the client id.
    pub iss: Issuer,
    /// `sub`: the client id.
    pub sub: Subject,
    /// `aud`: the authorization server's issuer identifier, as one value (rfc7523bis).
    pub aud: Audience,
    /// `jti`.
    pub jti: Jti,
    /// `exp`.
    pub exp: NumericDate,
    /// `iat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<NumericDate>,
    /// `nbf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ClientAssertionClaims {
    /// A client assertion from `client_id` for the authorization server `aud`.
    pub fn new(
        client_id: Issuer,
        aud: Audience,
        jti: Jti,
        iat: NumericDate,
        exp: NumericDate,
    ) -> Self {
        let sub = Subject::new(client_id.as_str()).expect("an issuer is a valid subject");
        Self {
            iss: client_id,
            sub,
            aud,
            jti,
            exp,
            iat: Some(iat),
            nbf: None,
            extra: Map::new(),
        }
    }
}

impl JwtClaims for ClientAssertionClaims {
    fn from_reader(mut r: ClaimReader) -> Result<Self, ClaimError> {
        let claims = Self {
            iss: r.id("iss", Issuer::new)?,
            sub: r.id("sub", Subject::new)?,
            aud: r.single_audience("aud")?,
            jti: r.id("jti", Jti::new)?,
            exp: r.date("exp")?,
            iat: r.opt_date("iat")?,
            nbf: r.opt_date("nbf")?,
            extra: Map::new(),
        };
        Ok(Self {
            extra: r.rest(),
            ..claims
        })
    }

    fn registered(&self) -> Registered<'_> {
        Registered {
            iss: &self.iss,
            aud: &self.aud,
            exp: self.exp,
            iat: self.iat,
            nbf: self.nbf,
        }
    }
}
