//! Discovery: from a protected resource to its authorization server, and from a configured
//! IdP issuer to its token endpoint (`docs/flow.md#discovery`; requirements MD-07 to MD-12).
//!
//! 1. [`BearerChallenge`] (idjag-core's one challenge type) reads the resource's `401`
//!    (`resource_metadata`, `scope`, `error`).
//! 2. [`Discovery::protected_resource`] fetches RFC 9728 metadata: the header's URL when there
//!    is one, else `/.well-known/oauth-protected-resource/<path>`, then the root well-known
//!    URL. Its `resource` must equal the resource used, byte for byte.
//! 3. [`Discovery::authorization_server`] fetches RFC 8414 metadata, then OIDC with path
//!    insertion, then OIDC with path appending (MCP 2025-11-25). Its `issuer` must equal the
//!    issuer the URL was built from; a mismatch stops discovery (threat C04).
//! 4. The ID-JAG grant profile is advertised, refused, or (when the server is silent) assumed
//!    per [`ProfileAssumption`].
//! 5. [`Discovery::identity_provider`] fetches the IdP's metadata from its issuer, or from an
//!    explicitly configured alias URL ([`IdpMetadataLocation`]); the `issuer` must still be
//!    the configured one.
//!
//! Every fetch goes through the [`crate::http::HttpClient`] seam: `https` only (`http` on
//! loopback), redirects never followed (a 3xx counts as "not here"), bodies capped.
//!
//! # Where a resource may send discovery
//!
//! A resource (or whoever answers in its name) chooses the `resource_metadata` URL of its
//! challenge and the authorization servers its metadata lists. So (threats C09, C10):
//! - the challenge's `resource_metadata` must be on the resource's own origin (same scheme,
//!   host and port; plain `http` only for a loopback resource), else
//!   [`DiscoveryError::MetadataCrossOrigin`] or [`DiscoveryError::MetadataDowngrade`], before
//!   any fetch;
//! - every fetch of a URL the resource named (its metadata, and the metadata of an
//!   authorization server the app did not pin) carries an [`AddressPolicy`]: public addresses,
//!   loopback only for a loopback resource, private networks only with
//!   [`Discovery::allow_private_addresses`] (or for a resource that is itself a private IP
//!   literal), never link-local or metadata addresses. IP literals are checked here; names are
//!   resolved and checked by the HTTP client at connection time ([`crate::http::ReqwestHttpClient`]
//!   connects only to an address it checked), else [`DiscoveryError::AddressNotAllowed`].

use idjag_core::challenge::BearerChallenge;
use idjag_core::endpoint::{
    authorization_server_metadata_urls, check_endpoint, well_known_appended, well_known_inserted,
};
use idjag_core::oauth::{AuthorizationServerMetadata, ProtectedResourceMetadata};
use idjag_core::{Issuer, Resource, ScopeSet, wire};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::auth::ClientCredentials;
use crate::error::{ClientError, DiscoveryError, InputError, ResponseProblem, Stage};
use crate::http::{AddressPolicy, DEFAULT_MAX_RESPONSE_BYTES, HttpErrorKind, SharedHttpClient};
use crate::response::json_object;
use crate::target::{AccessRequest, ResourceAsTarget};
use crate::transport::{get_json_request, send};

/// What to conclude when an authorization server's metadata does not say whether it supports
/// the ID-JAG grant profile (`authorization_grant_profiles_supported` absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProfileAssumption {
    /// Assume it does, unless `grant_types_supported` is present without the jwt-bearer grant.
    /// The default: real servers (the MCP conformance suite's among them) omit the member.
    #[default]
    AssumeSupported,
    /// Require the profile (and the jwt-bearer grant) to be advertised (requirements MD-03, MD-04).
    RequireAdvertised,
}

/// How the ID-JAG profile support of a discovered server was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileSupport {
    /// The metadata advertises it.
    Advertised,
    /// The metadata is silent and [`ProfileAssumption::AssumeSupported`] applied.
    Assumed,
}

