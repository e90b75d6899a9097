//! Listeners: bind from configuration, TLS with certificate reload, and an accept loop that
//! serves an axum [`Router`](axum::Router) (or any tower service) over HTTP/1.1 and HTTP/2.
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:8443"
//! [server.tls]
//! cert = "/etc/idjag/tls/chain.pem"
//! key = "/etc/idjag/tls/key.pem"
//!
//! [admin]
//! listen = "127.0.0.1:9464"
//! tls = "off"
//! plain_http_reason = "loopback only; scraped by the local Prometheus agent"
//! ```
//!
//! Plain HTTP is never a default: a listener without TLS says so with `tls = "off"` and a
//! `plain_http_reason` (typically: a TLS-terminating proxy in front, see
//! `docs/operations.md`).
//!
//! ## What the accept loop enforces
//!
//! - `max_connections` open connections; more are closed at accept. `max_connections_per_ip`
//!   per client address (per /64 for IPv6, IPv4-mapped addresses count as IPv4); more from
//!   the same address are closed at accept. Both are counted in
//!   `idjag_http_connections_refused_total{listener, reason}`.
//! - The TLS handshake and then each request head must arrive within `header_read_timeout`.
//!   On HTTP/1.1 the wait for the next request of a kept-alive connection counts too (hyper
//!   starts the timer when the connection goes idle), so an idle HTTP/1.1 connection closes
//!   after `header_read_timeout`: keep it above the idle time of the clients' connection pools
//!   (httpx 5 s, Node's undici 4 s), or a client may send a request on a connection the server
//!   is closing at that moment.
//! - A connection with no request in flight for `idle_timeout` is closed gracefully (HTTP/2:
//!   GOAWAY), so idle HTTP/2 connections do not pin a slot forever. HTTP/2 keep-alive pings
//!   every `http2_keep_alive_interval` close connections whose peer went away.
//! - Graceful shutdown through a [`Shutdown`] handle: the socket is closed (new connections are
//!   refused), idle connections close, in-flight requests and open streams (an SSE response
//!   counts until its body ends) finish, up to `drain_timeout`; what is still open then is
//!   closed.
//!
//! Each request carries a [`ConnectionInfo`] and axum's `ConnectInfo<SocketAddr>` in its
//! extensions. Gauges: `idjag_http_connections_open{listener}`,
//! `idjag_http_requests_in_flight{listener}` (a request is in flight until its response body
//! ends, so open streams count).
//!
//! ## Separate listeners
//!
//! A server runs its public listener and an admin listener (`/metrics`, `/admin`, health) on
//! different addresses; see [`admin`] for the admin router and for checks that those paths
//! are absent from the public one.

pub mod admin;
mod tls;
mod unread;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Deserializer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::config::{ConfigDuration, ConfigError, join};

pub use tls::{CertReload, CertReloader, TlsConfig, TlsError, TlsVersion};

/// The `tls` key of a listener: a `[…tls]` table with the certificate files, or `"off"`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsSetting {
    /// TLS with these files.
    On(TlsConfig),
    /// Plain HTTP (`tls = "off"`); `plain_http_reason` must say why.
    Off,
}

impl serde::Serialize for TlsSetting {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::On(tls) => tls.serialize(serializer),
            Self::Off => serializer.serialize_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for TlsSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(deserializer)? {
            toml::Value::String(text) if text == "off" => Ok(Self::Off),
            table @ toml::Value::Table(_) => TlsConfig::deserialize(table)
                .map(Self::On)
                .map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "expected a table with `cert` and `key`, or \"off\" (with plain_http_reason)",
            )),
        }
    }
}

