//! Requests per second of idjag-issuer's token endpoint (RFC 8693 token exchange: one ES256
//! ID token verified, one ES256 ID-JAG signed per request, under the policy of
//! `tests/configs/policy.toml`) on loopback, against the crypto limit measured in the same
//! run (one verify plus one sign per core, on every core). The issuer is the release binary
//! started from `tests/configs/issuer.toml` (memory store, JSON logs, one audit line per
//! decision on stdout); the load (hyper's HTTP/1.1 client on keep-alive connections, prepared
//! bodies) comes from the same machine and shares its cores. Prints requests per second against
//! the crypto limit, and the server's CPU time per request against the crypto's per pair; the
//! goal is at least 0.7.
//!
//! ```text
//! cargo bench -p idjag-issuer --bench exchange_rps
//! IDJAG_BENCH_SECS=10 IDJAG_BENCH_CONCURRENCY=64 cargo bench -p idjag-issuer --bench exchange_rps
//! ```
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::Duration;

use idjag_test_support::load::{PostLoad, crypto_limit};
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
    let limit = crypto_limit(duration);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = Server::start(Setup::default()).await;
        // The request bodies, each with its own ID token, made before the clock starts.
        let total = (limit.per_second * seconds as f64 * 1.2) as usize;
        let per_thread = total.div_ceil(limit.cores);
        let bodies: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..limit.cores)
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

        let load = PostLoad::new(server.process.port(), "/token")
            .header("content-type", idjag_core::wire::MEDIA_TYPE_FORM)
            .header("authorization", &auth);
        let run = load
            .send_each(
                bodies[1..].to_vec(),
                concurrency,
                duration,
                server.process.pid(),
            )
            .await;
        assert_eq!(run.failed, 0, "every exchange is granted");
        println!(
            "idjag-issuer token endpoint (RFC 8693 token exchange, ES256 in, ES256 out), \
             loopback, {concurrency} connections, {seconds} s"
        );
        print!("{}", run.report(&limit));
    });
}
