#![allow(missing_docs, clippy::print_stdout)] // a benchmark binary reports on stdout
//! The gateway's authorization server in process, through its real router, against the
//! crypto it cannot avoid, measured in the same run.
//!
//! ```text
//! cargo bench -p idjag-gateway --features demo --bench authorization_server
//! bash examples/gateway/scripts/as_instruction_ratio.sh     # instructions, under callgrind
//! ```
//!
//! The demo topology runs on loopback with `[authorization_server]` on (IdP with its
//! development login, resource AS, echo MCP server, gateway). Each request goes to
//! `POST /oauth/token` of the gateway's public router ([`Gateway::router`], the one its listener
//! serves) with tower's `oneshot`: the form, the client, the grant, the store, the signature,
//! the audit record and the JSON answer, as a client pays for them, without the socket.
//!
//! - `raw`, the baseline: one ES256 signature over a gateway access token's signing input and
//!   one ES256 verification of an ID-JAG, with the same crypto backend (aws-lc-rs through
//!   idjag-core): the crypto floor;
//! - `code`: one authorization code redeemed with its PKCE verifier by a registered public
//!   client (code → access and refresh token). Each code comes from a sign-in through
//!   `/oauth/authorize`, the IdP's login page and `/oauth/callback`, made beforehand;
//! - `refresh`: one refresh-token rotation (each new refresh token is used next);
//! - `id_jag`: one ID-JAG redeemed by the EMA client at the JWT-bearer ingress
//!   (`client_secret_basic`), each a fresh ID-JAG from the IdP's token exchange, made
//!   beforehand.
//!
//! `cargo bench` alternates blocks of each request with blocks of the floor and prints the
//! median ratio `floor / request` of the calling thread's CPU time (it runs the router; Linux
//! `/proc/thread-self/schedstat`), so the load of a shared machine weighs on both alike; 1.0
//! would mean a request costs only its crypto floor. `IDJAG_BENCH_ONLY=raw|code|refresh|id_jag`
//! with `IDJAG_BENCH_REQUESTS=n` runs exactly n operations of one kind inside the function
//! `measured`, inputs made before it, which `scripts/as_instruction_ratio.sh` counts under
//! callgrind (`--toggle-collect='*measured*'`).
//!
//! [`Gateway::router`]: idjag_gateway::Gateway::router

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use http::{Request, header};
use idjag_core::{ClientId, SigningKey, VerifyingKey};
use idjag_gateway::config::ConfigDuration;
use idjag_gateway::demo::{Browser, EMA_CLIENT, OAuthApp, Topology, TopologyOptions, UpstreamKind};
use idjag_gateway::observe::audit::{AuditRecord, AuditSink};
use serde_json::Value;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

const REDIRECT: &str = "http://127.0.0.1/callback";

/// Audit records are dropped (the line is built, not written).
#[derive(Debug)]
struct Discard;

impl AuditSink for Discard {
    fn record(&self, _: &AuditRecord) {}
}

