//! The gateway's own OAuth authorization server (`[authorization_server]`): every MCP client
//! signs in at the gateway, standard OAuth clients and EMA clients alike, with the
//! enterprise IdP behind it.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /.well-known/oauth-authorization-server` (also with a path: RFC 8414 §3.1 insertion), `GET /.well-known/openid-configuration` (also with a path) | RFC 8414 metadata |
//! | `GET /oauth/jwks` | the keys of the gateway's access tokens (rotation as the IdP's: idjag-idp's [`RotatingKeys`]) |
//! | `GET /oauth/authorize` | the authorization code flow with PKCE (S256 only): the user signs in at the IdP |
//! | `GET /oauth/callback` | the IdP's answer: OIDC code + PKCE, `state`, `nonce`, the ID token validated |
//! | `POST /oauth/token` | `authorization_code`, `refresh_token` (rotation, reuse revokes the family), RFC 7523 JWT-bearer with ID-JAGs (idjag-resource's redemption, single use through the store) |
//! | `POST /oauth/revoke` | RFC 7009 |
//! | `POST /oauth/register` | RFC 7591 (off, open or with an initial access token) |
//!
//! Each route's RFC 9728 metadata names the gateway as its authorization server; a resource
//! indicator (RFC 8707) must name a route (`invalid_target` otherwise). Access tokens are
//! RFC 9068 JWTs signed by the gateway: `aud` the route, `client_id` the MCP client, `sub`
//! the user at the IdP, `groups` copied from the user's stored IdP claims, `sid` the
//! sign-in; they live `access_token_lifetime` (default 5 min) and never leave the gateway
//! for the IdP or an upstream. The user's IdP tokens stay server-side, sealed
//! ([`vault`]).
//!
//! | module | job |
//! |---|---|
//! | [`metadata`] | RFC 8414 metadata, JWKS |
//! | [`client`] | one client, whatever its source |
//! | [`clients`] | configured, registered and metadata-document clients; the allow-list |
//! | [`cimd`] | fetching Client ID Metadata Documents under the address policy |
//! | [`registration`] | RFC 7591, stateless |
//! | [`authorize`] | `/oauth/authorize` and `/oauth/callback` |
//! | [`idp`] | the OIDC leg at the IdP |
//! | [`token`] | `/oauth/token` and `/oauth/revoke` |
//! | [`vault`] | the sealed IdP tokens and their renewal |
//! | [`pages`] | error pages, redirects, JSON errors |
//!
//! ## Storage
//!
//! Everything durable goes through idjag-store ([`Store`]): authorization codes
//! ([`AuthCodes`]: single use, reuse detected, and then the tokens issued from the code
//! revoked), refresh-token families ([`RefreshFamilies`]), the sealed IdP tokens
//! ([`SealedTokens`]), the single use of each login state and of each ID-JAG
//! ([`SingleUseMarkers`]). With a shared store (Redis) and a shared sealing and signing key
//! every instance serves every client. Registered clients need no storage (their id is the
//! sealed registration).

pub mod authorize;
pub mod cimd;
pub mod client;
pub mod clients;
pub mod idp;
pub mod metadata;
pub mod pages;
pub mod registration;
pub mod token;
pub mod vault;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use idjag_core::crypto::AeadAlgorithm;
use idjag_core::server::{ClientAuthenticator, ReplayCache};
use idjag_core::{
    AccessTokenClaims, AlgorithmSet, Audience, ClientId, Issuer, KeySource, Kid, NumericDate,
    Resource, ScopeSet, SharedClock, SigningKey, Subject, wire,
};
use idjag_idp::{RotatingKeys, SigningKeys};
use idjag_resource::{
    AccessTokenLifetime, RegisteredResource, ResourceAuthorizationServer, TrustedIssuer,
};
use idjag_store::{
    AuthCodes, FamilyId, MarkerKind, RefreshFamilies, SealedTokens, Sealer, SingleUseMarkers, Store,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::authorization_server::clients::{Clients, Registry};
use crate::authorization_server::idp::IdpLogin;
use crate::authorization_server::registration::Registrar;
use crate::authorization_server::vault::Vault;
use crate::inbound::{Identity, InboundAuth};
use crate::observe::audit::AuditSink;
use crate::plan::{AuthorizationServerPlan, IdpPlan};
use crate::policy::revocation::{Principal, Revocations};
use crate::upstream::IdJagOutbound;

pub use client::{Client, ClientSource};
pub use clients::ClientRefusal;
pub use vault::SignIn;

/// Why the authorization server could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsBuildError {
    /// The signing key.
    #[error("signing key: {0}")]
    Key(#[from] idjag_core::KeyError),
    /// The sealing key.
    #[error("sealing key")]
    Seal,
    /// The metadata-document HTTP client.
    #[error("metadata document client: {0}")]
    Http(#[from] reqwest::Error),
    /// The random generator.
    #[error("random generator")]
    Random,
}

/// What the authorization server keeps across configuration reloads (each reload builds it
/// anew from its plan): its signing keys while the configured key stays the same (a staged
/// rotation included), the keys generated at start when none is configured, and the index of
/// refresh-token families by user and client (for offboarding). Without it a reload would
/// end every sign-in.
#[derive(Default)]
pub struct Continuity {
    /// The signing keys and what they were built from (the configured key's thumbprint, or
    /// the algorithm of a generated one).
    keys: Mutex<Option<(String, RotatingKeys)>>,
    /// The sealing key generated at start (when none is configured).
    generated_seal: Mutex<Option<zeroize::Zeroizing<Vec<u8>>>>,
    index: Arc<Mutex<HashMap<FamilyId, Indexed>>>,
}

impl std::fmt::Debug for Continuity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Continuity").finish_non_exhaustive()
    }
}

