//! What every authorizing client of an app shares: the token provider, the app's registrations
//! at resource authorization servers, and discovery.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use idjag_client::discovery::{Discovery, ProfileAssumption};
use idjag_client::{AccessRequest, ClientCredentials, ResourceAsTarget, TokenProvider, UserToken};
use idjag_core::challenge::BearerChallenge;
use idjag_core::{BoxFuture, Issuer, Resource, ScopeSet};

use super::error::AuthorizationError;

/// The current user's subject token (their ID token, IdP refresh token or SAML assertion),
/// asked for right before each token request so that a renewed sign-in takes effect at once.
///
/// A [`UserToken`] is a source of itself; [`SharedUserToken`] can be replaced or cleared while
/// clients use it. `None` means the user is signed out: the request fails with
/// [`AuthorizationError::SignInRequired`].
pub trait UserTokenSource: fmt::Debug + Send + Sync {
    /// The user's subject token, if they are signed in.
    fn user_token(&self) -> BoxFuture<'_, Option<UserToken>>;
}

impl UserTokenSource for UserToken {
    fn user_token(&self) -> BoxFuture<'_, Option<UserToken>> {
        Box::pin(std::future::ready(Some(self.clone())))
    }
}

/// A user's subject token that the app replaces after each sign-in and clears at sign-out.
/// Clones share the token.
#[derive(Debug, Clone, Default)]
pub struct SharedUserToken(Arc<RwLock<Option<UserToken>>>);

impl SharedUserToken {
    /// A holder of `token`.
    pub fn new(token: UserToken) -> Self {
        Self(Arc::new(RwLock::new(Some(token))))
    }

    /// Replaces the token (after a new sign-in).
    pub fn set(&self, token: UserToken) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(token);
    }

    /// Forgets the token (sign-out).
    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn get(&self) -> Option<UserToken> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl UserTokenSource for SharedUserToken {
    fn user_token(&self) -> BoxFuture<'_, Option<UserToken>> {
        Box::pin(std::future::ready(self.get()))
    }
}

/// The app's registrations at resource authorization servers: which credentials to present
/// to which server.
///
/// An MCP server names its authorization servers in its protected resource metadata. The
/// client uses the first one listed that it holds a registration for, so a server cannot
/// steer it to an authorization server of its choosing (the mix-up threat,
/// `docs/threat-model.md#mix-up`).
/// [`Self::with_any_listed`] relaxes that for deployments whose IdP only issues ID-JAGs for
/// known audiences: the IdP then refuses the token exchange for an unknown server before any
/// credential reaches it.
#[derive(Debug, Clone, Default)]
pub struct ResourceAsRegistrations {
    pinned: Vec<(Issuer, ClientCredentials)>,
    any: Option<ClientCredentials>,
}

impl ResourceAsRegistrations {
    /// No registration yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Our registration at the authorization server `issuer`.
    pub fn with(mut self, issuer: Issuer, credentials: ClientCredentials) -> Self {
        self.pinned.retain(|(known, _)| known != &issuer);
        self.pinned.push((issuer, credentials));
        self
    }

    /// Credentials for whichever authorization server an MCP server lists first, when none of
    /// the pinned ones is listed. The MCP server then chooses where these credentials go:
    /// use it only with an IdP that restricts ID-JAG audiences, or in tests.
    pub fn with_any_listed(mut self, credentials: ClientCredentials) -> Self {
        self.any = Some(credentials);
        self
    }

    /// The first listed server we are registered with, and our credentials there.
    pub fn pick<'a>(&'a self, listed: &'a [Issuer]) -> Option<(&'a Issuer, &'a ClientCredentials)> {
        self.pick_pinned(listed)
            .map(|(issuer, credentials, _)| (issuer, credentials))
    }

    /// [`Self::pick`], and whether the server is one of ours (`false`: the MCP server chose it).
    fn pick_pinned<'a>(
        &'a self,
        listed: &'a [Issuer],
    ) -> Option<(&'a Issuer, &'a ClientCredentials, bool)> {
        let pinned = listed.iter().find_map(|issuer| {
            self.pinned
                .iter()
                .find(|(known, _)| known == issuer)
                .map(|(_, credentials)| (issuer, credentials, true))
        });
        pinned.or_else(|| Some((listed.first()?, self.any.as_ref()?, false)))
    }
}

/// The shared part of every [`crate::client::EmaAuthClient`] of an app: the ID-JAG
/// [`TokenProvider`] (the IdP, the cache), the app's [`ResourceAsRegistrations`], the scopes
/// to ask for, and discovery.
///
/// Build it once; create one client per user with [`Self::client`].
pub struct EmaAuthorizer {
    provider: Arc<TokenProvider>,
    registrations: ResourceAsRegistrations,
    scope: ScopeSet,
    discovery: Discovery,
}

