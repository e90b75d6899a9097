//! The development OpenID provider: configuration, discovery and the userinfo endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use idjag_core::server::{
    ClientAuthenticator, InMemoryReplayCache, StaticClientRegistry, bearer_token, json_response,
};
use idjag_core::{AuthorizationServerMetadata, ClientId, wire};
use serde_json::{Value, json};
use url::Url;

use super::client::DevClient;
use super::state::{DevState, digest};
use super::users::DevUsers;
use crate::issuer::IdJagIssuer;

/// Lifetime of an authorization code: 60 seconds.
pub const DEV_CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long a login page stays answerable: 10 minutes.
pub const DEV_LOGIN_LIFETIME: Duration = Duration::from_secs(600);
/// Default access-token lifetime: 10 minutes.
pub const DEV_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(600);
/// Default refresh-token lifetime: 8 hours (each rotation starts a new one).
pub const DEV_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Longest configurable access- or refresh-token lifetime: 30 days.
pub const DEV_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The scopes the development authorization endpoint accepts; `openid` is required. The ID
/// token carries the same claims whichever are asked for.
pub const DEV_SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];
/// The claims the development ID tokens may carry.
pub const DEV_CLAIMS: [&str; 14] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "jti",
    "name",
    "email",
    "groups",
    "acr",
    "amr",
    "tenant",
];
/// The `tracing` target of the development authorization server's events (one per
/// decision; never a code, token, secret, `state` or `nonce`).
pub const DEV_LOG_TARGET: &str = "idjag::dev";

/// Why a [`DevOidcProvider`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DevOidcBuildError {
    /// Two clients have the same id.
    #[error("two development clients have the same client id")]
    DuplicateClient,
    /// A token lifetime is zero or above [`DEV_MAX_TOKEN_LIFETIME`].
    #[error("token lifetimes must be between 1 s and 30 days")]
    Lifetime,
    /// The authorization or userinfo endpoint would take the path of the issuer's token
    /// endpoint or JWKS.
    #[error("the authorization and userinfo endpoints collide with the issuer's endpoints")]
    PathCollision,
}

/// Configures a [`DevOidcProvider`]: its clients and token lifetimes.
#[derive(Debug)]
#[must_use]
pub struct DevOidcProviderBuilder {
    users: DevUsers,
    clients: Vec<DevClient>,
    access_token_lifetime: Duration,
    refresh_token_lifetime: Duration,
}

impl DevOidcProviderBuilder {
    /// Registers a client.
    pub fn client(mut self, client: DevClient) -> Self {
        self.clients.push(client);
        self
    }

    /// The access-token lifetime (default [`DEV_ACCESS_TOKEN_LIFETIME`]).
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_lifetime = lifetime;
        self
    }

    /// The refresh-token lifetime (default [`DEV_REFRESH_TOKEN_LIFETIME`]).
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// Checks the configuration and builds the provider.
    pub fn build(self) -> Result<DevOidcProvider, DevOidcBuildError> {
        for lifetime in [self.access_token_lifetime, self.refresh_token_lifetime] {
            if lifetime.is_zero() || lifetime > DEV_MAX_TOKEN_LIFETIME {
                return Err(DevOidcBuildError::Lifetime);
            }
        }
        let mut clients = HashMap::new();
        let mut registry = StaticClientRegistry::new();
        for client in self.clients {
            registry = registry.with(client.registered_client());
            if clients.insert(client.client_id().clone(), client).is_some() {
                return Err(DevOidcBuildError::DuplicateClient);
            }
        }
        let idp = self.users.issuer().clone();
        let base = idp.issuer().as_str().trim_end_matches('/');
        let endpoint = |path: &str| Url::parse(&format!("{base}{path}"));
        let (Ok(authorization_endpoint), Ok(userinfo_endpoint)) =
            (endpoint("/authorize"), endpoint("/userinfo"))
        else {
            return Err(DevOidcBuildError::PathCollision);
        };
        let taken = [idp.token_endpoint().path(), idp.jwks_uri().path()];
        if taken.contains(&authorization_endpoint.path())
            || taken.contains(&userinfo_endpoint.path())
        {
            return Err(DevOidcBuildError::PathCollision);
        }
        let clock = idp.clock().clone();
        let authenticator = ClientAuthenticator::new(
            Arc::new(registry),
            idp.issuer().clone(),
            clock.clone(),
            // Development clients never send client assertions; the cache stays empty.
            Arc::new(InMemoryReplayCache::new(1, clock)),
        )
        .allow_public_clients();
        Ok(DevOidcProvider {
            inner: Arc::new(Inner {
                idp,
                users: self.users,
                clients,
                authenticator,
                authorization_endpoint,
                userinfo_endpoint,
                access_token_lifetime: secs(self.access_token_lifetime),
                refresh_token_lifetime: secs(self.refresh_token_lifetime),
                state: Mutex::new(DevState::default()),
            }),
        })
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) idp: IdJagIssuer,
    pub(super) users: DevUsers,
    pub(super) clients: HashMap<ClientId, DevClient>,
    pub(super) authenticator: ClientAuthenticator,
    pub(super) authorization_endpoint: Url,
    pub(super) userinfo_endpoint: Url,
    pub(super) access_token_lifetime: i64,
    pub(super) refresh_token_lifetime: i64,
    state: Mutex<DevState>,
}

/// A development OpenID provider in front of an [`IdJagIssuer`]: an authorization endpoint
/// with a login page where a development user is picked (no password), the
/// `authorization_code` and `refresh_token` grants on the issuer's token endpoint beside its
/// token exchange, a userinfo endpoint and OpenID discovery. **For tests and demos only**:
/// anyone who reaches its login page can sign in as any development user (see the
/// [module docs](super)).
///
/// Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct DevOidcProvider {
    pub(super) inner: Arc<Inner>,
}

