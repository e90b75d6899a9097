//! State of an OAuth authorization server (the gateway's, later): authorization codes,
//! refresh-token families and stored (sealed) upstream IdP tokens.
//!
//! Codes and refresh tokens are stored only as SHA-256 digests; the grants stored with them
//! are the caller's serde values (claims and bindings, no secrets: put tokens in
//! [`SealedTokens`]).

use std::sync::Arc;

use idjag_core::SecretBytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StoreError;
use crate::seal::Sealer;
use crate::store::{Namespace, Store, Swap, digest, hex, unhex};

/// The value a redeemed code is replaced with until its expiry, to tell reuse from an
/// unknown code. Grants are JSON objects, so no grant equals it.
const SPENT: &[u8] = b"\0spent";

fn secs_to_ms(unix: i64) -> i64 {
    unix.saturating_mul(1000)
}

/// The outcome of redeeming an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Redemption<T> {
    /// First redemption: the grant.
    Granted(T),
    /// The code was already redeemed (RFC 6749 §4.1.2: revoke what it granted).
    Reused,
    /// No such code, or it expired.
    Unknown,
}

/// Authorization codes: single use.
#[derive(Debug, Clone)]
pub struct AuthCodes {
    store: Arc<dyn Store>,
}

impl AuthCodes {
    /// The codes in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Stores `grant` under `code` until `expires_unix`. Returns `false` if the code exists.
    pub async fn issue<T: Serialize>(
        &self,
        code: &str,
        grant: &T,
        expires_unix: i64,
    ) -> Result<bool, StoreError> {
        let value = serde_json::to_vec(grant).map_err(|_| corrupt(Namespace::AuthCodes))?;
        self.store
            .insert_if_absent(
                Namespace::AuthCodes,
                &digest(&[code.as_bytes()]),
                &value,
                Some(secs_to_ms(expires_unix)),
                None,
            )
            .await
    }

    /// Redeems `code`: of concurrent redemptions exactly one gets the grant.
    pub async fn redeem<T: DeserializeOwned>(
        &self,
        code: &str,
    ) -> Result<Redemption<T>, StoreError> {
        let key = digest(&[code.as_bytes()]);
        let Some(entry) = self.store.get(Namespace::AuthCodes, &key).await? else {
            return Ok(Redemption::Unknown);
        };
        if entry.value == SPENT {
            return Ok(Redemption::Reused);
        }
        let won = self
            .store
            .compare_and_swap(
                Namespace::AuthCodes,
                &key,
                Some(&entry.value),
                match entry.expires_at {
                    Some(at) => Swap::Set(SPENT, Some(at)),
                    None => Swap::Delete,
                },
            )
            .await;
        match won {
            Ok(true) => serde_json::from_slice(&entry.value)
                .map(Redemption::Granted)
                .map_err(|_| corrupt(Namespace::AuthCodes)),
            Ok(false) => Ok(Redemption::Reused),
            // The code expired between the read and the swap.
            Err(StoreError::InvalidExpiry) => Ok(Redemption::Unknown),
            Err(e) => Err(e),
        }
    }
}

fn corrupt(namespace: Namespace) -> StoreError {
    StoreError::Corrupt { namespace }
}

/// The id of a refresh-token family (32 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FamilyId(String);

