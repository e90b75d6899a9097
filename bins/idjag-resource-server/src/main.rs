//! # idjag-resource-server
//!
//! A resource authorization server you run next to any MCP server, whatever its language:
//! it redeems ID-JAGs (the Identity Assertion JWT Authorization Grant, RFC 7523 JWT-bearer
//! grant) from the enterprise IdPs it trusts for short-lived RFC 9068 access tokens, and serves
//! RFC 7662 introspection, RFC 8414 metadata and its JWKS. The MCP server then only checks
//! those access tokens (with the JWKS, or by introspection).
//!
//! ```text
//! idjag-resource-server check-config --config resource-server.toml
//! idjag-resource-server serve --config resource-server.toml
//! ```
//!
//! `resource-server.toml` beside this crate's manifest documents every setting. Endpoints
//! (paths under the issuer's path):
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /token` | the JWT-bearer grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`) |
//! | `POST /introspect` | RFC 7662, for authenticated clients |
//! | `GET /.well-known/oauth-authorization-server[/path]` | RFC 8414 metadata (also appended to the issuer's path) |
//! | `GET /jwks.json` | the access-token verification keys |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | on the admin listener (`[admin]`): liveness, readiness (the store and the audit sinks answer), Prometheus |
//!
//! Logs are JSON (or text) lines on stderr, audit lines go to the `[audit]` sinks, and SIGTERM
//! or Ctrl-C drains the listeners before exiting; SIGHUP (or a change of the file) reloads the
//! configuration.
//!
//! ## Security
//!
//! The decisions are idjag-resource's (see its crate docs for the redemption checks, in their
//! fixed order). This binary adds: secrets only from environment variables or files, never
//! from the configuration text; configuration errors that name the key and never echo a
//! value; one audit line per decision with hashes and verified identifiers only (never a
//! token or a secret); single use across every instance sharing the `[store]`, refused with
//! `503 temporarily_unavailable` while the store cannot answer (fail closed), and back to
//! normal by itself when it answers again.
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: check-config reports on stdout"
)]

mod app;
mod assemble;
mod config;
mod material;
mod subject;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};
use idjag_ops::audit::Audit;
use idjag_ops::audit::events::{self, AuditEvents};
use idjag_ops::listener::{Listener, Shutdown, admin};
use idjag_ops::metrics::Metrics;
use idjag_ops::reload::Reloadable;
use idjag_ops::telemetry::{ServiceInfo, Telemetry};

use crate::config::ConfigError;

/// The resource authorization server of an MCP server: redeems ID-JAGs for access tokens.
#[derive(Debug, Parser)]
#[command(name = "idjag-resource-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_RESOURCE_CONFIG")]
        config: PathBuf,
    },
    /// Checks the configuration file with its environment overrides (and that the store
    /// answers), then exits.
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_RESOURCE_CONFIG")]
        config: PathBuf,
        /// Do not open the store (its settings are still checked): for an embedded store that
        /// a running server holds locked.
        #[arg(long)]
        offline: bool,
        /// Also print the effective configuration (file and environment), secrets redacted.
        #[arg(long)]
        print: bool,
    },
}

/// Exit status of a configuration error.
const CONFIG_ERROR: u8 = 2;
const NAME: &str = "idjag-resource-server";
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{NAME}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve { config } => runtime.block_on(serve(config)),
        Command::CheckConfig {
            config,
            offline,
            print,
        } => runtime.block_on(check(config, offline, print)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{NAME}: configuration error: {error}");
            ExitCode::from(CONFIG_ERROR)
        }
    }
}

