//! Stdio upstreams: an MCP server run as a child process and spoken to over MCP's stdio
//! transport (rmcp's child-process transport), behind the same proxy pipeline as an HTTP
//! upstream.
//!
//! - **Environment.** The child's environment starts empty: only the allow-listed variables
//!   of the gateway, the configured ones and, in `credential_env`, the credential of the
//!   upstream's credential mode (the same modes as for HTTP upstreams: an ID-JAG-obtained
//!   token, a static key, a template over the caller's identity, ...). Nothing else of the
//!   gateway's environment, and none of its secrets, reaches the child.
//! - **Isolation.** `per_user` (default): one process per user, so no state is shared
//!   between users; `shared`: one process for everyone (only for modes without a per-user
//!   credential). Every MCP session of a user maps onto the MCP session the gateway holds
//!   with that process.
//! - **Lifecycle.** A process starts on first use (within the upstream's `connect_timeout`,
//!   `initialize` included), ends after `idle_timeout` unused, and is replaced when the
//!   caller's credential changes (a refreshed token: the new process gets the new one; the
//!   old one ends once its calls have). At most `max_processes` per upstream (an idle one
//!   of another user is ended to make room, else 503) and
//!   `[server] max_stdio_processes_per_user` per user across upstreams. A process that
//!   exits on its own is a crash: the next start waits `restart_backoff`, doubled per crash
//!   in a row up to `max_restart_backoff` (503 with `Retry-After` meanwhile), and a
//!   successful call resets it. Its stderr goes to the gateway's log line by line, the
//!   credential redacted. Every process ends on shutdown ([`StdioUpstream::shutdown`]).
//!
//! | module | job |
//! |---|---|
//! | [`spec`] | [`StdioSpec`]: the planned command, environment and limits |
//! | `process` | spawning one process, its stderr |

mod process;
pub mod spec;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::ServerPeerInfo;
use rmcp::service::{Peer, RunningServiceCancellationToken};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

pub use process::{MAX_STDERR_LINE, redacted};
pub use spec::{ChildEnvironment, StdioSpec};

use crate::config::Isolation;
use crate::inbound::Authenticated;
use crate::upstream::credential::{Credential, CredentialError, UpstreamCredential};

/// Mode `none` (stdio upstreams only): no credential.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct NoCredential;

impl UpstreamCredential for NoCredential {
    fn mode(&self) -> &'static str {
        "none"
    }

    fn credential<'a>(
        &'a self,
        _caller: &'a Authenticated,
    ) -> idjag_core::BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async { Ok(Credential::from_headers(Vec::new())) })
    }
}

/// The value a stdio process gets in `credential_env`: the token of an `Authorization:
/// Bearer` value, else the credential's one header value (`None`: no credential).
///
/// # Security
///
/// The value is a secret: it goes into one child's environment, nowhere else.
pub fn credential_value(credential: &Credential) -> Option<String> {
    let value = match credential.authorization() {
        Some(authorization) => authorization,
        None => &credential.headers().first()?.1,
    };
    let text = value.to_str().ok()?;
    let token = match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token,
        _ => text,
    };
    Some(token.to_owned())
}

/// Why a process ended, as counted in `idjag_gateway_stdio_exits_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// Unused for `idle_timeout`.
    Idle,
    /// Exited on its own (or was killed from outside).
    Crash,
    /// Replaced after the credential changed.
    Rotated,
    /// Ended to make room under `max_processes`.
    Evicted,
    /// The gateway shut down.
    Shutdown,
}

