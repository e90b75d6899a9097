//! The embedded durable backend: one file, no server, survives restarts and crashes.
//!
//! It is [redb](https://www.redb.org) 2.6: a pure-Rust, single-file, copy-on-write B-tree
//! store with ACID transactions, whose commits are durable when `commit` returns
//! (`Durability::Immediate`: fsync of the data, then of the commit slot, so a crash leaves
//! either the old or the new state, never a torn one). It is well kept (one maintainer with a
//! long record, a stable file format since 1.0, fuzzed and crash-tested), and 2.6 builds on
//! our MSRV (Rust 1.85; redb 3 needs 1.89). SQLite would need a C library and a SQL layer
//! for a key-value job; sled has had no stable release in years; fjall needs Rust 1.90.
//!
//! # Design
//!
//! - **One writer thread with group commit.** Every write goes to a dedicated thread, which
//!   takes all the writes waiting (up to [`MAX_BATCH`]), applies them one after the other in
//!   one write transaction, commits once with fsync and only then answers each caller. So
//!   each primitive is atomic (the thread is the only writer), every acknowledged write is on
//!   disk, and concurrent writers share one fsync.
//! - **Reads** run in a read transaction on Tokio's blocking pool; they see committed state
//!   only.
//! - **Expiry** is read from the injected clock. Expired entries are absent for every
//!   operation; they are deleted by each write batch (a few at a time) and by a sweep when the
//!   writer is idle.
//! - **Notifications** are in process (the file is locked by one process).

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use idjag_core::SharedClock;
use redb::{Database, Durability, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::store::{
    Cap, Channel, Entry, LocalBus, Namespace, Notification, Quota, Store, Subscription, Swap,
    UnixMillis, check_caps, check_key, check_quota, check_write, digest, is_live, now_millis,
};

/// The most writes committed in one transaction.
pub const MAX_BATCH: usize = 256;
/// How many writes may wait for the writer thread before writes fail with
/// [`StoreError::Unavailable`].
pub const QUEUE_CAPACITY: usize = 16_384;
/// Expired entries deleted by each write batch.
const PURGE_PER_BATCH: usize = 32;
/// Expired entries deleted by one idle sweep.
const PURGE_PER_SWEEP: usize = 10_000;

/// `ns (1) || key` → `expires_at (8, big-endian, i64::MAX = never) || value`.
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// `expires_at (8) || kind (1) || rest` → `()`; kind 0: `rest` = an `ENTRIES` key; kind 1:
/// `rest` = a `QUOTA_MEMBERS` key without its expiry.
const EXPIRIES: TableDefinition<&[u8], ()> = TableDefinition::new("expiries");
/// `ns (1) || group digest (32) || expires_at (8) || key` → `()`.
const QUOTA_MEMBERS: TableDefinition<&[u8], ()> = TableDefinition::new("quota-members");
/// `ns (1) || group digest (32)` → live member count.
const QUOTA_COUNTS: TableDefinition<&[u8], u64> = TableDefinition::new("quota-counts");
/// A capped entry's key (`ns || key`) → its cap groups, each `ns (1) || group digest (32)`.
const CAPPED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("capped");
/// `ns (1) || group digest (32) || ns (1) || key` → `()`: the entries of each cap group.
const CAP_MEMBERS: TableDefinition<&[u8], ()> = TableDefinition::new("cap-members");
/// The length of a cap group's name in `CAPPED` and `CAP_MEMBERS`.
const GROUP_LEN: usize = 33;

const NEVER: i64 = i64::MAX;

/// Settings of the embedded store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbeddedOptions {
    /// How long a caller waits for its write to be committed, or a read to finish, before it
    /// gets [`StoreError::Timeout`] (default 5 s).
    pub op_timeout: Duration,
    /// How often an idle writer sweeps expired entries (default 10 s).
    pub sweep_interval: Duration,
    /// The page cache size in bytes (default 32 MiB).
    pub cache_size: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            op_timeout: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(10),
            cache_size: 32 << 20,
        }
    }
}

