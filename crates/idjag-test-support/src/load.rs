//! Loopback benchmarks of a server process (feature `load`): the crypto limit of a token
//! endpoint (one ES256 verify plus one sign per request), a lean load of prepared `POST`
//! requests over keep-alive HTTP/1.1 connections, and the CPU time the server and the load
//! each spent, so that a run gives two ratios: requests per second against the crypto limit
//! on the same machine (the load shares its cores), and the server's requests per CPU-second
//! against crypto pairs per CPU-second (what the server would reach on cores of its own).
//!
//! ```no_run
//! # async fn run(server_pid: u32, port: u16, bodies: Vec<String>) {
//! use std::time::Duration;
//! use idjag_test_support::load::{PostLoad, crypto_limit};
//!
//! let limit = crypto_limit(Duration::from_secs(5));
//! let load = PostLoad::new(port, "/token")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .header("authorization", "Basic Y2xpZW50OnNlY3JldA==");
//! let run = load.send_each(bodies, 32, Duration::from_secs(5), server_pid).await;
//! println!("{}", run.report(&limit));
//! # }
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use idjag_core::{Algorithm, SigningKey};

/// One ES256 verify plus one ES256 sign, on every core at once.
#[derive(Debug, Clone, Copy)]
pub struct CryptoLimit {
    /// Pairs per second over all cores.
    pub per_second: f64,
    /// The cores that ran them.
    pub cores: usize,
    /// The CPU time one pair took (measured; the cores' time when `/proc` is missing).
    pub per_pair: Duration,
}

/// The crypto limit of a token endpoint that verifies one ES256 signature and makes one per
/// request: one `verify` plus one `sign` (idjag-core's default backend, a 600-byte signing
/// input, the size of an ID-JAG's) in a loop on every core at once for `duration`.
pub fn crypto_limit(duration: Duration) -> CryptoLimit {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let (started, cpu_before) = (Instant::now(), own_cpu_time());
    let pairs: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(move || {
                    let key = SigningKey::generate(Algorithm::Es256).expect("an ES256 key");
                    let verifying = key.verifying_key().expect("its public key");
                    let input = vec![b'e'; 600];
                    let signature = key.sign(&input).expect("a signature");
                    let mut pairs = 0u64;
                    while started.elapsed() < duration {
                        assert!(verifying.verify(std::hint::black_box(&input), &signature));
                        std::hint::black_box(key.sign(&input).expect("a signature"));
                        pairs += 1;
                    }
                    pairs
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let elapsed = started.elapsed();
    let cpu = match (cpu_before, own_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => elapsed * u32::try_from(cores).unwrap_or(1),
    };
    CryptoLimit {
        per_second: pairs as f64 / elapsed.as_secs_f64(),
        cores,
        per_pair: cpu / u32::try_from(pairs.max(1)).unwrap_or(u32::MAX),
    }
}

/// The CPU time (user plus system, every thread) process `pid` has used so far, from
/// `/proc/<pid>/stat` (Linux); `None` elsewhere or once the process is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    cpu_time_of(&format!("/proc/{pid}/stat"))
}

/// The CPU time this process has used so far (see [`cpu_time`]).
pub fn own_cpu_time() -> Option<Duration> {
    cpu_time_of("/proc/self/stat")
}

fn cpu_time_of(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks()?))
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), the unit of `/proc/*/stat`.
fn clock_ticks() -> Option<f64> {
    static TICKS: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    })
}

