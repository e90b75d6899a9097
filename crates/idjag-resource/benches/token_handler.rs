//! The token handler in process against the raw crypto it cannot avoid.
//!
//! - `token_handler/redeem`: one full JWT-bearer request through
//!   [`ResourceAuthorizationServer::token`]: form parsing, client_secret_basic, ES256 ID-JAG
//!   validation, policy, ES256 access-token signing, the replay store, the audit event and
//!   the JSON response. Every iteration redeems a fresh ID-JAG (signed outside the timing).
//! - `raw_crypto/verify_and_sign`: the same ES256 verification of the same ID-JAG and the
//!   same ES256 signature over an access token's signing input, with the same keys.
//!
//! The ratio `raw / redeem` says how close the handler runs to its crypto limit (goal ≥ 0.8).
//! After the criterion groups, an interleaved run alternates blocks of both and compares the
//! CPU time the thread spent on each (Linux `/proc/thread-self/schedstat`, wall time
//! elsewhere), so load from other processes on a shared machine does not skew the ratio.
//!
//! For CPU-time counting on a noisy machine, `IDJAG_BENCH_ONLY=setup|raw|redeem` runs only
//! the fixture and 3000 operations of one kind (3000 fresh ID-JAGs are signed first in every
//! mode), e.g. under `perf stat -e task-clock`; subtract `setup` from the others.
//!
//! Run: `cargo bench -p idjag-resource --bench token_handler`
#![allow(missing_docs, clippy::print_stdout)]

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use base64::Engine as _;
use criterion::{BatchSize, Criterion};
use http::{HeaderMap, Method, header};
use idjag_core::server::{InMemoryReplayCache, RegisteredClient, StaticClientRegistry};
use idjag_core::*;
use idjag_resource::{RegisteredResource, ResourceAuthorizationServer, TrustedIssuer};

const NOW: i64 = 1_700_000_000;
const IDP: &str = "https://acme.idp.example";
const AS: &str = "https://auth.chat.example";
const RESOURCE: &str = "https://mcp.chat.example/mcp";

/// Runs a future that never waits (every store here is in memory).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

struct Fixture {
    server: ResourceAuthorizationServer,
    idp_key: SigningKey,
    as_key: SigningKey,
    headers: HeaderMap,
    jti: AtomicU64,
}

impl Fixture {
    fn new() -> Self {
        let clock = TestClock::at_unix(NOW);
        let idp_key = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid(Kid::new("idp-1").unwrap());
        let as_key = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid(Kid::new("as-1").unwrap());
        let server = ResourceAuthorizationServer::builder(Issuer::new(AS).unwrap(), as_key.clone())
            .trust(TrustedIssuer::new(
                Issuer::new(IDP).unwrap(),
                Arc::new(KeySet::new([idp_key.verifying_key().unwrap()]).unwrap()),
            ))
            .resource(
                RegisteredResource::new(Resource::new(RESOURCE).unwrap())
                    .with_scopes(ScopeSet::parse("chat.read chat.history").unwrap()),
            )
            .clients(
                StaticClientRegistry::new().with(RegisteredClient::with_secret(
                    ClientId::new("chat-agent").unwrap(),
                    &ClientSecret::new("s3cret"),
                )),
            )
            .clock(clock.shared())
            .replay_cache(Arc::new(InMemoryReplayCache::new(
                50_000_000,
                clock.shared(),
            )))
            .build()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, wire::MEDIA_TYPE_FORM.parse().unwrap());
        let basic = base64::engine::general_purpose::STANDARD.encode("chat-agent:s3cret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {basic}").parse().unwrap(),
        );
        Self {
            server,
            idp_key,
            as_key,
            headers,
            jti: AtomicU64::new(0),
        }
    }

    /// A fresh ID-JAG, as the IdP would sign it.
    fn id_jag(&self) -> String {
        let mut claims = IdJagClaims::new(
            Issuer::new(IDP).unwrap(),
            Subject::new("alice@acme").unwrap(),
            Audience::new(AS).unwrap(),
            ClientId::new("chat-agent").unwrap(),
            Jti::new(format!("jti-{}", self.jti.fetch_add(1, Ordering::Relaxed))).unwrap(),
            NumericDate::from_unix(NOW).unwrap(),
            NumericDate::from_unix(NOW + 300).unwrap(),
        );
        claims.resource = Some(vec![Resource::new(RESOURCE).unwrap()]);
        claims.scope = Some(ScopeSet::parse("chat.read chat.history").unwrap());
        self.idp_key
            .sign_jwt(Some(wire::TYP_ID_JAG), &claims)
            .unwrap()
            .secret()
            .to_owned()
    }

    fn body(&self) -> Vec<u8> {
        format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
            self.id_jag()
        )
        .into_bytes()
    }
}

