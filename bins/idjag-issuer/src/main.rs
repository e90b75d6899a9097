//! # idjag-issuer
//!
//! An ID-JAG issuer you run as an add-on to an enterprise IdP: the RFC 8693 token-exchange
//! endpoint that trades a user's ID token for an Identity Assertion JWT Authorization Grant
//! (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant-04) addressed to one resource
//! authorization server, under a declarative policy (idjag-idp's TOML policy: deny wins,
//! audiences and resources, scope narrowing, client-id mapping).
//!
//! Subject tokens are either its own (ID tokens signed with its keys under its issuer, for an
//! IdP that shares them) or those of an **upstream OpenID provider**: Microsoft Entra ID,
//! Google Workspace or Keycloak, none of which issues ID-JAGs, bridged here with their keys
//! found by discovery, the ID token's `aud` checked against the requesting client's id at that
//! IdP, and the subject and group claims mapped by configuration.
//!
//! ```text
//! idjag-issuer check-config --config issuer.toml
//! idjag-issuer serve --config issuer.toml
//! ```
//!
//! `issuer.toml` and `policy.toml` beside this crate's manifest document every setting.
//! Endpoints: `POST /token` (token exchange), `GET /jwks`, `GET /.well-known/oauth-authorization-server`
//! and `/.well-known/openid-configuration`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! ## Security
//!
//! The decisions are idjag-idp's (client authentication, the subject token, DPoP, policy, a
//! grant never wider than the request). This binary adds: secrets only from environment
//! variables or files; configuration errors that name the key and never echo a value; one
//! audit line per decision without any token or secret (the ID-JAG's `jti` hashed); the
//! signing keys and their rotation schedule kept in the store, sealed, so a restart loses
//! nothing; client-assertion and DPoP `jti`s single use across instances.
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: check-config reports on stdout"
)]

mod app;
mod assemble;
mod config;
mod keys;
mod material;
mod ops;
mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::assemble::Mode;
use crate::config::ConfigError;

/// An ID-JAG issuer: RFC 8693 token exchange for ID-JAGs, as an IdP add-on or a bridge.
#[derive(Debug, Parser)]
#[command(name = "idjag-issuer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the issuer.
    Serve {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_ISSUER_CONFIG")]
        config: PathBuf,
    },
    /// Checks the configuration file, the policy file, the keys (and that the store answers),
    /// then exits. Writes nothing.
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_ISSUER_CONFIG")]
        config: PathBuf,
        /// Do not open the store (its settings are still checked).
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
            eprintln!("idjag-issuer: cannot start the runtime: {e}");
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
            eprintln!("idjag-issuer: configuration error: {error}");
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
    let assembled = assemble::assemble(&config, &base, Mode::Check { offline }).await?;
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

/// The signing keys' schedule, for the log (public facts only: kids, states, times).
fn schedule_summary(issuer: &idjag_idp::IdJagIssuer) -> String {
    let keys: Vec<serde_json::Value> = issuer
        .key_status()
        .into_iter()
        .map(|k| {
            serde_json::json!({
                "kid": k.kid.as_str(),
                "alg": k.alg.as_str(),
                "state": format!("{:?}", k.state).to_ascii_lowercase(),
                "published_at": k.published_at,
                "signs_from": k.signs_from,
                "retired_at": k.retired_at,
                "unpublished_at": k.unpublished_at,
            })
        })
        .collect();
    serde_json::Value::from(keys).to_string()
}

async fn serve(path: PathBuf) -> Result<(), ConfigError> {
    let (config, base) = config::load(&path)?;
    let sink = ops::AuditSink::open(config.audit.output.as_deref(), &base)?;
    ops::init_tracing(&config.log, sink, "idjag_issuer_decisions_total")?;
    let metrics = ops::install_metrics()?;
    let assembled = assemble::assemble(&config, &base, Mode::Serve).await?;
    let listener = ops::bind(assembled.listen).await.map_err(|e| {
        ConfigError::new(
            "server.listen",
            format!("cannot listen on {}: {e}", assembled.listen),
        )
    })?;
    let local = listener
        .local_addr()
        .map_or_else(|_| assembled.listen.to_string(), |a| a.to_string());
    keys::spawn_rotation(
        assembled.schedule.clone(),
        assembled.issuer.clone(),
        assembled.store.subscribe(idjag_store::Channel::KeySchedule),
    );
    tracing::info!(
        keys = %schedule_summary(&assembled.issuer),
        lead_time_secs = assembled.schedule.timing().lead_time().as_secs(),
        retention_secs = assembled.schedule.timing().retention().as_secs(),
        "signing key schedule"
    );
    let state = app::AppState {
        issuer: assembled.issuer.clone(),
        store: assembled.store.clone(),
        metrics: Some(metrics),
    };
    let router = app::router(state, assembled.limits.request_timeout);
    tracing::info!(listen = %local, summary = %assembled.summary, "idjag-issuer ready");
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
    tracing::info!("idjag-issuer stopped");
    Ok(())
}