/// `[server]` or `[admin]`: where a listener binds, its TLS and its connection limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// Address and port, e.g. `"0.0.0.0:8443"` or `"[::]:8443"`. Required.
    pub listen: SocketAddr,
    /// `[….tls]` with `cert` and `key`, or `"off"`. Required: plain HTTP is never implied.
    pub tls: TlsSetting,
    /// Why this listener speaks plain HTTP; required with `tls = "off"`, refused otherwise.
    #[serde(default)]
    pub plain_http_reason: Option<String>,
    /// Most open connections; more are closed at accept. Default 10000.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Most open connections from one client address (IPv6: one /64). Default 256.
    #[serde(default = "defaults::max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Largest request head in bytes (HTTP/1 read buffer, HTTP/2 header list); at least
    /// 8192. Default 16384.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Time for the TLS handshake and then for each request head; on HTTP/1.1 also the most a
    /// kept-alive connection waits idle for its next request. Keep it above the clients' pool
    /// idle time (httpx 5 s, Node 4 s). Default `"10s"`.
    #[serde(default = "defaults::header_read_timeout")]
    pub header_read_timeout: ConfigDuration,
    /// A connection without a request in flight for this long is closed; `"0"` never.
    /// Default `"5m"`.
    #[serde(default = "defaults::idle_timeout")]
    pub idle_timeout: ConfigDuration,
    /// HTTP/2 PING interval; a peer that does not answer within the same time is dropped.
    /// Default `"20s"`.
    #[serde(default = "defaults::http2_keep_alive_interval")]
    pub http2_keep_alive_interval: ConfigDuration,
    /// How long shutdown waits for in-flight requests and open streams. Default `"30s"`.
    #[serde(default = "defaults::drain_timeout")]
    pub drain_timeout: ConfigDuration,
}

mod defaults {
    use crate::config::ConfigDuration;

    pub(super) fn max_connections() -> usize {
        10_000
    }
    pub(super) fn max_connections_per_ip() -> usize {
        256
    }
    pub(super) fn max_header_bytes() -> usize {
        16 * 1024
    }
    pub(super) fn header_read_timeout() -> ConfigDuration {
        ConfigDuration::secs(10)
    }
    pub(super) fn idle_timeout() -> ConfigDuration {
        ConfigDuration::secs(300)
    }
    pub(super) fn http2_keep_alive_interval() -> ConfigDuration {
        ConfigDuration::secs(20)
    }
    pub(super) fn drain_timeout() -> ConfigDuration {
        ConfigDuration::secs(30)
    }
}

