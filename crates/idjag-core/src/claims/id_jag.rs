//! The claims of an ID-JAG (ID-JAG -04 §3.1; ID-JAG -04 §3.1).

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::{ClaimReader, JwtClaims, NumericDate, Registered};
use crate::error::ClaimError;
use crate::id::{Audience, ClientId, Issuer, Jti, Resource, ScopeSet, Subject};

/// The claims of an Identity Assertion JWT Authorization Grant.
///
/// Every claim of ID-JAG -04 §3.1 has a field; claims idjag does not name are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct IdJagClaims {
    /// `iss`: the IdP issuer (requirement IDJAG-03).
    pub iss: Issuer,
    /// `sub`: the user, in the IdP's namespace as seen by the resource AS (requirement IDJAG-04).
    pub sub: Subject,
    /// `aud`: the resource AS issuer; exactly one value (requirement IDJAG-06). Serialised as a
    /// string.
    pub aud: Audience,
    /// `client_id`: the client's id at the resource AS (requirement IDJAG-07).
    pub client_id: ClientId,
    /// `jti` (requirement IDJAG-08).
    pub jti: Jti,
    /// `exp` (requirement IDJAG-08).
    pub exp: NumericDate,
    /// `iat` (requirement IDJAG-08).
    pub iat: NumericDate,
    /// `nbf`, validated when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    /// `resource`: one or more RFC 8707 resource indicators (requirement IDJAG-09). One value is
    /// written as a string, several as an array.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_resources"
    )]
    pub resource: Option<Vec<Resource>>,
    /// `scope` (requirement IDJAG-10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeSet>,
    /// `authorization_details` (RFC 9396; requirement IDJAG-10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
    /// `tenant`: the issuer-side tenant (requirement IDJAG-12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `aud_tenant`: the resource-AS-side tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud_tenant: Option<String>,
    /// `aud_sub`: the resource AS's own identifier of the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud_sub: Option<String>,
    /// `sub_id`: an RFC 9493 subject identifier (requirement IDJAG-15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<SubjectIdentifier>,
    /// `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `auth_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<NumericDate>,
    /// `acr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// `amr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// `cnf`: proof-of-possession confirmation (requirement IDJAG-16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// `act`: actor (RFC 8693 §4.1); no processing is defined (requirement IDJAG-11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Map<String, Value>>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IdJagClaims {
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
            resource: None,
            scope: None,
            authorization_details: None,
            tenant: None,
            aud_tenant: None,
            aud_sub: None,
            sub_id: None,
            email: None,
            auth_time: None,
            acr: None,
            amr: None,
            cnf: None,
            act: None,
            extra: Map::new(),
        }
    }
}

fn serialize_resources<S: Serializer>(
    resources: &Option<Vec<Resource>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match resources.as_deref() {
        Some([one]) => one.serialize(s),
        Some(many) => many.serialize(s),
        None => s.serialize_none(),
    }
}

impl JwtClaims for IdJagClaims {
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
            resource: r.opt_resources("resource")?,
            scope: r.opt_scope("scope")?,
            authorization_details: r
                .opt_array("authorization_details")?
                .map(AuthorizationDetail::from_json_array)
                .transpose()?,
            tenant: r.opt_string("tenant")?,
            aud_tenant: r.opt_string("aud_tenant")?,
            aud_sub: r.opt_string("aud_sub")?,
            sub_id: r
                .opt_object("sub_id")?
                .map(SubjectIdentifier::from_object)
                .transpose()?,
            email: r.opt_string("email")?,
            auth_time: r.opt_date("auth_time")?,
            acr: r.opt_string("acr")?,
            amr: r.opt_strings("amr")?,
            cnf: r
                .opt_object("cnf")?
                .map(Confirmation::from_object)
                .transpose()?,
            act: r.opt_object("act")?,
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

/// One RFC 9396 authorization detail: a JSON object with a string `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct AuthorizationDetail(Map<String, Value>);

impl AuthorizationDetail {
    /// Checks an object: it must have a string `type`.
    pub fn new(object: Map<String, Value>) -> Result<Self, ClaimError> {
        match object.get("type") {
            Some(Value::String(t)) if !t.is_empty() => Ok(Self(object)),
            _ => Err(ClaimError::invalid("authorization_details")),
        }
    }

    /// Checks a JSON array of authorization details.
    pub fn from_json_array(items: Vec<Value>) -> Result<Vec<Self>, ClaimError> {
        items
            .into_iter()
            .map(|item| match item {
                Value::Object(object) => Self::new(object),
                _ => Err(ClaimError::wrong_type("authorization_details")),
            })
            .collect()
    }

    /// The `type` member.
    pub fn kind(&self) -> &str {
        self.0
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The whole object.
    pub fn as_object(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// A `cnf` confirmation (RFC 7800): a DPoP key thumbprint (`jkt`), an mTLS certificate
/// thumbprint (`x5t#S256`), or other methods kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Confirmation {
    /// `jkt`: RFC 7638 thumbprint of the DPoP key (RFC 9449 §6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// `x5t#S256`: certificate thumbprint (RFC 8705).
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
    /// Other confirmation members.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Confirmation {
    /// A DPoP confirmation.
    pub fn jkt(thumbprint: impl Into<String>) -> Self {
        Self {
            jkt: Some(thumbprint.into()),
            x5t_s256: None,
            other: Map::new(),
        }
    }

    pub(crate) fn from_object(map: Map<String, Value>) -> Result<Self, ClaimError> {
        let mut r = ClaimReader::new(map);
        let jkt = r
            .opt_string("jkt")
            .map_err(|_| ClaimError::invalid("cnf"))?;
        let x5t_s256 = r
            .opt_string("x5t#S256")
            .map_err(|_| ClaimError::invalid("cnf"))?;
        Ok(Self {
            jkt,
            x5t_s256,
            other: r.rest(),
        })
    }
}

/// An RFC 9493 subject identifier (`sub_id`). For the `saml-nameid` format of ID-JAG -04
/// §3.2, `issuer` and `nameid` are required; every member must be a string.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectIdentifier(Map<String, Value>);

impl SubjectIdentifier {
    /// Checks a `sub_id` object.
    pub fn from_object(map: Map<String, Value>) -> Result<Self, ClaimError> {
        let invalid = ClaimError::invalid("sub_id");
        if !map.values().all(Value::is_string) {
            return Err(invalid);
        }
        let has = |m: &str| {
            map.get(m)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        match map.get("format").and_then(Value::as_str) {
            Some("saml-nameid") if has("issuer") && has("nameid") => Ok(Self(map)),
            Some("saml-nameid") | None => Err(invalid),
            Some(_) => Ok(Self(map)),
        }
    }

    /// The `format` member.
    pub fn format(&self) -> &str {
        self.member("format").unwrap_or_default()
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}
