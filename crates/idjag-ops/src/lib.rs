//! # idjag-ops
//!
//! The operations runtime shared by idjag's servers (the MCP gateway, the resource
//! authorization server, the ID-JAG issuer): what it takes to run one in production, built
//! once so each server wires it in a few lines.
//!
//! - [`listener`]: TLS listeners (rustls, certificate files reloaded when they change), the
//!   accept loop with connection caps, timeouts, idle close and graceful drain, and the
//!   separate admin listener ([`listener::admin`]).
//! - [`reload`]: configuration reload on SIGHUP and file change, swapped atomically.
//! - [`env`](mod@env): environment overrides for every setting, and the redacting printer of
//!   `check-config --print`.
//! - [`telemetry`]: JSON or text logs, OpenTelemetry traces with OTLP export, W3C trace
//!   context in and out, one server span per request.
//! - [`metrics`](mod@metrics): Prometheus conventions on the `metrics` facade, `/metrics`.
//! - [`audit`]: non-blocking audit sinks (stdout, file, syslog, journald, OTLP logs,
//!   webhook), the client address behind trusted proxies and the trace id.
//!   [`audit::events`] turns the libraries' audit events into lines for them.
//! - [`guard`]: the middleware around every request of an OAuth server: audit scope,
//!   deadline, `Retry-After`, fail-closed auditing.
//! - [`material`]: files and secrets a configuration names (paths relative to it, secrets
//!   from the environment or files, PKCS#8 PEM keys).
//! - [`config`]: the shared pieces of the configuration shapes.
//!
//! ## Example: a server using it
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! use axum::{Extension, Router, routing::get};
//! use idjag_ops::audit::{Audit, AuditConfig, AuditContext, TrustedProxies};
//! use idjag_ops::listener::{Listener, ListenerConfig, Shutdown, admin};
//! use idjag_ops::metrics::{self, Metrics};
//! use idjag_ops::reload::{Reloadable, WatchOptions};
//! use idjag_ops::telemetry::{HttpTraceLayer, ServiceInfo, Telemetry, TelemetryConfig};
//! use idjag_ops::{config, env};
//!
//! #[derive(Debug, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     server: ListenerConfig,
//!     admin: Option<ListenerConfig>,
//!     #[serde(default)]
//!     telemetry: TelemetryConfig,
//!     #[serde(default)]
//!     audit: AuditConfig,
//!     #[serde(default)]
//!     trusted_proxies: TrustedProxies,
//!     greeting: String,
//! }
//!
//! /// The planning pass: the same at start-up and on every reload.
//! fn plan(path: &Path) -> Result<Config, String> {
//!     let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
//!     let table: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
//!     let overrides = env::Overrides::from_env("IDJAG_EXAMPLE").map_err(|e| e.to_string())?;
//!     let config: Config = overrides.deserialize(table).map_err(|e| e.to_string())?;
//!     config.server.validate("server").map_err(|e| e.to_string())?;
//!     // ... read secrets, build the policy ...
//!     Ok(config)
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let plans = Reloadable::load("/etc/idjag/example.toml", plan)?;
//!     let start = plans.current();
//!     let telemetry = Telemetry::init(&start.telemetry, &ServiceInfo::new("idjag-example", "0.1.0"))?;
//!     let registry = Metrics::global();
//!     metrics::build_info("idjag_example", "0.1.0", &[]);
//!     let audit = Arc::new(Audit::start(&start.audit).await?);
//!
//!     let shutdown = Shutdown::new();
//!     shutdown.trigger_on_signals();
//!     plans.watch(WatchOptions::default(), shutdown.clone());
//!
//!     let sink = audit.clone();
//!     let public = Router::new()
//!         .route("/hello", get(move |Extension(plan): Extension<Arc<Config>>, request: axum::extract::Request| {
//!             let context = AuditContext::of(&request, &plan.trusted_proxies);
//!             let line = serde_json::json!({ "decision": "allow", "context": context }).to_string();
//!             let _ = sink.record(line);
//!             async move { plan.greeting.clone() }
//!         }))
//!         .layer(HttpTraceLayer::new())
//!         .layer(plans.layer());
//!     admin::assert_absent(&public, admin::ADMIN_PATHS).await?;
//!
//!     let health = {
//!         let audit = audit.clone();
//!         admin::Health::new().until(&shutdown).check("audit", move || audit.is_healthy())
//!     };
//!     let admin_listener = match &start.admin {
//!         Some(config) => Some((Listener::bind("admin", config).await?, admin::router(registry, health))),
//!         None => None,
//!     };
//!     let public_listener = Listener::bind("public", &start.server).await?;
//!     idjag_ops::listener::serve_pair((public_listener, public), admin_listener, shutdown).await;
//!
//!     if let Ok(audit) = Arc::try_unwrap(audit) {
//!         audit.shutdown(std::time::Duration::from_secs(5)).await;
//!     }
//!     telemetry.shutdown().await;
//!     # let _ = config::ConfigDuration::secs(1);
//!     Ok(())
//! }
//! ```
//!
//! ## Features
//!
//! - `otlp` (default): OTLP export over HTTP/protobuf of traces and of audit lines as
//!   OpenTelemetry logs.
//! - `otlp-grpc`: OTLP over gRPC as well (pulls tonic; about a minute more to build).
//!
//! ## Security
//!
//! - Plain HTTP needs `tls = "off"` and a stated reason; TLS 1.2+ with AEAD suites only.
//! - Private keys: the key file's bytes and the parsed DER are zeroized after loading;
//!   errors and logs name files and reasons, never key material.
//! - No request body, query string, `Authorization` header or other credential reaches a
//!   span, a log line or a metric label. Secret configuration values (OTLP and webhook
//!   headers) are left out of `Debug`, and [`env::Redactor`] keeps them out of
//!   `check-config --print`.
//! - Forwarding headers are believed only from [`audit::TrustedProxies`].
//! - A full audit queue can fail requests closed (`on_full = "fail_closed"`).

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod config;
pub mod env;
pub mod guard;
pub mod listener;
pub mod material;
pub mod metrics;
pub mod reload;
pub mod telemetry;