impl ListenerConfig {
    /// Every key of the table, for servers that keep their own keys in the same table (the
    /// gateway's `[server]`): split these off and deserialize them as a `ListenerConfig`.
    pub const KEYS: &'static [&'static str] = &[
        "listen",
        "tls",
        "plain_http_reason",
        "max_connections",
        "max_connections_per_ip",
        "max_header_bytes",
        "header_read_timeout",
        "idle_timeout",
        "http2_keep_alive_interval",
        "drain_timeout",
    ];

    /// A TLS listener on `listen`, every limit at its default.
    pub fn tls(listen: SocketAddr, tls: TlsConfig) -> Self {
        Self::with(listen, TlsSetting::On(tls), None)
    }

    /// A plain-HTTP listener on `listen`; `reason` says why (e.g. "nginx terminates TLS").
    pub fn plain(listen: SocketAddr, reason: impl Into<String>) -> Self {
        Self::with(listen, TlsSetting::Off, Some(reason.into()))
    }

    fn with(listen: SocketAddr, tls: TlsSetting, plain_http_reason: Option<String>) -> Self {
        Self {
            listen,
            tls,
            plain_http_reason,
            max_connections: defaults::max_connections(),
            max_connections_per_ip: defaults::max_connections_per_ip(),
            max_header_bytes: defaults::max_header_bytes(),
            header_read_timeout: defaults::header_read_timeout(),
            idle_timeout: defaults::idle_timeout(),
            http2_keep_alive_interval: defaults::http2_keep_alive_interval(),
            drain_timeout: defaults::drain_timeout(),
        }
    }

    /// Checks what serde cannot; `at` is the key of this table (`server`, `admin`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let reason = self
            .plain_http_reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        match (&self.tls, reason) {
            (TlsSetting::Off, None) => {
                return Err(ConfigError::new(
                    join(at, "plain_http_reason"),
                    "required with tls = \"off\": say what terminates TLS in front of this listener",
                ));
            }
            (TlsSetting::On(_), Some(_)) => {
                return Err(ConfigError::new(
                    join(at, "plain_http_reason"),
                    "only allowed with tls = \"off\"",
                ));
            }
            (TlsSetting::On(tls), None) => tls.validate(&join(at, "tls"))?,
            (TlsSetting::Off, Some(_)) => {}
        }
        if self.max_connections == 0 || self.max_connections > u32::MAX as usize {
            return Err(ConfigError::new(
                join(at, "max_connections"),
                "must be between 1 and 4294967295",
            ));
        }
        if self.max_connections_per_ip == 0 || self.max_connections_per_ip > self.max_connections {
            return Err(ConfigError::new(
                join(at, "max_connections_per_ip"),
                "must be between 1 and max_connections",
            ));
        }
        if self.max_header_bytes < 8192 {
            return Err(ConfigError::new(
                join(at, "max_header_bytes"),
                "must be at least 8192",
            ));
        }
        if self.header_read_timeout.0.is_zero() {
            return Err(ConfigError::new(
                join(at, "header_read_timeout"),
                "must be more than 0",
            ));
        }
        if self.http2_keep_alive_interval.0.is_zero() {
            return Err(ConfigError::new(
                join(at, "http2_keep_alive_interval"),
                "must be more than 0",
            ));
        }
        Ok(())
    }
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate, key or client CA files are not usable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Starts, and observes, the graceful shutdown of every listener it was given to.
///
/// Clones share one state. [`Shutdown::trigger`] starts the drain; request handlers and
/// streams can await [`Shutdown::triggered`] to end early (e.g. send a final SSE event).
#[derive(Debug, Clone)]
pub struct Shutdown {
    state: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Starts the shutdown (idempotent).
    pub fn trigger(&self) {
        self.state.send_replace(true);
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        *self.state.borrow()
    }

    /// Resolves once the shutdown has started.
    pub async fn triggered(&self) {
        let mut receiver = self.state.subscribe();
        let _ = receiver.wait_for(|triggered| *triggered).await;
    }

    /// Triggers the shutdown on SIGTERM or SIGINT (Ctrl-C). Needs a Tokio runtime.
    pub fn trigger_on_signals(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot listen for SIGTERM/SIGINT; shutdown only by the handle");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                () = this.triggered() => return,
            };
            tracing::info!(signal = name, "shutting down");
            this.trigger();
        })
    }
}

/// What a request knows about its connection (in the request extensions).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The listener's name (`public`, `admin`, …).
    pub listener: Arc<str>,
    /// The peer's address (the proxy's, behind one: see [`crate::audit::TrustedProxies`]).
    pub remote: SocketAddr,
    /// The local address the connection arrived on.
    pub local: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// How [`Listener::serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeSummary {
    /// Connections still open at the end of `drain_timeout`, closed without finishing.
    pub connections_forced: usize,
}

