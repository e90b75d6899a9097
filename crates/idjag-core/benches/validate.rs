//! Full ID-JAG validation beside raw signature verification with the same key and backend,
//! in the same run. The ratio `raw_verify / full_validation` (time) is the share of the crypto
//! limit that validation reaches. Reproduce with:
//!
//! ```text
//! cargo bench -p idjag-core --features josekit --bench validate
//! python3 scripts/bench_ratios.py core
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use idjag_core::*;

const NOW: i64 = 1_700_000_000;

fn bench(c: &mut Criterion) {
    for backend in crypto::all_backends() {
        for alg in [Algorithm::Es256, Algorithm::Rs256, Algorithm::EdDsa] {
            let key = SigningKey::generate_with(alg, backend)
                .unwrap()
                .with_thumbprint_kid();
            let mut claims = IdJagClaims::new(
                Issuer::new("https://idp.example").unwrap(),
                Subject::new("alice@example.com").unwrap(),
                Audience::new("https://auth.chat.example").unwrap(),
                ClientId::new("f53f191f9311af35").unwrap(),
                Jti::new("9b8e6f0a-5f44-4a2e-9c1d-2f0d3e7b1a6c").unwrap(),
                NumericDate::from_unix(NOW).unwrap(),
                NumericDate::from_unix(NOW + 300).unwrap(),
            );
            claims.resource = Some(vec![Resource::new("https://mcp.chat.example/").unwrap()]);
            claims.scope = Some(ScopeSet::parse("chat.read chat.history").unwrap());
            let token = key.sign_jwt(Some(wire::TYP_ID_JAG), &claims).unwrap();
            let verifying = key.verifying_key().unwrap();
            let validator = IdJagValidator::new(
                TrustedIssuers::new().with(
                    claims.iss.clone(),
                    Arc::new(KeySet::new([verifying.clone()]).unwrap()),
                ),
                claims.aud.clone(),
                AlgorithmSet::from([alg]),
                TestClock::at_unix(NOW).shared(),
            );
            let (input, signature) = token.secret().rsplit_once('.').unwrap();
            let signature = jose::base64url::decode(signature).unwrap();
            assert!(validator.validate(token.secret()).is_ok());

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