/// Where to read the IdP's metadata from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdpMetadataLocation {
    /// The well-known URLs built from the issuer itself. The default.
    #[default]
    Issuer,
    /// The well-known URLs built from another base URL that is an alias of the issuer (a
    /// vanity domain, for example). The document's `issuer` must still equal the configured
    /// issuer: the alias changes where to look, never whom to trust.
    Alias(Url),
    /// This exact metadata document URL. Same `issuer` rule.
    Document(Url),
}

/// A protected resource and the authorization server it names.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DiscoveredResource {
    /// The resource's RFC 9728 metadata (its `resource` equals the resource used).
    pub protected_resource: ProtectedResourceMetadata,
    /// The authorization server's metadata (its `issuer` equals the one the resource named).
    pub authorization_server: AuthorizationServerMetadata,
    /// How the ID-JAG profile support was established.
    pub profile: ProfileSupport,
    /// The scopes the resource asked for in its challenge, if any.
    pub challenge_scope: Option<ScopeSet>,
}

impl DiscoveredResource {
    /// An [`AccessRequest`] for this resource at this authorization server, with our
    /// registration there, the resource, and the challenge's scopes.
    pub fn access_request(
        &self,
        credentials: ClientCredentials,
    ) -> Result<AccessRequest, ClientError> {
        let ras = ResourceAsTarget::from_metadata(&self.authorization_server, credentials)?;
        Ok(AccessRequest::new(ras)
            .with_resource(self.protected_resource.resource.clone())
            .with_scope(self.challenge_scope.clone().unwrap_or_default()))
    }
}

/// Metadata discovery through an [`crate::http::HttpClient`].
#[derive(Debug, Clone)]
pub struct Discovery {
    http: SharedHttpClient,
    max_response_bytes: usize,
    profile: ProfileAssumption,
    private_addresses: bool,
}

enum Fetched<T> {
    Document(T),
    /// Not there (non-200, redirect) or not a document (for example an HTML catch-all page).
    Absent,
}

impl Discovery {
    /// Discovery through `http`.
    pub fn new(http: SharedHttpClient) -> Self {
        Self {
            http,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            profile: ProfileAssumption::default(),
            private_addresses: false,
        }
    }

    /// Lets URLs that resources name lead to private networks (RFC 1918, `fc00::/7`,
    /// carrier-grade NAT): for deployments whose MCP servers and authorization servers live
    /// there. Link-local and metadata addresses stay refused, and loopback stays for loopback
    /// resources only.
    pub fn allow_private_addresses(mut self) -> Self {
        self.private_addresses = true;
        self
    }

    /// The address policy of URLs that `resource` names.
    pub fn address_policy(&self, resource: &Resource) -> Result<AddressPolicy, ClientError> {
        let url = check_endpoint(resource.as_str()).map_err(|error| InputError::Endpoint {
            what: "resource",
            error,
        })?;
        Ok(AddressPolicy::for_resource(&url, self.private_addresses))
    }

