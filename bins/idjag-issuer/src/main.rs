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
//! and `/.well-known/openid-configuration`; on the admin listener (`[admin]`), `GET /healthz`,
//! `GET /readyz` and `GET /metrics`. Logs are JSON (or text) lines on stderr, audit lines go
//! to the `[audit]` sinks, and SIGTERM or Ctrl-C drains the listeners before exiting; SIGHUP
//! (or a change of the file) reloads the configuration.
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
mod upstream;

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
    /// Checks the configuration file with its environment overrides, the policy file, the
    /// keys (and that the store answers), then exits. Writes nothing.
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, env = "IDJAG_ISSUER_CONFIG")]
        config: PathBuf,
        /// Do not open the store (its settings are still checked).
        #[arg(long)]
        offline: bool,
        /// Also print the effective configuration (file and environment), secrets redacted.
        #[arg(long)]
        print: bool,
    },
}

/// Exit status of a configuration error.
const CONFIG_ERROR: u8 = 2;
const NAME: &str = "idjag-issuer";
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
    let (store, sealer) = if offline {
        if let Some(store) = &loaded.config.store {
            let store = assemble::resolve_store(store, &loaded.base);
            store.check().map_err(assemble::store_error)?;
            assemble::sealer_of(&store)?;
        }
        assemble::open_store(None, &loaded.base, &clock)?
    } else {
        assemble::open_store(loaded.config.store.as_ref(), &loaded.base, &clock)?
    };
    let plan = assemble::plan(
        &loaded.config,
        &loaded.base,
        &store,
        &sealer,
        Mode::Check { offline },
    )
    .await?;
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
    let loaded = config::load(&path)?;
    let start = &loaded.config;
    let mut telemetry_config = start.telemetry.clone();
    let events = AuditEvents::new("idjag_issuer_token_exchanges_total");
    telemetry_config.log_filter = events::without_audit(&telemetry_config.log_filter);
    let telemetry = Telemetry::init_with_layer(
        &telemetry_config,
        &ServiceInfo::new(NAME, VERSION),
        events.layer(),
    )
    .map_err(|e| ConfigError::new("telemetry", e.to_string()))?;
    let metrics = Metrics::global();
    idjag_ops::metrics::build_info("idjag_issuer", VERSION, &[]);
    let audit = Arc::new(
        Audit::start(&start.audit)
            .await
            .map_err(|e| ConfigError::new("audit", e.to_string()))?,
    );
    events.attach(audit.clone());

    // The store is opened once; every plan (start-up and reloads) uses it.
    let clock = idjag_core::SystemClock::shared();
    let (store, sealer) = assemble::open_store(start.store.as_ref(), &loaded.base, &clock)?;
    let store_section = loaded.effective.get("store").cloned();
    let (plan_store, runtime) = (store.clone(), tokio::runtime::Handle::current());
    let planner = move |path: &std::path::Path| {
        let loaded = config::load(path)?;
        if loaded.effective.get("store") != store_section.as_ref() {
            return Err(ConfigError::new(
                "store",
                "a change of the store needs a restart",
            ));
        }
        runtime.block_on(assemble::plan(
            &loaded.config,
            &loaded.base,
            &plan_store,
            &sealer,
            Mode::Serve,
        ))
    };
    // The planning pass waits for the store: off the runtime's workers.
    let plans = tokio::task::spawn_blocking(move || Reloadable::load(path, planner))
        .await
        .map_err(|_| ConfigError::new("(configuration)", "the planning pass panicked"))??;

    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    plans.watch(start.reload, shutdown.clone());
    spawn_rotation(plans.clone(), store.clone(), shutdown.clone());
    let store_up = {
        let probe = store.clone();
        admin::watch(
            move || {
                let store = probe.clone();
                async move { store.ping().await.is_ok() }
            },
            metrics::gauge!("idjag_issuer_store_up", "backend" => store.backend()),
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
    let current = plans.current();
    tracing::info!(
        keys = %schedule_summary(&current.issuer),
        lead_time_secs = current.schedule.timing().lead_time().as_secs(),
        retention_secs = current.schedule.timing().retention().as_secs(),
        "signing key schedule"
    );
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
        summary = %current.summary,
        "idjag-issuer ready"
    );
    drop(current);
    idjag_ops::listener::serve_pair((public_listener, public), admin_listener, shutdown).await;
    if let Ok(audit) = Arc::try_unwrap(audit) {
        audit.shutdown(Duration::from_secs(5)).await;
    }
    telemetry.shutdown().await;
    Ok(())
}

/// Reloads and stages on every `TICK` and on every change another instance announces, with
/// the plan in use (its issuer and its configured keys), until `shutdown`.
fn spawn_rotation(
    plans: Reloadable<assemble::Plan>,
    store: Arc<dyn idjag_store::Store>,
    shutdown: Shutdown,
) {
    tokio::spawn(async move {
        let mut subscription = store.subscribe(idjag_store::Channel::KeySchedule);
        let mut every = tokio::time::interval(keys::TICK);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                notice = subscription.next() => {
                    if notice.is_none() {
                        subscription = store.subscribe(idjag_store::Channel::KeySchedule);
                    }
                }
                () = shutdown.triggered() => return,
            }
            let plan = plans.current();
            if let Err(error) = plan.schedule.tick(&plan.issuer).await {
                tracing::warn!(%error, "key schedule not refreshed; retrying");
            }
        }
    });
}
