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
//!
//! Run: `cargo bench -p idjag-resource --bench token_handler`
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use base64::Engine as _;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
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

fn benches(c: &mut Criterion) {
    let f = Fixture::new();

    // Sanity: the request is a success.
    let response = ready(f.server.token(&Method::POST, &f.headers, &f.body()));
    assert_eq!(response.status(), 200);
    let access_token =
        serde_json::from_slice::<serde_json::Value>(response.body()).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    let at_input = access_token.rsplit_once('.').unwrap().0.to_owned();

    let token = f.id_jag();
    let (id_jag_input, signature) = token.rsplit_once('.').unwrap();
    let signature = jose::base64url::decode(signature).unwrap();
    let idp_public = f.idp_key.verifying_key().unwrap();

    let mut raw = c.benchmark_group("raw_crypto");
    raw.bench_function("verify_and_sign", |b| {
        b.iter(|| {
            assert!(idp_public.verify(black_box(id_jag_input.as_bytes()), &signature));
            black_box(f.as_key.sign(black_box(at_input.as_bytes())).unwrap());
        })
    });
    raw.finish();

    let mut handler = c.benchmark_group("token_handler");
    handler.bench_function("redeem", |b| {
        b.iter_batched(
            || f.body(),
            |body| {
                let response = ready(f.server.token(&Method::POST, &f.headers, &body));
                assert_eq!(response.status(), 200);
                black_box(response)
            },
            BatchSize::SmallInput,
        )
    });
    handler.finish();
}

criterion_group! {
    name = token_handler;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(token_handler);
