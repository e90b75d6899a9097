//! Runs raw signature verification or full ID-JAG validation `n` times in a named loop, so an
//! instruction counter can compare the two exactly, unaffected by machine load:
//!
//! ```text
//! cargo build --release -p idjag-core --features josekit --example validation_cost
//! for mode in raw full; do
//!   valgrind --tool=callgrind --toggle-collect='*run_loop*' --callgrind-out-file=/tmp/cg.$mode \
//!     target/release/examples/validation_cost $mode ES256 aws-lc-rs 2000
//! done
//! ```
//! Compare the `Collected` totals: full / raw is the instruction cost of validation relative to
//! the signature check alone.

use std::hint::black_box;

use idjag_core::*;

#[path = "../benches/support/validation.rs"]
mod validation;

#[inline(never)]
fn run_loop(n: usize, mut op: impl FnMut() -> bool) -> usize {
    (0..n).filter(|_| op()).count()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: validation_cost <raw|full> <ES256|RS256|EdDSA|...> <backend> <n>";
    let (mode, alg, backend, n) = match &args[1..] {
        [mode, alg, backend, n] => (
            mode.as_str(),
            alg,
            backend,
            n.parse::<usize>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    let alg = Algorithm::from_name(alg).expect(usage);
    let backend = crypto::all_backends()
        .into_iter()
        .find(|b| b.name() == backend)
        .expect("backend not compiled in");
    let validation::Fixture {
        token,
        validator,
        verifying,
        input,
        signature,
    } = validation::fixture(alg, backend);
    let ok = match mode {
        "raw" => run_loop(n, || {
            verifying.verify(black_box(input.as_bytes()), black_box(&signature))
        }),
        "full" => run_loop(n, || validator.validate(black_box(token.secret())).is_ok()),
        _ => panic!("{usage}"),
    };
    assert_eq!(ok, n, "every operation succeeds");
}
