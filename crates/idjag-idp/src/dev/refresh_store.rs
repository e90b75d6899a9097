//! An in-memory refresh-token store for token exchange with refresh tokens as subject tokens.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use idjag_core::{BoxFuture, RefreshToken, Subject};

use crate::audit::sha256_hex;
use crate::issuer::new_jti;
use crate::subject::{RefreshTokenRecord, RefreshTokenStore, StoreUnavailable, SubjectPrincipal};

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
