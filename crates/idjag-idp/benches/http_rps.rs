//! Requests per second over HTTP on loopback: the axum router on 127.0.0.1:0 and a small
//! closed-loop load generator (keep-alive connections) in the same process.
//!
//! It measures, one after the other, `POST /token` (a full token exchange) and `GET /jwks`
//! (no crypto: the ceiling of the HTTP stack and load generator on this machine).
//!
//! Run: `cargo bench -p idjag-idp --bench http_rps`. Settings (environment):
//! `IDJAG_RPS_SECS` (seconds per measurement, default 5), `IDJAG_RPS_CONCURRENCY`
//! (requests in flight, default 16), `IDJAG_RPS_WORKERS` (runtime threads, default 2).

#![allow(missing_docs, clippy::print_stdout)]

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `concurrency` request loops for `duration`; returns completed requests per second.
async fn load(
    duration: Duration,
    concurrency: u64,
    make: Arc<dyn Fn() -> reqwest::RequestBuilder + Send + Sync>,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (done, stop, make) = (done.clone(), stop.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response = make().send().await.expect("request");
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.expect("body");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Warm up the connections, then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start_count = done.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    let count = done.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and we stay short.
    let benching = std::env::args().any(|a| a == "--bench");
    let secs = if benching {
        env("IDJAG_RPS_SECS", 5)
    } else {
        1
    };
    let concurrency = env("IDJAG_RPS_CONCURRENCY", 16);
    let workers = env("IDJAG_RPS_WORKERS", 2) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let bench = support::setup(&base);
        let router = bench.idp.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency as usize)
            .build()
            .unwrap();

        let token_url = bench.idp.token_endpoint().to_string();
        let (body, authorization) = (bench.body.clone(), bench.authorization.clone());
        let token_client = client.clone();
        let token = load(
            Duration::from_secs(secs),
            concurrency,
            Arc::new(move || {
                token_client
                    .post(&token_url)
                    .header("content-type", idjag_core::wire::MEDIA_TYPE_FORM)
                    .header("authorization", &authorization)
                    .body(body.clone())
            }),
        )
        .await;

        let jwks_url = bench.idp.jwks_uri().to_string();
        let jwks = load(
            Duration::from_secs(secs),
            concurrency,
            Arc::new(move || client.get(&jwks_url)),
        )
        .await;

        println!("http_rps: {workers} runtime threads, {concurrency} in flight, {secs} s each");
        println!("  POST /token (token exchange): {token:>9.0} req/s");
        println!("  GET  /jwks  (no crypto):      {jwks:>9.0} req/s");
    });
}