enum Op {
    Insert {
        ns: Namespace,
        key: Vec<u8>,
        value: Vec<u8>,
        expires_at: Option<UnixMillis>,
        quota: Option<([u8; 32], u32)>,
        caps: Vec<([u8; 32], u32)>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Put {
        ns: Namespace,
        key: Vec<u8>,
        value: Vec<u8>,
        expires_at: Option<UnixMillis>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Take {
        ns: Namespace,
        key: Vec<u8>,
        reply: oneshot::Sender<Result<Option<Entry>, StoreError>>,
    },
    Cas {
        ns: Namespace,
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Option<(Vec<u8>, Option<UnixMillis>)>,
        /// Whether the entry leaves its cap groups ([`Swap::Release`]).
        release: bool,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Remove {
        ns: Namespace,
        key: Vec<u8>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

/// The outcome of one op inside the batch's transaction, sent once the commit is done.
enum Outcome {
    Bool(Result<bool, StoreError>),
    Unit(Result<(), StoreError>),
    Entry(Result<Option<Entry>, StoreError>),
}

impl Op {
    fn answer(self, outcome: Option<Outcome>) {
        let failed = StoreError::Unavailable;
        match (self, outcome) {
            (Op::Insert { reply, .. }, Some(Outcome::Bool(r)))
            | (Op::Cas { reply, .. }, Some(Outcome::Bool(r)))
            | (Op::Remove { reply, .. }, Some(Outcome::Bool(r))) => {
                let _ = reply.send(r);
            }
            (Op::Put { reply, .. }, Some(Outcome::Unit(r))) => {
                let _ = reply.send(r);
            }
            (Op::Take { reply, .. }, Some(Outcome::Entry(r))) => {
                let _ = reply.send(r);
            }
            (Op::Insert { reply, .. }, _)
            | (Op::Cas { reply, .. }, _)
            | (Op::Remove { reply, .. }, _) => {
                let _ = reply.send(Err(failed));
            }
            (Op::Put { reply, .. }, _) => {
                let _ = reply.send(Err(failed));
            }
            (Op::Take { reply, .. }, _) => {
                let _ = reply.send(Err(failed));
            }
        }
    }
}

struct Inner {
    db: Arc<Database>,
    path: PathBuf,
    tx: Mutex<Option<SyncSender<Op>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    clock: SharedClock,
    options: EmbeddedOptions,
    bus: LocalBus,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer after its last batch; joining it releases the
        // database file for the next `open`.
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

/// The embedded durable [`Store`] (redb). See the [module docs](self).
///
/// # Guarantees
///
/// - **Atomicity**: every primitive is applied by the single writer thread inside one
///   transaction; reads see committed state only.
/// - **Durability**: a write is acknowledged only after its transaction is committed with
///   fsync, so it survives a crash or `kill -9` of the process (and a power loss, as far as
///   the disk honours fsync).
/// - **Failure**: an I/O error fails every write of the batch with
///   [`StoreError::Unavailable`] and commits none of them; a full queue or a stalled disk
///   fails writes with [`StoreError::Unavailable`] or [`StoreError::Timeout`].
/// - **Single process**: the file is locked while open; a second process gets an error at
///   open.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Why the embedded database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedOpenError {
    /// Another process (or another store in this process) has the file open.
    #[error("the database file is already open")]
    AlreadyOpen,
    /// An I/O error (missing directory, permissions, ...).
    #[error("cannot open the database file: {0}")]
    Io(#[source] std::io::Error),
    /// The file is not a database of this version, or is corrupt beyond repair.
    #[error("the database file is not usable: {0}")]
    Database(String),
}

/// A redb error, boxed (it is large) so results stay small.
#[derive(Debug)]
struct DbError(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for DbError {
    fn from(e: E) -> Self {
        Self(Box::new(e.into()))
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn unavailable<E: std::fmt::Display>(e: E) -> StoreError {
    tracing::warn!(target: "idjag_store", error = %e, "embedded store error");
    StoreError::Unavailable
}

impl EmbeddedStore {
    /// Opens (or creates) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>, clock: SharedClock) -> Result<Self, EmbeddedOpenError> {
        Self::open_with(path, clock, EmbeddedOptions::default())
    }

    /// Opens (or creates) the database at `path`.
    pub fn open_with(
        path: impl AsRef<Path>,
        clock: SharedClock,
        options: EmbeddedOptions,
    ) -> Result<Self, EmbeddedOpenError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::builder()
            .set_cache_size(options.cache_size)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => EmbeddedOpenError::AlreadyOpen,
                redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
                    EmbeddedOpenError::Io(io)
                }
                other => EmbeddedOpenError::Database(other.to_string()),
            })?;
        // Create the tables once, so read transactions always find them.
        let init = || -> Result<(), DbError> {
            let txn = db.begin_write()?;
            {
                txn.open_table(ENTRIES)?;
                txn.open_table(EXPIRIES)?;
                txn.open_table(QUOTA_MEMBERS)?;
                txn.open_table(QUOTA_COUNTS)?;
                txn.open_table(CAPPED)?;
                txn.open_table(CAP_MEMBERS)?;
            }
            txn.commit()?;
            Ok(())
        };
        init().map_err(|e| EmbeddedOpenError::Database(e.to_string()))?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let writer = {
            let db = db.clone();
            let clock = clock.clone();
            let sweep = options.sweep_interval;
            std::thread::Builder::new()
                .name("idjag-store-writer".into())
                .spawn(move || writer_loop(&db, &clock, &rx, sweep))
                .map_err(EmbeddedOpenError::Io)?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                path,
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                clock,
                options,
                bus: LocalBus::new(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn now(&self) -> UnixMillis {
        now_millis(&self.inner.clock)
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Op,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        let op = make(reply);
        {
            let tx = self.inner.tx.lock().unwrap_or_else(|p| p.into_inner());
            let Some(tx) = tx.as_ref() else {
                return Err(StoreError::Closed);
            };
            match tx.try_send(op) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(target: "idjag_store", "embedded store write queue full");
                    return Err(StoreError::Unavailable);
                }
                Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
            }
        }
        match tokio::time::timeout(self.inner.options.op_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => Err(StoreError::Timeout),
        }
    }

    /// `insert_if_absent` and `insert_capped`: one op of the writer, so every check and every
    /// write are in one transaction.
    async fn insert(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
        quota: Option<Quota<'_>>,
        caps: &[Cap<'_>],
    ) -> Result<bool, StoreError> {
        check_write(key, value, expires_at, self.now())?;
        check_quota(&quota, expires_at)?;
        let quota = quota.map(|q| (digest(&[q.group]), q.limit));
        let caps = caps.iter().map(|c| (digest(&[c.group]), c.limit)).collect();
        self.submit(|reply| Op::Insert {
            ns,
            key: key.to_vec(),
            value: value.to_vec(),
            expires_at,
            quota,
            caps,
            reply,
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database, UnixMillis) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let now = self.now();
        let task = tokio::task::spawn_blocking(move || f(&inner.db, now));
        match tokio::time::timeout(self.inner.options.op_timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Unavailable),
            Err(_) => Err(StoreError::Timeout),
        }
    }
}

fn entry_key(ns: Namespace, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(ns.id());
    k.extend_from_slice(key);
    k
}

fn encode(value: &[u8], expires_at: Option<UnixMillis>) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&expires_at.unwrap_or(NEVER).to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn decode(raw: &[u8]) -> Option<Entry> {
    let (at, value) = raw.split_at_checked(8)?;
    let at = i64::from_be_bytes(at.try_into().ok()?);
    Some(Entry::new(
        value.to_vec(),
        if at == NEVER { None } else { Some(at) },
    ))
}

fn time_bytes(at: UnixMillis) -> [u8; 8] {
    // Unsigned big-endian so the byte order is the time order (times are after 1970).
    (at.max(0) as u64).to_be_bytes()
}

fn expiry_key(at: UnixMillis, kind: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + rest.len());
    k.extend_from_slice(&time_bytes(at));
    k.push(kind);
    k.extend_from_slice(rest);
    k
}

type Table<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
type Index<'t> = redb::Table<'t, &'static [u8], ()>;
type Counts<'t> = redb::Table<'t, &'static [u8], u64>;

struct Tables<'t> {
    entries: Table<'t>,
    expiries: Index<'t>,
    members: Index<'t>,
    counts: Counts<'t>,
    capped: Table<'t>,
    cap_members: Index<'t>,
}

impl Tables<'_> {
    fn live(&self, k: &[u8], now: UnixMillis) -> Result<Option<Entry>, DbError> {
        Ok(self
            .entries
            .get(k)?
            .and_then(|raw| decode(raw.value()))
            .filter(|e| is_live(e.expires_at, now)))
    }

    /// Deletes an entry, its expiry record and its cap memberships; returns it if it was
    /// live.
    fn delete(&mut self, k: &[u8], now: UnixMillis) -> Result<Option<Entry>, DbError> {
        self.release(k)?;
        let old = self.unset(k)?;
        Ok(old.filter(|old| is_live(old.expires_at, now)))
    }

    /// Deletes an entry and its expiry record, keeping its cap memberships.
    fn unset(&mut self, k: &[u8]) -> Result<Option<Entry>, DbError> {
        let old = self.entries.remove(k)?.and_then(|raw| decode(raw.value()));
        let Some(old) = old else { return Ok(None) };
        if let Some(at) = old.expires_at {
            self.expiries.remove(expiry_key(at, 0, k).as_slice())?;
        }
        Ok(Some(old))
    }

    /// Takes an entry out of its cap groups.
    fn release(&mut self, k: &[u8]) -> Result<(), DbError> {
        if !in_capped_namespace(k) {
            return Ok(());
        }
        let groups = match self.capped.remove(k)? {
            Some(raw) => raw.value().to_vec(),
            None => return Ok(()),
        };
        for group in groups.chunks_exact(GROUP_LEN) {
            let mut member = group.to_vec();
            member.extend_from_slice(k);
            self.cap_members.remove(member.as_slice())?;
        }
        Ok(())
    }

    /// The live entries of a cap group; its dead members (expired, not yet purged) are
    /// deleted on the way.
    fn group_len(&mut self, group: &[u8], now: UnixMillis) -> Result<usize, DbError> {
        let mut members = Vec::new();
        for item in self.cap_members.range::<&[u8]>(group..)? {
            let (k, _) = item?;
            let k = k.value();
            if !k.starts_with(group) {
                break;
            }
            members.push(k[GROUP_LEN..].to_vec());
        }
        let mut live = 0;
        for k in members {
            if self.live(&k, now)?.is_some() {
                live += 1;
            } else {
                self.delete(&k, now)?;
            }
        }
        Ok(live)
    }

    fn set(
        &mut self,
        k: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
        now: UnixMillis,
    ) -> Result<(), DbError> {
        if in_capped_namespace(k) && self.live(k, now)?.is_none() {
            // A dead entry under the key (not yet purged) leaves its groups.
            self.release(k)?;
        }
        self.unset(k)?;
        self.entries
            .insert(k, encode(value, expires_at).as_slice())?;
        if let Some(at) = expires_at {
            self.expiries.insert(expiry_key(at, 0, k).as_slice(), ())?;
        }
        Ok(())
    }

    fn count_delta(&mut self, group: &[u8], delta: i64) -> Result<u64, DbError> {
        let current = self.counts.get(group)?.map(|v| v.value()).unwrap_or(0);
        let next = current.saturating_add_signed(delta);
        if next == 0 {
            self.counts.remove(group)?;
        } else {
            self.counts.insert(group, next)?;
        }
        Ok(next)
    }

    /// Removes the expired members of one quota group; returns the live count.
    fn purge_group(&mut self, group: &[u8], now: UnixMillis) -> Result<u64, DbError> {
        let mut start = group.to_vec();
        start.extend_from_slice(&time_bytes(0));
        let mut end = group.to_vec();
        end.extend_from_slice(&time_bytes(now.saturating_add(1)));
        let mut expired = Vec::new();
        for item in self
            .members
            .range::<&[u8]>(start.as_slice()..end.as_slice())?
        {
            let (k, _) = item?;
            expired.push(k.value().to_vec());
        }
        for member in &expired {
            self.members.remove(member.as_slice())?;
            let at = i64::from_be_bytes(member[33..41].try_into().unwrap_or_default());
            let mut rest = member[..33].to_vec();
            rest.extend_from_slice(&member[41..]);
            self.expiries.remove(expiry_key(at, 1, &rest).as_slice())?;
        }
        let n = expired.len() as i64;
        if n > 0 {
            self.count_delta(group, -n)
        } else {
            Ok(self.counts.get(group)?.map(|v| v.value()).unwrap_or(0))
        }
    }

    /// Deletes up to `max` expired entries and quota members.
    fn purge(&mut self, now: UnixMillis, max: usize) -> Result<usize, DbError> {
        let end = time_bytes(now.saturating_add(1));
        let mut due = Vec::new();
        for item in self
            .expiries
            .range::<&[u8]>((Bound::Unbounded, Bound::Excluded(end.as_slice())))?
            .take(max)
        {
            let (k, _) = item?;
            due.push(k.value().to_vec());
        }
        for record in &due {
            self.expiries.remove(record.as_slice())?;
            let Some((&kind, rest)) = record.get(8..).and_then(|r| r.split_first()) else {
                continue;
            };
            if kind == 0 {
                let at = i64::from_be_bytes(record[..8].try_into().unwrap_or_default());
                let current = self.entries.get(rest)?.and_then(|raw| decode(raw.value()));
                if current.is_some_and(|e| e.expires_at == Some(at)) {
                    self.entries.remove(rest)?;
                    self.release(rest)?;
                }
            } else if rest.len() >= 33 {
                let mut member = rest[..33].to_vec();
                member.extend_from_slice(&record[..8]);
                member.extend_from_slice(&rest[33..]);
                if self.members.remove(member.as_slice())?.is_some() {
                    self.count_delta(&rest[..33], -1)?;
                }
            }
        }
        Ok(due.len())
    }

    fn apply(&mut self, op: &Op, now: UnixMillis) -> Result<Outcome, DbError> {
        Ok(match op {
            Op::Insert {
                ns,
                key,
                value,
                expires_at,
                quota,
                caps,
                ..
            } => {
                let k = entry_key(*ns, key);
                if self.live(&k, now)?.is_some() {
                    return Ok(Outcome::Bool(Ok(false)));
                }
                if let (Some((group, limit)), Some(_)) = (quota, expires_at)
                    && self.purge_group(&group_key(*ns, group), now)? >= u64::from(*limit)
                {
                    return Ok(Outcome::Bool(Err(StoreError::QuotaExceeded {
                        namespace: *ns,
                    })));
                }
                let groups: Vec<Vec<u8>> = caps.iter().map(|(g, _)| group_key(*ns, g)).collect();
                for (index, ((_, limit), group)) in caps.iter().zip(&groups).enumerate() {
                    if self.group_len(group, now)? >= *limit as usize {
                        return Ok(Outcome::Bool(Err(StoreError::CapReached {
                            namespace: *ns,
                            index,
                        })));
                    }
                }
                if let (Some((group, _)), Some(at)) = (quota, expires_at) {
                    let g = group_key(*ns, group);
                    let mut member = g.clone();
                    member.extend_from_slice(&time_bytes(*at));
                    member.extend_from_slice(key);
                    if self.members.insert(member.as_slice(), ())?.is_none() {
                        self.count_delta(&g, 1)?;
                    }
                    let mut rest = g;
                    rest.extend_from_slice(key);
                    self.expiries
                        .insert(expiry_key(*at, 1, &rest).as_slice(), ())?;
                }
                self.set(&k, value, *expires_at, now)?;
                if !groups.is_empty() {
                    for group in &groups {
                        let mut member = group.clone();
                        member.extend_from_slice(&k);
                        self.cap_members.insert(member.as_slice(), ())?;
                    }
                    self.capped
                        .insert(k.as_slice(), groups.concat().as_slice())?;
                }
                Outcome::Bool(Ok(true))
            }
            Op::Put {
                ns,
                key,
                value,
                expires_at,
                ..
            } => {
                self.set(&entry_key(*ns, key), value, *expires_at, now)?;
                Outcome::Unit(Ok(()))
            }
            Op::Take { ns, key, .. } => Outcome::Entry(Ok(self.delete(&entry_key(*ns, key), now)?)),
            Op::Cas {
                ns,
                key,
                expected,
                new,
                release,
                ..
            } => {
                let k = entry_key(*ns, key);
                let current = self.live(&k, now)?;
                if current.as_ref().map(|e| e.value.as_slice()) != expected.as_deref() {
                    return Ok(Outcome::Bool(Ok(false)));
                }
                match new {
                    Some((value, expires_at)) => {
                        self.set(&k, value, *expires_at, now)?;
                        if *release {
                            self.release(&k)?;
                        }
                    }
                    None => {
                        self.delete(&k, now)?;
                    }
                }
                Outcome::Bool(Ok(true))
            }
            Op::Remove { ns, key, .. } => {
                Outcome::Bool(Ok(self.delete(&entry_key(*ns, key), now)?.is_some()))
            }
        })
    }
}

/// Whether an `ENTRIES` key is in a namespace that keeps caps (the others never touch the
/// cap tables, so single-use markers cost what they did).
fn in_capped_namespace(k: &[u8]) -> bool {
    k.first()
        .and_then(|id| Namespace::from_id(*id))
        .is_some_and(Namespace::is_capped)
}

/// A group's name in the quota and cap tables: `ns (1) || digest (32)`.
fn group_key(ns: Namespace, digest: &[u8; 32]) -> Vec<u8> {
    let mut g = Vec::with_capacity(GROUP_LEN);
    g.push(ns.id());
    g.extend_from_slice(digest);
    g
}

fn open_tables(txn: &redb::WriteTransaction) -> Result<Tables<'_>, DbError> {
    Ok(Tables {
        entries: txn.open_table(ENTRIES)?,
        expiries: txn.open_table(EXPIRIES)?,
        members: txn.open_table(QUOTA_MEMBERS)?,
        counts: txn.open_table(QUOTA_COUNTS)?,
        capped: txn.open_table(CAPPED)?,
        cap_members: txn.open_table(CAP_MEMBERS)?,
    })
}

/// Applies one batch in one transaction; `None` when the transaction failed.
fn run_batch(db: &Database, batch: &[Op], now: UnixMillis) -> Option<Vec<Outcome>> {
    let run = || -> Result<Vec<Outcome>, DbError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        let outcomes = {
            let mut tables = open_tables(&txn)?;
            tables.purge(now, PURGE_PER_BATCH)?;
            batch
                .iter()
                .map(|op| tables.apply(op, now))
                .collect::<Result<Vec<_>, _>>()?
        };
        txn.commit()?;
        Ok(outcomes)
    };
    run().map_err(unavailable).ok()
}

fn sweep(db: &Database, now: UnixMillis) {
    let run = || -> Result<usize, DbError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        let n = open_tables(&txn)?.purge(now, PURGE_PER_SWEEP)?;
        if n == 0 {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok(n)
    };
    if let Err(e) = run() {
        unavailable(e);
    }
}

fn writer_loop(db: &Database, clock: &SharedClock, rx: &mpsc::Receiver<Op>, sweep_every: Duration) {
    loop {
        let first = match rx.recv_timeout(sweep_every) {
            Ok(op) => op,
            Err(RecvTimeoutError::Timeout) => {
                sweep(db, now_millis(clock));
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let now = now_millis(clock);
        match run_batch(db, &batch, now) {
            Some(outcomes) => {
                for (op, outcome) in batch.into_iter().zip(outcomes) {
                    op.answer(Some(outcome));
                }
            }
            None => {
                for op in batch {
                    op.answer(None);
                }
            }
        }
    }
}

fn read_err(e: impl Into<redb::Error>) -> StoreError {
    unavailable(DbError::from(e))
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn insert_if_absent(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
        quota: Option<Quota<'_>>,
    ) -> Result<bool, StoreError> {
        self.insert(ns, key, value, expires_at, quota, &[]).await
    }

    async fn insert_capped(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: UnixMillis,
        quota: Option<Quota<'_>>,
        caps: &[Cap<'_>],
    ) -> Result<bool, StoreError> {
        check_caps(ns, caps)?;
        self.insert(ns, key, value, Some(expires_at), quota, caps)
            .await
    }

    async fn put(
        &self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        expires_at: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        check_write(key, value, expires_at, self.now())?;
        self.submit(|reply| Op::Put {
            ns,
            key: key.to_vec(),
            value: value.to_vec(),
            expires_at,
            reply,
        })
        .await
    }

    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        let k = entry_key(ns, key);
        self.read(move |db, now| {
            let txn = db.begin_read().map_err(read_err)?;
            let table = txn.open_table(ENTRIES).map_err(read_err)?;
            let raw = table.get(k.as_slice()).map_err(read_err)?;
            match raw {
                None => Ok(None),
                Some(raw) => match decode(raw.value()) {
                    Some(e) => Ok(is_live(e.expires_at, now).then_some(e)),
                    None => Err(StoreError::Corrupt { namespace: ns }),
                },
            }
        })
        .await
    }

    async fn take(&self, ns: Namespace, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        self.submit(|reply| Op::Take {
            ns,
            key: key.to_vec(),
            reply,
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        ns: Namespace,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Swap<'_>,
    ) -> Result<bool, StoreError> {
        let (new, release) = match new {
            Swap::Set(value, expires_at) | Swap::Release(value, expires_at) => {
                check_write(key, value, expires_at, self.now())?;
                (
                    Some((value.to_vec(), expires_at)),
                    matches!(new, Swap::Release(..)),
                )
            }
            Swap::Delete => {
                check_key(key)?;
                (None, false)
            }
        };
        self.submit(|reply| Op::Cas {
            ns,
            key: key.to_vec(),
            expected: expected.map(<[u8]>::to_vec),
            new,
            release,
            reply,
        })
        .await
    }

    async fn remove(&self, ns: Namespace, key: &[u8]) -> Result<bool, StoreError> {
        check_key(key)?;
        self.submit(|reply| Op::Remove {
            ns,
            key: key.to_vec(),
            reply,
        })
        .await
    }

    async fn scan(&self, ns: Namespace, limit: usize) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        if !ns.is_indexed() {
            return Err(StoreError::NotScannable { namespace: ns });
        }
        self.read(move |db, now| {
            let txn = db.begin_read().map_err(read_err)?;
            let table = txn.open_table(ENTRIES).map_err(read_err)?;
            let start = [ns.id()];
            let end = [ns.id() + 1];
            let mut out = Vec::new();
            for item in table
                .range::<&[u8]>(start.as_slice()..end.as_slice())
                .map_err(read_err)?
            {
                let (k, v) = item.map_err(read_err)?;
                let entry = decode(v.value()).ok_or(StoreError::Corrupt { namespace: ns })?;
                if !is_live(entry.expires_at, now) {
                    continue;
                }
                if out.len() == limit {
                    return Err(StoreError::TooMany {
                        namespace: ns,
                        limit,
                    });
                }
                out.push((k.value()[1..].to_vec(), entry));
            }
            Ok(out)
        })
        .await
    }

    async fn publish(&self, channel: Channel, message: &[u8]) -> Result<(), StoreError> {
        self.inner
            .bus
            .send(channel, Notification::Message(message.to_vec()));
        Ok(())
    }

    fn subscribe(&self, channel: Channel) -> Subscription {
        self.inner.bus.subscribe(channel)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|db, _| {
            let txn = db.begin_read().map_err(read_err)?;
            txn.open_table(ENTRIES).map_err(read_err)?;
            Ok(())
        })
        .await
    }
}
