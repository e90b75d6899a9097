//! Configuration reload: on SIGHUP and when the file changes, the server's own planning pass
//! runs again; a good plan is swapped in atomically, a bad one is refused and the running plan
//! kept.
//!
//! The caller supplies `load: Fn(&Path) -> Result<Plan, E>`: the same pass as at start-up
//! (read the file, apply [environment overrides](mod@crate::env), deserialize, validate, read the
//! secrets the file refers to, build whatever the plan holds). Because `load` runs in full on
//! every reload, **secrets referenced by the configuration (`secret_file`, `secret_env`,
//! credential files) are re-read too**: rotate a secret file, then send SIGHUP. `load` runs on
//! a blocking thread, never on a runtime worker; its error's `Display` is logged, so it must
//! not contain secret values.
//!
//! Requests take the plan once, when they start ([`Reloadable::current`], or the
//! [`Reloadable::layer`] that puts it in the request extensions), and keep that `Arc` to the
//! end: in-flight requests and open streams finish with the plan they started with, new
//! requests get the new one. Nothing is locked on the request path (`arc-swap`).
//!
//! Every reload is logged, counted in `idjag_config_reloads_total{outcome}` (`applied`,
//! `refused`, `unchanged` — a file change that left the content as it was) with the plan's
//! generation in `idjag_config_generation`, and published to [`Reloadable::subscribe`]rs.
//!
//! ```no_run
//! use std::path::Path;
//! use idjag_ops::listener::Shutdown;
//! use idjag_ops::reload::{Reloadable, WatchOptions};
//!
//! #[derive(Debug)]
//! struct Plan { greeting: String }
//!
//! fn plan(path: &Path) -> Result<Plan, String> {
//!     let text = std::fs::read_to_string(path).map_err(|e| e.kind().to_string())?;
//!     Ok(Plan { greeting: text.trim().to_owned() })
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), String> {
//! let shutdown = Shutdown::new();
//! let plan = Reloadable::load("/etc/idjag/server.toml", plan)?;
//! plan.watch(WatchOptions::default(), shutdown.clone());
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(|axum::Extension(plan): axum::Extension<std::sync::Arc<Plan>>| async move {
//!         plan.greeting.clone()
//!     }))
//!     .layer(plan.layer());
//! # let _ = app; Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::ConfigDuration;
use crate::listener::Shutdown;

type LoadFn<P> = dyn Fn(&Path) -> Result<P, String> + Send + Sync;

/// A plan (the server's configuration, planned) that is replaced on reload.
pub struct Reloadable<P> {
    inner: Arc<Inner<P>>,
}

struct Inner<P> {
    current: ArcSwap<P>,
    path: PathBuf,
    load: Box<LoadFn<P>>,
    generation: AtomicU64,
    digest: Mutex<Option<[u8; 32]>>,
    events: watch::Sender<ReloadEvent>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
}

impl<P> Clone for Reloadable<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<P> fmt::Debug for Reloadable<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloadable")
            .field("path", &self.inner.path)
            .field("generation", &self.inner.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What caused a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// The file's content changed.
    FileChange,
    /// [`Reloadable::reload`] was called.
    Manual,
}

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// The new plan is in use; this is its generation (the start-up plan is 1).
    Applied {
        /// The new generation.
        generation: u64,
    },
    /// The file had changed but its content was the same as the plan's.
    Unchanged,
    /// `load` failed; the running plan stays. The reason is `load`'s error text.
    Refused {
        /// Why.
        reason: String,
    },
}

/// The last reload, as published to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadEvent {
    /// What caused it (`None` before the first reload).
    pub trigger: Option<Trigger>,
    /// How it ended (`None` before the first reload).
    pub outcome: Option<ReloadOutcome>,
    /// The generation in use afterwards.
    pub generation: u64,
}

/// `[reload]`: what triggers a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WatchOptions {
    /// Reload on SIGHUP. Default `true`.
    #[serde(default = "yes")]
    pub sighup: bool,
    /// How often the file's content is checked; `"0"` never (SIGHUP only). Default `"2s"`.
    #[serde(default = "default_poll")]
    pub poll_interval: ConfigDuration,
    /// A change must stay unchanged this long before it is loaded (editors and deployment
    /// tools write in several steps). Default `"500ms"`.
    #[serde(default = "default_debounce")]
    pub debounce: ConfigDuration,
}

