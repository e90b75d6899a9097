//! The development authorization server's memory: pending authorization requests, codes,
//! redeemed-code markers, token families, refresh and access tokens. Codes and tokens are
//! kept by their SHA-256 only. Every map has a cap; expired entries are dropped when a map is
//! full, and a map still full refuses (`temporarily_unavailable`), so hostile traffic cannot
//! grow memory without bound.

use std::collections::HashMap;

use idjag_core::{ClientId, NumericDate, ScopeSet, Subject};
use sha2::{Digest, Sha256};

/// Most pending authorization requests (login pages not yet answered).
pub(super) const MAX_PENDING: usize = 10_000;
/// Most unredeemed codes, and most redeemed-code markers.
pub(super) const MAX_CODES: usize = 10_000;
/// Most live token families, refresh tokens and access tokens (each).
pub(super) const MAX_TOKENS: usize = 100_000;

/// A SHA-256 digest, the key of every secret value kept here.
pub(super) type Digest32 = [u8; 32];

pub(super) fn digest(value: &str) -> Digest32 {
    Sha256::digest(value.as_bytes()).into()
}

/// Compares two digests without an early exit.
pub(super) fn digests_equal(a: &Digest32, b: &Digest32) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An authorization request whose login page is showing.
pub(super) struct Pending {
    pub(super) client_id: ClientId,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
    pub(super) nonce: Option<String>,
    pub(super) code_challenge: String,
    pub(super) scope: ScopeSet,
    pub(super) csrf: Digest32,
    pub(super) expires_at: i64,
}

/// What an authorization code stands for.
pub(super) struct CodeGrant {
    pub(super) client_id: ClientId,
    pub(super) redirect_uri: String,
    pub(super) code_challenge: String,
    pub(super) nonce: Option<String>,
    pub(super) scope: ScopeSet,
    pub(super) subject: Subject,
    pub(super) auth_time: NumericDate,
    pub(super) expires_at: i64,
}

/// A redeemed code: the family of tokens issued from it (none if the redemption failed).
pub(super) struct Redeemed {
    pub(super) family: Option<u64>,
    pub(super) until: i64,
}

/// The tokens issued from one code and all their rotations.
pub(super) struct Family {
    pub(super) client_id: ClientId,
    pub(super) subject: Subject,
    pub(super) scope: ScopeSet,
    pub(super) auth_time: NumericDate,
    pub(super) revoked: bool,
    /// When the family's newest refresh token expires.
    pub(super) until: i64,
}

pub(super) struct RefreshEntry {
    pub(super) family: u64,
    pub(super) rotated: bool,
    pub(super) expires_at: i64,
}

pub(super) struct AccessEntry {
    pub(super) family: u64,
    pub(super) scope: ScopeSet,
    pub(super) expires_at: i64,
}

/// A map is full even after dropping its expired entries.
pub(super) struct Full;

#[derive(Default)]
pub(super) struct DevState {
    pub(super) pending: HashMap<String, Pending>,
    pub(super) codes: HashMap<Digest32, CodeGrant>,
    pub(super) redeemed: HashMap<Digest32, Redeemed>,
    pub(super) families: HashMap<u64, Family>,
    pub(super) refresh: HashMap<Digest32, RefreshEntry>,
    pub(super) access: HashMap<Digest32, AccessEntry>,
    next_family: u64,
}

impl std::fmt::Debug for DevState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: state, nonce and challenges are not for logs.
        f.debug_struct("DevState")
            .field("pending", &self.pending.len())
            .field("codes", &self.codes.len())
            .field("families", &self.families.len())
            .finish_non_exhaustive()
    }
}

/// Makes room in `map` for one more entry: drops expired entries when it is full.
fn room<K, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    expired: impl Fn(&V) -> bool,
) -> Result<(), Full> {
    if map.len() >= cap {
        map.retain(|_, v| !expired(v));
    }
    if map.len() >= cap { Err(Full) } else { Ok(()) }
}

impl DevState {
    pub(super) fn insert_pending(
        &mut self,
        id: String,
        pending: Pending,
        now: i64,
    ) -> Result<(), Full> {
        room(&mut self.pending, MAX_PENDING, |p| p.expires_at <= now)?;
        self.pending.insert(id, pending);
        Ok(())
    }

    /// The pending request `id`, unless it expired (an expired one is dropped).
    pub(super) fn pending(&mut self, id: &str, now: i64) -> Option<&Pending> {
        if self.pending.get(id).is_some_and(|p| p.expires_at <= now) {
            self.pending.remove(id);
        }
        self.pending.get(id)
    }

    pub(super) fn insert_code(
        &mut self,
        code: Digest32,
        grant: CodeGrant,
        now: i64,
    ) -> Result<(), Full> {
        room(&mut self.codes, MAX_CODES, |c| c.expires_at <= now)?;
        self.codes.insert(code, grant);
        Ok(())
    }

    /// Marks `code` redeemed (for reuse detection) until `until`.
    pub(super) fn mark_redeemed(
        &mut self,
        code: Digest32,
        family: Option<u64>,
        until: i64,
        now: i64,
    ) {
        // A full marker map forgets its oldest markers rather than refusing: a reuse then
        // reads as an unknown code, still refused.
        if room(&mut self.redeemed, MAX_CODES, |r| r.until <= now).is_err()
            && let Some(oldest) = self
                .redeemed
                .iter()
                .min_by_key(|(_, r)| r.until)
                .map(|(k, _)| *k)
        {
            self.redeemed.remove(&oldest);
        }
        self.redeemed.insert(code, Redeemed { family, until });
    }

    pub(super) fn new_family(&mut self, family: Family, now: i64) -> Result<u64, Full> {
        room(&mut self.families, MAX_TOKENS, |f| f.until <= now)?;
        let id = self.next_family;
        self.next_family = self.next_family.wrapping_add(1);
        self.families.insert(id, family);
        Ok(id)
    }

    /// Checks there is room for one more refresh and one more access token.
    pub(super) fn room_for_tokens(&mut self, now: i64) -> Result<(), Full> {
        room(&mut self.refresh, MAX_TOKENS, |r| r.expires_at <= now)?;
        room(&mut self.access, MAX_TOKENS, |a| a.expires_at <= now)
    }

    /// Revokes a family: its refresh and access tokens stop working.
    pub(super) fn revoke_family(&mut self, family: u64) {
        if let Some(f) = self.families.get_mut(&family) {
            f.revoked = true;
        }
    }

    /// Whether `family` exists and is not revoked.
    pub(super) fn family_live(&self, family: u64) -> Option<&Family> {
        self.families.get(&family).filter(|f| !f.revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_maps_drop_expired_entries_and_then_refuse() {
        let mut map: HashMap<u32, i64> = (0..4).map(|i| (i, i64::from(i))).collect();
        assert!(room(&mut map, 4, |v| *v < 2).is_ok());
        assert_eq!(map.len(), 2);
        map.insert(10, 100);
        map.insert(11, 100);
        assert!(matches!(room(&mut map, 4, |v| *v < 2), Err(Full)));
        assert_eq!(map.len(), 4, "a refusal drops nothing that has not expired");
    }

    #[test]
    fn digests_compare_by_every_byte() {
        let a = digest("a");
        assert!(digests_equal(&a, &digest("a")));
        assert!(!digests_equal(&a, &digest("b")));
    }
}
