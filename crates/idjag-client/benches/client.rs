//! What the client costs on top of the network: leg 1, both legs and a cache hit, each with an
//! in-memory HTTP fake, against the baseline of parsing the ID-JAG alone.
//!
//! Run: `cargo bench -p idjag-client --bench client`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use idjag_client::http::{HttpRequest, HttpResponse, from_fn};
use idjag_client::*;
use idjag_core::jose::UnverifiedJws;
use idjag_core::*;
use serde_json::json;

const IDP: &str = "https://idp.example";
const RAS: &str = "https://as.example";

fn id_jag(key: &SigningKey) -> String {
    let mut claims = IdJagClaims::new(
        Issuer::new(IDP).unwrap(),
        idjag_core::Subject::new("alice").unwrap(),
        Audience::new(RAS).unwrap(),
        ClientId::new("agent").unwrap(),
        Jti::new("jti-1").unwrap(),
        NumericDate::from_unix(1_700_000_000).unwrap(),
        NumericDate::from_unix(1_700_000_300).unwrap(),
    );
    claims.resource = Some(vec![Resource::new("https://mcp.example/mcp").unwrap()]);
    claims.scope = Some(ScopeSet::parse("chat.read").unwrap());
    key.sign_jwt(Some(wire::TYP_ID_JAG), &claims)
        .unwrap()
        .secret()
        .to_owned()
}

fn respond(body: serde_json::Value) -> HttpResponse {
    ::http::Response::builder()
        .status(200)
        .body(body.to_string().into_bytes())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let token = id_jag(&key);
    let exchange = json!({"issued_token_type": wire::TOKEN_TYPE_ID_JAG, "access_token": token, "token_type": "N_A", "expires_in": 300});
    let redeem = json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600});
    let fake = from_fn(move |request: HttpRequest| {
        let body = if request.uri().host() == Some("idp.example") {
            exchange.clone()
        } else {
            redeem.clone()
        };
        async move { Ok(respond(body)) }
    });
    let creds = |id: &str| {
        ClientCredentials::secret_basic(ClientId::new(id).unwrap(), ClientSecret::new("s3:cr3t"))
            .unwrap()
    };
    let idp = IdentityProvider::new(
        Issuer::new(IDP).unwrap(),
        "https://idp.example/token",
        creds("idp-client"),
    )
    .unwrap();
    let clock = TestClock::at_unix(1_700_000_000);
    let client = IdJagClient::with_http_client(idp, Arc::new(fake)).with_clock(clock.shared());
    let ras = ResourceAsTarget::new(
        Issuer::new(RAS).unwrap(),
        "https://as.example/token",
        creds("agent"),
    )
    .unwrap();
    let request = AccessRequest::new(ras)
        .with_resource(Resource::new("https://mcp.example/mcp").unwrap())
        .with_scope(ScopeSet::parse("chat.read").unwrap());
    let subject = UserToken::id_token(IdToken::new(
        "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjE4MDAwMDAwMDB9.c2ln",
    ));
    let provider = TokenProvider::new(client.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(provider.access_token(&subject, &request))
        .unwrap();

    let mut group = c.benchmark_group("client");
    group.bench_function("baseline: parse the ID-JAG", |b| {
        b.iter(|| {
            let jws = UnverifiedJws::parse(black_box(&token), 16 * 1024).unwrap();
            IdJagClaims::from_claims(jws.unverified_claims().unwrap()).unwrap()
        })
    });
    group.bench_function("leg 1 (exchange, in-memory HTTP)", |b| {
        b.iter(|| {
            rt.block_on(client.exchange(black_box(&subject), &request))
                .unwrap()
        })
    });
    group.bench_function("both legs (in-memory HTTP)", |b| {
        b.iter(|| {
            rt.block_on(client.access_token(black_box(&subject), &request))
                .unwrap()
        })
    });
    group.bench_function("provider cache hit", |b| {
        b.iter(|| {
            rt.block_on(provider.access_token(black_box(&subject), &request))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = bench
}
criterion_main!(benches);
