//! Requests per second of idjag-issuer's token endpoint (RFC 8693 token exchange: one ES256
//! ID token verified, one ES256 ID-JAG signed per request, under the policy of
//! `tests/configs/policy.toml`) on loopback, against the crypto limit measured in the same
//! run (one verify plus one sign per core, on every core). The issuer is the release binary
//! started from `tests/configs/issuer.toml` (memory store, JSON logs, one audit line per
//! decision on stdout); the load comes from the same machine, so it shares the cores with the
//! server. Prints the ratio; the goal is at least 0.7.
//!
//! ```text
//! cargo bench -p idjag-issuer --bench exchange_rps
//! IDJAG_BENCH_SECS=10 IDJAG_BENCH_CONCURRENCY=64 cargo bench -p idjag-issuer --bench exchange_rps
//! ```
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::Arc;
use std::time::Duration;

use idjag_test_support::process::{crypto_limit, drive};
use serde_json::json;

#[allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    reason = "the integration tests' harness, of which the benchmark uses a part"
)]
#[path = "../tests/api/support.rs"]
mod support;

use support::{CLIENT, Server, Setup};

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
        let server = Arc::new(Server::start(Setup::default()).await);
        // The request bodies, each with its own ID token, made before the clock starts.
        let total = (limit * seconds as f64 * 1.2) as usize;
        let per_thread = total.div_ceil(cores);
        let bodies: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..cores)
                .map(|t| {
                    let server = &server;
                    scope.spawn(move || {
                        (0..per_thread)
                            .map(|i| {
                                let jti = format!("bench-{t}-{i}");
                                let token =
                                    server.id_token(0, "alice", CLIENT, json!({ "jti": jti }));
                                server.exchange_form(&token, &[])
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
        let bodies = Arc::new(bodies);
        let auth = support::basic(CLIENT, support::SECRET);
        let warm = server
            .post(
                &[
                    ("content-type", idjag_core::wire::MEDIA_TYPE_FORM),
                    ("authorization", &auth),
                ],
                bodies[0].clone(),
            )
            .await;
        assert_eq!(warm.status, 200, "{}", warm.text());

        let s = server.clone();
        let (ok, failed, elapsed) = drive(concurrency, duration, bodies.len() - 1, move |i| {
            let i = i + 1;
            let (s, bodies, auth) = (s.clone(), bodies.clone(), auth.clone());
            async move {
                let reply = s
                    .post(
                        &[
                            ("content-type", idjag_core::wire::MEDIA_TYPE_FORM),
                            ("authorization", &auth),
                        ],
                        bodies[i].clone(),
                    )
                    .await;
                reply.status == 200
            }
        })
        .await;
        assert_eq!(failed, 0, "every exchange is granted");
        let rps = ok as f64 / elapsed.as_secs_f64();
        println!(
            "idjag-issuer token endpoint (RFC 8693 token exchange, ES256 in, ES256 out), \
             loopback, {concurrency} connections, {seconds} s"
        );
        println!("crypto limit (1 verify + 1 sign, {cores} cores): {limit:.0}/s");
        println!(
            "server: {ok} ID-JAGs in {:.2} s = {rps:.0}/s",
            elapsed.as_secs_f64()
        );
        println!("ratio: {:.2} (goal >= 0.7)", rps / limit);
    });
}
