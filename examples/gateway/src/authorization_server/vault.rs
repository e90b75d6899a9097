//! The user's IdP tokens, kept server-side per sign-in (`sid`), sealed at rest in the store
//! (idjag-store's [`SealedTokens`]: AEAD under the sealing key, the entry's key as associated
//! data), never sent to the MCP client, never logged.
//!
//! For ID-JAG upstreams the gateway presents the stored ID token as the token-exchange
//! subject. Once it has expired (30 s of margin) the gateway renews it at the IdP with the
//! stored refresh token (OIDC `refresh_token` grant; one renewal at a time per sign-in), checks
//! the new ID token with the inbound validator and that it names the same user, and stores
//! it (and the IdP's rotated refresh token, if any). When that is not possible (no refresh
//! token, the IdP answers `invalid_grant`, another user) the sign-in is dropped and the
//! caller gets "sign in again" ([`CredentialError::ReauthenticationRequired`]).

use std::fmt;
use std::sync::Arc;

use idjag_client::{ClientError, UserToken};
use idjag_core::{BoxFuture, IdToken, RefreshToken, SharedClock};
use idjag_store::{SealedTokens, StoreError};
use serde::{Deserialize, Serialize};

use crate::config::EgressSubject;
use crate::inbound::InboundAuth;
use crate::upstream::{CredentialError, IdJagOutbound, IdpTokenVault};

/// How long before its `exp` a stored ID token is renewed.
const RENEW_MARGIN: i64 = 30;

