//! IdP refresh tokens as subject tokens (requirements TX-06, TX-10; threat X07).

use std::fmt;
use std::sync::Arc;

use idjag_core::server::AuthenticatedClient;
use idjag_core::{
    BoxFuture, ClientId, NumericDate, RefreshToken, SharedClock, Subject, SubjectToken,
};

use super::{SubjectPrincipal, SubjectTokenError, SubjectTokenValidator};

/// What the host knows about one refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshTokenRecord {
    /// The client the token was issued to (its id at this IdP).
    pub client_id: ClientId,
    /// The user.
    pub subject: Subject,
    /// When the token expires.
    pub expires_at: NumericDate,
    /// Whether the token was revoked.
    pub revoked: bool,
    /// When the user authenticated for the session behind the token.
    pub auth_time: Option<NumericDate>,
    /// The authentication context class of that session.
    pub acr: Option<String>,
    /// The authentication methods of that session.
    pub amr: Option<Vec<String>>,
}

impl RefreshTokenRecord {
    /// A live (unrevoked) record with no authentication context.
    pub fn new(client_id: ClientId, subject: Subject, expires_at: NumericDate) -> Self {
        Self {
            client_id,
            subject,
            expires_at,
            revoked: false,
            auth_time: None,
            acr: None,
            amr: None,
        }
    }
}

/// The store could not answer; the exchange fails closed with `temporarily_unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refresh token store unavailable")]
pub struct StoreUnavailable;

/// The host's refresh tokens and users.
pub trait RefreshTokenStore: fmt::Debug + Send + Sync {
    /// The record of `token`, if it is one of this IdP's refresh tokens. Look it up by a hash,
    /// in constant time with respect to other tokens.
    fn find<'a>(
        &'a self,
        token: &'a RefreshToken,
    ) -> BoxFuture<'a, Result<Option<RefreshTokenRecord>, StoreUnavailable>>;

    /// The user as they are now, or `None` when disabled or deleted. The ID-JAG is built from
    /// this fresh record, never from claims copied when the refresh token was issued
    /// (requirement TX-10).
    fn current_user<'a>(
        &'a self,
        subject: &'a Subject,
    ) -> BoxFuture<'a, Result<Option<SubjectPrincipal>, StoreUnavailable>>;
}

/// Validates refresh tokens as the `refresh_token` grant would: known, issued to the
/// authenticated client, unrevoked, unexpired, and held by a user who is still enabled.
#[derive(Debug, Clone)]
pub struct RefreshTokenSubjectValidator {
    store: Arc<dyn RefreshTokenStore>,
    clock: SharedClock,
}

impl RefreshTokenSubjectValidator {
    /// A validator over `store`.
    pub fn new(store: Arc<dyn RefreshTokenStore>, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    async fn check(
        &self,
        token: &SubjectToken,
        client: &AuthenticatedClient,
    ) -> Result<SubjectPrincipal, SubjectTokenError> {
        let token = RefreshToken::new(token.secret());
        let record = self
            .store
            .find(&token)
            .await
            .map_err(|_| SubjectTokenError::Unavailable)?
            .ok_or(SubjectTokenError::Unknown)?;
        if &record.client_id != client.client_id() {
            return Err(SubjectTokenError::OtherClient);
        }
        if record.revoked {
            return Err(SubjectTokenError::Revoked);
        }
        if self.clock.now_unix() >= record.expires_at.unix() {
            return Err(SubjectTokenError::Expired);
        }
        let user = self
            .store
            .current_user(&record.subject)
            .await
            .map_err(|_| SubjectTokenError::Unavailable)?
            .ok_or(SubjectTokenError::UserDisabled)?;
        if user.subject != record.subject {
            return Err(SubjectTokenError::UserDisabled);
        }
        Ok(user.with_authentication(record.auth_time, record.acr, record.amr))
    }
}

impl SubjectTokenValidator for RefreshTokenSubjectValidator {
    fn validate<'a>(
        &'a self,
        token: &'a SubjectToken,
        client: &'a AuthenticatedClient,
    ) -> BoxFuture<'a, Result<SubjectPrincipal, SubjectTokenError>> {
        Box::pin(self.check(token, client))
    }
}
