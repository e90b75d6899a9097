//! Development helpers, **for tests and demos only** (feature `dev`): ID tokens for
//! configured test users, signed with the issuer's own key, and an in-memory refresh-token
//! store. They let the whole ID-JAG flow run on loopback without an external OpenID provider.
//! Test crates enable them with `idjag-idp = { workspace = true, features = ["dev"] }`.
//!
//! # Security
//!
//! [`DevUsers`] mints a valid ID token for any configured user without any login: whoever
//! can call it can impersonate those users at this IdP. Never wire it to a network endpoint
//! of a production IdP; a real deployment gets its ID tokens from its OpenID provider's
//! login flow.
//!
//! ```
//! use std::sync::Arc;
//! use idjag_core::{ClientId, Issuer, TestClock};
//! use idjag_core::server::StaticClientRegistry;
//! use idjag_idp::dev::{DevUser, DevUsers};
//! use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
//!
//! let clock = TestClock::at_unix(1_700_000_000);
//! let idp = IdJagIssuer::builder(
//!     Issuer::new("https://idp.example")?,
//!     SigningKeys::generate_es256()?,
//!     Arc::new(StaticClientRegistry::new()),
//!     Arc::new(TomlPolicy::from_toml_str("")?),
//! )
//! .clock(clock.shared())
//! .build()?;
//! let users = DevUsers::new(&idp).with_user(DevUser::new("alice")?.with_email("alice@example.com"));
//! let id_token = users.id_token("alice", &ClientId::new("chat-agent")?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use idjag_core::{
    Audience, BoxFuture, ClientId, IdToken, IdTokenClaims, InvalidIdentifier, NumericDate,
    RefreshToken, SignError, Subject,
};

use crate::audit::sha256_hex;
use crate::issuer::{IdJagIssuer, new_jti};
use crate::subject::{RefreshTokenRecord, RefreshTokenStore, StoreUnavailable, SubjectPrincipal};

/// Why a development token could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DevError {
    /// No user with this subject is configured.
    #[error("no such test user")]
    UnknownUser,
    /// The clock is outside the NumericDate range.
    #[error("the clock is out of range")]
    Clock,
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// A test user: a subject and the claims its ID tokens carry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DevUser {
    /// `sub`.
    pub subject: Subject,
    /// `email`.
    pub email: Option<String>,
    /// `groups`.
    pub groups: Vec<String>,
    /// `acr`.
    pub acr: Option<String>,
    /// `amr`.
    pub amr: Option<Vec<String>>,
    /// `tenant`.
    pub tenant: Option<String>,
}

impl DevUser {
    /// A user with this `sub`.
    pub fn new(subject: &str) -> Result<Self, InvalidIdentifier> {
        Ok(Self {
            subject: Subject::new(subject)?,
            email: None,
            groups: Vec::new(),
            acr: None,
            amr: None,
            tenant: None,
        })
    }