/// A bound listener, ready to serve.
pub struct Listener {
    name: Arc<str>,
    tcp: TcpListener,
    tls: Option<(tokio_rustls::TlsAcceptor, Arc<CertReloader>, Duration)>,
    config: ListenerConfig,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("name", &self.name)
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Validates `config`, loads the TLS files and binds `config.listen`. `name` labels logs
    /// and metrics (`public`, `admin`).
    pub async fn bind(name: &str, config: &ListenerConfig) -> Result<Self, ListenerError> {
        config.validate(name)?;
        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|source| ListenerError::Bind {
                address: config.listen,
                source,
            })?;
        Self::from_tcp(name, tcp, config)
    }

    /// A listener on a socket bound elsewhere (systemd socket activation, tests).
    pub fn from_tcp(
        name: &str,
        tcp: TcpListener,
        config: &ListenerConfig,
    ) -> Result<Self, ListenerError> {
        config.validate(name)?;
        let tls = match &config.tls {
            TlsSetting::Off => {
                tracing::info!(
                    listener = name,
                    reason = config.plain_http_reason.as_deref().unwrap_or_default(),
                    "plain HTTP listener (tls = \"off\")"
                );
                None
            }
            TlsSetting::On(tls) => {
                let certs = CertReloader::load(name, tls)?;
                let server = tls::server_config(tls, certs.clone())?;
                Some((
                    tokio_rustls::TlsAcceptor::from(server),
                    certs,
                    tls.reload_interval.0,
                ))
            }
        };
        Ok(Self {
            name: Arc::from(name),
            tcp,
            tls,
            config: config.clone(),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The certificate reloader of a TLS listener.
    pub fn certificates(&self) -> Option<&Arc<CertReloader>> {
        self.tls.as_ref().map(|(_, certs, _)| certs)
    }

    /// Serves `service` until `shutdown` is triggered, then drains (see the module docs).
    ///
    /// `service` is an axum `Router` or any tower service of `Request<axum::body::Body>`.
    pub async fn serve<S>(self, service: S, shutdown: Shutdown) -> ServeSummary
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let Self {
            name,
            tcp,
            tls,
            config,
        } = self;
        let builder = Arc::new(connection_builder(&config));
        let max = config.max_connections;
        let permits = Arc::new(Semaphore::new(max));
        let per_ip = Arc::new(PerIp::new(config.max_connections_per_ip));
        let (force, _) = watch::channel(false);
        let gauges = Gauges::new(&name);
        let acceptor = tls.map(|(acceptor, certs, interval)| {
            tokio::spawn(certs.watch(interval, shutdown.clone()));
            acceptor
        });
        let local = tcp.local_addr().ok();
        tracing::info!(listener = %name, address = ?local, tls = acceptor.is_some(), "listening");
        loop {
            let (stream, remote) = tokio::select! {
                accepted = tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(listener = %name, %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.triggered() => break,
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                refuse(&name, remote, "max_connections");
                continue;
            };
            let Some(ip_permit) = per_ip.acquire(remote.ip()) else {
                refuse(&name, remote, "max_connections_per_ip");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let task = ConnectionTask {
                info: ConnectionInfo {
                    listener: name.clone(),
                    remote,
                    local: stream.local_addr().unwrap_or(remote),
                    tls: acceptor.is_some(),
                },
                builder: builder.clone(),
                shutdown: shutdown.clone(),
                force: force.subscribe(),
                idle_timeout: config.idle_timeout.0,
                handshake_timeout: config.header_read_timeout.0,
                gauges: gauges.clone(),
            };
            let acceptor = acceptor.clone();
            let service = service.clone();
            tokio::spawn(async move {
                task.run(stream, acceptor, service).await;
                drop(ip_permit);
                drop(permit);
            });
        }
        drop(tcp);
        tracing::info!(listener = %name, "draining: no new connections; finishing open requests");
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(config.drain_timeout.0, permits.acquire_many(all)).await;
        let mut connections_forced = 0;
        if drained.is_err() {
            connections_forced = max - permits.available_permits();
            tracing::warn!(
                listener = %name,
                connections = connections_forced,
                "drain timeout over; closing the remaining connections"
            );
            force.send_replace(true);
            let _ = permits.acquire_many(all).await;
        }
        tracing::info!(listener = %name, "stopped");
        ServeSummary { connections_forced }
    }
}

fn refuse(listener: &str, remote: SocketAddr, reason: &'static str) {
    tracing::debug!(listener, %remote, reason, "connection refused at accept");
    metrics::counter!(
        "idjag_http_connections_refused_total",
        "listener" => listener.to_owned(),
        "reason" => reason
    )
    .increment(1);
}

/// The HTTP/1 + HTTP/2 connection builder: timers, head limits, keep-alive.
fn connection_builder(config: &ListenerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout.0)
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(config.http2_keep_alive_interval.0)
        .keep_alive_timeout(config.http2_keep_alive_interval.0);
    builder
}

#[derive(Clone)]
struct Gauges {
    connections: metrics::Gauge,
    in_flight: metrics::Gauge,
}

impl Gauges {
    fn new(listener: &str) -> Self {
        Self {
            connections: metrics::gauge!("idjag_http_connections_open", "listener" => listener.to_owned()),
            in_flight: metrics::gauge!("idjag_http_requests_in_flight", "listener" => listener.to_owned()),
        }
    }
}

/// Open connections per client address.
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// The key a client address is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by
/// its /64 (one host usually holds a whole /64).
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

impl PerIp {
    fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let key = ip_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpPermit {
            table: self.clone(),
            key,
        })
    }
}