impl DevOidcProvider {
    /// Starts the configuration with the development users (and through them the issuer
    /// whose key signs, whose clock dates, and whose token endpoint serves).
    pub fn builder(users: DevUsers) -> DevOidcProviderBuilder {
        DevOidcProviderBuilder {
            users,
            clients: Vec::new(),
            access_token_lifetime: DEV_ACCESS_TOKEN_LIFETIME,
            refresh_token_lifetime: DEV_REFRESH_TOKEN_LIFETIME,
        }
    }

    /// The issuer.
    pub fn issuer(&self) -> &IdJagIssuer {
        &self.inner.idp
    }

    /// The development users.
    pub fn users(&self) -> &DevUsers {
        &self.inner.users
    }

    /// The authorization endpoint: `{issuer}/authorize`.
    pub fn authorization_endpoint(&self) -> &Url {
        &self.inner.authorization_endpoint
    }

    /// The userinfo endpoint: `{issuer}/userinfo`.
    pub fn userinfo_endpoint(&self) -> &Url {
        &self.inner.userinfo_endpoint
    }

    pub(super) fn state(&self) -> MutexGuard<'_, DevState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn now(&self) -> i64 {
        self.inner.idp.clock().now_unix()
    }

    /// The discovery document, served at both `/.well-known/openid-configuration` (OpenID
    /// Connect Discovery) and `/.well-known/oauth-authorization-server` (RFC 8414): the
    /// issuer's [`IdJagIssuer::metadata`] with the authorization endpoint, the
    /// `authorization_code` and `refresh_token` grants, `none` client authentication (public
    /// clients, for those two grants only) and the OpenID members. One document, so the two
    /// never disagree.
    pub fn metadata(&self) -> AuthorizationServerMetadata {
        let inner = &self.inner;
        let mut md = inner.idp.metadata();
        md.authorization_endpoint = Some(inner.authorization_endpoint.to_string());
        md.response_types_supported = Some(vec!["code".to_owned()]);
        md.code_challenge_methods_supported = Some(vec!["S256".to_owned()]);
        md.grant_types_supported = Some(
            [
                wire::GRANT_TYPE_AUTHORIZATION_CODE,
                wire::GRANT_TYPE_REFRESH_TOKEN,
                wire::GRANT_TYPE_TOKEN_EXCHANGE,
            ]
            .map(str::to_owned)
            .to_vec(),
        );
        let methods = md
            .token_endpoint_auth_methods_supported
            .get_or_insert_with(Vec::new);
        if !methods.iter().any(|m| m == wire::auth_method::NONE) {
            methods.push(wire::auth_method::NONE.to_owned());
        }
        md.scopes_supported = Some(DEV_SCOPES.map(str::to_owned).to_vec());
        let strings = |items: &[&str]| Value::from(items.to_vec());
        let extra = &mut md.extra;
        extra.insert(
            "userinfo_endpoint".into(),
            Value::from(inner.userinfo_endpoint.as_str()),
        );
        extra.insert("subject_types_supported".into(), strings(&["public"]));
        extra.insert("response_modes_supported".into(), strings(&["query"]));
        extra.insert("claims_supported".into(), strings(&DEV_CLAIMS));
        extra.insert("claims_parameter_supported".into(), Value::Bool(false));
        extra.insert("request_parameter_supported".into(), Value::Bool(false));
        // OpenID Connect Discovery defaults this one to true: say no.
        extra.insert("request_uri_parameter_supported".into(), Value::Bool(false));
        extra.insert(
            "authorization_response_iss_parameter_supported".into(),
            Value::Bool(true),
        );
        md
    }

    /// Handles one userinfo request (`GET` or `POST`, OpenID Connect Core §5.3): the access
    /// token from the `Authorization: Bearer` header (never the query or body), and the
    /// user's claims (`sub`, `name`, `email`, `groups`). An unknown, expired or revoked token
    /// gets 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
    pub fn handle_userinfo<B>(&self, request: &Request<B>) -> Response<Vec<u8>> {
        let subject = bearer_token(request.headers())
            .ok()
            .and_then(|token| self.access_token_subject(token));
        let Some(user) = subject.and_then(|s| self.inner.users.user(s.as_str()).cloned()) else {
            tracing::info!(
                target: DEV_LOG_TARGET,
                endpoint = "userinfo",
                decision = "refused",
                reason = "invalid_token",
                "dev userinfo refused"
            );
            let mut response = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "invalid_token", "error_description": "the access token is not valid"}),
            );
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return response;
        };
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), Value::from(user.subject.as_str()));
        if let Some(name) = &user.name {
            claims.insert("name".into(), Value::from(name.as_str()));
        }
        if let Some(email) = &user.email {
            claims.insert("email".into(), Value::from(email.as_str()));
        }
        if !user.groups.is_empty() {
            claims.insert("groups".into(), Value::from(user.groups.clone()));
        }
        tracing::info!(
            target: DEV_LOG_TARGET,
            endpoint = "userinfo",
            decision = "answered",
            subject = user.subject.as_str(),
            "dev userinfo answered"
        );
        json_response(StatusCode::OK, &Value::Object(claims))
    }

    /// The subject of a live access token.
    fn access_token_subject(&self, token: &str) -> Option<idjag_core::Subject> {
        let now = self.now();
        let state = self.state();
        let entry = state.access.get(&digest(token))?;
        if entry.expires_at <= now || !entry.scope.contains("openid") {
            return None;
        }
        state
            .family_live(entry.family)
            .map(|family| family.subject.clone())
    }

    pub(super) fn client(&self, client_id: &ClientId) -> Option<&DevClient> {
        self.inner.clients.get(client_id)
    }
}
