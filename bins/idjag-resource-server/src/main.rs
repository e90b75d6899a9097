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
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | liveness, readiness (the store answers), Prometheus |
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
mod ops;
mod subject;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

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
        #[arg(long, short, env = "IDJAG_RESOURCE_SERVER_CONFIG")]
        config: PathBuf,
    },
    /// Checks the configuration file (and that the store answers), then exits.
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_RESOURCE_SERVER_CONFIG")]
        config: PathBuf,
        /// Do not open the store (its settings are still checked): for an embedded store that
        /// a running server holds locked.
        #[arg(long)]
        offline: bool,
    },
}

/// Exit status of a configuration error.
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("idjag-resource-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve { config } => runtime.block_on(serve(config)),
        Command::CheckConfig { config, offline } => runtime.block_on(check(config, offline)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("idjag-resource-server: configuration error: {error}");
            ExitCode::from(CONFIG_ERROR)
        }
    }
}

async fn check(path: PathBuf, offline: bool) -> Result<(), ConfigError> {
    let (config, base) = config::load(&path)?;
    ops::AuditSink::open(config.audit.output.as_deref(), &base)?;
    tracing_subscriber::EnvFilter::try_new(&config.log.level).map_err(|e| {
        ConfigError::new(
            "log.level",
            format!("{:?} is not a filter: {e}", config.log.level),
        )
    })?;
    let assembled = assemble::assemble(&config, &base, offline)?;
    if !offline {
        match tokio::time::timeout(Duration::from_secs(5), assembled.store.ping()).await {
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
    println!("configuration ok: {}", assembled.summary);
    Ok(())
}

async fn serve(path: PathBuf) -> Result<(), ConfigError> {
    let (config, base) = config::load(&path)?;
    let sink = ops::AuditSink::open(config.audit.output.as_deref(), &base)?;
    ops::init_tracing(&config.log, sink, "idjag_resource_server_decisions_total")?;
    let metrics = ops::install_metrics()?;
    let assembled = assemble::assemble(&config, &base, false)?;
    match tokio::time::timeout(Duration::from_secs(5), assembled.store.ping()).await {
        Ok(Ok(())) => {}
        _ => tracing::warn!(
            backend = assembled.store.backend(),
            "the store does not answer yet: grants are refused until it does (see /readyz)"
        ),
    }
    let listener = ops::bind(assembled.listen).await.map_err(|e| {
        ConfigError::new(
            "server.listen",
            format!("cannot listen on {}: {e}", assembled.listen),
        )
    })?;
    let local = listener
        .local_addr()
        .map_or_else(|_| assembled.listen.to_string(), |a| a.to_string());
    let state = app::AppState {
        server: assembled.server.clone(),
        store: assembled.store.clone(),
        metrics: Some(metrics),
    };
    let router = app::router(state, assembled.limits.request_timeout);
    tracing::info!(listen = %local, summary = %assembled.summary, "idjag-resource-server ready");
    ops::serve(
        listener,
        router,
        ops::ServeLimits {
            max_connections: assembled.limits.max_connections,
            header_read_timeout: assembled.limits.header_read_timeout,
            shutdown_grace: assembled.limits.shutdown_grace,
        },
        ops::shutdown_signal(),
    )
    .await;
    tracing::info!("idjag-resource-server stopped");
    Ok(())
}