fn yes() -> bool {
    true
}
fn default_poll() -> ConfigDuration {
    ConfigDuration::secs(2)
}
fn default_debounce() -> ConfigDuration {
    ConfigDuration::millis(500)
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            sighup: true,
            poll_interval: default_poll(),
            debounce: default_debounce(),
        }
    }
}

impl WatchOptions {
    /// SIGHUP on or off, the file polled every `poll_interval` (zero: never) with `debounce`.
    pub fn new(sighup: bool, poll_interval: Duration, debounce: Duration) -> Self {
        Self {
            sighup,
            poll_interval: ConfigDuration(poll_interval),
            debounce: ConfigDuration(debounce),
        }
    }
}

fn digest(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path)
        .ok()
        .map(|bytes| Sha256::digest(&bytes).into())
}

impl<P: Send + Sync + 'static> Reloadable<P> {
    /// Plans from `path` with `load`; the start-up error is returned as is.
    pub fn load<E: fmt::Display>(
        path: impl Into<PathBuf>,
        load: impl Fn(&Path) -> Result<P, E> + Send + Sync + 'static,
    ) -> Result<Self, E> {
        let path = path.into();
        let plan = load(&path)?;
        Ok(Self::with_plan(path, plan, load))
    }

    /// Starts from `plan`, which the caller already made from `path` with the same planning
    /// pass (a server that needs its first plan before the reloadable exists, e.g. to start
    /// its audit sinks from it); later reloads run `load`.
    pub fn with_plan<E: fmt::Display>(
        path: impl Into<PathBuf>,
        plan: P,
        load: impl Fn(&Path) -> Result<P, E> + Send + Sync + 'static,
    ) -> Self {
        let path = path.into();
        let generation = 1;
        metrics::gauge!("idjag_config_generation").set(generation as f64);
        Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(plan),
                digest: Mutex::new(digest(&path)),
                path,
                load: Box::new(move |path| load(path).map_err(|e| e.to_string())),
                generation: AtomicU64::new(generation),
                events: watch::Sender::new(ReloadEvent {
                    trigger: None,
                    outcome: None,
                    generation,
                }),
                running: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The plan in use. Take it once per request and keep the `Arc`.
    pub fn current(&self) -> Arc<P> {
        self.inner.current.load_full()
    }

    /// The generation in use (1 at start-up, +1 per applied reload).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The configuration file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Every reload's outcome, as it happens.
    pub fn subscribe(&self) -> watch::Receiver<ReloadEvent> {
        self.inner.events.subscribe()
    }

    /// Runs `load` now (on a blocking thread) and applies or refuses its plan.
    pub async fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let _one_at_a_time = self.inner.running.lock().await;
        let inner = self.inner.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let before = digest(&inner.path);
            let plan = (inner.load)(&inner.path);
            (plan, before)
        })
        .await;
        let (plan, file_digest) = match loaded {
            Ok(result) => result,
            Err(_) => (Err("the planning pass panicked".to_owned()), None),
        };
        let outcome = match plan {
            Ok(plan) => {
                self.inner.current.store(Arc::new(plan));
                let generation = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
                *self.inner.digest.lock().unwrap_or_else(|p| p.into_inner()) = file_digest;
                tracing::info!(path = %self.inner.path.display(), ?trigger, generation, "configuration reloaded");
                metrics::gauge!("idjag_config_generation").set(generation as f64);
                ReloadOutcome::Applied { generation }
            }
            Err(reason) => {
                // Remember the refused content: the next poll waits for another change.
                *self.inner.digest.lock().unwrap_or_else(|p| p.into_inner()) = file_digest;
                tracing::warn!(
                    path = %self.inner.path.display(),
                    ?trigger,
                    reason = %reason,
                    "configuration reload refused; keeping the running configuration"
                );
                ReloadOutcome::Refused { reason }
            }
        };
        self.publish(trigger, outcome.clone());
        outcome
    }

    fn publish(&self, trigger: Trigger, outcome: ReloadOutcome) {
        let label = match outcome {
            ReloadOutcome::Applied { .. } => "applied",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Refused { .. } => "refused",
        };
        metrics::counter!("idjag_config_reloads_total", "outcome" => label).increment(1);
        self.inner.events.send_replace(ReloadEvent {
            trigger: Some(trigger),
            outcome: Some(outcome),
            generation: self.generation(),
        });
    }

    /// Reloads on SIGHUP and on file changes (per `options`) until `shutdown`.
    pub fn watch(&self, options: WatchOptions, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.run(options, shutdown).await })
    }

    async fn run(self, options: WatchOptions, shutdown: Shutdown) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = if options.sighup {
            match signal(SignalKind::hangup()) {
                Ok(hangup) => Some(hangup),
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGHUP; configuration reload on file change only");
                    None
                }
            }
        } else {
            None
        };
        let poll = options.poll_interval.0;
        let mut ticker = tokio::time::interval(if poll.is_zero() {
            Duration::from_secs(3600)
        } else {
            poll
        });
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    self.reload(Trigger::Signal).await;
                }
                _ = ticker.tick(), if !poll.is_zero() => {
                    if let Some(changed) = self.settled_change(options.debounce.0, &shutdown).await {
                        if changed {
                            self.reload(Trigger::FileChange).await;
                        } else {
                            self.publish(Trigger::FileChange, ReloadOutcome::Unchanged);
                        }
                    }
                }
                () = shutdown.triggered() => return,
            }
        }
    }

    /// `None`: no change. `Some(true)`: the content changed and then stayed the same for
    /// `debounce`. `Some(false)`: it changed back to the plan's content meanwhile.
    async fn settled_change(&self, debounce: Duration, shutdown: &Shutdown) -> Option<bool> {
        let known = *self.inner.digest.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.inner.path.clone();
        let mut seen = read_digest(path.clone()).await;
        if seen == known {
            return None;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(debounce) => {}
                () = shutdown.triggered() => return None,
            }
            let now = read_digest(path.clone()).await;
            if now == seen {
                return Some(now != known);
            }
            seen = now;
        }
    }

    /// A tower layer that puts the current plan (`Arc<P>`) in each request's extensions when
    /// the request starts (`axum::Extension<Arc<P>>` in handlers).
    pub fn layer(&self) -> PlanLayer<P> {
        PlanLayer {
            plans: self.clone(),
        }
    }
}

