//! What the resource authorization server trusts and grants: trusted issuers, registered
//! resources, and the policies the specifications leave open
//! (decisions D-01, D-03, D-04, D-08).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use idjag_core::{
    BoxFuture, ClientId, IdJagClaims, Issuer, KeySource, Resource, ScopeSet, Subject,
};

/// An IdP whose ID-JAGs this server redeems (requirement JB-07; ID-JAG -04 §4.1): its issuer
/// identifier, the one source of its keys, and how its assertions map to local principals.
///
/// ```
/// use std::sync::Arc;
/// use idjag_core::{Algorithm, ClientId, Issuer, KeySet, SigningKey};
/// use idjag_resource::{SubjectMapping, TrustedIssuer};
///
/// let idp_key = SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid();
/// let keys = KeySet::new([idp_key.verifying_key()?])?;
/// let acme = TrustedIssuer::new(Issuer::new("https://acme.idp.example")?, Arc::new(keys))
///     .with_tenant("acme")
///     .with_subject_mapping(SubjectMapping::Sub)
///     .for_clients([ClientId::new("chat-agent")?]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TrustedIssuer {
    pub(crate) issuer: Issuer,
    pub(crate) keys: Arc<dyn KeySource>,
    pub(crate) tenants: Option<BTreeSet<String>>,
    pub(crate) subject: SubjectMapping,
    pub(crate) clients: Option<BTreeSet<ClientId>>,
    pub(crate) resources: Option<BTreeSet<Resource>>,
}

impl fmt::Debug for TrustedIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedIssuer")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys)
            .field("tenants", &self.tenants)
            .field("subject", &self.subject)
            .field("clients", &self.clients)
            .field("resources", &self.resources)
            .finish()
    }
}

impl TrustedIssuer {
    /// Trusts `issuer`, whose keys come only from `keys` (a static
    /// [`KeySet`](idjag_core::KeySet) or a remote JWKS). Keys are never shared between
    /// issuers (threat V16).
    ///
    /// Defaults: no tenant check, `sub` as the local subject, and the issuer may vouch for
    /// any client registered here (the client must still authenticate and match the
    /// ID-JAG's `client_id`).
    pub fn new(issuer: Issuer, keys: Arc<dyn KeySource>) -> Self {
        Self {
            issuer,
            keys,
            tenants: None,
            subject: SubjectMapping::Sub,
            clients: None,
            resources: None,
        }
    }

    /// Trusts `issuer` with keys from its published JWKS, found through its RFC 8414 or
    /// OIDC metadata (`jwks_uri`), cached and refreshed by
    /// [`RemoteJwks`](idjag_core::remote::RemoteJwks).
    #[cfg(feature = "remote")]
    pub fn remote(
        issuer: Issuer,
        clock: idjag_core::SharedClock,
    ) -> Result<Self, idjag_core::remote::FetchError> {
        let keys = idjag_core::remote::RemoteJwks::from_issuer(issuer.clone(), clock)?;
        Ok(Self::new(issuer, Arc::new(keys)))
    }

    /// Trusts `issuer` with keys from a configured `jwks_uri`, cached and refreshed by
    /// [`RemoteJwks`](idjag_core::remote::RemoteJwks).
    #[cfg(feature = "remote")]
    pub fn remote_jwks(
        issuer: Issuer,
        jwks_uri: &str,
        clock: idjag_core::SharedClock,
    ) -> Result<Self, idjag_core::remote::FetchError> {
        let keys = idjag_core::remote::RemoteJwks::from_jwks_uri(issuer.clone(), jwks_uri, clock)?;
        Ok(Self::new(issuer, Arc::new(keys)))
    }

    /// Accepts ID-JAGs of this issuer only when their `tenant` claim is present and equals
    /// `tenant` (or another tenant added the same way). For multi-tenant issuers, where
    /// `sub` is unique only within a tenant (requirements IDJAG-05, IDJAG-12; ID-JAG -04 §6).
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenants
            .get_or_insert_with(BTreeSet::new)
            .insert(tenant.into());
        self
    }

    /// Sets how an ID-JAG of this issuer names the local principal (redemption check 13).
    pub fn with_subject_mapping(mut self, mapping: SubjectMapping) -> Self {
        self.subject = mapping;
        self
    }

    /// Restricts the clients this issuer may vouch for: an ID-JAG of this issuer is refused
    /// unless the authenticated client is one of `clients` (ID-JAG -04 §4.1: each trusted
    /// issuer is associated with its client relationships).
    pub fn for_clients(mut self, clients: impl IntoIterator<Item = ClientId>) -> Self {
        self.clients
            .get_or_insert_with(BTreeSet::new)
            .extend(clients);
        self
    }

    /// Restricts the resources this issuer may vouch for: an ID-JAG of this issuer is refused
    /// (`invalid_grant`) when the resource the access token would be for is not one of
    /// `resources`, even though this server governs it (ID-JAG -04 §4.1: each trusted issuer is
    /// associated with what it may grant).
    pub fn for_resources(mut self, resources: impl IntoIterator<Item = Resource>) -> Self {
        self.resources
            .get_or_insert_with(BTreeSet::new)
            .extend(resources);
        self
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }
}

/// How an ID-JAG names the local principal that becomes the access token's `sub`
/// (redemption check 13, requirement JB-12).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum SubjectMapping {
    /// The ID-JAG's `sub`, which the IdP must make unique per issuer (and tenant) and equal
    /// to the one it uses in SSO toward this server (requirements IDJAG-04, IDJAG-05). The default.
    ///
    /// When several trusted issuers (or several tenants of one issuer) may use the same
    /// `sub` for different people, use [`Self::Resolver`] to qualify it.
    #[default]
    Sub,
    /// The ID-JAG's `aud_sub`: this server's own identifier of the user, which must be
    /// present. With `aud_tenant` set, the ID-JAG's `aud_tenant` must be present and equal.
    AudSub {
        /// The expected `aud_tenant`, if this server is multi-tenant.
        aud_tenant: Option<String>,
    },
    /// A lookup of the host's own (a directory, or just-in-time provisioning).
    Resolver(Arc<dyn SubjectResolver>),
}

