//! The token-exchange handler in process, beside the raw crypto it cannot avoid.
//!
//! - `crypto_limit`: ES256 verification of the subject ID token's signature plus one ES256
//!   signature over an ID-JAG-sized signing input, with the same keys: the floor.
//! - `handler`: `IdJagIssuer::handle` on a full HTTP request: form parsing, Basic client
//!   authentication, ID-token validation (ES256), policy, claims, ES256 signing, the JSON
//!   response and the audit event (no subscriber installed).
//!
//! Goal: `crypto_limit / handler >= 0.8`. Run: `cargo bench -p idjag-idp --bench exchange`.

#![allow(missing_docs)]

#[path = "support/mod.rs"]
mod support;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use idjag_core::jose::UnverifiedJws;
use idjag_core::wire;

fn exchange(c: &mut Criterion) {
    let bench = support::setup("https://idp.example");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let request = || {
        http::Request::post("https://idp.example/token")
            .header("content-type", wire::MEDIA_TYPE_FORM)
            .header("authorization", bench.authorization.as_str())
            .body(bench.body.clone())
            .unwrap()
    };
    // One real issuance, to size the crypto-only comparison like the real ID-JAG.
    let response = runtime.block_on(bench.idp.handle(request()));
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let id_jag = json["access_token"].as_str().unwrap().to_owned();
    let id_jag_input_len = id_jag.rsplit_once('.').unwrap().0.len();

    let key = bench.idp.current_signing_key();
    let verifying = key.verifying_key().unwrap();
    let subject = UnverifiedJws::parse(bench.id_token.secret(), 16 * 1024).unwrap();
    let message = vec![b'a'; id_jag_input_len];

    let mut group = c.benchmark_group("idp_token_exchange");
    group.bench_function("crypto_limit", |b| {
        b.iter(|| {
            assert!(verifying.verify(subject.signing_input(), subject.signature()));
            std::hint::black_box(key.sign(&message).unwrap());
        })
    });
    // Building the request (header parsing, body copy) is the caller's work: not timed.
    group.bench_function("handler", |b| {
        b.iter_batched(
            request,
            |request| {
                let response = runtime.block_on(bench.idp.handle(request));
                assert_eq!(response.status(), 200);
                response
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, exchange);
criterion_main!(benches);