/// `POST` requests to one path of a loopback server, each with its own prepared body, over
/// hyper's HTTP/1.1 client connections (no pool, no URL parsing: the load costs little next
/// to the server).
#[derive(Clone)]
pub struct PostLoad {
    port: u16,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Header names only: the values carry the client's credentials.
impl std::fmt::Debug for PostLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostLoad")
            .field("port", &self.port)
            .field("path", &self.path)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PostLoad {
    /// Requests to `http://127.0.0.1:<port><path>`.
    pub fn new(port: u16, path: &str) -> Self {
        Self {
            port,
            path: path.to_owned(),
            headers: vec![(
                HOST,
                HeaderValue::from_str(&format!("127.0.0.1:{port}")).unwrap(),
            )],
        }
    }

    /// Sends `name: value` with every request.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_str(value).expect("a valid header value"),
        ));
        self
    }

    /// Sends each of `bodies` once, from `connections` keep-alive connections, until every
    /// body was sent or `duration` has passed; counts `200` answers as successes and measures
    /// the CPU time of the server process `server_pid` and of this process meanwhile.
    pub async fn send_each(
        &self,
        bodies: Vec<String>,
        connections: usize,
        duration: Duration,
        server_pid: u32,
    ) -> LoadRun {
        let bodies: Arc<Vec<Bytes>> = Arc::new(bodies.into_iter().map(Bytes::from).collect());
        let shared = Arc::new(Shared {
            next: AtomicUsize::new(0),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections {
            senders.push(self.connect().await);
        }
        let (server_before, own_before) = (cpu_time(server_pid), own_cpu_time());
        let started = Instant::now();
        let tasks: Vec<_> = senders
            .into_iter()
            .map(|mut sender| {
                let (load, bodies, shared) = (self.clone(), bodies.clone(), shared.clone());
                tokio::spawn(async move {
                    while started.elapsed() < duration {
                        let i = shared.next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { return };
                        let granted = load.send(&mut sender, body.clone()).await;
                        let counter = if granted { &shared.ok } else { &shared.failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a load task");
        }
        let elapsed = started.elapsed();
        let spent = |before: Option<Duration>, after: Option<Duration>| {
            Some(after?.saturating_sub(before?))
        };
        LoadRun {
            ok: shared.ok.load(Ordering::Relaxed),
            failed: shared.failed.load(Ordering::Relaxed),
            elapsed,
            server_cpu: spent(server_before, cpu_time(server_pid)),
            load_cpu: spent(own_before, own_cpu_time()),
        }
    }

    async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("the server accepts a connection");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 connection");
        tokio::spawn(connection);
        sender
    }

    async fn send(
        &self,
        sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        body: Bytes,
    ) -> bool {
        let mut request = Request::post(self.path.as_str())
            .body(Full::new(body))
            .expect("a request");
        request.headers_mut().extend(self.headers.iter().cloned());
        if sender.ready().await.is_err() {
            return false;
        }
        let Ok(response) = sender.send_request(request).await else {
            return false;
        };
        let status = response.status();
        // The answer is read to its end so the connection can carry the next request.
        response.into_body().collect().await.is_ok() && status == hyper::StatusCode::OK
    }
}

struct Shared {
    next: AtomicUsize,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// What [`PostLoad::send_each`] measured.
#[derive(Debug, Clone, Copy)]
pub struct LoadRun {
    /// Requests answered `200`.
    pub ok: u64,
    /// Requests answered otherwise, or not at all.
    pub failed: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// The server process's CPU time meanwhile (`None` without `/proc`).
    pub server_cpu: Option<Duration>,
    /// This process's CPU time meanwhile: the load's cost.
    pub load_cpu: Option<Duration>,
}

impl LoadRun {
    /// Successful requests per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The server's CPU time per successful request.
    pub fn server_cpu_per_request(&self) -> Option<Duration> {
        Some(self.server_cpu? / u32::try_from(self.ok.max(1)).ok()?)
    }

    /// The load's CPU time per successful request.
    pub fn load_cpu_per_request(&self) -> Option<Duration> {
        Some(self.load_cpu? / u32::try_from(self.ok.max(1)).ok()?)
    }

    /// The report lines: rate and both ratios against `limit` (goal ≥ 0.7).
    pub fn report(&self, limit: &CryptoLimit) -> String {
        let mut out = String::new();
        let per_pair = limit.per_pair;
        let _ = writeln!(
            out,
            "crypto limit (1 verify + 1 sign, {} cores): {:.0}/s, {:.1} µs of CPU per pair",
            limit.cores,
            limit.per_second,
            micros(per_pair)
        );
        let _ = writeln!(
            out,
            "server: {} requests in {:.2} s = {:.0}/s; against the crypto limit on the same cores (the load shares them): {:.2}",
            self.ok,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.per_second() / limit.per_second
        );
        if let (Some(server), Some(load)) =
            (self.server_cpu_per_request(), self.load_cpu_per_request())
        {
            let _ = writeln!(
                out,
                "CPU per request: server {:.1} µs, load {:.1} µs; crypto per pair / server per request: {:.2} (goal >= 0.7)",
                micros(server),
                micros(load),
                per_pair.as_secs_f64() / server.as_secs_f64()
            );
        }
        out
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_header_names_never_their_values() {
        let load = PostLoad::new(8080, "/token").header("authorization", "Basic c2VjcmV0");
        assert_eq!(
            format!("{load:?}"),
            r#"PostLoad { port: 8080, path: "/token", headers: ["host", "authorization"] }"#
        );
    }
}
