//! Test support: real `redis-server` processes, backend fixtures, a clock that follows real
//! time for Redis.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idjag_core::{Clock, SystemClock, TestClock};
use idjag_store::{EmbeddedStore, MemoryStore, RedisOptions, RedisStore, Store};

/// The `redis-server` binary: `$IDJAG_REDIS_SERVER`, else `redis-server` from `PATH`. Panics
/// with install instructions when there is none: these tests never skip silently.
pub(crate) fn redis_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("IDJAG_REDIS_SERVER") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "redis-server was not found in PATH. The idjag-store tests run a real Redis: \
             install it (Debian/Ubuntu: `apt-get install redis-server`) or set \
             IDJAG_REDIS_SERVER to the path of a redis-server binary (Redis 7.0 or later)."
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A `redis-server` on a loopback port, with its own directory; killed on drop.
pub(crate) struct RedisServer {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    tls: bool,
}

impl RedisServer {
    /// A server persisting every write (`appendonly yes`, `appendfsync always`), so a restart
    /// loses nothing acknowledged.
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    pub(crate) fn start_with(extra: &[&str]) -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls: extra.contains(&"--tls-port"),
        };
        server.spawn();
        server
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        // A TLS server listens on the TLS port only.
        let plain_port = if self.tls { "0" } else { port.as_str() };
        let mut args: Vec<String> = vec![
            "--port".into(),
            plain_port.into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.path().display().to_string(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            "always".into(),
            "--save".into(),
            String::new(),
            "--daemonize".into(),
            "no".into(),
            "--loglevel".into(),
            "warning".into(),
        ];
        args.extend(self.args.iter().map(|a| {
            if a == "{port}" {
                port.clone()
            } else {
                a.clone()
            }
        }));
        let binary = redis_server_binary();
        let child = Command::new(&binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}). The idjag-store tests run a real Redis: install it \
                     (Debian/Ubuntu: `apt-get install redis-server`) or set IDJAG_REDIS_SERVER \
                     to a redis-server binary (Redis 7.0 or later).",
                    binary.display()
                )
            });
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                if self.tls {
                    return; // accepting connections is enough; TLS handshakes need a client
                }
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok()
                    && let Ok(n) = s.read(&mut buf)
                    && (buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL) mid-traffic.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (the append-only file is replayed).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Which backend a conformance test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Memory,
    Embedded,
    Redis,
}

/// One backend under test, with its clock.
pub(crate) struct Fixture {
    pub(crate) backend: Backend,
    pub(crate) clock: TestClock,
    pub(crate) store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _redis: Option<RedisServer>,
}

pub(crate) fn real_now_ms() -> i64 {
    let d = SystemClock::shared()
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(d.as_millis()).expect("fits")
}

pub(crate) fn clock_ms(clock: &TestClock) -> i64 {
    let d = clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(d.as_millis()).expect("fits")
}

/// A test clock at the real time (Redis expires keys on its own clock).
pub(crate) fn real_time_clock() -> TestClock {
    let clock = TestClock::at_unix(0);
    clock.advance(Duration::from_millis(
        u64::try_from(real_now_ms()).expect("positive"),
    ));
    clock
}

pub(crate) fn redis_store(server: &RedisServer, clock: &TestClock) -> RedisStore {
    RedisStore::new(RedisOptions::new(server.url()), clock.shared()).expect("redis store")
}

impl Fixture {
    pub(crate) fn new(backend: Backend) -> Self {
        match backend {
            Backend::Memory => {
                let clock = real_time_clock();
                Self {
                    backend,
                    store: Arc::new(MemoryStore::new(clock.shared())),
                    clock,
                    _dir: None,
                    _redis: None,
                }
            }
            Backend::Embedded => {
                let clock = real_time_clock();
                let dir = tempfile::tempdir().expect("temp dir");
                let store = EmbeddedStore::open(dir.path().join("state.redb"), clock.shared())
                    .expect("open embedded store");
                Self {
                    backend,
                    store: Arc::new(store),
                    clock,
                    _dir: Some(dir),
                    _redis: None,
                }
            }
            Backend::Redis => {
                let clock = real_time_clock();
                let server = RedisServer::start();
                let store = redis_store(&server, &clock);
                Self {
                    backend,
                    store: Arc::new(store),
                    clock,
                    _dir: None,
                    _redis: Some(server),
                }
            }
        }
    }

    /// Now, in milliseconds, on the fixture's clock.
    pub(crate) fn now_ms(&self) -> i64 {
        clock_ms(&self.clock)
    }

    /// Now, in seconds.
    pub(crate) fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Moves time forward: the test clock alone for the in-process backends; for Redis, real
    /// time passes too (Redis expires keys on its own clock), and the test clock follows it.
    pub(crate) async fn advance(&self, by: Duration) {
        if self.backend == Backend::Redis {
            tokio::time::sleep(by).await;
            let lag = real_now_ms() - self.now_ms();
            if lag > 0 {
                self.clock
                    .advance(Duration::from_millis(u64::try_from(lag).expect("positive")));
            }
        } else {
            self.clock.advance(by);
        }
    }
}

/// Generates one `#[tokio::test]` per backend for each conformance function.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Fixture::new($crate::support::Backend::Memory)).await;
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Fixture::new($crate::support::Backend::Embedded)).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Fixture::new($crate::support::Backend::Redis)).await;
                }
            )*
        }
    };
}