impl Continuity {
    /// The gateway's signing keys: the running ones when the configured key (or, without
    /// one, the algorithm) is unchanged; else the configured key, or a fresh one of the
    /// algorithm.
    pub fn signing_keys(
        &self,
        plan: &AuthorizationServerPlan,
        clock: SharedClock,
    ) -> Result<RotatingKeys, AsBuildError> {
        let origin = match &plan.signing_key {
            Some(planned) => format!("configured {}", planned.key.thumbprint()),
            None => format!("generated {:?}", plan.signing_alg),
        };
        let mut running = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, keys)) = running.as_ref()
            && *known == origin
        {
            return Ok(keys.clone());
        }
        let key = match &plan.signing_key {
            Some(planned) => planned.key.clone(),
            None => SigningKey::generate(plan.signing_alg)?.with_thumbprint_kid(),
        };
        let keys = RotatingKeys::new(SigningKeys::new(key)?, clock);
        *running = Some((origin, keys.clone()));
        Ok(keys)
    }

    /// The sealing key: the configured one, else the one generated at start.
    fn seal_key(
        &self,
        plan: &AuthorizationServerPlan,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, AsBuildError> {
        if let Some(key) = &plan.seal_key {
            return Ok(zeroize::Zeroizing::new(key.bytes().to_vec()));
        }
        let mut generated = self
            .generated_seal
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = generated.as_ref() {
            return Ok(key.clone());
        }
        let mut key = zeroize::Zeroizing::new(vec![0u8; 32]);
        idjag_core::random::fill(&mut key).map_err(|_| AsBuildError::Random)?;
        *generated = Some(key.clone());
        Ok(key)
    }
}

/// What the authorization server is built from.
#[derive(Debug)]
#[non_exhaustive]
pub struct Parts {
    /// The plan.
    pub plan: AuthorizationServerPlan,
    /// The IdP (its issuer, endpoints and the gateway's registration there).
    pub idp: IdpPlan,
    /// The IdP's keys (for ID-JAGs).
    pub idp_keys: Arc<dyn KeySource>,
    /// The algorithms accepted from the IdP.
    pub idp_algorithms: AlgorithmSet,
    /// Clock-skew leeway.
    pub leeway: Duration,
    /// The signing keys ([`Continuity::signing_keys`]).
    pub keys: RotatingKeys,
    /// What outlives reloads (the same for every generation of a gateway).
    pub continuity: Arc<Continuity>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Inbound validation (ID tokens from the IdP).
    pub inbound: Arc<InboundAuth>,
    /// The gateway as requesting app at the IdP (renewals).
    pub outbound: Arc<IdJagOutbound>,
    /// Revocations (checked at sign-in and refresh).
    pub revocations: Arc<Revocations>,
    /// The audit log.
    pub audit: Arc<dyn AuditSink>,
    /// The routes' resource identifiers.
    pub routes: Vec<Audience>,
    /// The claim with the user's groups.
    pub groups_claim: String,
    /// The clock.
    pub clock: SharedClock,
}

/// A family in the revocation index.
#[derive(Debug, Clone)]
struct Indexed {
    user: String,
    client: String,
    sid: String,
    until: i64,
}

