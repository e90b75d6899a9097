//! What the client talks to and asks for: the IdP ([`IdentityProvider`]), a resource
//! authorization server ([`ResourceAsTarget`]) and the [`AccessRequest`] at it. Plain values,
//! checked when built; the legs that use them are in `exchange` and `redeem`.

use std::fmt;
use std::sync::Arc;

use idjag_core::endpoint::check_endpoint;
use idjag_core::{
    AlgorithmSet, AuthorizationDetail, AuthorizationServerMetadata, Issuer, KeySource, Resource,
    ScopeSet,
};
use url::Url;

use crate::auth::ClientCredentials;
use crate::error::{ClientError, DiscoveryError, InputError};

fn endpoint(what: &'static str, url: &str) -> Result<Url, InputError> {
    check_endpoint(url).map_err(|error| InputError::Endpoint { what, error })
}

fn issuer_is_endpoint(what: &'static str, issuer: &Issuer) -> Result<(), InputError> {
    endpoint(what, issuer.as_str()).map(drop)
}

fn metadata_token_endpoint(metadata: &AuthorizationServerMetadata) -> Result<Url, ClientError> {
    let url = metadata
        .token_endpoint
        .as_deref()
        .ok_or(DiscoveryError::NoTokenEndpoint)?;
    Ok(check_endpoint(url).map_err(DiscoveryError::Endpoint)?)
}

/// The IdP: its issuer, its token endpoint and our registration there.
#[derive(Clone)]
pub struct IdentityProvider {
    issuer: Issuer,
    token_endpoint: Url,
    credentials: ClientCredentials,
    id_jag_keys: Option<(Arc<dyn KeySource>, AlgorithmSet)>,
}

impl fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint.as_str())
            .field("credentials", &self.credentials)
            .field("verifies_id_jag_signatures", &self.id_jag_keys.is_some())
            .finish()
    }
}

impl IdentityProvider {
    /// An IdP with a configured token endpoint. Both URLs must be `https` (or `http` on
    /// loopback).
    pub fn new(
        issuer: Issuer,
        token_endpoint: &str,
        credentials: ClientCredentials,
    ) -> Result<Self, InputError> {
        issuer_is_endpoint("IdP issuer", &issuer)?;
        Ok(Self {
            issuer,
            token_endpoint: endpoint("IdP token endpoint", token_endpoint)?,
            credentials,
            id_jag_keys: None,
        })
    }

    /// An IdP from its discovered metadata (see [`crate::discovery::Discovery::identity_provider`]).
    pub fn from_metadata(
        metadata: &AuthorizationServerMetadata,
        credentials: ClientCredentials,
    ) -> Result<Self, ClientError> {
        issuer_is_endpoint("IdP issuer", &metadata.issuer)?;
        Ok(Self {
            issuer: metadata.issuer.clone(),
            token_endpoint: metadata_token_endpoint(metadata)?,
            credentials,
            id_jag_keys: None,
        })
    }

    /// Verifies the signature of every issued ID-JAG with the IdP's `keys` before using it.
    /// Optional: the resource authorization server verifies anyway, and some IdPs do not
    /// publish their ID-JAG keys to clients.
    pub fn with_id_jag_keys(mut self, keys: Arc<dyn KeySource>, algorithms: AlgorithmSet) -> Self {
        self.id_jag_keys = Some((keys, algorithms));
        self
    }

    /// The issuer (the ID-JAG `iss`).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// Our registration at the IdP.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    pub(crate) fn id_jag_keys(&self) -> Option<&(Arc<dyn KeySource>, AlgorithmSet)> {
        self.id_jag_keys.as_ref()
    }
}

/// A resource authorization server as this client targets it: its issuer (the token-exchange
/// `audience`), its token endpoint and our registration there. (The server itself is
/// `idjag_resource::ResourceAuthorizationServer`.)
#[derive(Debug, Clone)]
pub struct ResourceAsTarget {
    issuer: Issuer,
    token_endpoint: Url,
    credentials: ClientCredentials,
    reuses_id_jag: bool,
}

impl ResourceAsTarget {
    /// A resource authorization server with a configured token endpoint.
    pub fn new(
        issuer: Issuer,
        token_endpoint: &str,
        credentials: ClientCredentials,
    ) -> Result<Self, InputError> {
        issuer_is_endpoint("resource authorization server issuer", &issuer)?;
        Ok(Self {
            issuer,
            token_endpoint: endpoint(
                "resource authorization server token endpoint",
                token_endpoint,
            )?,
            credentials,
            reuses_id_jag: false,
        })
    }

    /// A resource authorization server from its discovered metadata.
    pub fn from_metadata(
        metadata: &AuthorizationServerMetadata,
        credentials: ClientCredentials,
    ) -> Result<Self, ClientError> {
        issuer_is_endpoint("resource authorization server issuer", &metadata.issuer)?;
        Ok(Self {
            issuer: metadata.issuer.clone(),
            token_endpoint: metadata_token_endpoint(metadata)?,
            credentials,
            reuses_id_jag: false,
        })
    }

    /// Whether this server redeems the same ID-JAG more than once (ID-JAG -04 §4.4.3 allows
    /// it; EMA §7.4.2 forbids it through `jti` replay rejection). Default `false`: each new
    /// access token costs a new token exchange. With `true`, the cached ID-JAG is presented
    /// again while it is valid, and a new exchange follows if the server refuses it.
    pub fn with_id_jag_reuse(mut self, reuse: bool) -> Self {
        self.reuses_id_jag = reuse;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// Our registration there.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// Whether ID-JAGs are re-presented (see [`Self::with_id_jag_reuse`]).
    pub fn reuses_id_jag(&self) -> bool {
        self.reuses_id_jag
    }
}

/// What the app asks for: a resource authorization server, the resources behind it, scopes
/// and authorization details.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    resource_as: ResourceAsTarget,
    resources: Vec<Resource>,
    scope: ScopeSet,
    authorization_details: Option<Vec<AuthorizationDetail>>,
}

impl AccessRequest {
    /// A request at `resource_as`, with no resource, scope or details yet.
    pub fn new(resource_as: ResourceAsTarget) -> Self {
        Self {
            resource_as,
            resources: Vec::new(),
            scope: ScopeSet::new(),
            authorization_details: None,
        }
    }

    /// Adds a resource (RFC 8707; repeatable). MCP clients name their server's RFC 9728
    /// resource identifier here (requirements MCP-01, EMA-03).
    pub fn with_resource(mut self, resource: Resource) -> Self {
        if !self.resources.contains(&resource) {
            self.resources.push(resource);
        }
        self
    }

    /// Sets the requested scopes (empty: no `scope` parameter).
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = scope;
        self
    }

    /// Sets RFC 9396 authorization details.
    pub fn with_authorization_details(mut self, details: Vec<AuthorizationDetail>) -> Self {
        self.authorization_details = (!details.is_empty()).then_some(details);
        self
    }

    /// The resource authorization server.
    pub fn resource_as(&self) -> &ResourceAsTarget {
        &self.resource_as
    }

    /// The resources.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// The requested scopes.
    pub fn scope(&self) -> &ScopeSet {
        &self.scope
    }

    /// The authorization details.
    pub fn authorization_details(&self) -> Option<&[AuthorizationDetail]> {
        self.authorization_details.as_deref()
    }
}