async fn read_digest(path: PathBuf) -> Option<[u8; 32]> {
    tokio::task::spawn_blocking(move || digest(&path))
        .await
        .ok()
        .flatten()
}

/// See [`Reloadable::layer`].
pub struct PlanLayer<P> {
    plans: Reloadable<P>,
}

impl<P> Clone for PlanLayer<P> {
    fn clone(&self) -> Self {
        Self {
            plans: self.plans.clone(),
        }
    }
}

impl<P> fmt::Debug for PlanLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanLayer").finish_non_exhaustive()
    }
}

impl<S, P> tower::Layer<S> for PlanLayer<P> {
    type Service = PlanService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        PlanService {
            inner,
            plans: self.plans.clone(),
        }
    }
}

/// See [`Reloadable::layer`].
pub struct PlanService<S, P> {
    inner: S,
    plans: Reloadable<P>,
}

impl<S: Clone, P> Clone for PlanService<S, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            plans: self.plans.clone(),
        }
    }
}

impl<S, P> fmt::Debug for PlanService<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanService").finish_non_exhaustive()
    }
}

impl<S, P, B> tower::Service<http::Request<B>> for PlanService<S, P>
where
    S: tower::Service<http::Request<B>>,
    P: Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request
            .extensions_mut()
            .insert(self.plans.inner.current.load_full());
        self.inner.call(request)
    }
}