    /// Sets the response size cap.
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max.max(1);
        self
    }

    /// Sets what a silent authorization server is assumed to support.
    pub fn with_profile_assumption(mut self, assumption: ProfileAssumption) -> Self {
        self.profile = assumption;
        self
    }

    async fn fetch<T: DeserializeOwned>(
        &self,
        url: &Url,
        policy: Option<AddressPolicy>,
    ) -> Result<Fetched<T>, ClientError> {
        let stage = Stage::Discovery;
        let mut request = get_json_request(url)?;
        if let Some(policy) = policy {
            if !policy.allows_url(url) {
                return Err(DiscoveryError::AddressNotAllowed.into());
            }
            request.extensions_mut().insert(policy);
        }
        let response = match send(self.http.as_ref(), stage, request, self.max_response_bytes).await
        {
            Err(ClientError::Transport { error, .. })
                if error.kind() == HttpErrorKind::AddressNotAllowed =>
            {
                return Err(DiscoveryError::AddressNotAllowed.into());
            }
            other => other?,
        };
        let status = response.status().as_u16();
        tracing::debug!(target: "idjag_client", stage = %stage, url = %url, status, "metadata fetch");
        if status != 200 {
            return Ok(Fetched::Absent);
        }
        let Ok(map) = json_object(response.body()) else {
            return Ok(Fetched::Absent);
        };
        match serde_json::from_value(Value::Object(map)) {
            Ok(document) => Ok(Fetched::Document(document)),
            Err(_) => Err(ClientError::malformed(
                stage,
                ResponseProblem::Invalid { member: "metadata" },
            )),
        }
    }

    /// RFC 9728 metadata of `resource`: from the challenge's `resource_metadata` when given
    /// (and only from there, on the resource's own origin), else from the well-known URL with
    /// path insertion, then the root one. Every fetch is held to the resource's
    /// [`AddressPolicy`]. The document's `resource` must equal `resource` exactly (requirement
    /// MD-08).
    pub async fn protected_resource(
        &self,
        resource: &Resource,
        challenge: Option<&BearerChallenge>,
    ) -> Result<ProtectedResourceMetadata, ClientError> {
        let base = check_endpoint(resource.as_str()).map_err(|error| InputError::Endpoint {
            what: "resource",
            error,
        })?;
        let policy = AddressPolicy::for_resource(&base, self.private_addresses);
        let candidates = match challenge.and_then(BearerChallenge::resource_metadata) {
            // Checked again here: a challenge built in code was not checked when parsed.
            Some(url) => {
                let url = check_endpoint(url).map_err(DiscoveryError::Endpoint)?;
                if url.origin() != base.origin() {
                    return Err(if base.scheme() == "https" && url.scheme() == "http" {
                        DiscoveryError::MetadataDowngrade
                    } else {
                        DiscoveryError::MetadataCrossOrigin
                    }
                    .into());
                }
                vec![url]
            }
            None => {
                let mut root = base.clone();
                root.set_path("");
                let mut urls = vec![
                    well_known_inserted(&base, wire::WELL_KNOWN_OAUTH_PROTECTED_RESOURCE),
                    well_known_inserted(&root, wire::WELL_KNOWN_OAUTH_PROTECTED_RESOURCE),
                ];
                urls.dedup();
                urls
            }
        };
        for url in &candidates {
            if let Fetched::Document(metadata) = self
                .fetch::<ProtectedResourceMetadata>(url, Some(policy))
                .await?
            {
                if &metadata.resource != resource {
                    return Err(DiscoveryError::ResourceMismatch.into());
                }
                return Ok(metadata);
            }
        }
        Err(DiscoveryError::NotFound.into())
    }

    /// RFC 8414 / OIDC metadata of the authorization server `issuer`, tried in the MCP
    /// 2025-11-25 order. The first document found must carry exactly this `issuer`;
    /// otherwise discovery stops with [`DiscoveryError::IssuerMismatch`] (requirement MD-07).
    pub async fn authorization_server(
        &self,
        issuer: &Issuer,
    ) -> Result<AuthorizationServerMetadata, ClientError> {
        self.authorization_server_within(issuer, None).await
    }

    /// [`Self::authorization_server`] for an issuer a resource named and the app did not pin:
    /// every fetch is held to `policy` (the resource's, [`Self::address_policy`]; threat C10).
    pub async fn authorization_server_within(
        &self,
        issuer: &Issuer,
        policy: Option<AddressPolicy>,
    ) -> Result<AuthorizationServerMetadata, ClientError> {
        let urls =
            authorization_server_metadata_urls(issuer).map_err(|error| InputError::Endpoint {
                what: "authorization server issuer",
                error,
            })?;
        self.first_metadata(&urls, issuer, policy).await
    }

    async fn first_metadata(
        &self,
        urls: &[Url],
        issuer: &Issuer,
        policy: Option<AddressPolicy>,
    ) -> Result<AuthorizationServerMetadata, ClientError> {
        for url in urls {
            if let Fetched::Document(metadata) = self
                .fetch::<AuthorizationServerMetadata>(url, policy)
                .await?
            {
                if &metadata.issuer != issuer {
                    return Err(DiscoveryError::IssuerMismatch.into());
                }
                return Ok(metadata);
            }
        }
        Err(DiscoveryError::NotFound.into())
    }

    /// The IdP's metadata, from its issuer or an explicit alias. The `issuer` must equal the
    /// configured one. An IdP whose metadata lists token types or grant types without the
    /// ID-JAG ones is refused (requirements MD-01, MD-02); one that lists neither is accepted under
    /// [`ProfileAssumption::AssumeSupported`].
    pub async fn identity_provider(
        &self,
        issuer: &Issuer,
        location: &IdpMetadataLocation,
    ) -> Result<AuthorizationServerMetadata, ClientError> {
        let endpoint_error = |error| InputError::Endpoint {
            what: "IdP metadata location",
            error,
        };
        let urls = match location {
            IdpMetadataLocation::Issuer => {
                authorization_server_metadata_urls(issuer).map_err(endpoint_error)?
            }
            IdpMetadataLocation::Alias(base) => {
                idjag_core::endpoint::check_endpoint_url(base).map_err(endpoint_error)?;
                let mut urls = vec![
                    well_known_inserted(base, wire::WELL_KNOWN_OAUTH_AUTHORIZATION_SERVER),
                    well_known_inserted(base, wire::WELL_KNOWN_OPENID_CONFIGURATION),
                    well_known_appended(base, wire::WELL_KNOWN_OPENID_CONFIGURATION),
                ];
                urls.dedup();
                urls
            }
            IdpMetadataLocation::Document(url) => vec![url.clone()],
        };
        let metadata = self.first_metadata(&urls, issuer, None).await?;
        let issues = metadata.advertises_id_jag_issuance();
        let grants = metadata
            .grant_types_supported
            .as_ref()
            .map(|g| g.iter().any(|t| t == wire::GRANT_TYPE_TOKEN_EXCHANGE));
        let refused = issues == Some(false) || grants == Some(false);
        let silent = issues.is_none();
        if refused || (silent && self.profile == ProfileAssumption::RequireAdvertised) {
            return Err(DiscoveryError::IdJagNotIssued.into());
        }
        Ok(metadata)
    }

    /// From a resource (and its challenge, if the resource answered `401`) to the metadata of
    /// its authorization server. With `expected_issuer`, the resource must list that server
    /// and only it is used (pinning against mix-up; the mix-up threat,
    /// `docs/threat-model.md#mix-up`); otherwise the first listed server is used, and its
    /// metadata is fetched under the resource's address policy (threat C10).
    pub async fn resource(
        &self,
        resource: &Resource,
        challenge: Option<&BearerChallenge>,
        expected_issuer: Option<&Issuer>,
    ) -> Result<DiscoveredResource, ClientError> {
        let protected_resource = self.protected_resource(resource, challenge).await?;
        let listed = &protected_resource.authorization_servers;
        let (issuer, policy) = match expected_issuer {
            Some(expected) if listed.contains(expected) => (expected, None),
            Some(_) => return Err(DiscoveryError::UnexpectedAuthorizationServer.into()),
            None => (
                listed
                    .first()
                    .ok_or(DiscoveryError::NoAuthorizationServer)?,
                Some(self.address_policy(resource)?),
            ),
        };
        let authorization_server = self.authorization_server_within(issuer, policy).await?;
        let profile = self.profile_support(&authorization_server)?;
        Ok(DiscoveredResource {
            protected_resource,
            authorization_server,
            profile,
            challenge_scope: challenge.and_then(BearerChallenge::scope).cloned(),
        })
    }

    /// Whether the server supports the ID-JAG profile (requirement MD-12).
    pub fn profile_support(
        &self,
        metadata: &AuthorizationServerMetadata,
    ) -> Result<ProfileSupport, DiscoveryError> {
        match metadata.advertises_id_jag_profile() {
            Some(true) => Ok(ProfileSupport::Advertised),
            Some(false) => Err(DiscoveryError::ProfileNotSupported),
            None => {
                let jwt_bearer_refused = metadata.grant_types_supported.is_some()
                    && !metadata.supports_grant_type(wire::GRANT_TYPE_JWT_BEARER);
                if jwt_bearer_refused || self.profile == ProfileAssumption::RequireAdvertised {
                    Err(DiscoveryError::ProfileNotSupported)
                } else {
                    Ok(ProfileSupport::Assumed)
                }
            }
        }
    }
}
