//! The signing keys and their rotation schedule, persisted in the store (idjag-store's
//! `KeyScheduleStore`, sealed: it holds the private keys), so a restart, even `kill -9`, loses
//! no key and no schedule, and every instance sharing the store signs with the same key.
//!
//! The configuration lists PEM key files oldest first; new keys are appended. The rules:
//!
//! 1. With nothing stored yet, the first listed key signs from now.
//! 2. Stored keys keep their times. A listed key whose `kid` is stored must be the same key.
//! 3. When no key is waiting to sign, the listed key after the newest stored one is staged:
//!    published now, signing `lead_time_secs` later (idjag-idp's rotation: the previous key
//!    is retired then and stays published `retention_secs`). One key at a time; the next
//!    one is staged once it signs. Keys listed before the newest stored one are never
//!    staged again, so a purged key does not come back.
//! 4. A key removed from the list stays in the schedule until its retention ends: removing a
//!    file never unpublishes a key that signed tokens still in use.
//! 5. Every change is saved with a compare-and-swap before it is used; an instance that
//!    loses the race reloads. Instances reload when another announces a change, and every
//!    `TICK`.

use std::time::Duration;

use idjag_core::{Algorithm, Kid, SecretBytes, SharedClock, SigningKey};
use idjag_idp::{IdJagIssuer, RotationTiming, ScheduledSigningKey, SigningKeys};
use idjag_store::{KeyScheduleStore, ScheduleVersion, ScheduledKey, StoreError};

use zeroize::Zeroizing;

/// How often an instance reloads the schedule and stages a due key.
pub(crate) const TICK: Duration = Duration::from_secs(30);

/// A key from the configuration, with its PKCS#8 DER (what the store keeps, sealed).
pub(crate) struct ConfiguredKey {
    pub(crate) key: SigningKey,
    pub(crate) der: Zeroizing<Vec<u8>>,
    /// `signing.keys[i]`, for errors.
    pub(crate) at: String,
}

