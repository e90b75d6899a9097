//! The token-exchange handler in process, beside the raw crypto it cannot avoid.
//!
//! - `crypto_limit`: ES256 verification of the subject ID token's signature plus one ES256
//!   signature over an ID-JAG-sized signing input, with the same keys: the floor.
//! - `handler`: `IdJagIssuer::handle` on a full HTTP request: form parsing, Basic client
//!   authentication, ID-token validation (ES256), policy, claims, ES256 signing, the JSON
//!   response and the audit event (no subscriber installed).
//!
//! Goal: `crypto_limit / handler >= 0.8`. Run: `cargo bench -p idjag-idp --bench exchange`.
//!
//! The machine is shared and noisy, so after the criterion groups the bench also measures the
//! two workloads interleaved (alternating blocks of 200 iterations, 25 rounds) and prints the
//! median of the per-round ratios: both sides then see the same load.
//!
//! For exact instruction counts (load-independent), `IDJAG_BENCH_ONLY=setup|crypto|handler`
//! runs only the fixture and 2000 operations of one kind (the 2000 requests are built in every
//! mode), e.g. under `valgrind --tool=callgrind`; subtract `setup` from the others.

#![allow(missing_docs)]

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group};
use idjag_core::jose::UnverifiedJws;
use idjag_core::wire;

/// The two workloads over the same IdP, keys and subject token.
struct Workloads {
    bench: support::Bench,
    runtime: tokio::runtime::Runtime,
    key: idjag_core::SigningKey,
    verifying: idjag_core::VerifyingKey,
    /// The subject ID token's signing input and signature, decoded once.
    subject: (Vec<u8>, Vec<u8>),
    message: Vec<u8>,
}

impl Workloads {
    fn new() -> Self {
        let bench = support::setup("https://idp.example");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let key = bench.idp.current_signing_key();
        let verifying = key.verifying_key().unwrap();
        let jws = UnverifiedJws::parse(bench.id_token.secret(), 16 * 1024).unwrap();
        let subject = (jws.signing_input().to_vec(), jws.signature().to_vec());
        let mut workloads = Self {
            bench,
            runtime,
            key,
            verifying,
            subject,
            message: Vec::new(),
        };
        // One real issuance, to size the crypto-only signing input like the real ID-JAG.
        let response = workloads.handler(workloads.request());
        let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        let id_jag = json["access_token"].as_str().unwrap();
        workloads.message = vec![b'a'; id_jag.rsplit_once('.').unwrap().0.len()];
        workloads
    }

    /// A complete token-exchange request (building it is the caller's work: not timed).
    fn request(&self) -> http::Request<Vec<u8>> {
        http::Request::post("https://idp.example/token")
            .header("content-type", wire::MEDIA_TYPE_FORM)
            .header("authorization", self.bench.authorization.as_str())
            .body(self.bench.body.clone())
            .unwrap()
    }

    fn crypto_limit(&self) {
        assert!(self.verifying.verify(&self.subject.0, &self.subject.1));
        std::hint::black_box(self.key.sign(&self.message).unwrap());
    }

    fn handler(&self, request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let response = self.runtime.block_on(self.bench.idp.handle(request));
        assert_eq!(response.status(), 200);
        response
    }
}

fn exchange(c: &mut Criterion) {
    let w = Workloads::new();
    let mut group = c.benchmark_group("idp_token_exchange");
    group.bench_function("crypto_limit", |b| b.iter(|| w.crypto_limit()));
    group.bench_function("handler", |b| {
        b.iter_batched(|| w.request(), |r| w.handler(r), BatchSize::SmallInput)
    });
    group.finish();
}

/// Alternating blocks of both workloads; prints the median per-round ratio.
#[allow(clippy::print_stdout)]
fn interleaved_ratio(rounds: usize, block: u32) {
    let w = Workloads::new();
    let mut ratios = Vec::with_capacity(rounds);
    let (mut crypto_total, mut handler_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..block {
            w.crypto_limit();
        }
        let crypto = start.elapsed();
        let requests: Vec<_> = (0..block).map(|_| w.request()).collect();
        let start = Instant::now();
        for request in requests {
            std::hint::black_box(w.handler(request));
        }
        let handler = start.elapsed();
        ratios.push(crypto.as_secs_f64() / handler.as_secs_f64());
        crypto_total += crypto;
        handler_total += handler;
    }
    ratios.sort_by(f64::total_cmp);
    let per = |total: Duration| total.as_secs_f64() * 1e6 / f64::from(block) / rounds as f64;
    println!(
        "interleaved ({rounds} rounds of {block}): crypto_limit {:.1} µs, handler {:.1} µs, \
         ratio median {:.3} (min {:.3}, max {:.3})",
        per(crypto_total),
        per(handler_total),
        ratios[rounds / 2],
        ratios[0],
        ratios[rounds - 1],
    );
}

criterion_group!(benches, exchange);

/// One workload only, for an instruction counter.
fn only(mode: &str) {
    const N: usize = 2000;
    let w = Workloads::new();
    let requests: Vec<_> = (0..N).map(|_| w.request()).collect();
    match mode {
        "setup" => drop(requests),
        "crypto" => (0..N).for_each(|_| w.crypto_limit()),
        "handler" => requests.into_iter().for_each(|r| {
            std::hint::black_box(w.handler(r));
        }),
        other => panic!("IDJAG_BENCH_ONLY must be setup, crypto or handler, not {other}"),
    }
}

fn main() {
    if let Ok(mode) = std::env::var("IDJAG_BENCH_ONLY") {
        return only(&mode);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes `--bench`; under `cargo test --benches` stay short.
    if std::env::args().any(|a| a == "--bench") {
        interleaved_ratio(25, 200);
    } else {
        interleaved_ratio(1, 5);
    }
}