impl fmt::Debug for EmaAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmaAuthorizer")
            .field("provider", &self.provider)
            .field("registrations", &self.registrations)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl EmaAuthorizer {
    /// An authorizer getting tokens from `provider` with `registrations`. Discovery goes
    /// through the provider's HTTP client; an authorization server that does not say whether
    /// it supports the ID-JAG grant profile is assumed to
    /// ([`ProfileAssumption::AssumeSupported`]).
    pub fn new(provider: Arc<TokenProvider>, registrations: ResourceAsRegistrations) -> Self {
        let discovery = provider.client().discovery();
        Self {
            provider,
            registrations,
            scope: ScopeSet::new(),
            discovery,
        }
    }

    /// Scopes to ask for at every server, besides those a server's challenge names.
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = scope;
        self
    }

    /// What to conclude when an authorization server does not list its grant profiles.
    pub fn with_profile_assumption(mut self, assumption: ProfileAssumption) -> Self {
        self.discovery = self.discovery.with_profile_assumption(assumption);
        self
    }

    /// Lets the URLs MCP servers name (their metadata, and an authorization server chosen
    /// through [`ResourceAsRegistrations::with_any_listed`]) lead to private networks
    /// ([`Discovery::allow_private_addresses`]; threat C10). Off by default.
    pub fn allow_private_addresses(mut self) -> Self {
        self.discovery = self.discovery.allow_private_addresses();
        self
    }

    /// The token provider.
    pub fn provider(&self) -> &Arc<TokenProvider> {
        &self.provider
    }

    /// The registrations.
    pub fn registrations(&self) -> &ResourceAsRegistrations {
        &self.registrations
    }

    /// From an MCP server's URL (and its `401` challenge, if it sent one) to the request for
    /// its access token: its RFC 9728 metadata (whose `resource` must be this URL, fetched only
    /// from the server's own origin and address policy, threats C09 and C10), the first listed
    /// authorization server we are registered with, that server's RFC 8414 metadata (exact
    /// `issuer`; under the server's address policy when the MCP server chose it) and its
    /// ID-JAG profile support (`docs/flow.md#discovery`; requirement MCP-01).
    pub async fn discover(
        &self,
        resource: &Resource,
        challenge: Option<&BearerChallenge>,
    ) -> Result<AccessRequest, AuthorizationError> {
        let metadata = self
            .discovery
            .protected_resource(resource, challenge)
            .await?;
        if metadata.authorization_servers.is_empty() {
            return Err(idjag_client::DiscoveryError::NoAuthorizationServer.into());
        }
        let (issuer, credentials, pinned) = self
            .registrations
            .pick_pinned(&metadata.authorization_servers)
            .ok_or(AuthorizationError::NotRegistered)?;
        let policy = if pinned {
            None
        } else {
            Some(self.discovery.address_policy(resource)?)
        };
        let server = self
            .discovery
            .authorization_server_within(issuer, policy)
            .await?;
        self.discovery.profile_support(&server)?;
        let ras = ResourceAsTarget::from_metadata(&server, credentials.clone())?;
        let scope = match challenge.and_then(BearerChallenge::scope) {
            Some(asked) => self.scope.union(asked),
            None => self.scope.clone(),
        };
        tracing::debug!(
            target: "idjag_mcp",
            resource = %metadata.resource,
            authorization_server = %issuer,
            scope = %scope,
            "discovered the MCP server's authorization server"
        );
        Ok(AccessRequest::new(ras)
            .with_resource(metadata.resource)
            .with_scope(scope))
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::{ClientId, ClientSecret};

    use super::*;

    fn creds(id: &str) -> ClientCredentials {
        ClientCredentials::secret_basic(ClientId::new(id).unwrap(), ClientSecret::new("s")).unwrap()
    }

    fn issuer(s: &str) -> Issuer {
        Issuer::new(s).unwrap()
    }

    #[test]
    fn the_first_listed_registered_server_wins() {
        let registrations = ResourceAsRegistrations::new()
            .with(issuer("https://b.example"), creds("at-b"))
            .with(issuer("https://c.example"), creds("at-c"));
        let listed = [
            issuer("https://a.example"),
            issuer("https://c.example"),
            issuer("https://b.example"),
        ];
        let (picked, credentials) = registrations.pick(&listed).unwrap();
        assert_eq!(picked.as_str(), "https://c.example");
        assert_eq!(credentials.client_id().as_str(), "at-c");
    }

    #[test]
    fn an_unregistered_server_gets_no_credentials() {
        let registrations =
            ResourceAsRegistrations::new().with(issuer("https://as.example"), creds("ours"));
        // A near miss is another server (identifiers compare byte for byte).
        assert!(
            registrations
                .pick(&[
                    issuer("https://as.example/"),
                    issuer("https://evil.example")
                ])
                .is_none()
        );
        assert!(registrations.pick(&[]).is_none());
    }

    #[test]
    fn any_listed_applies_only_when_no_pinned_server_is_listed() {
        let registrations = ResourceAsRegistrations::new()
            .with(issuer("https://as.example"), creds("pinned"))
            .with_any_listed(creds("any"));
        let both = [
            issuer("https://other.example"),
            issuer("https://as.example"),
        ];
        let (picked, credentials) = registrations.pick(&both).unwrap();
        assert_eq!(
            (picked.as_str(), credentials.client_id().as_str()),
            ("https://as.example", "pinned")
        );
        let other = [issuer("https://other.example")];
        let (picked, credentials) = registrations.pick(&other).unwrap();
        assert_eq!(
            (picked.as_str(), credentials.client_id().as_str()),
            ("https://other.example", "any")
        );
    }

    #[test]
    fn a_pinned_registration_replaces_an_earlier_one_for_the_same_issuer() {
        let registrations = ResourceAsRegistrations::new()
            .with(issuer("https://as.example"), creds("old"))
            .with(issuer("https://as.example"), creds("new"));
        let listed = [issuer("https://as.example")];
        let (_, credentials) = registrations.pick(&listed).unwrap();
        assert_eq!(credentials.client_id().as_str(), "new");
    }

    #[tokio::test]
    async fn a_shared_user_token_can_be_replaced_and_cleared() {
        let shared = SharedUserToken::new(UserToken::id_token(idjag_core::IdToken::new("a.b.c")));
        let other_handle = shared.clone();
        assert!(shared.user_token().await.is_some());
        other_handle.clear();
        assert!(shared.user_token().await.is_none());
        other_handle.set(UserToken::id_token(idjag_core::IdToken::new("d.e.f")));
        assert_eq!(shared.user_token().await.unwrap().token().secret(), "d.e.f");
    }
}
