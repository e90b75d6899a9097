//! Requests per second of idjag-resource-server's token endpoint (the JWT-bearer grant: one
//! ES256 ID-JAG verified, one ES256 access token signed per request) on loopback, against the
//! crypto limit measured in the same run (one verify plus one sign per core, on every core).
//! The server is the release binary started from `tests/configs/cases.toml` (memory store,
//! JSON logs, one audit line per grant on stdout); the load (hyper's HTTP/1.1 client on
//! keep-alive connections, prepared bodies) comes from the same machine and shares its cores.
//! Prints requests per second against the crypto limit, and the server's CPU time per request
//! against the crypto's per pair; the goal is at least 0.7.
//!
//! ```text
//! cargo bench -p idjag-resource-server --bench redemption
//! IDJAG_BENCH_SECS=10 IDJAG_BENCH_CONCURRENCY=64 cargo bench -p idjag-resource-server --bench redemption
//! ```
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::Duration;

use idjag_test_support::load::{PostLoad, crypto_limit};

#[allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    reason = "the integration tests' harness, of which the benchmark uses a part"
)]
#[path = "../tests/api/support.rs"]
mod support;

use idjag_core::wire;
use support::{CLIENT, Harness, SECRET, Setup, basic, form};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = setting("IDJAG_BENCH_SECS", 5);
    let concurrency = setting("IDJAG_BENCH_CONCURRENCY", 32) as usize;
    let duration = Duration::from_secs(seconds);
    let limit = crypto_limit(duration);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let harness = Harness::start(Setup::default()).await;
        // More fresh ID-JAGs than the crypto limit allows in the run (each is single use),
        // signed before the clock starts.
        let total = (limit.per_second * seconds as f64 * 1.2) as usize;
        let per_thread = total.div_ceil(limit.cores);
        let bodies: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..limit.cores)
                .map(|_| {
                    let idp = &harness.idp;
                    scope.spawn(move || {
                        (0..per_thread)
                            .map(|_| {
                                form(&[
                                    ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
                                    ("assertion", &idp.id_jag()),
                                ])
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        // Warm up: the IdP's JWKS in the server's cache.
        assert_eq!(harness.redeem(&harness.idp.id_jag()).await.status, 200);

        let load = PostLoad::new(harness.process.port(), "/token")
            .header("content-type", wire::MEDIA_TYPE_FORM)
            .header("authorization", &basic(CLIENT, SECRET));
        let run = load
            .send_each(bodies, concurrency, duration, harness.process.pid())
            .await;
        assert_eq!(run.failed, 0, "every redemption is granted");
        println!(
            "idjag-resource-server token endpoint (JWT-bearer grant, ES256 in, ES256 out), \
             loopback, {concurrency} connections, {seconds} s"
        );
        print!("{}", run.report(&limit));
    });
}