struct IpPermit {
    table: Arc<PerIp>,
    key: IpAddr,
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Requests in flight on one connection, and since when it has had none.
struct Activity {
    active: AtomicUsize,
    idle_since: Mutex<Instant>,
    in_flight: metrics::Gauge,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> RequestGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.in_flight.increment(1.0);
        RequestGuard(self.clone())
    }

    /// When the connection may be closed for idleness, if nothing starts before.
    fn idle_deadline(&self, idle_timeout: Duration) -> Instant {
        if self.active.load(Ordering::Acquire) > 0 {
            Instant::now() + idle_timeout
        } else {
            *self.idle_since.lock().unwrap_or_else(|p| p.into_inner()) + idle_timeout
        }
    }

    fn is_idle_past(&self, idle_timeout: Duration) -> bool {
        self.active.load(Ordering::Acquire) == 0
            && self
                .idle_since
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
                >= idle_timeout
    }
}

/// Ends a request's activity when dropped (with its response body, or its future).
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.decrement(1.0);
        let mut idle_since = self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner());
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            *idle_since = Instant::now();
        }
    }
}

/// A response body that keeps its request in flight until it ends.
struct TrackedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The hyper service of one connection: adds the connection's extensions and tracks activity.
#[derive(Clone)]
struct ConnService<S> {
    inner: S,
    info: ConnectionInfo,
    activity: Arc<Activity>,
}

impl<S> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = self.activity.begin();
        let version = request.version();
        let (parts, body) = request.into_parts();
        let (body, read) = unread::WatchedBody::new(body);
        let mut request = Request::from_parts(parts, Body::new(body));
        request.extensions_mut().insert(self.info.clone());
        request
            .extensions_mut()
            .insert(ConnectInfo(self.info.remote));
        let service = self.inner.clone();
        Box::pin(async move {
            let mut response = service.oneshot(request).await?;
            unread::close_if_unread(version, &read, &mut response);
            Ok(response.map(|inner| TrackedBody {
                inner,
                _guard: guard,
            }))
        })
    }
}

struct ConnectionTask {
    info: ConnectionInfo,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shutdown: Shutdown,
    force: watch::Receiver<bool>,
    idle_timeout: Duration,
    handshake_timeout: Duration,
    gauges: Gauges,
}