impl FamilyId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Serialize, Deserialize)]
struct Family {
    current: String,
    generation: u64,
    revoked: bool,
    expires: i64,
    grant: Value,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation<T> {
    /// The token was the family's current one: `next` replaces it.
    Rotated {
        /// The family.
        family: FamilyId,
        /// The grant.
        grant: T,
        /// How many rotations the family has had.
        generation: u64,
    },
    /// An older token of the family was presented again: the family is now revoked, so the
    /// current token stops working too (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).
    Reused {
        /// The family.
        family: FamilyId,
    },
    /// The family was revoked.
    Revoked {
        /// The family.
        family: FamilyId,
    },
    /// No such token, or its family expired.
    Unknown,
}

/// Refresh-token families with rotation and reuse detection.
///
/// A family starts with one token; each [`rotate`](Self::rotate) replaces the current token
/// with the next (a compare-and-swap on the family, so of two concurrent rotations with the
/// same token one wins and the other counts as reuse). Presenting any token of the family
/// that is not the current one revokes the whole family.
#[derive(Debug, Clone)]
pub struct RefreshFamilies {
    store: Arc<dyn Store>,
}

const ATTEMPTS: usize = 8;

impl RefreshFamilies {
    /// The families in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Starts a family whose first token is `token`, living until `expires_unix`.
    pub async fn start<T: Serialize>(
        &self,
        token: &str,
        grant: &T,
        expires_unix: i64,
    ) -> Result<FamilyId, StoreError> {
        let ns = Namespace::RefreshFamilies;
        let family = FamilyId(idjag_core::random::hex_id(16).map_err(|_| StoreError::Unavailable)?);
        let token_key = digest(&[token.as_bytes()]);
        let record = Family {
            current: hex(&token_key),
            generation: 0,
            revoked: false,
            expires: expires_unix,
            grant: serde_json::to_value(grant).map_err(|_| corrupt(ns))?,
        };
        let value = serde_json::to_vec(&record).map_err(|_| corrupt(ns))?;
        let expires = Some(secs_to_ms(expires_unix));
        if !self
            .store
            .insert_if_absent(ns, family.0.as_bytes(), &value, expires, None)
            .await?
            || !self
                .store
                .insert_if_absent(
                    Namespace::RefreshTokens,
                    &token_key,
                    family.0.as_bytes(),
                    expires,
                    None,
                )
                .await?
        {
            return Err(StoreError::Unavailable);
        }
        Ok(family)
    }

    async fn family_of(&self, token_key: &[u8; 32]) -> Result<Option<FamilyId>, StoreError> {
        let Some(entry) = self.store.get(Namespace::RefreshTokens, token_key).await? else {
            return Ok(None);
        };
        String::from_utf8(entry.value)
            .map(|id| Some(FamilyId(id)))
            .map_err(|_| corrupt(Namespace::RefreshTokens))
    }

    /// Presents `presented`; if it is the current token, `next` becomes the current one.
    pub async fn rotate<T: DeserializeOwned>(
        &self,
        presented: &str,
        next: &str,
    ) -> Result<Rotation<T>, StoreError> {
        let ns = Namespace::RefreshFamilies;
        let presented_key = digest(&[presented.as_bytes()]);
        let Some(family) = self.family_of(&presented_key).await? else {
            return Ok(Rotation::Unknown);
        };
        for _ in 0..ATTEMPTS {
            let Some(entry) = self.store.get(ns, family.0.as_bytes()).await? else {
                return Ok(Rotation::Unknown);
            };
            let mut record: Family =
                serde_json::from_slice(&entry.value).map_err(|_| corrupt(ns))?;
            if record.revoked {
                return Ok(Rotation::Revoked { family });
            }
            let current = unhex(record.current.as_bytes()).ok_or_else(|| corrupt(ns))?;
            if current != presented_key {
                record.revoked = true;
                let value = serde_json::to_vec(&record).map_err(|_| corrupt(ns))?;
                if self
                    .store
                    .compare_and_swap(
                        ns,
                        family.0.as_bytes(),
                        Some(&entry.value),
                        Swap::Set(&value, entry.expires_at),
                    )
                    .await?
                {
                    return Ok(Rotation::Reused { family });
                }
                continue;
            }
            // Index the next token first: if the swap then fails, it was never handed out.
            let next_key = digest(&[next.as_bytes()]);
            if !self
                .store
                .insert_if_absent(
                    Namespace::RefreshTokens,
                    &next_key,
                    family.0.as_bytes(),
                    entry.expires_at,
                    None,
                )
                .await?
            {
                return Err(StoreError::Unavailable);
            }
            record.current = hex(&next_key);
            record.generation += 1;
            let value = serde_json::to_vec(&record).map_err(|_| corrupt(ns))?;
            if self
                .store
                .compare_and_swap(
                    ns,
                    family.0.as_bytes(),
                    Some(&entry.value),
                    Swap::Set(&value, entry.expires_at),
                )
                .await?
            {
                let grant = serde_json::from_value(record.grant).map_err(|_| corrupt(ns))?;
                return Ok(Rotation::Rotated {
                    family,
                    grant,
                    generation: record.generation,
                });
            }
            // Lost a race with a concurrent rotation: the next read sees the presented token
            // is no longer current, which is reuse.
            self.store
                .remove(Namespace::RefreshTokens, &next_key)
                .await?;
        }
        Err(StoreError::Unavailable)
    }

