//! Requests per second of the token endpoint over HTTP on loopback.
//!
//! One process runs the axum server (the `router()` of a resource AS) and a reqwest client
//! that keeps `CONCURRENCY` redemptions in flight for `SECONDS` seconds; both share the
//! machine's cores. ID-JAGs are signed before the clock starts. Beside it, the same run
//! measures the raw ES256 verify+sign rate on all cores: the crypto ceiling of the endpoint.
//!
//! Run: `cargo bench -p idjag-resource --bench http_rps -- [SECONDS] [CONCURRENCY]`
#![allow(missing_docs, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use idjag_core::server::{InMemoryReplayCache, RegisteredClient, StaticClientRegistry};
use idjag_core::*;
use idjag_resource::{RegisteredResource, ResourceAuthorizationServer, TrustedIssuer};

const NOW: i64 = 1_700_000_000;
const IDP: &str = "https://acme.idp.example";
const RESOURCE: &str = "https://mcp.chat.example/mcp";

fn id_jag(key: &SigningKey, audience: &str, n: usize) -> String {
    let mut claims = IdJagClaims::new(
        Issuer::new(IDP).unwrap(),
        Subject::new("alice@acme").unwrap(),
        Audience::new(audience).unwrap(),
        ClientId::new("chat-agent").unwrap(),
        Jti::new(format!("jti-{n}")).unwrap(),
        NumericDate::from_unix(NOW).unwrap(),
        NumericDate::from_unix(NOW + 300).unwrap(),
    );
    claims.resource = Some(vec![Resource::new(RESOURCE).unwrap()]);
    claims.scope = Some(ScopeSet::parse("chat.read").unwrap());
    key.sign_jwt(Some(wire::TYP_ID_JAG), &claims)
        .unwrap()
        .secret()
        .to_owned()
}

/// ES256 verify + sign operations per second on all cores, for `duration`.
fn crypto_ceiling(idp: &SigningKey, as_key: &SigningKey, token: &str, duration: Duration) -> f64 {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = jose::base64url::decode(signature).unwrap();
    let public = idp.verifying_key().unwrap();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let start = Instant::now();
                    let mut n = 0;
                    while start.elapsed() < duration {
                        assert!(public.verify(input.as_bytes(), &signature));
                        std::hint::black_box(as_key.sign(input.as_bytes()).unwrap());
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    done as f64 / duration.as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let clock = TestClock::at_unix(NOW);
        let idp = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid(Kid::new("idp-1").unwrap());
        let as_key = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid(Kid::new("as-1").unwrap());
        let server = ResourceAuthorizationServer::builder(Issuer::new(base.clone()).unwrap(), as_key.clone())
            .trust(TrustedIssuer::new(
                Issuer::new(IDP).unwrap(),
                Arc::new(KeySet::new([idp.verifying_key().unwrap()]).unwrap()),
            ))
            .resource(
                RegisteredResource::new(Resource::new(RESOURCE).unwrap())
                    .with_scopes(ScopeSet::parse("chat.read").unwrap()),
            )
            .clients(StaticClientRegistry::new().with(RegisteredClient::with_secret(
                ClientId::new("chat-agent").unwrap(),
                &ClientSecret::new("s3cret"),
            )))
            .clock(clock.shared())
            .replay_cache(Arc::new(InMemoryReplayCache::new(10_000_000, clock.shared())))
            .build()
            .unwrap();
        let router = server.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        // Enough ID-JAGs for a generous rate, signed up front.
        let budget = (seconds as usize) * 20_000;
        let tokens: Arc<Vec<String>> =
            Arc::new((0..budget).map(|n| id_jag(&idp, &base, n)).collect());
        let ceiling = crypto_ceiling(&idp, &as_key, &tokens[0], Duration::from_secs(2));

        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let url = format!("{base}/token");
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("chat-agent:s3cret")
        );
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (client, url, basic, tokens, next) =
                (client.clone(), url.clone(), basic.clone(), tokens.clone(), next.clone());
            workers.spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(token) = tokens.get(n) else { break };
                    let body = format!(
                        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={token}"
                    );
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", wire::MEDIA_TYPE_FORM)
                        .header("authorization", &basic)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    response.bytes().await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            });
        }
        let mut latencies = Vec::new();
        while let Some(done) = workers.join_next().await {
            latencies.extend(done.unwrap());
        }
        let elapsed = start.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let rps = latencies.len() as f64 / elapsed;
        println!("cores:                 {}", std::thread::available_parallelism().map_or(1, usize::from));
        println!("concurrency:           {concurrency}");
        println!("requests:              {} in {elapsed:.2} s", latencies.len());
        println!("requests/s over HTTP:  {rps:.0}");
        println!("latency p50 / p99:     {:.2} ms / {:.2} ms", pct(0.50).as_secs_f64() * 1e3, pct(0.99).as_secs_f64() * 1e3);
        println!("raw verify+sign/s:     {ceiling:.0} (all cores, no HTTP, no client)");
        println!("ratio HTTP / ceiling:  {:.2}", rps / ceiling);
    });
}
