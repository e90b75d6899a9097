#![allow(clippy::print_stdout)] // a benchmark binary reports on stdout
//! The gateway against a direct call, with a small load generator in the same run.
//!
//! ```text
//! cargo bench -p idjag-gateway --bench gateway
//! IDJAG_BENCH_UPSTREAM=rmcp cargo bench -p idjag-gateway --bench gateway
//! IDJAG_BENCH_RUNTIMES=shared cargo bench -p idjag-gateway --bench gateway
//! IDJAG_BENCH_STORE=redis cargo bench -p idjag-gateway --bench gateway
//! IDJAG_BENCH_SECS=5 IDJAG_BENCH_CONCURRENCY=32 IDJAG_BENCH_RUNS=7 cargo bench -p idjag-gateway --bench gateway
//! ```
//!
//! One process starts the demo topology with an echo MCP server behind the gateway (IdP,
//! resource AS, echo server, gateway, all on loopback): `IDJAG_BENCH_UPSTREAM=axum` (the
//! default: a plain axum handler, the cheapest possible upstream, so the gateway's cost shows
//! the most) or `rmcp` (the same tool on rmcp, stateless with JSON answers, behind
//! idjag-mcp's server layer). Both check the bearer token (`idjag-resource`).
//!
//! `IDJAG_BENCH_RUNTIMES=separate` (the default) runs the load generator, the gateway and the
//! servers each on a one-thread tokio runtime of its own, as three processes would be;
//! `shared` runs everything on one runtime of `IDJAG_BENCH_WORKERS` threads (default 2).
//!
//! With warm caches:
//!
//! 1. latency: one client, `tools/call echo` back to back, directly (with an access token of
//!    the echo server's AS) and through the gateway (with the user's ID token); the median
//!    difference is the gateway's added latency;
//! 2. throughput: `IDJAG_BENCH_CONCURRENCY` clients (default 16), each on its own keep-alive
//!    connection, for `IDJAG_BENCH_SECS` seconds (default 3), directly and through the
//!    gateway, in `IDJAG_BENCH_RUNS` alternating pairs (default 5); per pair the ratio of
//!    request rates, and the ratio of the process's CPU time per request; the medians are the
//!    result;
//! 3. cold path: a fresh topology, 100 concurrent first requests of one user: the counted
//!    token exchanges and redemptions.
//!
//! The gateway's state (revocations, approvals, sessions) is in memory;
//! `IDJAG_BENCH_STORE=redis` puts it in a `redis-server` the benchmark starts on loopback, so
//! the warm path checks revocations against the Redis-backed local replica (no network per
//! request). The audit log goes to a file through `idjag-ops`'s file sink (as in production;
//! `IDJAG_BENCH_AUDIT=none` drops it).
//!
//! `IDJAG_BENCH_TRACING` sets up telemetry first: `off` (the default: no subscriber, spans
//! cost nothing), `on` (`idjag-ops` telemetry, spans and trace ids, no exporter, logs at
//! `warn`) or `otlp` (the same, exporting every span over OTLP/HTTP to a collector in this
//! process that accepts and drops them). `scripts/instruction_ratio.sh tracing` compares
//! them.
//! `IDJAG_BENCH_INBOUND` turns on the gateway's own authorization server
//! (`[authorization_server]`, access tokens living the maximum hour) and picks the inbound
//! credential of the gateway path: `id_token` (the user's IdP ID token) or `gateway_token`
//! (an access token of the gateway, obtained once by a registered public client through the
//! authorization code flow with PKCE). Unset: no authorization server, ID tokens.
//! `scripts/instruction_ratio.sh inbound` compares both against the direct call.
//! `IDJAG_BENCH_ONLY=gateway` (or `direct`) runs one throughput measurement only, for
//! profiling (`perf record`); with `IDJAG_BENCH_REQUESTS=n`, exactly n calls, which
//! `scripts/instruction_ratio.sh` counts under callgrind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use idjag_gateway::config::{ConfigDuration, StoreConfig};
use idjag_gateway::demo::{Browser, OAuthApp, Place, Topology, TopologyOptions, UpstreamKind};
use idjag_gateway::observe::audit::AuditSink;
use idjag_gateway::observe::sinks::LineSink;
use idjag_ops::audit::{Audit, AuditConfig, FileSink, SinkConfig};
use serde_json::json;
use tokio::runtime::Handle;