impl ConnectionTask {
    async fn run<S>(
        self,
        stream: TcpStream,
        acceptor: Option<tokio_rustls::TlsAcceptor>,
        service: S,
    ) where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        self.gauges.connections.increment(1.0);
        match acceptor {
            None => self.serve(stream, service).await,
            Some(acceptor) => {
                match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => self.serve(stream, service).await,
                    Ok(Err(error)) => {
                        tracing::debug!(listener = %self.info.listener, remote = %self.info.remote, %error, "TLS handshake failed");
                        self.gauges.connections.decrement(1.0);
                    }
                    Err(_) => {
                        tracing::debug!(listener = %self.info.listener, remote = %self.info.remote, "TLS handshake timed out");
                        self.gauges.connections.decrement(1.0);
                    }
                }
            }
        }
    }

    async fn serve<I, S>(mut self, io: I, service: S)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let activity = Arc::new(Activity {
            active: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            in_flight: self.gauges.in_flight.clone(),
        });
        let service = ConnService {
            inner: service,
            info: self.info.clone(),
            activity: activity.clone(),
        };
        let connection = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut closing = false;
        let idle = !self.idle_timeout.is_zero();
        loop {
            let deadline = activity.idle_deadline(self.idle_timeout);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(listener = %self.info.listener, remote = %self.info.remote, %error, "connection ended with an error");
                    }
                    break;
                }
                () = self.shutdown.triggered(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep_until(deadline), if idle && !closing => {
                    if activity.is_idle_past(self.idle_timeout) {
                        tracing::debug!(listener = %self.info.listener, remote = %self.info.remote, "closing an idle connection");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
                _ = self.force.wait_for(|force| *force) => break,
            }
        }
        self.gauges.connections.decrement(1.0);
    }
}

/// Serves a public and an optional admin listener until `shutdown`, each with its own router.
///
/// Returns both summaries once both have drained.
pub async fn serve_pair<P, A>(
    public: (Listener, P),
    admin: Option<(Listener, A)>,
    shutdown: Shutdown,
) -> (ServeSummary, Option<ServeSummary>)
where
    P: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    P::Future: Send + 'static,
    A: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    A::Future: Send + 'static,
{
    let public = public.0.serve(public.1, shutdown.clone());
    match admin {
        None => (public.await, None),
        Some((listener, service)) => {
            let (p, a) = tokio::join!(public, listener.serve(service, shutdown));
            (p, Some(a))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ListenerConfig, ConfigError> {
        #[derive(Deserialize)]
        struct Root {
            server: ListenerConfig,
        }
        let root: Root = crate::config::from_table(toml::from_str(text).unwrap())?;
        root.server.validate("server")?;
        Ok(root.server)
    }

    #[test]
    fn tls_is_required_and_plain_http_needs_a_reason() {
        let error = parse("[server]\nlisten = \"127.0.0.1:1\"").unwrap_err();
        assert_eq!(error.key, "server");
        assert_eq!(error.problem, "missing field `tls`");
        let error = parse("[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"").unwrap_err();
        assert_eq!(error.key, "server.plain_http_reason");
        let ok = parse(
            "[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"\nplain_http_reason = \"nginx in front\"",
        )
        .unwrap();
        assert_eq!(ok.tls, TlsSetting::Off);
        let error = parse("[server]\nlisten = \"127.0.0.1:1\"\ntls = \"on\"").unwrap_err();
        assert_eq!(error.key, "server.tls");
        assert_eq!(
            error.problem,
            "expected a table with `cert` and `key`, or \"off\" (with plain_http_reason)"
        );
    }

    #[test]
    fn tls_table_defaults_and_checks() {
        let config = parse(
            "[server]\nlisten = \"0.0.0.0:8443\"\n[server.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"",
        )
        .unwrap();
        let TlsSetting::On(tls) = &config.tls else {
            panic!("tls expected")
        };
        assert_eq!(tls.alpn, ["h2", "http/1.1"]);
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        assert_eq!(tls.reload_interval, ConfigDuration::secs(10));
        assert_eq!(config.max_connections, 10_000);
        assert_eq!(config.idle_timeout, ConfigDuration::secs(300));
        let error = parse(
            "[server]\nlisten = \"0.0.0.0:8443\"\n[server.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nalpn = [\"h3\"]",
        )
        .unwrap_err();
        assert_eq!(error.key, "server.tls.alpn[0]");
        let error = parse(
            "[server]\nlisten = \"0.0.0.0:8443\"\nmax_header_bytes = 100\n[server.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "server.max_header_bytes: must be at least 8192"
        );
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ip_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
