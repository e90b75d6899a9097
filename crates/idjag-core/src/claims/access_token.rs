//! The claims of an RFC 9068 JWT access token.

use serde::Serialize;
use serde_json::{Map, Value};

use super::id_jag::{AuthorizationDetail, Confirmation};
use super::{ClaimReader, JwtClaims, NumericDate, Registered};
use crate::error::ClaimError;
use crate::id::{Audience, ClientId, Issuer, Jti, ScopeSet, Subject};

/// RFC 9068 access token claims (requirement JWT-10): `iss`, `exp`, `aud`, `sub`, `client_id`,
/// `iat` and `jti` are required.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AccessTokenClaims {
    /// `iss`: the authorization server.
    pub iss: Issuer,
    /// `sub`: the user (or the client, for client credentials).
    pub sub: Subject,
    /// `aud`: the resource the token is for (requirement JB-19).
    pub aud: Audience,
    /// `client_id`.
    pub client_id: ClientId,
    /// `jti`.
    pub jti: Jti,
    /// `exp`.
    pub exp: NumericDate,
    /// `iat`.
    pub iat: NumericDate,
    /// `nbf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    /// `scope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeSet>,
    /// `authorization_details`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
    /// `auth_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<NumericDate>,
    /// `acr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// `amr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// `cnf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessTokenClaims {
    /// The required claims; every optional claim starts out absent.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        iss: Issuer,
        sub: Subject,
        aud: Audience,
        client_id: ClientId,
        jti: Jti,
        iat: NumericDate,
        exp: NumericDate,
    ) -> Self {
        Self {
            iss,
            sub,
            aud,
            client_id,
            jti,
            exp,
            iat,
            nbf: None,
            scope: None,
            authorization_details: None,
            auth_time: None,
            acr: None,
            amr: None,
            cnf: None,
            extra: Map::new(),
        }
    }
}

impl JwtClaims for AccessTokenClaims {
    fn from_reader(mut r: ClaimReader) -> Result<Self, ClaimError> {
        let claims = Self {
            iss: r.id("iss", Issuer::new)?,
            sub: r.id("sub", Subject::new)?,
            aud: r.single_audience("aud")?,
            client_id: r.id("client_id", ClientId::new)?,
            jti: r.id("jti", Jti::new)?,
            exp: r.date("exp")?,
            iat: r.date("iat")?,
            nbf: r.opt_date("nbf")?,
            scope: r.opt_scope("scope")?,
            authorization_details: r
                .opt_array("authorization_details")?
                .map(AuthorizationDetail::from_json_array)
                .transpose()?,
            auth_time: r.opt_date("auth_time")?,
            acr: r.opt_string("acr")?,
            amr: r.opt_strings("amr")?,
            cnf: r
                .opt_object("cnf")?
                .map(Confirmation::from_object)
                .transpose()?,
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
            iat: Some(self.iat),
            nbf: self.nbf,
        }
    }
}
