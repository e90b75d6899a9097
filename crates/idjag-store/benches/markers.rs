//! Single-use marker throughput (`SingleUseMarkers::record`: a fresh ID-JAG `(iss, jti)` with
//! a per-client quota) on the memory, embedded and Redis backends, one at a time and 64 in
//! flight. At the end it prints each backend's throughput as a ratio to memory, from the
//! iterations criterion measured in this run.
//!
//! Needs `redis-server` in PATH (or `IDJAG_REDIS_SERVER`): `apt-get install redis-server`.
//!
//! ```text
//! cargo bench -p idjag-store --bench markers
//! ```

#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idjag_core::SystemClock;
use idjag_core::server::ReplayKey;
use idjag_store::{
    EmbeddedStore, MarkerKind, MemoryStore, RedisOptions, RedisStore, SingleUseMarkers, Store,
};

static NEXT: AtomicU64 = AtomicU64::new(0);

type Totals = HashMap<(String, usize), (u64, Duration)>;

/// Operations and time of every measured iteration, per (backend, in flight).
static TOTALS: LazyLock<Mutex<Totals>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The server, its port, and its directory (removed on drop).
struct Redis(Child, u16, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Redis {
    let bin = std::env::var_os("IDJAG_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    // The persistence the crate docs recommend for single use across restarts.
    let child = Command::new(&bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--appendfsync", "always", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {bin:?} ({e}): install redis-server (apt-get install redis-server) or set IDJAG_REDIS_SERVER")
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis(child, port, dir)
}

async fn record(markers: &SingleUseMarkers, until: i64) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let key = ReplayKey::new("https://idp.example", &n.to_string());
    let holder = format!("client-{}", n % 100);
    markers.record(key, &holder, until).await.expect("recorded");
}

async fn run(markers: &SingleUseMarkers, until: i64, ops: u64, in_flight: usize) -> Duration {
    let start = Instant::now();
    let mut done = 0;
    while done < ops {
        let batch = (ops - done).min(in_flight as u64);
        let futures = (0..batch).map(|_| record(markers, until));
        futures::future::join_all(futures).await;
        done += batch;
    }
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clock = SystemClock::shared();
    let until = clock.now_unix() + 3_600;
    let dir = tempfile::tempdir().unwrap();
    let redis = start_redis();
    let backends: Vec<(&str, Arc<dyn Store>)> = runtime.block_on(async {
        let redis_store = RedisStore::new(
            RedisOptions::new(format!("redis://127.0.0.1:{}/0", redis.1)),
            clock.clone(),
        )
        .unwrap();
        redis_store.ping().await.unwrap();
        vec![
            (
                "memory",
                Arc::new(MemoryStore::with_capacity(50_000_000, clock.clone())) as Arc<dyn Store>,
            ),
            (
                "embedded",
                Arc::new(
                    EmbeddedStore::open(dir.path().join("bench.redb"), clock.clone()).unwrap(),
                ),
            ),
            ("redis", Arc::new(redis_store)),
        ]
    });
    for in_flight in [1usize, 64] {
        let mut group = c.benchmark_group(format!("marker/{in_flight}_in_flight"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements(in_flight as u64));
        for (name, store) in &backends {
            let markers = SingleUseMarkers::new(store.clone(), MarkerKind::IdJag, 10_000_000);
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let markers = markers.clone();
                    async move {
                        let ops = iters * in_flight as u64;
                        let took = run(&markers, until, ops, in_flight).await;
                        let mut totals = TOTALS.lock().unwrap();
                        let t = totals.entry(((*name).to_owned(), in_flight)).or_default();
                        t.0 += ops;
                        t.1 += took;
                        took
                    }
                });
            });
        }
        group.finish();
    }
    // Ratios to memory, from the very samples criterion measured above.
    let totals = TOTALS.lock().unwrap();
    eprintln!("\nthroughput relative to memory (same run, every measured iteration):");
    for in_flight in [1usize, 64] {
        let rate = |name: &str| {
            let (ops, took) = totals[&(name.to_owned(), in_flight)];
            ops as f64 / took.as_secs_f64()
        };
        let memory = rate("memory");
        for (name, _) in &backends {
            eprintln!(
                "  {in_flight:>2} in flight  {name:<8} {:>10.0} markers/s  ratio {:.4}",
                rate(name),
                rate(name) / memory
            );
        }
    }
}

criterion_group!(markers, benches);
criterion_main!(markers);