impl std::fmt::Debug for ConfiguredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredKey")
            .field("kid", &self.key.kid())
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Why the schedule cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScheduleError {
    /// The store failed.
    #[error("key schedule store: {0}")]
    Store(#[from] StoreError),
    /// A configured key conflicts with the stored schedule.
    #[error("{at}: kid {kid} is already scheduled for a different key")]
    KidConflict { at: String, kid: String },
    /// The stored schedule does not load.
    #[error("the stored key schedule is not usable: {0}")]
    Corrupt(String),
    /// Other instances kept changing the schedule.
    #[error("the key schedule kept changing under this instance; try again")]
    Contended,
}

/// The schedule's persistence and the configured rotation list.
#[derive(Debug)]
pub(crate) struct KeySchedule {
    store: KeyScheduleStore,
    configured: Vec<ConfiguredKey>,
    timing: RotationTiming,
    clock: SharedClock,
    version: tokio::sync::Mutex<Option<ScheduleVersion>>,
}

fn kid_of(key: &SigningKey) -> String {
    key.kid().map(|k| k.as_str().to_owned()).unwrap_or_default()
}

impl KeySchedule {
    pub(crate) fn new(
        store: KeyScheduleStore,
        configured: Vec<ConfiguredKey>,
        timing: RotationTiming,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            configured,
            timing,
            clock,
            version: tokio::sync::Mutex::new(None),
        }
    }

    /// The timing.
    pub(crate) fn timing(&self) -> RotationTiming {
        self.timing
    }

    /// Loads the stored schedule, applies the rules above, saves any change, and returns the
    /// keys to sign with. Used at start-up and by [`Self::tick`].
    pub(crate) async fn current(&self) -> Result<SigningKeys, ScheduleError> {
        for _ in 0..5 {
            let loaded = self.store.load().await?;
            let (stored, version) = match loaded {
                Some((keys, version)) => (Some(keys), Some(version)),
                None => (None, None),
            };
            let (schedule, changed) = self.reconcile(stored)?;
            if !changed {
                *self.version.lock().await = version;
                return self.signing_keys(&schedule);
            }
            let saved = self.store.save(version.as_ref(), &schedule).await?;
            if let Some(new_version) = saved {
                *self.version.lock().await = Some(new_version);
                return self.signing_keys(&schedule);
            }
            // Another instance changed it first: load again.
        }
        Err(ScheduleError::Contended)
    }

    /// What [`Self::current`] would use, without saving anything (for `check-config`).
    pub(crate) async fn preview(&self) -> Result<SigningKeys, ScheduleError> {
        let stored = self.store.load().await?.map(|(keys, _)| keys);
        let (schedule, _) = self.reconcile(stored)?;
        self.signing_keys(&schedule)
    }

    /// Whether the stored schedule differs from the one this instance last saw.
    async fn changed_elsewhere(&self) -> Result<bool, ScheduleError> {
        let loaded = self.store.load().await?;
        let seen = self.version.lock().await.clone();
        Ok(loaded.map(|(_, v)| v) != seen)
    }

    /// Reloads the schedule if another instance changed it, stages a due key, and hands the
    /// result to `issuer`.
    pub(crate) async fn tick(&self, issuer: &IdJagIssuer) -> Result<(), ScheduleError> {
        let now = self.clock.now_unix();
        let due = self
            .next_configured(&issuer.signing_key_schedule(), now)
            .is_some();
        if !due && !self.changed_elsewhere().await? {
            return Ok(());
        }
        let keys = self.current().await?;
        issuer
            .replace_signing_keys(keys)
            .map_err(|e| ScheduleError::Corrupt(e.to_string()))?;
        Ok(())
    }

    /// The configured key to stage now, if no key is waiting and one follows the newest
    /// scheduled one in the list (rule 3).
    fn next_configured<'a>(
        &'a self,
        schedule: &[ScheduledSigningKey],
        now: i64,
    ) -> Option<&'a ConfiguredKey> {
        if schedule.iter().any(|s| s.signs_from > now) {
            return None;
        }
        let scheduled: Vec<String> = schedule.iter().map(|s| kid_of(&s.key)).collect();
        let newest = self
            .configured
            .iter()
            .rposition(|c| scheduled.contains(&kid_of(&c.key)));
        match newest {
            Some(i) => self.configured.get(i + 1),
            None => self.configured.first(),
        }
    }

    /// Rules 1 to 3 on a stored schedule: the schedule to use, and whether it changed.
    fn reconcile(
        &self,
        stored: Option<Vec<ScheduledKey>>,
    ) -> Result<(Vec<ScheduledKey>, bool), ScheduleError> {
        let now = self.clock.now_unix();
        let Some(stored) = stored else {
            let first = self
                .configured
                .first()
                .ok_or_else(|| ScheduleError::Corrupt("no signing key configured".into()))?;
            let mut keys = SigningKeys::from_schedule(
                vec![ScheduledSigningKey::new(first.key.clone(), now, now)],
                self.timing,
            )
            .map_err(|e| ScheduleError::Corrupt(e.to_string()))?;
            if let Some(next) = self.next_configured(&keys.schedule(), now) {
                keys.stage(next.key.clone(), now)
                    .map_err(|e| ScheduleError::Corrupt(e.to_string()))?;
            }
            return Ok((self.persistable(&keys.schedule(), &[])?, true));
        };
        for configured in &self.configured {
            let kid = kid_of(&configured.key);
            if let Some(s) = stored.iter().find(|s| s.kid == kid)
                && (s.pkcs8.secret() != configured.der.as_slice() || s.alg != configured.key.alg())
            {
                return Err(ScheduleError::KidConflict {
                    at: configured.at.clone(),
                    kid,
                });
            }
        }
        let mut keys = self.signing_keys(&stored)?;
        let schedule = keys.schedule();
        match self.next_configured(&schedule, now) {
            Some(next) => {
                keys.stage(next.key.clone(), now)
                    .map_err(|e| ScheduleError::Corrupt(e.to_string()))?;
                Ok((self.persistable(&keys.schedule(), &stored)?, true))
            }
            None => Ok((stored, false)),
        }
    }

    /// The stored form of a schedule: each key with its PKCS#8 DER (from the configuration,
    /// or from the stored schedule for keys no longer configured).
    fn persistable(
        &self,
        schedule: &[ScheduledSigningKey],
        stored: &[ScheduledKey],
    ) -> Result<Vec<ScheduledKey>, ScheduleError> {
        schedule
            .iter()
            .map(|s| {
                let kid = kid_of(&s.key);
                let der = self
                    .configured
                    .iter()
                    .find(|c| kid_of(&c.key) == kid)
                    .map(|c| SecretBytes::new(c.der.as_slice()))
                    .or_else(|| {
                        stored
                            .iter()
                            .find(|k| k.kid == kid)
                            .map(|k| k.pkcs8.clone())
                    })
                    .ok_or_else(|| {
                        ScheduleError::Corrupt(format!("no key material for kid {kid}"))
                    })?;
                Ok(ScheduledKey::new(
                    kid,
                    s.key.alg(),
                    der,
                    s.published_at,
                    s.signs_from,
                ))
            })
            .collect()
    }

    /// The signing keys of a stored schedule.
    fn signing_keys(&self, stored: &[ScheduledKey]) -> Result<SigningKeys, ScheduleError> {
        let entries = stored
            .iter()
            .map(|s| {
                let key = signing_key(s.alg, s.pkcs8.secret(), &s.kid)?;
                Ok(ScheduledSigningKey::new(key, s.published_at, s.signs_from))
            })
            .collect::<Result<Vec<_>, ScheduleError>>()?;
        SigningKeys::from_schedule(entries, self.timing)
            .map_err(|e| ScheduleError::Corrupt(e.to_string()))
    }
}

fn signing_key(alg: Algorithm, der: &[u8], kid: &str) -> Result<SigningKey, ScheduleError> {
    let kid =
        Kid::new(kid).map_err(|_| ScheduleError::Corrupt("a stored kid is invalid".into()))?;
    Ok(SigningKey::from_pkcs8_der(alg, der)
        .map_err(|e| ScheduleError::Corrupt(e.to_string()))?
        .with_kid(kid))
}