impl fmt::Debug for SubjectMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sub => f.write_str("Sub"),
            Self::AudSub { aud_tenant } => f
                .debug_struct("AudSub")
                .field("aud_tenant", aud_tenant)
                .finish(),
            Self::Resolver(r) => f.debug_tuple("Resolver").field(r).finish(),
        }
    }
}

/// Why a [`SubjectResolver`] found no principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No principal matches: the grant is refused with `invalid_grant` (requirement JB-12).
    #[error("no principal for this subject")]
    Unknown,
    /// The directory could not answer: the grant is refused with `temporarily_unavailable`.
    #[error("subject directory unavailable")]
    Unavailable,
}

/// Maps a verified ID-JAG to the local principal.
///
/// It runs after the assertion is verified and before the grant is final, so it may run
/// for grants that are then refused (for example a replay): lookups and provisioning must
/// be idempotent.
pub trait SubjectResolver: fmt::Debug + Send + Sync {
    /// The local subject for these verified claims.
    fn resolve<'a>(
        &'a self,
        claims: &'a IdJagClaims,
    ) -> BoxFuture<'a, Result<Subject, ResolveError>>;
}

/// A resource (an MCP server or any API) this server issues access tokens for, with its
/// local scope policy (requirements JB-14, JB-15, EMA-17).
///
/// ```
/// use idjag_core::{Resource, ScopeSet};
/// use idjag_resource::RegisteredResource;
/// let mcp = RegisteredResource::new(Resource::new("https://mcp.chat.example/")?)
///     .with_scopes(ScopeSet::parse("chat.read chat.history")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RegisteredResource {
    pub(crate) resource: Resource,
    pub(crate) scopes: Option<ScopeSet>,
    pub(crate) detail_types: Option<BTreeSet<String>>,
}

impl RegisteredResource {
    /// A resource with no local scope policy: it grants what the ID-JAG (and the request)
    /// allow. Prefer [`Self::with_scopes`].
    pub fn new(resource: Resource) -> Self {
        Self {
            resource,
            scopes: None,
            detail_types: None,
        }
    }

    /// The scopes this resource grants at most: the granted scope is the requested scope ∩
    /// the ID-JAG's scope ∩ these.
    pub fn with_scopes(mut self, scopes: ScopeSet) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// The RFC 9396 `authorization_details` types this resource understands. An ID-JAG
    /// carrying another type is refused (`invalid_grant`). Without this setting, details are
    /// passed through to the access token unchanged.
    pub fn with_authorization_detail_types(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.detail_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// The resource identifier (the access token's `aud`).
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// The scope policy, if any.
    pub fn scopes(&self) -> Option<&ScopeSet> {
        self.scopes.as_ref()
    }
}

/// What to do with an ID-JAG that has no `resource` claim (decisions D-03 and D-04: real
/// IdPs omit it, and EMA made it optional).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbsentResource {
    /// Issue the access token for this registered resource.
    BindTo(Resource),
    /// Refuse the grant (`invalid_grant`).
    Refuse,
}

/// How an ID-JAG whose `resource` this server does not govern is refused (requirement EMA-17).
///
/// EMA §7.6.2 answers `invalid_grant`, the default; RFC 8707 §2 defines `invalid_target` for
/// "the requested resource is invalid, missing, unknown", which servers that want clients to
/// tell a wrong resource from a bad grant choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UngovernedResource {
    /// `invalid_grant` (EMA §7.6.2). The default.
    #[default]
    InvalidGrant,
    /// `invalid_target` (RFC 8707 §2).
    InvalidTarget,
}

/// Whether an ID-JAG may be redeemed more than once (decision D-01; requirements JB-11, JB-25).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReplayPolicy {
    /// Each ID-JAG (`iss`, `jti`) is redeemed once; every later presentation is refused
    /// until its `exp` plus the leeway (EMA §7.4.2, mandatory under EMA). The default.
    #[default]
    SingleUse,
    /// The client the ID-JAG was issued to may present it again while it is valid, for a
    /// fresh access token (ID-JAG -04 §4.4.3). Any other client is still refused.
    AllowSameClient,
}

/// The access-token lifetime and its cap over the ID-JAG's own `exp` (decision D-08;
/// requirement JB-20, RFC 7521 §4.1).
///
/// An access token expires at `min(now + lifetime, id_jag.exp + beyond_id_jag)`. With the
/// defaults (5 minutes, nothing beyond), it never outlives the ID-JAG it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessTokenLifetime {
    pub(crate) lifetime: Duration,
    pub(crate) beyond_id_jag: Duration,
}

impl Default for AccessTokenLifetime {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(300),
            beyond_id_jag: Duration::ZERO,
        }
    }
}

impl AccessTokenLifetime {
    /// Tokens live `lifetime`, and never past the ID-JAG's `exp`.
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            beyond_id_jag: Duration::ZERO,
        }
    }

    /// Lets tokens outlive the ID-JAG's `exp` by at most `extra`.
    pub fn beyond_id_jag(mut self, extra: Duration) -> Self {
        self.beyond_id_jag = extra;
        self
    }

    /// The nominal lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

/// How audit events name the user (requirement EMA-21: minimise personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuditSubjects {
    /// The SHA-256 of the local subject, hex. The default.
    #[default]
    Hashed,
    /// The local subject as is.
    Plain,
}
