//! `idjag-gateway demo --serve`: the demo's stack stays up for people and scripts. It starts
//! the [`Topology`] with the gateway's authorization server on fixed loopback ports, prints
//! every URL, client and ready ID token ([`StackInfo::describe`]), writes the `--info`
//! document, and runs until SIGINT or SIGTERM; then the gateway drains, the audit log is
//! flushed and the info file removed.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use idjag_ops::listener::Shutdown;

use super::info::StackInfo;
use super::topology::{Topology, TopologyOptions};
use super::{DemoError, FileAudit};

/// The first of the served stack's six consecutive ports, unless `--port` says otherwise.
pub const DEFAULT_BASE_PORT: u16 = 18280;

/// How long the served stack's development ID tokens live (the IdP accepts an ID token as a
/// token-exchange subject for 24 hours after its `iat`).
pub const SERVED_ID_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// Options of [`serve`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The first of six consecutive ports; `None`: ephemeral ports.
    pub base_port: Option<u16>,
    /// Where to write the [`StackInfo`] document once the stack is ready.
    pub info_file: Option<PathBuf>,
    /// Where the audit lines go (JSON lines).
    pub audit_log: Option<PathBuf>,
}

/// Serves the demo stack until SIGINT or SIGTERM, printing its facts to `out`.
pub async fn serve(options: ServeOptions, out: &mut (dyn Write + Send)) -> Result<(), DemoError> {
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    if let Some(path) = &options.info_file {
        // A script waiting for the file must never read a previous run's.
        remove_if_present(path)?;
    }
    let audit = match &options.audit_log {
        Some(path) => Some(FileAudit::start(path).await?),
        None => None,
    };
    let mut topology = Topology::start(TopologyOptions {
        audit: audit.as_ref().map(FileAudit::sink),
        authorization_server: true,
        base_port: options.base_port,
        id_token_lifetime: Some(SERVED_ID_TOKEN_LIFETIME),
        ..TopologyOptions::default()
    })
    .await?;
    let info = StackInfo::of(&topology, options.audit_log.as_deref())?;
    let _ = write!(out, "{}", info.describe());
    if let Some(path) = &options.info_file {
        info.write_to(path)?;
        let _ = writeln!(out, "\nFacts as JSON: {}", path.display());
    }
    let _ = writeln!(out, "\nReady. Ctrl-C or SIGTERM stops the stack.");
    let _ = out.flush();

    shutdown.triggered().await;
    topology.shutdown().await?;
    if let Some(audit) = &audit {
        audit.flush().await;
    }
    if let Some(path) = &options.info_file {
        remove_if_present(path)?;
    }
    let _ = writeln!(out, "Stopped.");
    let _ = out.flush();
    Ok(())
}

fn remove_if_present(path: &std::path::Path) -> Result<(), DemoError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DemoError::io(e)),
        _ => Ok(()),
    }
}
