//! OAuth wire documents and values shared by every role: authorization server metadata (RFC
//! 8414), protected resource metadata (RFC 9728), token responses (RFC 6749 §5.1, RFC 8693
//! §2.2.1) and the subject token types of a token exchange.
//!
//! Unknown members are kept in `extra`, so a document read and written back loses nothing.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::id::{Issuer, Resource, ScopeSet};
use crate::secret::{AccessToken, RefreshToken};
use crate::wire;

/// The `subject_token_type` of an ID-JAG token exchange (RFC 8693 §3; ID-JAG -04 §4.3): the
/// kinds of subject token the profile allows. The client sends one, the IdP reads one.
///
/// ```
/// use idjag_core::SubjectTokenType;
/// let t = SubjectTokenType::from_urn("urn:ietf:params:oauth:token-type:id_token").unwrap();
/// assert_eq!(t, SubjectTokenType::IdToken);
/// assert_eq!(t.urn(), "urn:ietf:params:oauth:token-type:id_token");
/// assert_eq!(t.name(), "id_token");
/// assert_eq!(SubjectTokenType::from_urn("urn:ietf:params:oauth:token-type:jwt"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectTokenType {
    /// An OIDC ID token (`urn:ietf:params:oauth:token-type:id_token`).
    IdToken,
    /// An IdP refresh token (`urn:ietf:params:oauth:token-type:refresh_token`), where the IdP
    /// accepts one.
    RefreshToken,
    /// A base64url SAML 2.0 assertion (`urn:ietf:params:oauth:token-type:saml2`).
    Saml2,
}

impl SubjectTokenType {
    /// The type named by a `subject_token_type` URN; `None` for any other URN.
    pub fn from_urn(urn: &str) -> Option<Self> {
        match urn {
            wire::TOKEN_TYPE_ID_TOKEN => Some(Self::IdToken),
            wire::TOKEN_TYPE_REFRESH_TOKEN => Some(Self::RefreshToken),
            wire::TOKEN_TYPE_SAML2 => Some(Self::Saml2),
            _ => None,
        }
    }

    /// The token type URN.
    pub const fn urn(self) -> &'static str {
        match self {
            Self::IdToken => wire::TOKEN_TYPE_ID_TOKEN,
            Self::RefreshToken => wire::TOKEN_TYPE_REFRESH_TOKEN,
            Self::Saml2 => wire::TOKEN_TYPE_SAML2,
        }
    }

    /// A short name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::IdToken => "id_token",
            Self::RefreshToken => "refresh_token",
            Self::Saml2 => "saml2",
        }
    }
}

/// RFC 8414 authorization server metadata (also the OIDC discovery document), with the
/// members the ID-JAG profile adds (ID-JAG -04 §7.1, §7.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// `issuer`: must equal the issuer the metadata URL was built from (RFC 8414 §3.3; requirement
    /// MD-07).
    pub issuer: Issuer,
    /// `authorization_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// `token_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// `jwks_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `introspection_endpoint` (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// `grant_types_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// `response_types_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    /// `token_endpoint_auth_methods_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// `token_endpoint_auth_signing_alg_values_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// `scopes_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// `code_challenge_methods_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// `authorization_grant_profiles_supported` (ID-JAG -04 §7.2; requirement MD-03).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_grant_profiles_supported: Option<Vec<String>>,
    /// `identity_chaining_requested_token_types_supported` (requirement MD-01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_chaining_requested_token_types_supported: Option<Vec<String>>,
    /// Every other member.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn lists(list: &Option<Vec<String>>, value: &str) -> Option<bool> {
    list.as_ref().map(|l| l.iter().any(|v| v == value))
}

impl AuthorizationServerMetadata {
    /// Metadata with only `issuer` set.
    pub fn new(issuer: Issuer) -> Self {
        Self {
            issuer,
            authorization_endpoint: None,
            token_endpoint: None,
            jwks_uri: None,
            introspection_endpoint: None,
            grant_types_supported: None,
            response_types_supported: None,
            token_endpoint_auth_methods_supported: None,
            token_endpoint_auth_signing_alg_values_supported: None,
            scopes_supported: None,
            code_challenge_methods_supported: None,
            authorization_grant_profiles_supported: None,
            identity_chaining_requested_token_types_supported: None,
            extra: Map::new(),
        }
    }

    /// Whether the server advertises the ID-JAG grant profile with the jwt-bearer grant
    /// (`docs/flow.md#ema-available`; requirements MD-03, MD-04, MD-12). `None` when it does not
    /// say (the member is absent), which real servers often do.
    pub fn advertises_id_jag_profile(&self) -> Option<bool> {
        let profile = lists(
            &self.authorization_grant_profiles_supported,
            wire::GRANT_PROFILE_ID_JAG,
        )?;
        Some(profile && self.supports_grant_type(wire::GRANT_TYPE_JWT_BEARER))
    }