/// The raw crypto of one redemption: verifying the ID-JAG, signing an access token.
struct Raw {
    id_jag_input: String,
    signature: Vec<u8>,
    idp_public: VerifyingKey,
    at_input: String,
}

impl Raw {
    fn new(f: &Fixture) -> Self {
        let response = ready(f.server.token(&Method::POST, &f.headers, &f.body()));
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        let access_token = body["access_token"].as_str().unwrap();
        let token = f.id_jag();
        let (input, signature) = token.rsplit_once('.').unwrap();
        Self {
            id_jag_input: input.to_owned(),
            signature: jose::base64url::decode(signature).unwrap(),
            idp_public: f.idp_key.verifying_key().unwrap(),
            at_input: access_token.rsplit_once('.').unwrap().0.to_owned(),
        }
    }

    fn run(&self, as_key: &SigningKey) {
        assert!(
            self.idp_public
                .verify(black_box(self.id_jag_input.as_bytes()), &self.signature)
        );
        black_box(as_key.sign(black_box(self.at_input.as_bytes())).unwrap());
    }
}

fn redeem(f: &Fixture, body: &[u8]) {
    let response = ready(f.server.token(&Method::POST, &f.headers, body));
    assert_eq!(response.status(), 200);
    black_box(response);
}

fn benches(c: &mut Criterion, f: &Fixture, raw: &Raw) {
    let mut group = c.benchmark_group("raw_crypto");
    group.bench_function("verify_and_sign", |b| b.iter(|| raw.run(&f.as_key)));
    group.finish();

    let mut group = c.benchmark_group("token_handler");
    group.bench_function("redeem", |b| {
        b.iter_batched(|| f.body(), |body| redeem(f, &body), BatchSize::SmallInput)
    });
    group.finish();
}

/// Nanoseconds this thread has run on a CPU (Linux), or wall-clock nanoseconds elsewhere.
fn cpu_ns(wall: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| wall.elapsed().as_nanos() as f64)
}

/// Alternates blocks of raw crypto and full redemptions; prints the median ratio of their
/// CPU times.
fn interleaved(f: &Fixture, raw: &Raw, rounds: usize, block: usize) {
    let mut ratios = Vec::new();
    let (mut raw_us, mut full_us) = (Vec::new(), Vec::new());
    let wall = Instant::now();
    for _ in 0..rounds {
        let bodies: Vec<Vec<u8>> = (0..block).map(|_| f.body()).collect();
        let start = cpu_ns(wall);
        for _ in 0..block {
            raw.run(&f.as_key);
        }
        let raw_time = cpu_ns(wall) - start;
        let start = cpu_ns(wall);
        for body in &bodies {
            redeem(f, body);
        }
        let full_time = cpu_ns(wall) - start;
        ratios.push(raw_time / full_time);
        raw_us.push(raw_time / 1e3 / block as f64);
        full_us.push(full_time / 1e3 / block as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (lo, hi) = {
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        (sorted[0], sorted[sorted.len() - 1])
    };
    println!(
        "interleaved ({rounds} rounds of {block}, CPU time): raw {:.1} µs, redeem {:.1} µs, ratio raw/redeem median {:.3} (min {lo:.3}, max {hi:.3})",
        median(&mut raw_us),
        median(&mut full_us),
        median(&mut ratios),
    );
}

/// A fixed number of operations of one kind, for external CPU-time counters.
fn only(f: &Fixture, raw: &Raw, mode: &str) {
    const N: usize = 3000;
    let bodies: Vec<Vec<u8>> = (0..N).map(|_| f.body()).collect();
    match mode {
        "raw" => (0..N).for_each(|_| raw.run(&f.as_key)),
        "redeem" => bodies.iter().for_each(|body| redeem(f, body)),
        _ => {}
    }
}

fn main() {
    let f = Fixture::new();
    let raw = Raw::new(&f);
    if let Ok(mode) = std::env::var("IDJAG_BENCH_ONLY") {
        return only(&f, &raw, &mode);
    }
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    benches(&mut c, &f, &raw);
    c.final_summary();
    interleaved(&f, &raw, 60, 100);
}
