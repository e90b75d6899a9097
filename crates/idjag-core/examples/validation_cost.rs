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
use std::sync::Arc;

use idjag_core::*;

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
    let now = 1_700_000_000;
    let key = SigningKey::generate_with(alg, backend)
        .unwrap()
        .with_thumbprint_kid();
    let mut claims = IdJagClaims::new(
        Issuer::new("https://idp.example").unwrap(),
        Subject::new("alice@example.com").unwrap(),
        Audience::new("https://auth.chat.example").unwrap(),
        ClientId::new("f53f191f9311af35").unwrap(),
        Jti::new("9b8e6f0a-5f44-4a2e-9c1d-2f0d3e7b1a6c").unwrap(),
        NumericDate::from_unix(now).unwrap(),
        NumericDate::from_unix(now + 300).unwrap(),
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
        TestClock::at_unix(now).shared(),
    );
    let (input, signature) = token.secret().rsplit_once('.').unwrap();
    let signature = jose::base64url::decode(signature).unwrap();
    let ok = match mode {
        "raw" => run_loop(n, || {
            verifying.verify(black_box(input.as_bytes()), black_box(&signature))
        }),
        "full" => run_loop(n, || validator.validate(black_box(token.secret())).is_ok()),
        _ => panic!("{usage}"),
    };
    assert_eq!(ok, n, "every operation succeeds");
}