/// No audit log (`IDJAG_BENCH_AUDIT=none`, to measure what the log costs).
#[derive(Debug)]
struct Discard;

impl AuditSink for Discard {
    fn record(&self, _: &idjag_gateway::observe::audit::AuditRecord) {}
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Target {
    name: &'static str,
    url: String,
    authorization: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client")
}

async fn call(client: &reqwest::Client, target: &Target, id: u64) -> Duration {
    let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}});
    let started = Instant::now();
    let response = client
        .post(&target.url)
        .header("authorization", &target.authorization)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200, "{}", target.name);
    let bytes = response.bytes().await.expect("body");
    assert!(bytes.windows(5).any(|w| w == b"hello"));
    started.elapsed()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn latency(load: &Handle, target: Arc<Target>, count: u64) -> Duration {
    load.spawn(async move {
        let client = client();
        for i in 0..50 {
            call(&client, &target, i).await;
        }
        let mut samples = Vec::with_capacity(count as usize);
        for i in 0..count {
            samples.push(call(&client, &target, i).await);
        }
        median(&mut samples)
    })
    .await
    .expect("latency run")
}

async fn throughput(
    load: &Handle,
    target: Arc<Target>,
    concurrency: u64,
    seconds: u64,
) -> (f64, Duration) {
    let warm_until = Instant::now() + Duration::from_millis(300);
    let until = warm_until + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let target = target.clone();
        workers.push(load.spawn(async move {
            let client = client();
            let mut samples = Vec::new();
            let mut id = 0;
            while Instant::now() < until {
                id += 1;
                let took = call(&client, &target, id).await;
                if Instant::now() > warm_until {
                    samples.push(took);
                }
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    let rate = all.len() as f64 / seconds as f64;
    (rate, median(&mut all))
}

/// CPU time this process has used (user + system), from `/proc/self/stat` (Linux; zero
/// elsewhere). The machine is shared, so CPU per request is steadier than wall-clock rates.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks of 10 ms).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Exactly `n` calls, spread over `concurrency` clients.
async fn fixed(load: &Handle, target: Arc<Target>, concurrency: u64, n: u64) {
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let target = target.clone();
        let share = n / concurrency + u64::from(w < n % concurrency);
        workers.push(load.spawn(async move {
            let client = client();
            for id in 0..share {
                call(&client, &target, id).await;
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
}

/// Audit lines to `path` through `idjag-ops`'s file sink.
async fn file_sink(path: &std::path::Path) -> Arc<dyn AuditSink> {
    let config = AuditConfig::with_sinks(vec![SinkConfig::File(FileSink::new(path))]);
    let audit = Audit::start(&config).await.expect("audit file");
    Arc::new(LineSink::new(Arc::new(audit), config.on_full))
}

/// Telemetry per `IDJAG_BENCH_TRACING` (see the module docs).
async fn tracing_mode() -> Option<idjag_ops::telemetry::Telemetry> {
    use idjag_ops::telemetry::{OtlpConfig, ServiceInfo, Telemetry, TelemetryConfig, TracesConfig};
    let mode = std::env::var("IDJAG_BENCH_TRACING").unwrap_or_else(|_| "off".into());
    let mut config = TelemetryConfig::default();
    config.log_filter = "warn".to_owned();
    match mode.as_str() {
        "on" => {}
        "otlp" => {
            let collector = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(|| async { http::StatusCode::OK }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("collector");
            let address = listener.local_addr().expect("collector address");
            tokio::spawn(async move { axum::serve(listener, collector).await });
            config.traces = TracesConfig::otlp(OtlpConfig::http(format!("http://{address}")), 1.0);
        }
        _ => return None,
    }
    Some(Telemetry::init(&config, &ServiceInfo::new("idjag-gateway", "bench")).expect("telemetry"))
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

async fn topology(
    upstream: UpstreamKind,
    audit: Arc<dyn AuditSink>,
    observe: bool,
    gateway: &Runtimes,
) -> Topology {
    let mut options = TopologyOptions::with_upstream(upstream);
    options.audit = Some(audit);
    // The gateway's state in Redis: revocations checked against the local replica.
    let store: Option<StoreConfig> = gateway.redis.as_ref().map(|url| {
        toml::from_str(&format!("[backend]\nkind = \"redis\"\nurl = \"{url}\"\n")).expect("store")
    });
    options.authorization_server = gateway.inbound.is_some();
    options.configure = Some(Arc::new(move |c| {
        if let Some(store) = &store {
            c.store = Some(store.clone());
        }
        // Long enough for the slowest run under callgrind.
        if let Some(server) = c.authorization_server.as_mut() {
            server.access_token_lifetime = ConfigDuration::secs(3600);
        }
    }));
    options.observe_upstream = observe;
    options.gateway_runtime = gateway.gateway.clone();
    Topology::start(options).await.expect("topology")
}

/// Where things run. `IDJAG_BENCH_RUNTIMES=separate` (the default): the load generator, the
/// gateway and the other servers (IdP, resource AS, MCP server) each on a one-thread runtime
/// of their own, as three processes would be; `shared`: all on one runtime of
/// `IDJAG_BENCH_WORKERS` threads (default 2).
struct Runtimes {
    gateway: Option<Handle>,
    load: Handle,
    /// `IDJAG_BENCH_STORE=redis`: the gateway's store is this Redis (else in memory).
    redis: Option<String>,
    /// `IDJAG_BENCH_INBOUND`: the gateway's authorization server on, and the inbound
    /// credential of the gateway path.
    inbound: Option<Inbound>,
}

/// The inbound credential of the gateway path (`IDJAG_BENCH_INBOUND`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// The user's IdP ID token.
    IdToken,
    /// An access token of the gateway's own authorization server.
    GatewayToken,
}

impl Inbound {
    fn from_env() -> Option<Self> {
        match std::env::var("IDJAG_BENCH_INBOUND").ok()?.as_str() {
            "gateway_token" => Some(Self::GatewayToken),
            "id_token" => Some(Self::IdToken),
            other => panic!("IDJAG_BENCH_INBOUND={other}: id_token or gateway_token"),
        }
    }
}

/// An access token of the gateway for alice at the echo route, as an MCP client gets it:
/// registration (RFC 7591), sign-in at the IdP's login page through `/oauth/authorize`, and
/// the code redeemed with its PKCE verifier.
async fn gateway_token(t: &Topology) -> String {
    const REDIRECT: &str = "http://127.0.0.1/callback";
    let app = OAuthApp::register(&t.gateway_url, REDIRECT)
        .await
        .expect("registration");
    let landing = Browser::new()
        .sign_in(
            &app.authorization_url(&t.gateway_url, &t.route_url, "bench"),
            "alice",
            REDIRECT,
        )
        .await
        .expect("sign-in");
    let code = landing.param("code").expect("a code");
    let (status, tokens) = app.redeem(&t.gateway_url, &code).await.expect("redemption");
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

async fn run(runtimes: &Runtimes) {
    let upstream = std::env::var("IDJAG_BENCH_UPSTREAM").unwrap_or_else(|_| "axum".into());
    let (kind, label) = match upstream.as_str() {
        "rmcp" => (
            UpstreamKind::RmcpEcho,
            "rmcp echo server, stateless, JSON answers",
        ),
        _ => (UpstreamKind::Echo, "axum echo handler"),
    };
    let seconds = env("IDJAG_BENCH_SECS", 3);
    let concurrency = env("IDJAG_BENCH_CONCURRENCY", 16);
    let audit_path =
        std::env::temp_dir().join(format!("idjag-gateway-bench-{}.jsonl", std::process::id()));
    let _telemetry = tracing_mode().await;
    let sink: Arc<dyn AuditSink> = if std::env::var("IDJAG_BENCH_AUDIT").as_deref() == Ok("none") {
        Arc::new(Discard)
    } else {
        file_sink(&audit_path).await
    };
    let t = topology(kind.clone(), sink, false, runtimes).await;
    println!(
        "gateway store: {}\n",
        if runtimes.redis.is_some() {
            "redis (revocations from the local replica)"
        } else {
            "memory"
        }
    );

    let direct = Arc::new(Target {
        name: "direct",
        url: t.mcp_url.clone(),
        authorization: format!(
            "Bearer {}",
            t.direct_access_token("alice")
                .await
                .expect("token")
                .secret()
        ),
    });
    let credential = match runtimes.inbound {
        Some(Inbound::GatewayToken) => {
            println!("inbound credential: the gateway's access token\n");
            gateway_token(&t).await
        }
        _ => t.id_token("alice").expect("id token").secret().to_owned(),
    };
    let gateway = Arc::new(Target {
        name: "gateway",
        url: t.route_url.clone(),
        authorization: format!("Bearer {credential}"),
    });
    // Warm caches: keys, identity, upstream access token, connections.
    let warm = gateway.clone();
    runtimes
        .load
        .spawn(async move { call(&client(), &warm, 0).await })
        .await
        .expect("warm-up");
    let _ = t.flow.drain();

    // `IDJAG_BENCH_ONLY=gateway` (or `direct`): one throughput run only, for profiling; with
    // `IDJAG_BENCH_REQUESTS=n`, exactly n calls (for instruction counts).
    if let Ok(only) = std::env::var("IDJAG_BENCH_ONLY") {
        let target = if only == "direct" { direct } else { gateway };
        if let Some(n) = std::env::var("IDJAG_BENCH_REQUESTS")
            .ok()
            .and_then(|n| n.parse().ok())
        {
            fixed(&runtimes.load, target, concurrency, n).await;
            println!("{only}: {n} calls");
        } else {
            let (rate, p50) = throughput(&runtimes.load, target, concurrency, seconds).await;
            println!("{only}: {rate:.0} req/s, p50 {} ms", ms(p50));
        }
        return;
    }

    let layout = if runtimes.gateway.is_some() {
        "load generator, gateway and servers on one-thread runtimes of their own"
    } else {
        "everything on one shared runtime"
    };
    println!("## idjag-gateway: direct vs through the gateway ({label}, loopback; {layout})\n");
    println!("latency, 1 client, 2000 calls each (median):");
    let d = latency(&runtimes.load, direct.clone(), 2000).await;
    let g = latency(&runtimes.load, gateway.clone(), 2000).await;
    let d2 = latency(&runtimes.load, direct.clone(), 2000).await;
    let g2 = latency(&runtimes.load, gateway.clone(), 2000).await;
    let (d, g) = (d.min(d2), g.min(g2));
    println!(
        "| path | median ms |\n|---|---|\n| direct | {} |\n| gateway | {} |",
        ms(d),
        ms(g)
    );
    println!("added latency (median): {} ms\n", ms(g.saturating_sub(d)));

    let runs = env("IDJAG_BENCH_RUNS", 5);
    println!("throughput, {concurrency} clients, {seconds} s per run, {runs} alternating pairs:");
    println!(
        "| pair | direct req/s | gateway req/s | ratio | direct CPU µs/req | gateway CPU µs/req | CPU ratio |\n|---|---|---|---|---|---|---|"
    );
    let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for pair in 1..=runs {
        let c0 = cpu_time();
        let (dr, _) = throughput(&runtimes.load, direct.clone(), concurrency, seconds).await;
        let c1 = cpu_time();
        let (gr, _) = throughput(&runtimes.load, gateway.clone(), concurrency, seconds).await;
        let c2 = cpu_time();
        let per =
            |cpu: Duration, rate: f64| cpu.as_secs_f64() * 1e6 / (rate * seconds as f64 + 1.0);
        let (dc, gc) = (per(c1 - c0, dr), per(c2 - c1, gr));
        println!(
            "| {pair} | {dr:.0} | {gr:.0} | {:.2} | {dc:.0} | {gc:.0} | {:.2} |",
            gr / dr,
            dc / gc
        );
        ratios.push(gr / dr);
        cpu_ratios.push(dc / gc);
    }
    ratios.sort_by(f64::total_cmp);
    cpu_ratios.sort_by(f64::total_cmp);
    println!(
        "median gateway / direct throughput: {:.2} (wall clock), {:.2} (CPU per request); goal >= 0.7\n",
        ratios[ratios.len() / 2],
        cpu_ratios[cpu_ratios.len() / 2]
    );
    println!(
        "token exchanges {} and redemptions {} over the whole warm run",
        t.gateway.exchange_count(),
        t.gateway.redemption_count()
    );

    // Cold path: 100 concurrent first requests of one user.
    let cold = topology(kind, Arc::new(Discard), true, runtimes).await;
    let target = Arc::new(Target {
        name: "cold",
        url: cold.route_url.clone(),
        authorization: format!(
            "Bearer {}",
            cold.id_token("alice").expect("id token").secret()
        ),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let target = target.clone();
        tasks.push(tokio::spawn(
            async move { call(&client(), &target, i).await },
        ));
    }
    for task in tasks {
        task.await.expect("cold call");
    }
    let events = cold.flow.drain();
    let count = |place| events.iter().filter(|e| e.place == place).count();
    println!(
        "\ncold path: 100 concurrent first calls of one user in {} ms: {} token exchange(s), {} redemption(s) \
         (counted by the gateway; the IdP saw {}, the AS {}), {} JWKS fetch(es), {} upstream calls",
        ms(started.elapsed()),
        cold.gateway.exchange_count(),
        cold.gateway.redemption_count(),
        count(Place::Idp),
        count(Place::ResourceAs),
        cold.gateway.jwks_fetch_count(),
        count(Place::McpServer),
    );
    assert_eq!(
        (
            cold.gateway.exchange_count(),
            cold.gateway.redemption_count()
        ),
        (1, 1)
    );
    let _ = std::fs::remove_file(audit_path);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runtime = |threads: u64| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::try_from(threads).unwrap_or(1))
            .enable_all()
            .build()
            .expect("runtime")
    };
    // `IDJAG_BENCH_STORE=redis`: a redis-server of its own (not counted under callgrind,
    // which follows this process only).
    let redis = (std::env::var("IDJAG_BENCH_STORE").as_deref() == Ok("redis"))
        .then(idjag_test_support::redis::RedisServer::start);
    let redis_url = redis.as_ref().map(|r| r.url());
    let inbound = Inbound::from_env();
    if std::env::var("IDJAG_BENCH_RUNTIMES").as_deref() == Ok("shared") {
        let main = runtime(env("IDJAG_BENCH_WORKERS", 2));
        let runtimes = Runtimes {
            gateway: None,
            load: main.handle().clone(),
            redis: redis_url,
            inbound,
        };
        main.block_on(run(&runtimes));
    } else {
        let (servers, gateway, load) = (runtime(1), runtime(1), runtime(1));
        let runtimes = Runtimes {
            gateway: Some(gateway.handle().clone()),
            load: load.handle().clone(),
            redis: redis_url,
            inbound,
        };
        servers.block_on(run(&runtimes));
    }
    drop(redis);
}