struct Fixture {
    runtime: Runtime,
    topology: Topology,
    router: Router,
    app: OAuthApp,
    ema_basic: String,
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut options = TopologyOptions::with_upstream(UpstreamKind::Echo);
        options.audit = Some(Arc::new(Discard));
        options.authorization_server = true;
        options.observe_upstream = false;
        // Codes and access tokens live their maximum: the slowest run (callgrind) makes all its
        // codes before it redeems the first.
        options.configure = Some(Arc::new(|c| {
            if let Some(server) = c.authorization_server.as_mut() {
                server.code_lifetime = ConfigDuration::secs(600);
                server.access_token_lifetime = ConfigDuration::secs(3600);
            }
        }));
        let topology = runtime
            .block_on(Topology::start(options))
            .expect("topology");
        let app = runtime
            .block_on(OAuthApp::register(&topology.gateway_url, REDIRECT))
            .expect("registration");
        let router = topology.gateway.router();
        let ema_basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{EMA_CLIENT}:{}", topology.ema_secret.secret()))
        );
        Self {
            runtime,
            topology,
            router,
            app,
            ema_basic,
        }
    }

    /// A fresh authorization code of alice for the echo route: the sign-in through the
    /// gateway's `/oauth/authorize` and the IdP's login page, on loopback.
    fn code(&self) -> String {
        let t = &self.topology;
        let landing = self
            .runtime
            .block_on(
                Browser::new().sign_in(
                    &self
                        .app
                        .authorization_url(&t.gateway_url, &t.route_url, "bench"),
                    "alice",
                    REDIRECT,
                ),
            )
            .expect("sign-in");
        landing.param("code").expect("a code")
    }

    /// A fresh ID-JAG of alice for the echo route, from the IdP's token exchange (the EMA
    /// client presenting its user's ID token).
    fn id_jag(&self) -> String {
        let t = &self.topology;
        let id_token = t
            .users
            .id_token("alice", &ClientId::new(EMA_CLIENT).expect("client id"))
            .expect("id token");
        let answer: Value = self.runtime.block_on(async {
            reqwest::Client::new()
                .post(format!("{}/token", t.idp))
                .header(header::AUTHORIZATION, &self.ema_basic)
                .form(&[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    (
                        "requested_token_type",
                        "urn:ietf:params:oauth:token-type:id-jag",
                    ),
                    ("audience", t.gateway_url.as_str()),
                    ("resource", t.route_url.as_str()),
                    ("subject_token", id_token.secret()),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:id_token",
                    ),
                ])
                .send()
                .await
                .expect("token exchange")
                .json()
                .await
                .expect("token exchange answer")
        });
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no ID-JAG: {answer}"))
            .to_owned()
    }

    fn code_form(&self, code: &str) -> String {
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.app.redirect_uri),
            ("code_verifier", &self.app.verifier),
            ("client_id", &self.app.client_id),
        ])
    }

    fn refresh_form(&self, refresh_token: &str) -> String {
        form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &self.app.client_id),
        ])
    }

    fn id_jag_form(jag: &str) -> String {
        form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jag),
        ])
    }

    /// `POST /oauth/token` through the gateway's router: the JSON answer of a 200.
    fn token(&self, form: String, authorization: Option<&str>) -> Value {
        let mut request = Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request.body(Body::from(form)).expect("request");
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            serde_json::from_slice(&body).expect("JSON answer")
        })
    }

    /// The tokens of a fresh sign-in (the first refresh token of a family).
    fn signed_in(&self) -> Value {
        self.token(self.code_form(&self.code()), None)
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn refresh_token_of(tokens: &Value) -> String {
    tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

/// The crypto floor: one ES256 signature and one ES256 verification with the same backend.
struct Raw {
    key: SigningKey,
    sign_input: String,
    verifying: VerifyingKey,
    verify_input: String,
    signature: Vec<u8>,
}

impl Raw {
    fn new(f: &Fixture) -> Self {
        let tokens = f.signed_in();
        let access = tokens["access_token"].as_str().expect("an access token");
        let key = SigningKey::generate(idjag_core::Algorithm::Es256).expect("key");
        let other = SigningKey::generate(idjag_core::Algorithm::Es256).expect("key");
        let jag = f.id_jag();
        let verify_input = jag.rsplit_once('.').expect("a JWS").0.to_owned();
        let signature = other.sign(verify_input.as_bytes()).expect("signature");
        Self {
            sign_input: access.rsplit_once('.').expect("a JWS").0.to_owned(),
            key,
            verifying: other.verifying_key().expect("verifying key"),
            verify_input,
            signature,
        }
    }

    fn run(&self) {
        black_box(
            self.key
                .sign(black_box(self.sign_input.as_bytes()))
                .expect("sign"),
        );
        assert!(
            self.verifying
                .verify(black_box(self.verify_input.as_bytes()), &self.signature)
        );
    }
}

/// Runs `n` operations (inputs prepared before): the function callgrind counts.
#[inline(never)]
fn measured(n: usize, mut op: impl FnMut(usize)) {
    for i in 0..n {
        op(i);
    }
}

/// The inputs of `n` requests of one kind: token endpoint forms (the refresh tokens are
/// chained as they come, so there is one to start from).
fn inputs(kind: &str, n: usize, f: &Fixture) -> Vec<String> {
    match kind {
        "raw" => Vec::new(),
        "code" => (0..n).map(|_| f.code_form(&f.code())).collect(),
        "refresh" => vec![refresh_token_of(&f.signed_in())],
        "id_jag" => (0..n).map(|_| Fixture::id_jag_form(&f.id_jag())).collect(),
        other => panic!("{other}: raw, code, refresh or id_jag"),
    }
}

/// `n` requests of one kind with their `inputs`.
fn run(kind: &str, n: usize, inputs: Vec<String>, f: &Fixture, raw: &Raw) {
    let mut inputs = inputs.into_iter();
    match kind {
        "raw" => measured(n, |_| raw.run()),
        "code" => measured(n, |_| {
            black_box(f.token(inputs.next().expect("a form"), None));
        }),
        "refresh" => {
            let mut refresh = inputs.next().expect("a refresh token");
            measured(n, |_| {
                let tokens = f.token(f.refresh_form(&refresh), None);
                refresh = refresh_token_of(&tokens);
            });
        }
        _ => measured(n, |_| {
            black_box(f.token(inputs.next().expect("a form"), Some(&f.ema_basic)));
        }),
    }
}

/// Nanoseconds this thread has run on a CPU (Linux), or wall-clock nanoseconds elsewhere.
fn cpu_ns(wall: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| wall.elapsed().as_nanos() as f64)
}

/// CPU time of `n` operations of `kind`, inputs made outside it.
fn timed(kind: &str, n: usize, f: &Fixture, raw: &Raw) -> f64 {
    let inputs = inputs(kind, n, f);
    let wall = Instant::now();
    let before = cpu_ns(wall);
    run(kind, n, inputs, f, raw);
    cpu_ns(wall) - before
}

fn main() {
    let f = Fixture::new();
    let raw = Raw::new(&f);
    let env = |name: &str| std::env::var(name).ok();
    if let Some(kind) = env("IDJAG_BENCH_ONLY") {
        let n = env("IDJAG_BENCH_REQUESTS")
            .and_then(|n| n.parse().ok())
            .unwrap_or(100);
        let inputs = inputs(&kind, n, &f);
        run(&kind, n, inputs, &f, &raw);
        println!("{kind}: {n} operations");
        return;
    }
    let (rounds, block) = (7, 100);
    println!(
        "gateway token endpoint in process against the crypto floor (ES256 sign + verify), \
         {rounds} rounds of {block} operations each, calling thread's CPU time:\n"
    );
    println!("| request | floor µs | request µs | floor / request (median) |\n|---|---|---|---|");
    for kind in ["code", "refresh", "id_jag"] {
        run(kind, 10, inputs(kind, 10, &f), &f, &raw);
        let mut samples: Vec<(f64, f64)> = (0..rounds)
            .map(|_| (timed("raw", block, &f, &raw), timed(kind, block, &f, &raw)))
            .collect();
        samples.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
        let (floor, request) = samples[rounds / 2];
        println!(
            "| {kind} | {:.1} | {:.1} | {:.3} |",
            floor / block as f64 / 1000.0,
            request / block as f64 / 1000.0,
            floor / request
        );
    }
}
