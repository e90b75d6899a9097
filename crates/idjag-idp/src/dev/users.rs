//! Development users: ID tokens for configured test users, signed with the issuer's key.

use std::time::Duration;

use idjag_core::{
    Audience, ClientId, IdToken, IdTokenClaims, InvalidIdentifier, NumericDate, SignError, Subject,
};

use crate::issuer::{IdJagIssuer, new_jti};
use crate::subject::SubjectPrincipal;

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
    /// `name`: the display name (the dev login page shows it; `sub` when absent).
    pub name: Option<String>,
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
            name: None,
            email: None,
            groups: Vec::new(),
            acr: None,
            amr: None,
            tenant: None,
        })
    }

    /// Sets the display name (`name`).
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
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

    /// The user as a [`SubjectPrincipal`] (for [`MemoryRefreshTokens`](super::MemoryRefreshTokens)).
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
    /// In the order they were added (the dev login page lists them so).
    users: Vec<DevUser>,
    lifetime: Duration,
}

impl DevUsers {
    /// No users yet; ID tokens live 10 minutes.
    pub fn new(idp: &IdJagIssuer) -> Self {
        Self {
            idp: idp.clone(),
            users: Vec::new(),
            lifetime: Duration::from_secs(600),
        }
    }

    /// Adds a user (replacing one with the same `sub`).
    pub fn with_user(mut self, user: DevUser) -> Self {
        match self.users.iter_mut().find(|u| u.subject == user.subject) {
            Some(existing) => *existing = user,
            None => self.users.push(user),
        }
        self
    }

    /// Sets the ID-token lifetime.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The user with this `sub`.
    pub fn user(&self, subject: &str) -> Option<&DevUser> {
        self.users.iter().find(|u| u.subject.as_str() == subject)
    }

    /// Every user, in the order they were added.
    pub fn users(&self) -> impl Iterator<Item = &DevUser> {
        self.users.iter()
    }

    /// The issuer whose key signs the ID tokens.
    pub fn issuer(&self) -> &IdJagIssuer {
        &self.idp
    }

    /// The ID-token lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
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
        claims.name = user.name.clone();
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
