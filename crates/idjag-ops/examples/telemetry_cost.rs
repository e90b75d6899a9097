//! What telemetry costs per request: a trivial router behind `HttpTraceLayer`, driven
//! in-process, with telemetry off, on without an exporter, or exporting to a loopback
//! collector. Run under `valgrind --tool=callgrind` with two request counts; the difference
//! divided by the difference in requests is the cost of one request (BENCHMARKS.md).
//!
//! ```text
//! telemetry_cost collector 127.0.0.1:4318        # a collector that accepts everything
//! telemetry_cost off|on|export REQUESTS [127.0.0.1:4318]
//! ```

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use idjag_ops::telemetry::{
    HttpTraceLayer, OtlpConfig, ServiceInfo, Telemetry, TelemetryConfig, TracesConfig,
};
use tower::ServiceExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("off");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    if mode == "collector" {
        let addr = args
            .get(2)
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:4318".to_owned());
        runtime.block_on(async move {
            let app = Router::new().route("/v1/traces", post(|| async { "" }));
            let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
            axum::serve(listener, app).await.expect("serve");
        });
        return;
    }
    let requests: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let collector = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:4318".to_owned());
    runtime.block_on(async move {
        let mut config = TelemetryConfig::default();
        config.log_filter = "warn".to_owned();
        let telemetry = match mode {
            "off" => None,
            "on" => Some(config),
            "export" => {
                config.traces =
                    TracesConfig::otlp(OtlpConfig::http(format!("http://{collector}")), 1.0);
                Some(config)
            }
            other => panic!("unknown mode {other}"),
        }
        .map(|config| {
            Telemetry::build(&config, &ServiceInfo::new("telemetry-cost", "0")).expect("telemetry")
        });
        let _guard = telemetry
            .as_ref()
            .map(|(_, dispatch)| tracing::dispatcher::set_default(dispatch));
        let app = Router::new()
            .route("/mcp/{name}", get(|| async { "ok" }))
            .layer(HttpTraceLayer::new());
        for _ in 0..requests {
            let request = http::Request::get("/mcp/notes")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .body(Body::empty())
                .expect("request");
            let response = app.clone().oneshot(request).await.expect("response");
            assert_eq!(response.status(), 200);
        }
        if let Some((telemetry, _)) = telemetry {
            telemetry.shutdown().await;
        }
    });
}