impl ExitReason {
    /// Every reason, in label order.
    pub const ALL: [Self; 5] = [
        Self::Idle,
        Self::Crash,
        Self::Rotated,
        Self::Evicted,
        Self::Shutdown,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Crash => "crash",
            Self::Rotated => "rotated",
            Self::Evicted => "evicted",
            Self::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why no process could serve a request. Never carries a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StdioError {
    /// The process could not be started or did not initialize.
    #[error("the MCP server process could not be started")]
    Start,
    /// The process crashed recently; the next start waits.
    #[error("the MCP server process is restarting")]
    Restarting {
        /// How long until it may start again.
        retry_after: Duration,
    },
    /// `max_processes` of this upstream are running and busy.
    #[error("too many processes of this upstream")]
    UpstreamLimit,
    /// The user has `max_stdio_processes_per_user` processes.
    #[error("too many processes of this user")]
    UserLimit,
    /// The gateway is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

impl StdioError {
    /// A stable code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Start => "stdio_start_failed",
            Self::Restarting { .. } => "stdio_restarting",
            Self::UpstreamLimit => "stdio_upstream_limit",
            Self::UserLimit => "stdio_user_limit",
            Self::ShuttingDown => "shutting_down",
        }
    }
}

/// Each user's processes across every per-user stdio upstream, within one limit.
#[derive(Debug)]
pub struct UserProcesses {
    limit: usize,
    counts: Mutex<HashMap<[u8; 32], usize>>,
}

impl UserProcesses {
    /// At most `limit` processes per user.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn reserve(&self, user: &[u8; 32]) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(*user).or_default();
        if *count >= self.limit {
            return false;
        }
        *count += 1;
        true
    }

    fn release(&self, user: &[u8; 32]) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(user);
            }
        }
    }
}

/// Counts of one upstream's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StdioStats {
    /// Running now.
    pub live: usize,
    /// Started so far.
    pub started: u64,
    /// Of those, started after a crash.
    pub restarts: u64,
    /// Ended so far, per [`ExitReason::ALL`].
    pub exits: [u64; 5],
}

impl StdioStats {
    /// Processes ended for `reason`.
    pub fn exits(&self, reason: ExitReason) -> u64 {
        self.exits[reason.index()]
    }
}

/// The counts shared by an upstream and its processes.
#[derive(Debug)]
struct Accounting {
    live: AtomicUsize,
    started: AtomicU64,
    restarts: AtomicU64,
    exits: [AtomicU64; 5],
    users: Arc<UserProcesses>,
}

type Key = Option<[u8; 32]>;

/// The process of one key (a user, or everyone), and its crash history.
#[derive(Debug, Default)]
struct Slot {
    process: tokio::sync::Mutex<Option<Arc<Process>>>,
    crashes: Mutex<(u32, Option<Instant>)>,
}

/// One running process and the gateway's MCP session with it.
struct Process {
    peer: Peer<RoleClient>,
    info: Option<Arc<ServerPeerInfo>>,
    pid: Option<u32>,
    digest: [u8; 32],
    key: Key,
    accounting: Arc<Accounting>,
    cancel: Mutex<Option<RunningServiceCancellationToken>>,
    ended: AtomicBool,
    retired: AtomicBool,
    in_flight: AtomicUsize,
    last_used: Mutex<Instant>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Process {
    /// Ends the process (once) and counts why; returns whether this call ended it.
    fn end(&self, reason: ExitReason) -> bool {
        if self.ended.swap(true, Ordering::SeqCst) {
            return false;
        }
        let accounting = &self.accounting;
        accounting.live.fetch_sub(1, Ordering::SeqCst);
        if let Some(user) = &self.key {
            accounting.users.release(user);
        }
        accounting.exits[reason.index()].fetch_add(1, Ordering::SeqCst);
        if let Some(token) = self.cancel.lock().unwrap_or_else(|e| e.into_inner()).take() {
            token.cancel();
        }
        tracing::info!(
            pid = self.pid,
            reason = reason.label(),
            "stdio upstream process ended"
        );
        true
    }

    fn usable(&self) -> bool {
        !self.ended.load(Ordering::SeqCst)
            && !self.retired.load(Ordering::SeqCst)
            && !self.peer.is_transport_closed()
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Retires the process: it takes no new call and ends once its calls have.
    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            self.end(ExitReason::Rotated);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.end(ExitReason::Shutdown);
    }
}

/// One call's hold on a process: the process is busy (not idle, not evicted) until it is
/// dropped.
#[derive(Debug)]
pub struct Lease {
    process: Arc<Process>,
    slot: Arc<Slot>,
}

impl Lease {
    fn new(process: Arc<Process>, slot: Arc<Slot>) -> Self {
        process.in_flight.fetch_add(1, Ordering::SeqCst);
        Self { process, slot }
    }

    /// The MCP session with the process.
    pub fn peer(&self) -> &Peer<RoleClient> {
        &self.process.peer
    }