    /// Whether `grant_type` is listed. RFC 8414 §2: absent means `authorization_code` and
    /// `implicit` only.
    pub fn supports_grant_type(&self, grant_type: &str) -> bool {
        lists(&self.grant_types_supported, grant_type).unwrap_or(matches!(
            grant_type,
            wire::GRANT_TYPE_AUTHORIZATION_CODE | "implicit"
        ))
    }

    /// Whether the IdP says it issues ID-JAGs through token exchange (requirement MD-01), `None`
    /// when silent.
    pub fn advertises_id_jag_issuance(&self) -> Option<bool> {
        lists(
            &self.identity_chaining_requested_token_types_supported,
            wire::TOKEN_TYPE_ID_JAG,
        )
    }

    /// Whether the token endpoint accepts `method`. RFC 8414 §2: absent means
    /// `client_secret_basic` only.
    pub fn supports_auth_method(&self, method: &str) -> bool {
        lists(&self.token_endpoint_auth_methods_supported, method)
            .unwrap_or(method == wire::auth_method::CLIENT_SECRET_BASIC)
    }
}

/// RFC 9728 protected resource metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// `resource`: must equal the resource identifier the client used (requirement MD-08).
    pub resource: Resource,
    /// `authorization_servers`: issuer identifiers (MCP requires at least one; requirement MD-09).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<Issuer>,
    /// `scopes_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// `bearer_methods_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// `resource_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Every other member.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ProtectedResourceMetadata {
    /// Metadata for `resource` protected by `authorization_servers`.
    pub fn new(resource: Resource, authorization_servers: Vec<Issuer>) -> Self {
        Self {
            resource,
            authorization_servers,
            scopes_supported: None,
            bearer_methods_supported: Some(vec!["header".into()]),
            resource_name: None,
            extra: Map::new(),
        }
    }
}

fn expose<S: Serializer>(token: &AccessToken, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(token.secret())
}

fn expose_refresh<S: Serializer>(token: &Option<RefreshToken>, s: S) -> Result<S::Ok, S::Error> {
    match token {
        Some(t) => s.serialize_str(t.secret()),
        None => s.serialize_none(),
    }
}

/// A successful token response (RFC 6749 §5.1), including the token-exchange members
/// (RFC 8693 §2.2.1). For a token exchange issuing an ID-JAG, `access_token` holds the ID-JAG
/// and `token_type` is `N_A` (requirement TX-15).
///
/// `Debug` redacts the tokens; serialising writes them, since that is this type's job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// `access_token`.
    #[serde(serialize_with = "expose")]
    pub access_token: AccessToken,
    /// `token_type`.
    pub token_type: String,
    /// `issued_token_type` (token exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
    /// `expires_in`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// `scope`: the granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeSet>,
    /// `refresh_token`: idjag servers never issue one for these grants (requirements JB-18, TX-17).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_refresh"
    )]
    pub refresh_token: Option<RefreshToken>,
    /// `authorization_details` (RFC 9396).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Vec<Value>>,
    /// Every other member.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TokenResponse {
    /// A response carrying `access_token` of `token_type`.
    pub fn new(access_token: AccessToken, token_type: impl Into<String>) -> Self {
        Self {
            access_token,
            token_type: token_type.into(),
            issued_token_type: None,
            expires_in: None,
            scope: None,
            refresh_token: None,
            authorization_details: None,
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_profile_detection_follows_md03_md04() {
        let mut md: AuthorizationServerMetadata =
            serde_json::from_str(r#"{"issuer":"https://as.example"}"#).unwrap();
        assert_eq!(md.advertises_id_jag_profile(), None);
        md.authorization_grant_profiles_supported = Some(vec![wire::GRANT_PROFILE_ID_JAG.into()]);
        assert_eq!(md.advertises_id_jag_profile(), Some(false)); // no jwt-bearer grant listed
        md.grant_types_supported = Some(vec![wire::GRANT_TYPE_JWT_BEARER.into()]);
        assert_eq!(md.advertises_id_jag_profile(), Some(true));
    }

    #[test]
    fn token_response_round_trips_and_redacts_debug() {
        let json = r#"{"access_token":"eyJ.secret.sig","token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:id-jag","expires_in":300,"scope":"a b"}"#;
        let response: TokenResponse = serde_json::from_str(json).unwrap();
        assert!(!format!("{response:?}").contains("eyJ.secret.sig"));
        assert_eq!(serde_json::to_string(&response).unwrap(), json);
    }
}
