//! The IdP's signing-key schedule, persisted so a restart (or another IdP instance) keeps
//! the keys and their rotation times.
//!
//! The whole schedule is one value, sealed ([`Sealer`]) because it holds private keys, and
//! replaced with a compare-and-swap: of two instances staging a key at once, one wins and the
//! other reloads. Every change is announced on [`Channel::KeySchedule`] so other instances
//! reload.

use std::sync::Arc;

use idjag_core::jose::base64url;
use idjag_core::{Algorithm, SecretBytes};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::seal::Sealer;
use crate::store::{Channel, Namespace, Store, Subscription, Swap};

/// The one key of the schedule in [`Namespace::KeySchedule`].
const KEY: &[u8] = b"idp-signing-keys";

/// One signing key and its schedule (Unix seconds).
#[derive(Clone)]
#[non_exhaustive]
pub struct ScheduledKey {
    /// The key id.
    pub kid: String,
    /// The algorithm.
    pub alg: Algorithm,
    /// The private key, PKCS#8 DER.
    pub pkcs8: SecretBytes,
    /// When it was first published.
    pub published_at: i64,
    /// When it starts (or started) signing.
    pub signs_from: i64,
}

impl std::fmt::Debug for ScheduledKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("published_at", &self.published_at)
            .field("signs_from", &self.signs_from)
            .finish_non_exhaustive()
    }
}

impl ScheduledKey {
    /// A scheduled key.
    pub fn new(
        kid: impl Into<String>,
        alg: Algorithm,
        pkcs8: SecretBytes,
        published_at: i64,
        signs_from: i64,
    ) -> Self {
        Self {
            kid: kid.into(),
            alg,
            pkcs8,
            published_at,
            signs_from,
        }
    }
}

/// What was read, for the compare-and-swap of the next [`KeyScheduleStore::save`].
#[derive(Clone, PartialEq, Eq)]
pub struct ScheduleVersion(Vec<u8>);

impl std::fmt::Debug for ScheduleVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScheduleVersion(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct Document {
    keys: Vec<KeyDocument>,
}

#[derive(Serialize, Deserialize)]
struct KeyDocument {
    kid: String,
    alg: String,
    pkcs8: Zeroizing<String>,
    published_at: i64,
    signs_from: i64,
}

fn corrupt() -> StoreError {
    StoreError::Corrupt {
        namespace: Namespace::KeySchedule,
    }
}

/// The persisted key schedule. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct KeyScheduleStore {
    store: Arc<dyn Store>,
    sealer: Sealer,
}

impl KeyScheduleStore {
    /// The schedule in `store`, sealed with `sealer`.
    pub fn new(store: Arc<dyn Store>, sealer: Sealer) -> Self {
        Self { store, sealer }
    }

    /// The stored schedule and its version; `None` when nothing was saved yet.
    pub async fn load(&self) -> Result<Option<(Vec<ScheduledKey>, ScheduleVersion)>, StoreError> {
        let Some(entry) = self.store.get(Namespace::KeySchedule, KEY).await? else {
            return Ok(None);
        };
        let plain = self
            .sealer
            .open(Namespace::KeySchedule, KEY, &entry.value)?;
        let doc: Document = serde_json::from_slice(plain.secret()).map_err(|_| corrupt())?;
        let keys = doc
            .keys
            .into_iter()
            .map(|k| {
                Ok(ScheduledKey {
                    alg: Algorithm::from_name(&k.alg).ok_or_else(corrupt)?,
                    pkcs8: SecretBytes::new(
                        base64url::decode(k.pkcs8.as_str()).map_err(|_| corrupt())?,
                    ),
                    kid: k.kid,
                    published_at: k.published_at,
                    signs_from: k.signs_from,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((keys, ScheduleVersion(entry.value))))
    }

    /// Saves `keys` if the stored schedule is still `expected` (`None`: nothing stored yet).
    /// Returns the new version, or `None` when another instance changed it first (load it
    /// again and redo the change).
    pub async fn save(
        &self,
        expected: Option<&ScheduleVersion>,
        keys: &[ScheduledKey],
    ) -> Result<Option<ScheduleVersion>, StoreError> {
        let doc = Document {
            keys: keys
                .iter()
                .map(|k| KeyDocument {
                    kid: k.kid.clone(),
                    alg: k.alg.as_str().to_owned(),
                    pkcs8: Zeroizing::new(base64url::encode(k.pkcs8.secret())),
                    published_at: k.published_at,
                    signs_from: k.signs_from,
                })
                .collect(),
        };
        let plain = Zeroizing::new(serde_json::to_vec(&doc).map_err(|_| corrupt())?);
        let sealed = self.sealer.seal(Namespace::KeySchedule, KEY, &plain)?;
        let applied = self
            .store
            .compare_and_swap(
                Namespace::KeySchedule,
                KEY,
                expected.map(|v| v.0.as_slice()),
                Swap::Set(&sealed, None),
            )
            .await?;
        if !applied {
            return Ok(None);
        }
        // Other instances reload on this (or on their next gap); a lost notice is not an error.
        if let Err(e) = self.store.publish(Channel::KeySchedule, b"changed").await {
            tracing::warn!(target: "idjag_store", error = %e, "key schedule change not announced");
        }
        Ok(Some(ScheduleVersion(sealed)))
    }

    /// Notices of changes made by any instance.
    pub fn subscribe(&self) -> Subscription {
        self.store.subscribe(Channel::KeySchedule)
    }
}