    /// What the process answered to the gateway's `initialize`.
    pub fn server_info(&self) -> Option<&ServerPeerInfo> {
        self.process.info.as_deref()
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid
    }

    /// Records a call the process answered: its crash history starts over.
    pub fn answered(&self) {
        *self.slot.crashes.lock().unwrap_or_else(|e| e.into_inner()) = (0, None);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *self
            .process
            .last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if self.process.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
            && self.process.retired.load(Ordering::SeqCst)
        {
            self.process.end(ExitReason::Rotated);
        }
    }
}

/// The processes of one stdio upstream. See the [module docs](self).
#[derive(Debug)]
pub struct StdioUpstream {
    name: String,
    spec: StdioSpec,
    accounting: Arc<Accounting>,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    monitors: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
}

impl StdioUpstream {
    /// The upstream `name` running `spec`, its users' processes counted in `users`. Starts
    /// the idle sweep (needs a Tokio runtime).
    pub fn new(name: String, spec: StdioSpec, users: Arc<UserProcesses>) -> Arc<Self> {
        let upstream = Arc::new(Self {
            name,
            spec,
            accounting: Arc::new(Accounting {
                live: AtomicUsize::new(0),
                started: AtomicU64::new(0),
                restarts: AtomicU64::new(0),
                exits: Default::default(),
                users,
            }),
            slots: Mutex::new(HashMap::new()),
            monitors: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let period = (upstream.spec.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        let weak = Arc::downgrade(&upstream);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(upstream) = weak.upgrade() else {
                    break;
                };
                if upstream.closed.load(Ordering::SeqCst) {
                    break;
                }
                upstream.sweep();
            }
        });
        upstream
    }

    /// The planned command and limits.
    pub fn spec(&self) -> &StdioSpec {
        &self.spec
    }

    /// The counts so far.
    pub fn stats(&self) -> StdioStats {
        let a = &self.accounting;
        StdioStats {
            live: a.live.load(Ordering::SeqCst),
            started: a.started.load(Ordering::SeqCst),
            restarts: a.restarts.load(Ordering::SeqCst),
            exits: std::array::from_fn(|i| a.exits[i].load(Ordering::SeqCst)),
        }
    }