    /// The family of `token` and its grant, without rotating anything (to check a token's
    /// client before acting on it, or to revoke its family, RFC 7009). `None`: no such
    /// token, or its family expired. The flag tells whether the family is revoked.
    pub async fn lookup<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Option<(FamilyId, T, bool)>, StoreError> {
        let ns = Namespace::RefreshFamilies;
        let Some(family) = self.family_of(&digest(&[token.as_bytes()])).await? else {
            return Ok(None);
        };
        let Some(entry) = self.store.get(ns, family.0.as_bytes()).await? else {
            return Ok(None);
        };
        let record: Family = serde_json::from_slice(&entry.value).map_err(|_| corrupt(ns))?;
        let grant = serde_json::from_value(record.grant).map_err(|_| corrupt(ns))?;
        Ok(Some((family, grant, record.revoked)))
    }

    /// Revokes a family (logout, offboarding); whether it existed.
    pub async fn revoke(&self, family: &FamilyId) -> Result<bool, StoreError> {
        let ns = Namespace::RefreshFamilies;
        for _ in 0..ATTEMPTS {
            let Some(entry) = self.store.get(ns, family.0.as_bytes()).await? else {
                return Ok(false);
            };
            let mut record: Family =
                serde_json::from_slice(&entry.value).map_err(|_| corrupt(ns))?;
            if record.revoked {
                return Ok(true);
            }
            record.revoked = true;
            let value = serde_json::to_vec(&record).map_err(|_| corrupt(ns))?;
            if self
                .store
                .compare_and_swap(
                    ns,
                    family.0.as_bytes(),
                    Some(&entry.value),
                    Swap::Set(&value, entry.expires_at),
                )
                .await?
            {
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable)
    }
}

/// Stored IdP tokens (for example the user's refresh token at the IdP, kept by the gateway
/// for later token exchanges), sealed under the store key.
#[derive(Debug, Clone)]
pub struct SealedTokens {
    store: Arc<dyn Store>,
    sealer: Sealer,
}

impl SealedTokens {
    /// The tokens in `store`, sealed with `sealer`.
    pub fn new(store: Arc<dyn Store>, sealer: Sealer) -> Self {
        Self { store, sealer }
    }

    /// Stores `token` under `handle` (its digest is the key), until `expires_unix`.
    pub async fn put(
        &self,
        handle: &str,
        token: &[u8],
        expires_unix: Option<i64>,
    ) -> Result<(), StoreError> {
        let key = digest(&[handle.as_bytes()]);
        let sealed = self.sealer.seal(Namespace::SealedTokens, &key, token)?;
        self.store
            .put(
                Namespace::SealedTokens,
                &key,
                &sealed,
                expires_unix.map(secs_to_ms),
            )
            .await
    }

    /// The token stored under `handle`.
    pub async fn get(&self, handle: &str) -> Result<Option<SecretBytes>, StoreError> {
        let key = digest(&[handle.as_bytes()]);
        match self.store.get(Namespace::SealedTokens, &key).await? {
            None => Ok(None),
            Some(e) => self
                .sealer
                .open(Namespace::SealedTokens, &key, &e.value)
                .map(Some),
        }
    }

    /// Deletes the token under `handle`; whether there was one.
    pub async fn remove(&self, handle: &str) -> Result<bool, StoreError> {
        self.store
            .remove(Namespace::SealedTokens, &digest(&[handle.as_bytes()]))
            .await
    }
}
