//! Requests per second of idjag-resource-server's token endpoint (the JWT-bearer grant: one
//! ES256 ID-JAG verified, one ES256 access token signed per request) on loopback, against the
//! crypto limit measured in the same run (one verify plus one sign per core, on every core).
//! The server is the release binary started from `tests/configs/cases.toml` (memory store,
//! JSON logs, one audit line per grant on stdout); the load comes from the same machine, so it
//! shares the cores with the server. Prints the ratio; the goal is at least 0.7.
//!
//! ```text
//! cargo bench -p idjag-resource-server --bench redemption
//! IDJAG_BENCH_SECS=10 IDJAG_BENCH_CONCURRENCY=64 cargo bench -p idjag-resource-server --bench redemption
//! ```
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::Arc;
use std::time::Duration;

use idjag_test_support::process::{crypto_limit, drive};

#[allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    reason = "the integration tests' harness, of which the benchmark uses a part"
)]
#[path = "../tests/api/support.rs"]
mod support;

use support::{Harness, Setup};

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
    let (limit, cores) = crypto_limit(duration);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let harness = Arc::new(Harness::start(Setup::default()).await);
        // More fresh ID-JAGs than the crypto limit allows in the run (each is single use),
        // signed before the clock starts.
        let total = (limit * seconds as f64 * 1.2) as usize;
        let per_thread = total.div_ceil(cores);
        let tokens: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..cores)
                .map(|_| {
                    let idp = &harness.idp;
                    scope.spawn(move || (0..per_thread).map(|_| idp.id_jag()).collect::<Vec<_>>())
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let tokens = Arc::new(tokens);
        // Warm up: connections and the IdP's JWKS in the server's cache.
        assert_eq!(harness.redeem(&harness.idp.id_jag()).await.status, 200);

        let h = harness.clone();
        let (ok, failed, elapsed) = drive(concurrency, duration, tokens.len(), move |i| {
            let (h, tokens) = (h.clone(), tokens.clone());
            async move { h.redeem(&tokens[i]).await.status == 200 }
        })
        .await;
        assert_eq!(failed, 0, "every redemption is granted");
        let rps = ok as f64 / elapsed.as_secs_f64();
        println!(
            "idjag-resource-server token endpoint (JWT-bearer grant, ES256 in, ES256 out), \
             loopback, {concurrency} connections, {seconds} s"
        );
        println!("crypto limit (1 verify + 1 sign, {cores} cores): {limit:.0}/s");
        println!(
            "server: {ok} grants in {:.2} s = {rps:.0}/s",
            elapsed.as_secs_f64()
        );
        println!("ratio: {:.2} (goal >= 0.7)", rps / limit);
    });
}