    /// The process of `user` (per-user isolation) or the shared one, started when there is
    /// none, replaced when `credential` (the value for `credential_env`) changed.
    pub async fn acquire(
        &self,
        user: [u8; 32],
        credential: Option<&str>,
    ) -> Result<Lease, StdioError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StdioError::ShuttingDown);
        }
        let key = match self.spec.isolation {
            Isolation::Shared => None,
            _ => Some(user),
        };
        let digest: [u8; 32] = Sha256::digest(credential.unwrap_or("").as_bytes()).into();
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let mut current = slot.process.lock().await;
        if let Some(process) = current.as_ref() {
            if process.usable() && process.digest == digest {
                return Ok(Lease::new(process.clone(), slot.clone()));
            }
            if process.peer.is_transport_closed() {
                // Exited before its monitor noticed: a crash, and its backoff applies.
                if process.end(ExitReason::Crash) {
                    record_crash(&slot);
                }
            } else if process.digest != digest {
                process.retire();
            }
            *current = None;
        }
        let crashes = {
            let (crashes, at) = *slot.crashes.lock().unwrap_or_else(|e| e.into_inner());
            let wait = self.spec.backoff(crashes);
            if let Some(at) = at
                && at.elapsed() < wait
            {
                return Err(StdioError::Restarting {
                    retry_after: wait - at.elapsed(),
                });
            }
            crashes
        };
        if let Some(user) = &key
            && !self.accounting.users.reserve(user)
        {
            return Err(StdioError::UserLimit);
        }
        if !self.reserve() {
            self.evict_one(&slot);
            if !self.reserve() {
                if let Some(user) = &key {
                    self.accounting.users.release(user);
                }
                return Err(StdioError::UpstreamLimit);
            }
        }
        let (session, pid) = match process::spawn(&self.name, &self.spec, credential).await {
            Ok(started) => started,
            Err(error) => {
                self.accounting.live.fetch_sub(1, Ordering::SeqCst);
                if let Some(user) = &key {
                    self.accounting.users.release(user);
                }
                record_crash(&slot);
                tracing::warn!(upstream = %self.name, %error, "stdio upstream process not started");
                return Err(StdioError::Start);
            }
        };
        self.accounting.started.fetch_add(1, Ordering::SeqCst);
        if crashes > 0 {
            self.accounting.restarts.fetch_add(1, Ordering::SeqCst);
        }
        tracing::info!(upstream = %self.name, pid, "stdio upstream process started");
        let process = Arc::new(Process {
            peer: session.peer().clone(),
            info: session.peer().peer_info(),
            pid,
            digest,
            key,
            accounting: self.accounting.clone(),
            cancel: Mutex::new(Some(session.cancellation_token())),
            ended: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
        });
        let watched = Arc::downgrade(&process);
        let history = Arc::downgrade(&slot);
        let name = self.name.clone();
        let monitor = tokio::spawn(async move {
            let _ = session.waiting().await;
            crashed(&name, &watched, &history);
        });
        {
            let mut monitors = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
            monitors.retain(|m| !m.is_finished());
            monitors.push(monitor);
        }
        *current = Some(process.clone());
        Ok(Lease::new(process, slot.clone()))
    }

    /// Ends every process and waits (a bounded time) for each to exit. No process starts
    /// afterwards.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let slots: Vec<_> = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, slot)| slot)
            .collect();
        for slot in slots {
            if let Some(process) = slot.process.lock().await.take() {
                process.end(ExitReason::Shutdown);
            }
        }
        let monitors: Vec<_> = self
            .monitors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for monitor in monitors {
            let _ = tokio::time::timeout(Duration::from_secs(10), monitor).await;
        }
    }

    fn reserve(&self) -> bool {
        self.accounting
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.spec.max_processes).then_some(n + 1)
            })
            .is_ok()
    }

    /// Ends the least recently used idle process of another slot than `own`.
    fn evict_one(&self, own: &Arc<Slot>) {
        let mut best: Option<(Duration, Arc<Slot>)> = None;
        for slot in self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| !Arc::ptr_eq(s, own))
        {
            let Ok(guard) = slot.process.try_lock() else {
                continue;
            };
            if let Some(process) = guard.as_ref()
                && process.in_flight.load(Ordering::SeqCst) == 0
            {
                let idle = process.idle_for();
                if best.as_ref().is_none_or(|(b, _)| idle > *b) {
                    best = Some((idle, slot.clone()));
                }
            }
        }
        if let Some((_, slot)) = best
            && let Ok(mut guard) = slot.process.try_lock()
            && let Some(process) = guard.take()
        {
            process.end(ExitReason::Evicted);
        }
    }

    /// Ends processes unused for `idle_timeout`, forgets empty slots.
    fn sweep(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|_, slot| {
            // Held by a request about to use it.
            if Arc::strong_count(slot) > 1 {
                return true;
            }
            let Ok(mut guard) = slot.process.try_lock() else {
                return true;
            };
            if let Some(process) = guard.as_ref() {
                if process.peer.is_transport_closed() {
                    // Exited before its monitor noticed.
                    if process.end(ExitReason::Crash) {
                        record_crash(slot);
                    }
                    *guard = None;
                } else if !process.usable() {
                    *guard = None;
                } else if process.in_flight.load(Ordering::SeqCst) == 0
                    && process.idle_for() >= self.spec.idle_timeout
                {
                    process.end(ExitReason::Idle);
                    *guard = None;
                }
            }
            let crashed = slot.crashes.lock().unwrap_or_else(|e| e.into_inner()).0 > 0;
            guard.is_some() || crashed
        });
    }
}

/// A process's session ended: unless the gateway ended it, it crashed.
fn crashed(upstream: &str, process: &Weak<Process>, slot: &Weak<Slot>) {
    let Some(process) = process.upgrade() else {
        return;
    };
    if process.end(ExitReason::Crash) {
        tracing::warn!(
            upstream,
            pid = process.pid,
            "stdio upstream process exited on its own"
        );
        if let Some(slot) = slot.upgrade() {
            record_crash(&slot);
        }
    }
}

/// One more crash in a row, now.
fn record_crash(slot: &Slot) {
    let mut history = slot.crashes.lock().unwrap_or_else(|e| e.into_inner());
    *history = (history.0.saturating_add(1), Some(Instant::now()));
}
