//! Full ID-JAG validation beside raw signature verification with the same key and backend,
//! in the same run. The ratio `raw_verify / full_validation` (time) is the share of the crypto
//! limit that validation reaches. Reproduce with:
//!
//! ```text
//! cargo bench -p idjag-core --features josekit --bench validate
//! python3 scripts/bench_ratios.py core
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use idjag_core::*;

#[path = "support/validation.rs"]
mod validation;

fn bench(c: &mut Criterion) {
    for backend in crypto::all_backends() {
        for alg in [Algorithm::Es256, Algorithm::Rs256, Algorithm::EdDsa] {
            let validation::Fixture {
                token,
                validator,
                verifying,
                input,
                signature,
            } = validation::fixture(alg, backend);

            let mut group = c.benchmark_group(format!("core/{}/{}", backend.name(), alg));
            group
                .sample_size(30)
                .measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_secs(1));
            group.bench_function("raw_verify", |b| {
                b.iter(|| {
                    assert!(verifying.verify(black_box(input.as_bytes()), black_box(&signature)))
                })
            });
            group.bench_function("full_validation", |b| {
                b.iter(|| validator.validate(black_box(token.secret())).unwrap())
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
