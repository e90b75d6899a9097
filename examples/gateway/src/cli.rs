//! The command line: `serve`, `check-config`, `approvals` ([`approvals`]) and, with the
//! `demo` feature, `demo`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

pub mod approvals;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::plan::Plan;

/// idjag-gateway: one governed front door for an organisation's MCP servers.
#[derive(Debug, Parser)]
#[command(name = "idjag-gateway", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log format (levels come from `RUST_LOG`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_GATEWAY_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration file (and that its secrets can be read), then exit.
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_GATEWAY_CONFIG")]
        config: PathBuf,
    },
    /// Calls held for approval, through the admin API: list, show, approve, reject.
    Approvals {
        /// Where the admin API is, and its token.
        #[command(flatten)]
        target: approvals::AdminTarget,
        /// What to do.
        #[command(subcommand)]
        command: approvals::ApprovalsCommand,
    },
    /// Start an IdP, a resource AS, an MCP server and the gateway on loopback, play an
    /// agent through them and print each step. Exits non-zero if any step fails.
    #[cfg(feature = "demo")]
    Demo {
        /// Also write the audit log (JSON lines) to this file.
        #[arg(long)]
        audit_log: Option<PathBuf>,
    },
}

fn init_logs(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// Reads and plans the file at `path`.
fn plan(path: &Path) -> Result<Plan, String> {
    let config = Config::from_path(path).map_err(|e| e.to_string())?;
    Plan::from_config(&config).map_err(|e| e.to_string())
}

async fn serve(path: PathBuf) -> Result<(), String> {
    let gateway = Gateway::builder(plan(&path)?)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    for warning in gateway.warnings() {
        tracing::warn!(%warning, "configuration");
    }
    let listen = gateway.listen();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(listen = %listen, public_url = gateway.public_url(), "idjag-gateway serving");
    gateway
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

/// Plans and builds the gateway of the file at `path` (its secrets read, its store opened
/// and pinged), without serving.
async fn check_config(path: &Path, out: &mut dyn Write) -> Result<(), String> {
    let warnings = Gateway::check(plan(path)?)
        .await
        .map_err(|e| e.to_string())?;
    for warning in warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(out, "{}: OK", path.display());
    Ok(())
}

/// Runs the command line; the binary's `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve { config } => {
            init_logs(cli.log_format, "info");
            runtime.block_on(serve(config))
        }
        Command::CheckConfig { config } => {
            init_logs(cli.log_format, "warn");
            runtime.block_on(check_config(&config, &mut std::io::stdout()))
        }
        Command::Approvals { target, command } => {
            init_logs(cli.log_format, "warn");
            runtime.block_on(approvals::run(&target, &command, &mut std::io::stdout()))
        }
        #[cfg(feature = "demo")]
        Command::Demo { audit_log } => {
            init_logs(cli.log_format, "warn");
            let options = crate::demo::DemoOptions { audit_log };
            runtime
                .block_on(crate::demo::run(options, &mut std::io::stdout()))
                .map(drop)
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            ExitCode::FAILURE
        }
    }
}