/// The gateway's authorization server. Cloning shares it. See the [module docs](self).
#[derive(Clone)]
pub struct AuthorizationServer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) plan: AuthorizationServerPlan,
    pub(crate) issuer: Issuer,
    pub(crate) idp_issuer: Issuer,
    pub(crate) keys: RotatingKeys,
    pub(crate) codes: AuthCodes,
    pub(crate) families: RefreshFamilies,
    pub(crate) vault: Arc<Vault>,
    pub(crate) markers: SingleUseMarkers,
    pub(crate) clients: Arc<Clients>,
    pub(crate) authenticator: ClientAuthenticator,
    pub(crate) idp: IdpLogin,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) inbound: Arc<InboundAuth>,
    pub(crate) routes: Vec<Audience>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) clock: SharedClock,
    ras_inputs: RasInputs,
    ras: RwLock<Option<(Option<Kid>, ResourceAuthorizationServer)>>,
    index: Arc<Mutex<HashMap<FamilyId, Indexed>>>,
}

struct RasInputs {
    idp_keys: Arc<dyn KeySource>,
    algorithms: AlgorithmSet,
    leeway: Duration,
    replay: Arc<dyn ReplayCache>,
    registry: Registry,
}

/// A 32-byte key for one use, derived from the sealing key.
fn derive(seal_key: &[u8], label: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"idjag-gateway key derivation\0");
    hasher.update(label.as_bytes());
    hasher.update([0]);
    hasher.update(seal_key);
    hasher.finalize().into()
}

impl AuthorizationServer {
    /// Builds the authorization server. Nothing is fetched yet.
    pub fn build(parts: Parts) -> Result<Self, AsBuildError> {
        let Parts {
            plan,
            idp,
            idp_keys,
            idp_algorithms,
            leeway,
            keys,
            continuity,
            store,
            inbound,
            outbound,
            revocations,
            audit,
            routes,
            groups_claim,
            clock,
        } = parts;
        let seal_key = continuity.seal_key(&plan)?;
        let sealer =
            Sealer::new(AeadAlgorithm::Aes256Gcm, &seal_key).map_err(|_| AsBuildError::Seal)?;
        let registrar = Registrar::new(
            plan.registration,
            plan.registration_token.clone(),
            &derive(&seal_key, "dynamic-registration"),
        )
        .map_err(|_| AsBuildError::Seal)?;
        let documents = cimd::DocumentFetcher::new(plan.metadata_documents)?;
        let clients = Arc::new(Clients::new(
            &plan.clients,
            registrar,
            documents,
            plan.allowed_clients.clone(),
        ));
        let registry = Registry(clients.clone());
        let issuer = plan.issuer.clone();
        let replay: Arc<dyn ReplayCache> = Arc::new(SingleUseMarkers::new(
            store.clone(),
            MarkerKind::ClientAssertion,
            idjag_store::DEFAULT_MARKERS_PER_HOLDER,
        ));
        let authenticator = ClientAuthenticator::new(
            Arc::new(registry.clone()),
            issuer.clone(),
            clock.clone(),
            replay,
        )
        .allow_public_clients();
        let vault = Arc::new(Vault::new(
            SealedTokens::new(store.clone(), sealer),
            outbound.clone(),
            inbound.clone(),
            plan.egress_subject,
            groups_claim,
            clock.clone(),
        ));
        outbound.set_vault(vault.clone());
        let login = IdpLogin::new(
            idp.issuer.clone(),
            idp.client.credentials(clock.clone()),
            plan.idp_authorization_endpoint.clone(),
            idp.token_endpoint.clone(),
            plan.idp_redirect_uri.clone(),
            plan.idp_scope.clone(),
            outbound.http().clone(),
        );
        let id_jags: Arc<dyn ReplayCache> = Arc::new(SingleUseMarkers::new(
            store.clone(),
            MarkerKind::IdJag,
            idjag_store::DEFAULT_MARKERS_PER_HOLDER,
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                issuer,
                idp_issuer: idp.issuer,
                keys,
                codes: AuthCodes::new(store.clone()),
                families: RefreshFamilies::new(store.clone()),
                vault,
                markers: SingleUseMarkers::new(
                    store,
                    MarkerKind::IdJag,
                    idjag_store::DEFAULT_MARKERS_PER_HOLDER,
                ),
                clients,
                authenticator,
                idp: login,
                revocations,
                inbound,
                routes,
                audit,
                clock,
                ras_inputs: RasInputs {
                    idp_keys,
                    algorithms: idp_algorithms,
                    leeway,
                    replay: id_jags,
                    registry,
                },
                ras: RwLock::new(None),
                index: continuity.index.clone(),
                plan,
            }),
        })
    }

    /// The issuer (the gateway's public URL).
    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    /// The signing keys (rotation: [`RotatingKeys::stage`]).
    pub fn keys(&self) -> &RotatingKeys {
        &self.inner.keys
    }

    /// The sealed IdP tokens of sign-ins.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.inner.vault
    }

    /// The routes of the authorization server (merged into the gateway's router).
    pub fn router(&self) -> Router {
        let metadata = get(metadata::metadata);
        Router::new()
            .route(
                wire::WELL_KNOWN_OAUTH_AUTHORIZATION_SERVER,
                metadata.clone(),
            )
            .route(
                &format!("{}/{{*path}}", wire::WELL_KNOWN_OAUTH_AUTHORIZATION_SERVER),
                metadata.clone(),
            )
            .route(wire::WELL_KNOWN_OPENID_CONFIGURATION, get(metadata::openid))
            .route(
                &format!("{}/{{*path}}", wire::WELL_KNOWN_OPENID_CONFIGURATION),
                get(metadata::openid),
            )
            .route("/oauth/jwks", get(metadata::jwks))
            .route("/oauth/authorize", get(authorize::authorize))
            .route("/oauth/callback", get(authorize::callback))
            .route(
                "/oauth/token",
                post(token::token).options(metadata::preflight),
            )
            .route(
                "/oauth/revoke",
                post(token::revoke).options(metadata::preflight),
            )
            .route(
                "/oauth/register",
                post(token::register).options(metadata::preflight),
            )
            .layer(axum::extract::DefaultBodyLimit::max(token::MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    /// Revokes every refresh-token family of `who` and drops their stored IdP tokens
    /// (offboarding through the admin API). Returns how many sign-ins ended.
    pub async fn revoke(&self, who: &Principal) -> usize {
        let matching: Vec<(FamilyId, Indexed)> = {
            let index = self
                .inner
                .index
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            index
                .iter()
                .filter(|(_, e)| match who {
                    Principal::User(user) => e.user == *user,
                    Principal::Client(client) => e.client == *client,
                    _ => false,
                })
                .map(|(f, e)| (f.clone(), e.clone()))
                .collect()
        };
        for (family, entry) in &matching {
            if let Err(e) = self.inner.families.revoke(family).await {
                tracing::warn!(error = %e, "a refresh-token family could not be revoked");
            }
            self.inner.vault.forget(&entry.sid).await;
        }
        let mut index = self
            .inner
            .index
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (family, _) in &matching {
            index.remove(family);
        }
        matching.len()
    }
}

/// What an authorization code grants (stored under the code's digest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) resource: String,
    pub(crate) scope: Option<String>,
    pub(crate) sid: String,
    pub(crate) user: String,
    pub(crate) until: i64,
}

/// What a refresh-token family grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FamilyGrant {
    pub(crate) client_id: String,
    pub(crate) resource: String,
    pub(crate) scope: Option<String>,
    pub(crate) sid: String,
    pub(crate) user: String,
    pub(crate) until: i64,
}

