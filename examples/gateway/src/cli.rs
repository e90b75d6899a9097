//! The command line: `serve`, `check-config`, `approvals` ([`approvals`]) and, with the
//! `demo` feature, `demo`.
//!
//! Logs and traces follow `[telemetry]` (`idjag-ops`): JSON lines on stderr at `info` by
//! default; `IDJAG_GATEWAY__TELEMETRY__LOG_FORMAT=text` and
//! `IDJAG_GATEWAY__TELEMETRY__LOG_FILTER=debug` change them like any other setting.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use idjag_ops::env::Overrides;
use idjag_ops::listener::Shutdown;
use idjag_ops::telemetry::{ServiceInfo, Telemetry, TelemetryConfig};

pub mod approvals;

use crate::config::{Config, ENV_PREFIX};
use crate::gateway::{Gateway, plan_file};

/// The gateway's name and version, for telemetry and `build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// idjag-gateway: one governed front door for an organisation's MCP servers.
#[derive(Debug, Parser)]
#[command(name = "idjag-gateway", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway. The configuration reloads on SIGHUP and when the file changes;
    /// SIGTERM or SIGINT drain and stop it.
    Serve {
        /// The configuration file (every key can be overridden with IDJAG_GATEWAY__…).
        #[arg(long, short, env = "IDJAG_GATEWAY_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration file with the environment's overrides (that its secrets can be
    /// read and its store opened and pinged), then exit.
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_GATEWAY_CONFIG")]
        config: PathBuf,
        /// Also print the effective configuration (file and overrides), secrets redacted.
        #[arg(long)]
        print: bool,
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
    /// agent through them and print each step. Exits non-zero if any step fails. With
    /// `--serve`, keep the stack up instead, until SIGINT or SIGTERM.
    #[cfg(feature = "demo")]
    Demo {
        /// Also write the audit log (JSON lines) to this file.
        #[arg(long)]
        audit_log: Option<PathBuf>,
        /// Keep the stack running on loopback and print its URLs, clients and ID tokens.
        #[arg(long)]
        serve: bool,
        /// With --serve: the first of six consecutive ports (IdP, resource AS, notes, gateway,
        /// wiki, admin); 0 for ephemeral ports.
        #[arg(long, requires = "serve", default_value_t = crate::demo::DEFAULT_BASE_PORT)]
        port: u16,
        /// With --serve: write the stack's facts as JSON to this file once it is ready.
        #[arg(long, requires = "serve")]
        info: Option<PathBuf>,
    },
}

/// Installs the logs (and traces) of `config`, or reports why not.
fn init_telemetry(config: &TelemetryConfig) -> Result<Telemetry, String> {
    Telemetry::init(config, &ServiceInfo::new("idjag-gateway", VERSION)).map_err(|e| e.to_string())
}

async fn serve(path: PathBuf) -> Result<(), String> {
    // Plan first: a configuration error is printed on stderr before any log is set up.
    let plan = plan_file(&path)?;
    let telemetry = init_telemetry(&plan.telemetry)?;
    idjag_ops::metrics::Metrics::global();
    idjag_ops::metrics::build_info(crate::observe::metrics::PREFIX, VERSION, &[]);
    let reload = plan.reload;
    let gateway = Gateway::builder(plan)
        .reload_from(&path, plan_file)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    for warning in gateway.warnings() {
        tracing::warn!(%warning, "configuration");
    }
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    gateway.watch(reload, shutdown.clone());
    let (public, admin) = gateway.bind().await.map_err(|e| e.to_string())?;
    tracing::info!(
        listen = %gateway.listen(),
        admin = ?gateway.admin_listener_config().map(|a| a.listen),
        public_url = gateway.public_url(),
        "idjag-gateway serving"
    );
    gateway.serve(public, admin, shutdown).await;
    gateway.flush_audit(Duration::from_secs(5)).await;
    tracing::info!("stopped");
    telemetry.shutdown().await;
    Ok(())
}

/// Plans the file at `path` with the environment's overrides and builds its gateway (its
/// secrets read, its store opened and pinged), without serving; with `print`, shows the
/// effective configuration first, secrets redacted.
async fn check_config(path: &Path, print: bool, out: &mut dyn Write) -> Result<(), String> {
    if print {
        let overrides = Overrides::from_env(ENV_PREFIX).map_err(|e| e.to_string())?;
        let text = Config::print_effective(path, &overrides).map_err(|e| e.to_string())?;
        let _ = write!(out, "{text}");
    }
    let plan = plan_file(path)?;
    // The store's client logs why it cannot connect: warnings on stderr, the configured
    // format, no traces.
    let mut logs = TelemetryConfig::default();
    logs.log_format = plan.telemetry.log_format;
    logs.log_filter = "warn".to_owned();
    let telemetry = init_telemetry(&logs)?;
    let checked = Gateway::check(plan).await;
    telemetry.shutdown().await;
    let warnings = checked.map_err(|e| e.to_string())?;
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
        Command::Serve { config } => runtime.block_on(serve(config)),
        Command::CheckConfig { config, print } => {
            runtime.block_on(check_config(&config, print, &mut std::io::stdout()))
        }
        // No logs: the command prints its answer, and errors on stderr.
        Command::Approvals { target, command } => {
            runtime.block_on(approvals::run(&target, &command, &mut std::io::stdout()))
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            audit_log,
            serve,
            port,
            info,
        } => {
            let mut telemetry = TelemetryConfig::default();
            telemetry.log_filter = "warn".to_owned();
            let started = runtime.block_on(async { init_telemetry(&telemetry) });
            started.and_then(|telemetry| {
                let out = &mut std::io::stdout();
                let result = if serve {
                    let options = crate::demo::ServeOptions {
                        base_port: (port != 0).then_some(port),
                        info_file: info,
                        audit_log,
                    };
                    runtime.block_on(crate::demo::serve(options, out))
                } else {
                    let options = crate::demo::DemoOptions { audit_log };
                    runtime.block_on(crate::demo::run(options, out)).map(drop)
                };
                runtime.block_on(telemetry.shutdown());
                result.map_err(|e| e.to_string())
            })
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