async fn check(path: PathBuf, offline: bool, print: bool) -> Result<(), ConfigError> {
    let loaded = config::load(&path)?;
    let clock = idjag_core::SystemClock::shared();
    let store = if offline {
        if let Some(store) = &loaded.config.store {
            assemble::resolve_store(store, &loaded.base)
                .check()
                .map_err(assemble::store_error)?;
        }
        assemble::open_store(None, &loaded.base, &clock)?.0
    } else {
        assemble::open_store(loaded.config.store.as_ref(), &loaded.base, &clock)?.0
    };
    let plan = assemble::plan(&loaded.config, &loaded.base, &store)?;
    if !offline {
        match tokio::time::timeout(Duration::from_secs(5), store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(ConfigError::new(
                    "store",
                    format!("the store does not answer: {e}"),
                ));
            }
            Err(_) => {
                return Err(ConfigError::new(
                    "store",
                    "the store does not answer within 5 s",
                ));
            }
        }
    }
    if print {
        print!("{}", config::redactor().print(&loaded.effective));
    }
    println!("configuration ok: {}", plan.summary);
    Ok(())
}

async fn serve(path: PathBuf) -> Result<(), ConfigError> {
    let loaded = config::load(&path)?;
    let start = &loaded.config;
    let mut telemetry_config = start.telemetry.clone();
    let events = AuditEvents::new("idjag_resource_redemptions_total");
    telemetry_config.log_filter = events::without_audit(&telemetry_config.log_filter);
    let telemetry = Telemetry::init_with_layer(
        &telemetry_config,
        &ServiceInfo::new(NAME, VERSION),
        events.layer(),
    )
    .map_err(|e| ConfigError::new("telemetry", e.to_string()))?;
    let metrics = Metrics::global();
    idjag_ops::metrics::build_info("idjag_resource", VERSION, &[]);
    let audit = Arc::new(
        Audit::start(&start.audit)
            .await
            .map_err(|e| ConfigError::new("audit", e.to_string()))?,
    );
    events.attach(audit.clone());

    // The store is opened once; every plan (start-up and reloads) uses it.
    let clock = idjag_core::SystemClock::shared();
    let (store, _) = assemble::open_store(start.store.as_ref(), &loaded.base, &clock)?;
    let store_section = loaded.effective.get("store").cloned();
    let plan_store = store.clone();
    let plans = Reloadable::load(path.clone(), move |path| {
        let loaded = config::load(path)?;
        if loaded.effective.get("store") != store_section.as_ref() {
            return Err(ConfigError::new(
                "store",
                "a change of the store needs a restart",
            ));
        }
        assemble::plan(&loaded.config, &loaded.base, &plan_store)
    })?;

    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    plans.watch(start.reload, shutdown.clone());
    let store_up = {
        let probe = store.clone();
        admin::watch(
            move || {
                let store = probe.clone();
                async move { store.ping().await.is_ok() }
            },
            metrics::gauge!("idjag_resource_store_up", "backend" => store.backend()),
            &shutdown,
        )
    };
    let health = {
        let audit = audit.clone();
        admin::Health::new()
            .until(&shutdown)
            .check("store", move || store_up.load(Ordering::SeqCst))
            .check("audit", move || audit.is_healthy())
    };
    let public = app::router(&plans, &events);
    admin::assert_absent(&public, admin::ADMIN_PATHS)
        .await
        .map_err(|e| ConfigError::new("server", e.to_string()))?;
    let public_listener = Listener::bind("public", &start.server)
        .await
        .map_err(|e| ConfigError::new("server.listen", e.to_string()))?;
    let admin_listener = match &start.admin {
        Some(config) => Some((
            Listener::bind("admin", config)
                .await
                .map_err(|e| ConfigError::new("admin.listen", e.to_string()))?,
            admin::router(metrics, health),
        )),
        None => None,
    };
    tracing::info!(
        listen = %public_listener.local_addr().map_or_else(|_| start.server.listen.to_string(), |a| a.to_string()),
        admin = ?admin_listener.as_ref().and_then(|(l, _)| l.local_addr().ok()),
        summary = %plans.current().summary,
        "idjag-resource-server ready"
    );
    idjag_ops::listener::serve_pair((public_listener, public), admin_listener, shutdown).await;
    if let Ok(audit) = Arc::try_unwrap(audit) {
        audit.shutdown(Duration::from_secs(5)).await;
    }
    telemetry.shutdown().await;
    Ok(())
}