/// A code already redeemed, pointing at what it granted (to revoke it on reuse).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SpentCode {
    pub(crate) family: String,
    pub(crate) sid: String,
}

impl Inner {
    /// The resource `requested` names, if it is a route.
    pub(crate) fn route(&self, requested: &str) -> Option<&Audience> {
        self.routes.iter().find(|r| r.as_str() == requested)
    }

    /// Whether the user or the agent is revoked now.
    pub(crate) fn revoked(&self, user: &str, client: &str) -> bool {
        let Ok(user) = Subject::new(user) else {
            return true;
        };
        let identity = Identity {
            issuer: self.idp_issuer.clone(),
            user,
            teams: Vec::new(),
            agent: Some(client.to_owned()),
            kind: crate::config::InboundKind::GatewayToken,
            audience: String::new(),
            scope: None,
            expires_at: 0,
            session: None,
        };
        // A revocation state too old to trust counts as revoked (fail closed).
        self.revocations.check(&identity).unwrap_or(true)
    }

    /// Signs an access token for `grant`, with the user's groups; returns it and its
    /// `expires_in`.
    pub(crate) fn mint(
        &self,
        grant: &FamilyGrant,
        groups: &[String],
    ) -> Result<(String, i64), &'static str> {
        let now = self.clock.now_unix();
        let lifetime = i64::try_from(self.plan.access_token_lifetime.as_secs()).unwrap_or(300);
        let exp = (now + lifetime).min(grant.until).max(now + 1);
        let date = |t| NumericDate::from_unix(t).ok_or("time");
        let mut claims = AccessTokenClaims::new(
            self.issuer.clone(),
            Subject::new(grant.user.as_str()).map_err(|_| "subject")?,
            Audience::new(grant.resource.as_str()).map_err(|_| "resource")?,
            ClientId::new(grant.client_id.as_str()).map_err(|_| "client")?,
            idjag_core::random::jti().map_err(|_| "random")?,
            date(now)?,
            date(exp)?,
        );
        if let Some(scope) = &grant.scope {
            claims.scope = Some(ScopeSet::parse(scope).map_err(|_| "scope")?);
        }
        claims
            .extra
            .insert("sid".into(), serde_json::Value::String(grant.sid.clone()));
        claims
            .extra
            .insert("groups".into(), serde_json::json!(groups));
        let token = self
            .keys
            .current()
            .sign_jwt(Some(wire::TYP_ACCESS_TOKEN), &claims)
            .map_err(|_| "signing")?;
        Ok((token.secret().to_owned(), exp - now))
    }

    /// Adds a family to the revocation index (pruning ended ones now and then).
    pub(crate) fn index(&self, family: &FamilyId, grant: &FamilyGrant) {
        let now = self.clock.now_unix();
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if index.len() % 1024 == 1023 {
            index.retain(|_, e| e.until > now);
        }
        index.insert(
            family.clone(),
            Indexed {
                user: grant.user.clone(),
                client: grant.client_id.clone(),
                sid: grant.sid.clone(),
                until: grant.until,
            },
        );
    }

    /// The families of the sign-in `sid` in the revocation index.
    pub(crate) fn families_of(&self, sid: &str) -> Vec<FamilyId> {
        self.index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, e)| e.sid == sid)
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// The sign-in of one of the gateway's valid access tokens issued to `client_id`.
    pub(crate) async fn own_access_token_sid(
        &self,
        token: &str,
        client_id: &str,
    ) -> Option<String> {
        let verified = self.inbound.validate_gateway_token(token).await.ok()?;
        let claims = verified.claims();
        if claims.client_id.as_str() != client_id {
            return None;
        }
        claims
            .extra
            .get("sid")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    }

    /// Removes a family from the revocation index.
    pub(crate) fn unindex(&self, family: &FamilyId) {
        self.index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(family);
    }

    /// The embedded resource authorization server of the JWT-bearer grant, signing with the
    /// current key (rebuilt when the key rotates). `None` without routes.
    pub(crate) fn id_jag_server(&self) -> Option<ResourceAuthorizationServer> {
        let key = self.keys.current();
        let kid = key.kid().cloned();
        {
            let ras = self.ras.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((current, server)) = ras.as_ref()
                && *current == kid
            {
                return Some(server.clone());
            }
        }
        let inputs = &self.ras_inputs;
        let mut builder = ResourceAuthorizationServer::builder(self.issuer.clone(), key)
            .trust(TrustedIssuer::new(
                self.idp_issuer.clone(),
                inputs.idp_keys.clone(),
            ))
            .clients_shared(Arc::new(inputs.registry.clone()))
            .clock(self.clock.clone())
            .replay_cache(inputs.replay.clone())
            .token_lifetime(AccessTokenLifetime::new(self.plan.access_token_lifetime))
            .leeway(inputs.leeway)
            .algorithms(inputs.algorithms);
        if let Ok(alias) = Audience::new(format!("{}/", self.issuer.as_str())) {
            builder = builder.audience_alias(alias);
        }
        for route in &self.routes {
            if let Ok(resource) = Resource::new(route.as_str()) {
                builder = builder.resource(RegisteredResource::new(resource));
            }
        }
        match builder.build() {
            Ok(server) => {
                *self.ras.write().unwrap_or_else(PoisonError::into_inner) =
                    Some((kid, server.clone()));
                Some(server)
            }
            Err(e) => {
                tracing::error!(error = %e, "the JWT-bearer grant cannot be served");
                None
            }
        }
    }
}

/// A random id of `bytes` bytes, hex (sign-ins, login states).
pub(crate) fn random_id(bytes: usize) -> Option<String> {
    idjag_core::random::hex_id(bytes).ok()
}

/// `BASE64URL(SHA-256(verifier))` (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `value` is 43 to 128 characters of `[A-Za-z0-9-._~]` (a PKCE verifier, RFC 7636
/// §4.1; an S256 challenge is exactly 43 of base64url).
pub(crate) fn pkce_syntax(value: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Constant-time string equality.
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(pkce_syntax(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            43,
            43
        ));
        assert!(!pkce_syntax("short", 43, 128));
        assert!(!pkce_syntax(&"a".repeat(129), 43, 128));
        assert!(!pkce_syntax(&format!("{}+", "a".repeat(43)), 43, 128));
    }
}
