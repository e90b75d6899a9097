//! Endpoint URLs derived from the issuer, the RFC 8414 metadata document and the JWKS.

use idjag_core::endpoint::{EndpointError, check_endpoint, well_known_inserted};
use idjag_core::{AuthorizationServerMetadata, Issuer, wire};

/// What the metadata says about an authorization endpoint (RFC 8414 §2).
///
/// This server grants access only through the JWT-bearer grant, so by default its metadata
/// names no `authorization_endpoint` and an empty `response_types_supported`, as RFC 8414 §2
/// allows. Some clients refuse such a document: the TypeScript MCP SDK
/// (`@modelcontextprotocol/client` 2.4) requires an `authorization_endpoint` before it sends
/// a JWT-bearer grant (see `scripts/interop.sh` in the repository).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizationEndpoint {
    /// No authorization endpoint (the default).
    #[default]
    None,
    /// The host runs the authorization code flow with PKCE at this URL, beside this server
    /// (https, or http on loopback): advertised with `response_types_supported: ["code"]`
    /// and `code_challenge_methods_supported: ["S256"]`.
    Host(String),
    /// `{issuer}/authorize`, served by this server: it refuses every request with
    /// `unsupported_response_type` (400, never a redirect, since no redirect URI is trusted)
    /// and `response_types_supported` stays empty. For clients that require the member when
    /// there is no interactive flow at all.
    Refusing,
}

/// The URLs and paths of the server's endpoints, all under the issuer's path.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub(crate) token_url: String,
    pub(crate) token_path: String,
    pub(crate) introspection_url: String,
    pub(crate) introspection_path: String,
    pub(crate) jwks_url: String,
    pub(crate) jwks_path: String,
    pub(crate) metadata_url: String,
    pub(crate) metadata_path: String,
    pub(crate) authorize_url: String,
    pub(crate) authorize_path: String,
}

impl Endpoints {
    /// `https://as.example/tenant` gives `https://as.example/tenant/token`, ...
    /// and metadata at `https://as.example/.well-known/oauth-authorization-server/tenant`
    /// (RFC 8414 §3.1).
    pub(crate) fn for_issuer(issuer: &Issuer) -> Result<Self, EndpointError> {
        let base = check_endpoint(issuer.as_str())?;
        if base.query().is_some() {
            return Err(EndpointError::Forbidden);
        }
        let origin = base.origin().ascii_serialization();
        let path = base.path().trim_end_matches('/').to_owned();
        let at = |suffix: &str| {
            let p = format!("{path}{suffix}");
            (format!("{origin}{p}"), p)
        };
        let (token_url, token_path) = at("/token");
        let (introspection_url, introspection_path) = at("/introspect");
        let (jwks_url, jwks_path) = at("/jwks.json");
        let (authorize_url, authorize_path) = at("/authorize");
        let metadata = well_known_inserted(&base, wire::WELL_KNOWN_OAUTH_AUTHORIZATION_SERVER);
        Ok(Self {
            token_url,
            token_path,
            introspection_url,
            introspection_path,
            jwks_url,
            jwks_path,
            metadata_path: metadata.path().to_owned(),
            metadata_url: metadata.into(),
            authorize_url,
            authorize_path,
        })
    }
}

/// What the metadata document advertises besides the endpoints.
pub(crate) struct Advertised<'a> {
    pub(crate) auth_methods: Vec<String>,
    pub(crate) assertion_algorithms: Vec<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) endpoints: &'a Endpoints,
    pub(crate) authorization: &'a AuthorizationEndpoint,
}

/// The RFC 8414 document (ID-JAG -04 §7.2; requirements MD-03, MD-04, MD-05, MD-07). It lists the
/// grant profile and never the trusted issuers (ID-JAG -04 §9.4).
pub(crate) fn document(issuer: &Issuer, ad: Advertised<'_>) -> AuthorizationServerMetadata {
    let mut md = AuthorizationServerMetadata::new(issuer.clone());
    md.token_endpoint = Some(ad.endpoints.token_url.clone());
    md.introspection_endpoint = Some(ad.endpoints.introspection_url.clone());
    md.jwks_uri = Some(ad.endpoints.jwks_url.clone());
    md.grant_types_supported = Some(vec![wire::GRANT_TYPE_JWT_BEARER.into()]);
    md.authorization_grant_profiles_supported = Some(vec![wire::GRANT_PROFILE_ID_JAG.into()]);
    // RFC 8414 §2 requires `response_types_supported` even without an authorization
    // endpoint, and an empty list is then the truthful answer.
    md.response_types_supported = Some(Vec::new());
    match ad.authorization {
        AuthorizationEndpoint::None => {}
        AuthorizationEndpoint::Host(url) => {
            md.authorization_endpoint = Some(url.clone());
            md.response_types_supported = Some(vec!["code".into()]);
            md.code_challenge_methods_supported = Some(vec!["S256".into()]);
        }
        AuthorizationEndpoint::Refusing => {
            md.authorization_endpoint = Some(ad.endpoints.authorize_url.clone());
        }
    }
    md.token_endpoint_auth_methods_supported = Some(ad.auth_methods.clone());
    md.token_endpoint_auth_signing_alg_values_supported = Some(ad.assertion_algorithms.clone());
    md.scopes_supported = ad.scopes;
    md.extra.insert(
        "introspection_endpoint_auth_methods_supported".into(),
        ad.auth_methods.into(),
    );
    md.extra.insert(
        "introspection_endpoint_auth_signing_alg_values_supported".into(),
        ad.assertion_algorithms.into(),
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_live_under_the_issuer_path() {
        let e = Endpoints::for_issuer(&Issuer::new("https://as.example/tenant/").unwrap()).unwrap();
        assert_eq!(e.token_url, "https://as.example/tenant/token");
        assert_eq!(e.token_path, "/tenant/token");
        assert_eq!(
            e.metadata_url,
            "https://as.example/.well-known/oauth-authorization-server/tenant"
        );
        let e = Endpoints::for_issuer(&Issuer::new("http://127.0.0.1:8080").unwrap()).unwrap();
        assert_eq!(e.introspection_url, "http://127.0.0.1:8080/introspect");
        assert_eq!(e.metadata_path, "/.well-known/oauth-authorization-server");
        assert_eq!(
            Endpoints::for_issuer(&Issuer::new("http://as.example").unwrap()).unwrap_err(),
            EndpointError::NotHttps
        );
        assert_eq!(
            Endpoints::for_issuer(&Issuer::new("https://as.example/?a=b").unwrap()).unwrap_err(),
            EndpointError::Forbidden
        );
    }
}