    /// Sets the email.
    pub fn with_email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    /// Sets the groups.
    pub fn with_groups(mut self, groups: &[&str]) -> Self {
        self.groups = groups.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    /// Sets the authentication context class.
    pub fn with_acr(mut self, acr: &str) -> Self {
        self.acr = Some(acr.to_owned());
        self
    }

    /// Sets the authentication methods.
    pub fn with_amr(mut self, amr: &[&str]) -> Self {
        self.amr = Some(amr.iter().map(|m| (*m).to_owned()).collect());
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    /// The user as a [`SubjectPrincipal`] (for [`MemoryRefreshTokens`]).
    pub fn principal(&self) -> SubjectPrincipal {
        let mut principal =
            SubjectPrincipal::new(self.subject.clone()).with_groups(self.groups.clone());
        principal.email = self.email.clone();
        principal.tenant = self.tenant.clone();
        principal
    }
}

/// Mints ID tokens for configured test users, signed with the issuer's current key and
/// dated by its clock. **For tests and demos only** (see the module docs).
#[derive(Debug, Clone)]
pub struct DevUsers {
    idp: IdJagIssuer,
    users: HashMap<Subject, DevUser>,
    lifetime: Duration,
}

impl DevUsers {
    /// No users yet; ID tokens live 10 minutes.
    pub fn new(idp: &IdJagIssuer) -> Self {
        Self {
            idp: idp.clone(),
            users: HashMap::new(),
            lifetime: Duration::from_secs(600),
        }
    }

    /// Adds a user.
    pub fn with_user(mut self, user: DevUser) -> Self {
        self.users.insert(user.subject.clone(), user);
        self
    }

    /// Sets the ID-token lifetime.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The user with this `sub`.
    pub fn user(&self, subject: &str) -> Option<&DevUser> {
        self.users
            .iter()
            .find(|(s, _)| s.as_str() == subject)
            .map(|(_, u)| u)
    }

    /// The claims of an ID token for `subject`, issued to `client_id` (the client's id at
    /// this IdP) now, as if the user had just logged in. Change them and sign with
    /// [`Self::sign`] to build unusual tokens in tests.
    pub fn claims(&self, subject: &str, client_id: &ClientId) -> Result<IdTokenClaims, DevError> {
        let user = self.user(subject).ok_or(DevError::UnknownUser)?;
        let now = NumericDate::from_unix(self.idp.clock().now_unix()).ok_or(DevError::Clock)?;
        let exp = now
            .plus(i64::try_from(self.lifetime.as_secs()).unwrap_or(600))
            .ok_or(DevError::Clock)?;
        let audience = Audience::new(client_id.as_str()).map_err(|_| DevError::UnknownUser)?;
        let mut claims = IdTokenClaims::new(
            self.idp.issuer().clone(),
            user.subject.clone(),
            audience,
            now,
            exp,
        );
        claims.auth_time = Some(now);
        claims.email = user.email.clone();
        claims.groups = (!user.groups.is_empty()).then(|| user.groups.clone());
        claims.acr = user.acr.clone();
        claims.amr = user.amr.clone();
        claims.tenant = user.tenant.clone();
        if let Ok(jti) = new_jti() {
            claims
                .extra
                .insert("jti".into(), serde_json::Value::from(jti.into_string()));
        }
        Ok(claims)
    }

    /// Signs ID-token claims with the issuer's current key (`typ: JWT`).
    pub fn sign(&self, claims: &IdTokenClaims) -> Result<IdToken, DevError> {
        Ok(self
            .idp
            .current_signing_key()
            .sign_jwt(Some(idjag_core::wire::TYP_JWT), claims)?
            .into_id_token())
    }

    /// An ID token for `subject`, issued to `client_id` now.
    pub fn id_token(&self, subject: &str, client_id: &ClientId) -> Result<IdToken, DevError> {
        self.sign(&self.claims(subject, client_id)?)
    }
}

#[derive(Debug, Default)]
struct MemoryState {
    tokens: HashMap<String, RefreshTokenRecord>,
    users: HashMap<Subject, SubjectPrincipal>,
}

/// An in-memory [`RefreshTokenStore`] (tokens are kept by their SHA-256). **For tests and
/// demos only**: it forgets everything on restart and never expires entries.
#[derive(Debug, Default)]
pub struct MemoryRefreshTokens {
    state: Mutex<MemoryState>,
}

impl MemoryRefreshTokens {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds or replaces a user (their current claims).
    pub fn set_user(&self, user: SubjectPrincipal) {
        self.state().users.insert(user.subject.clone(), user);
    }

    /// Removes a user: their refresh tokens stop working.
    pub fn disable_user(&self, subject: &Subject) {
        self.state().users.remove(subject);
    }

    /// Issues a random refresh token for `record`.
    pub fn issue(&self, record: RefreshTokenRecord) -> RefreshToken {
        let token = format!(
            "rt.{}",
            new_jti().map(|j| j.into_string()).unwrap_or_default()
        );
        self.state().tokens.insert(sha256_hex(&token), record);
        RefreshToken::new(token)
    }

    /// Revokes a refresh token.
    pub fn revoke(&self, token: &RefreshToken) {
        if let Some(record) = self.state().tokens.get_mut(&sha256_hex(token.secret())) {
            record.revoked = true;
        }
    }
}

impl RefreshTokenStore for MemoryRefreshTokens {
    fn find<'a>(
        &'a self,
        token: &'a RefreshToken,
    ) -> BoxFuture<'a, Result<Option<RefreshTokenRecord>, StoreUnavailable>> {
        let record = self
            .state()
            .tokens
            .get(&sha256_hex(token.secret()))
            .cloned();
        Box::pin(std::future::ready(Ok(record)))
    }

    fn current_user<'a>(
        &'a self,
        subject: &'a Subject,
    ) -> BoxFuture<'a, Result<Option<SubjectPrincipal>, StoreUnavailable>> {
        let user = self.state().users.get(subject).cloned();
        Box::pin(std::future::ready(Ok(user)))
    }
}
