#![allow(clippy::print_stdout)] // a benchmark binary reports on stdout
//! A stdio upstream through the gateway against the same MCP server called directly over
//! stdio, in the same run, with warm processes.
//!
//! ```text
//! bash scripts/test.sh --no-run   # or: (cd examples/gateway/tests/stdio && npm ci)
//! cargo bench -p idjag-gateway --features demo --bench stdio
//! IDJAG_BENCH_CALLS=500 IDJAG_BENCH_RUNS=5 IDJAG_BENCH_CONCURRENCY=8 cargo bench -p idjag-gateway --features demo --bench stdio
//! ```
//!
//! The server is `@modelcontextprotocol/server-everything` (stdio mode, from
//! `tests/stdio/node_modules`), the call `tools/call echo {"message":"hello"}`. Directly: an
//! rmcp client over rmcp's child-process transport, one process. Through the gateway: the
//! demo topology's gateway (IdP token validation from its cache, access rules, one audit line
//! to a file through `idjag-ops`'s file sink) with a stdio upstream of the same command (`isolation = "per_user"`, one warm
//! process for the user), called over HTTP on loopback with the user's ID token. Each of
//! `IDJAG_BENCH_RUNS` (default 5) alternating pairs runs `IDJAG_BENCH_CALLS` (default 300)
//! calls from `IDJAG_BENCH_CONCURRENCY` (default 1) concurrent callers on each side; the
//! result is the median ratio of call rates, and the median latency of each side.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idjag_gateway::demo::{Topology, TopologyOptions, UpstreamKind};
use idjag_gateway::observe::audit::AuditSink;
use idjag_gateway::observe::sinks::LineSink;
use idjag_ops::audit::{Audit, AuditConfig, FileSink, SinkConfig};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `calls` calls of `call` from `concurrency` callers; (calls per second, each
/// call's latency).
async fn measure<F, Fut>(calls: usize, concurrency: usize, call: F) -> (f64, Vec<Duration>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let per = calls / concurrency;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                call().await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(calls);
    for task in tasks {
        latencies.extend(task.await.expect("caller"));
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    (rate, latencies)
}

fn median_ms(latencies: &mut [Duration]) -> f64 {
    latencies.sort();
    latencies[latencies.len() / 2].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let entry = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/stdio/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "{} is missing: run `npm ci` in examples/gateway/tests/stdio",
        entry.display()
    );
    let calls = var("IDJAG_BENCH_CALLS", 300);
    let runs = var("IDJAG_BENCH_RUNS", 5);
    let concurrency = var("IDJAG_BENCH_CONCURRENCY", 1).max(1);

    // Directly: one process, one rmcp client session.
    let mut command = tokio::process::Command::new("node");
    command.arg(&entry).arg("stdio");
    let direct = Arc::new(
        ().serve(TokioChildProcess::new(command).expect("node starts"))
            .await
            .expect("initialize"),
    );

    // Through the gateway.
    let audit_path =
        std::env::temp_dir().join(format!("idjag-bench-stdio-{}.jsonl", std::process::id()));
    let config = AuditConfig::with_sinks(vec![SinkConfig::File(FileSink::new(&audit_path))]);
    let audit = Audit::start(&config).await.expect("audit file");
    let sink: Arc<dyn AuditSink> = Arc::new(LineSink::new(Arc::new(audit), config.on_full));
    let block = format!(
        "[[upstream]]\nname = \"everything\"\ncredential = {{ mode = \"none\" }}\n\
         [upstream.stdio]\nprogram = \"node\"\nargs = [{:?}, \"stdio\"]\nenv_allow = [\"PATH\"]\n\
         [[upstream.access]]\neveryone = true\nallow = [\"echo\"]\n",
        entry.display().to_string()
    );
    let extra = idjag_gateway::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"\nplain_http_reason = \"bench\"\npublic_url = \"http://127.0.0.1:1\"\n\
         [idp]\nissuer = \"http://127.0.0.1:1\"\nclient = {{ id = \"x\", secret = \"y\" }}\n{block}"
    ))
    .expect("stdio upstream block");
    let mut options = TopologyOptions::with_upstream(UpstreamKind::Echo);
    options.audit = Some(sink);
    options.configure = Some(Arc::new(move |c| {
        c.upstreams.extend(extra.upstreams.clone())
    }));
    let topology = Topology::start(options).await.expect("topology");
    let route = format!("{}/mcp/everything", topology.gateway_url);
    let token = topology
        .id_token("alice")
        .expect("id token")
        .secret()
        .to_owned();
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
        "params":{"name":"echo","arguments":{"message":"hello"}}})
    .to_string();

    let direct_call = {
        let direct = direct.clone();
        move || {
            let direct = direct.clone();
            async move {
                let params = CallToolRequestParams::new("echo").with_arguments(
                    json!({"message": "hello"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                );
                direct.call_tool_once(params).await.expect("direct call");
            }
        }
    };
    let gateway_call = {
        let (http, route, token, body) = (http.clone(), route.clone(), token.clone(), body.clone());
        move || {
            let (http, route, token, body) =
                (http.clone(), route.clone(), token.clone(), body.clone());
            async move {
                let response = http
                    .post(&route)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(body)
                    .send()
                    .await
                    .expect("gateway call");
                assert_eq!(response.status(), 200);
                let text = response.text().await.expect("body");
                assert!(text.contains("Echo: hello"), "{text}");
            }
        }
    };

    // Warm both: the gateway's identity cache, its process, the connections.
    measure(50, 1, direct_call.clone()).await;
    measure(50, 1, gateway_call.clone()).await;

    let (mut ratios, mut direct_ms, mut gateway_ms) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let (direct_rate, mut d) = measure(calls, concurrency, direct_call.clone()).await;
        let (gateway_rate, mut g) = measure(calls, concurrency, gateway_call.clone()).await;
        let ratio = gateway_rate / direct_rate;
        println!(
            "run {run}: direct {direct_rate:.0}/s (median {:.3} ms), gateway {gateway_rate:.0}/s (median {:.3} ms), ratio {ratio:.2}",
            median_ms(&mut d),
            median_ms(&mut g)
        );
        ratios.push(ratio);
        direct_ms.push(median_ms(&mut d));
        gateway_ms.push(median_ms(&mut g));
    }
    let processes = topology
        .gateway
        .stdio_stats("everything")
        .map_or(0, |s| s.started);
    println!(
        "median over {runs} runs ({calls} calls, {concurrency} caller(s)): gateway/direct rate {:.2}, latency direct {:.3} ms, gateway {:.3} ms (+{:.3} ms); processes started through the gateway: {processes}",
        median(&mut ratios),
        median(&mut direct_ms),
        median(&mut gateway_ms),
        median(&mut gateway_ms) - median(&mut direct_ms),
    );
    topology.gateway.end_processes().await;
    if let Ok(direct) = Arc::try_unwrap(direct) {
        let _ = direct.cancel().await;
    }
    let _ = std::fs::remove_file(&audit_path);
}