/// One sign-in's IdP tokens and what the gateway's tokens copy from them.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignIn {
    /// The IdP ID token.
    pub id_token: String,
    /// The IdP refresh token, when the IdP gave one.
    pub refresh_token: Option<String>,
    /// The ID token's `exp`.
    pub id_expires_at: i64,
    /// The user (`sub`).
    pub user: String,
    /// The user's IdP groups.
    pub groups: Vec<String>,
    /// When the sign-in ends (its refresh-token family's end).
    pub until: i64,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("user", &self.user)
            .field("id_expires_at", &self.id_expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// The sealed IdP tokens of every sign-in. See the [module docs](self).
pub struct Vault {
    tokens: SealedTokens,
    outbound: Arc<IdJagOutbound>,
    inbound: Arc<InboundAuth>,
    egress: EgressSubject,
    groups_claim: String,
    clock: SharedClock,
    locks: moka::future::Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// The vault in `tokens`; renewals go through `outbound`'s IdP client and are checked by
    /// `inbound`.
    pub fn new(
        tokens: SealedTokens,
        outbound: Arc<IdJagOutbound>,
        inbound: Arc<InboundAuth>,
        egress: EgressSubject,
        groups_claim: String,
        clock: SharedClock,
    ) -> Self {
        Self {
            tokens,
            outbound,
            inbound,
            egress,
            groups_claim,
            clock,
            locks: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(std::time::Duration::from_secs(120))
                .build(),
        }
    }

    /// The claim with the user's groups.
    pub fn groups_claim(&self) -> &str {
        &self.groups_claim
    }

    /// Stores a sign-in until its end.
    pub async fn store(&self, sid: &str, sign_in: &SignIn) -> Result<(), StoreError> {
        let plain =
            zeroize::Zeroizing::new(serde_json::to_vec(sign_in).map_err(|_| StoreError::Sealing)?);
        self.tokens.put(sid, &plain, Some(sign_in.until)).await
    }

    /// Keeps a pending login (`/oauth/authorize` to `/oauth/callback`) until `until`, under
    /// its random id (hex, so never a sign-in's handle).
    pub(crate) async fn put_login(
        &self,
        id: &str,
        plain: &[u8],
        until: i64,
    ) -> Result<(), StoreError> {
        self.tokens
            .put(&format!("login:{id}"), plain, Some(until))
            .await
    }

    /// The pending login `id`, if kept and not expired.
    pub(crate) async fn get_login(
        &self,
        id: &str,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
        Ok(self
            .tokens
            .get(&format!("login:{id}"))
            .await?
            .map(|bytes| zeroize::Zeroizing::new(bytes.secret().to_vec())))
    }

    /// Drops a used pending login (its single-use marker holds if this fails).
    pub(crate) async fn drop_login(&self, id: &str) {
        if let Err(e) = self.tokens.remove(&format!("login:{id}")).await {
            tracing::warn!(error = %e, "a pending login could not be dropped");
        }
    }

    /// The sign-in `sid`, if it is still kept.
    pub async fn load(&self, sid: &str) -> Result<Option<SignIn>, StoreError> {
        match self.tokens.get(sid).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(bytes.secret())
                .map(Some)
                .map_err(|_| StoreError::Sealing),
        }
    }

    /// Drops a sign-in (revocation, failed renewal).
    pub async fn forget(&self, sid: &str) {
        if let Err(e) = self.tokens.remove(sid).await {
            tracing::warn!(error = %e, "a stored sign-in could not be dropped");
        }
    }

    /// The sign-in with an ID token valid for at least the renewal margin: renewed at the
    /// IdP when needed. See the [module docs](self).
    pub async fn fresh(&self, sid: &str) -> Result<SignIn, CredentialError> {
        let unavailable = |_| CredentialError::Unavailable { stage: "store" };
        let now = self.clock.now_unix();
        let sign_in = self
            .load(sid)
            .await
            .map_err(unavailable)?
            .ok_or(CredentialError::ReauthenticationRequired)?;
        if sign_in.id_expires_at > now + RENEW_MARGIN {
            return Ok(sign_in);
        }
        let lock = self
            .locks
            .get_with(sid.to_owned(), async {
                Arc::new(tokio::sync::Mutex::new(()))
            })
            .await;
        let _renewing = lock.lock().await;
        // Another request may have renewed it while this one waited.
        let sign_in = self
            .load(sid)
            .await
            .map_err(unavailable)?
            .ok_or(CredentialError::ReauthenticationRequired)?;
        if sign_in.id_expires_at > self.clock.now_unix() + RENEW_MARGIN {
            return Ok(sign_in);
        }
        match self.renew(&sign_in).await {
            Ok(renewed) => {
                self.store(sid, &renewed).await.map_err(unavailable)?;
                tracing::info!(target: "idjag_gateway::authorization_server", user = %renewed.user, "IdP ID token renewed");
                Ok(renewed)
            }
            Err(e) => {
                if e == CredentialError::ReauthenticationRequired {
                    self.forget(sid).await;
                    tracing::info!(target: "idjag_gateway::authorization_server", user = %sign_in.user, "IdP session ended: the user must sign in again");
                }
                Err(e)
            }
        }
    }

    async fn renew(&self, sign_in: &SignIn) -> Result<SignIn, CredentialError> {
        let Some(refresh_token) = &sign_in.refresh_token else {
            return Err(CredentialError::ReauthenticationRequired);
        };
        let provider = self
            .outbound
            .provider()
            .await
            .map_err(|e| CredentialError::from_client(&e))?;
        let renewed = provider
            .client()
            .renew_id_token(&RefreshToken::new(refresh_token.as_str()))
            .await
            .map_err(|e| match e {
                ClientError::ReauthenticationRequired { .. } => {
                    CredentialError::ReauthenticationRequired
                }
                _ => CredentialError::Unavailable { stage: "idp" },
            })?;
        let verified = self
            .inbound
            .validate_id_token(renewed.id_token.secret())
            .await
            .map_err(|_| CredentialError::ReauthenticationRequired)?;
        let claims = verified.claims();
        if claims.sub.as_str() != sign_in.user {
            return Err(CredentialError::ReauthenticationRequired);
        }
        Ok(SignIn {
            id_token: renewed.id_token.secret().to_owned(),
            refresh_token: renewed
                .refresh_token
                .map(|t| t.secret().to_owned())
                .or_else(|| sign_in.refresh_token.clone()),
            id_expires_at: claims.exp.unix(),
            user: sign_in.user.clone(),
            // Groups the gateway cannot use (an overage marker, too many): sign in again
            // rather than carry on with a partial set.
            groups: self
                .inbound
                .groups_of_id_token(claims)
                .map_err(|_| CredentialError::ReauthenticationRequired)?,
            until: sign_in.until,
        })
    }
}

impl IdpTokenVault for Vault {
    fn subject<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<UserToken, CredentialError>> {
        Box::pin(async move {
            if self.egress == EgressSubject::RefreshToken {
                let sign_in = self
                    .load(session)
                    .await
                    .map_err(|_| CredentialError::Unavailable { stage: "store" })?
                    .ok_or(CredentialError::ReauthenticationRequired)?;
                if let Some(token) = sign_in.refresh_token {
                    return Ok(
                        UserToken::refresh_token(RefreshToken::new(token)).with_subject_id(session)
                    );
                }
            }
            let sign_in = self.fresh(session).await?;
            Ok(UserToken::id_token(IdToken::new(sign_in.id_token)).with_subject_id(session))
        })
    }
}
