//! The claims of an OIDC ID token used as a token-exchange subject token, or as the
//! gateway's inbound credential.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{ClaimReader, JwtClaims, NumericDate, Registered};
use crate::error::ClaimError;
use crate::id::{Audience, ClientId, Issuer, Subject};

/// OIDC ID token claims (OpenID Connect Core §2).
///
/// `aud` must be a single value (a string or a one-element array): idjag never accepts
/// multi-audience ID tokens, so `azp`, when present, must also name the audience's client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// `iss`.
    pub iss: Issuer,
    /// `sub`.
    pub sub: Subject,
    /// `aud`: the client the token was issued to.
    pub aud: Audience,
    /// `exp`.
    pub exp: NumericDate,
    /// `iat`.
    pub iat: NumericDate,
    /// `nbf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    /// `azp`: the authorized party.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<ClientId>,
    /// `auth_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<NumericDate>,
    /// `nonce`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// `acr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// `amr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// `sid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email_verified`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `groups`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// `tenant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IdTokenClaims {
    /// The required claims; every optional claim starts out absent.
    pub fn new(
        iss: Issuer,
        sub: Subject,
        aud: Audience,
        iat: NumericDate,
        exp: NumericDate,
    ) -> Self {
        Self {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf: None,
            azp: None,
            auth_time: None,
            nonce: None,
            acr: None,
            amr: None,
            sid: None,
            email: None,
            email_verified: None,
            name: None,
            groups: None,
            tenant: None,
            extra: Map::new(),
        }
    }
}

impl JwtClaims for IdTokenClaims {
    fn from_reader(mut r: ClaimReader) -> Result<Self, ClaimError> {
        let claims = Self {
            iss: r.id("iss", Issuer::new)?,
            sub: r.id("sub", Subject::new)?,
            aud: r.single_audience("aud")?,
            exp: r.date("exp")?,
            iat: r.date("iat")?,
            nbf: r.opt_date("nbf")?,
            azp: r.opt_id("azp", ClientId::new)?,
            auth_time: r.opt_date("auth_time")?,
            nonce: r.opt_string("nonce")?,
            acr: r.opt_string("acr")?,
            amr: r.opt_strings("amr")?,
            sid: r.opt_string("sid")?,
            email: r.opt_string("email")?,
            email_verified: r.opt_bool("email_verified")?,
            name: r.opt_string("name")?,
            groups: r.opt_strings("groups")?,
            tenant: r.opt_string("tenant")?,
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
