//! One child process: spawned with a cleared environment, initialized over MCP's stdio
//! transport (rmcp's child-process transport), its stderr logged line by line, redacted.

use std::process::Stdio;

use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use tokio::io::AsyncReadExt;
use tokio::process::ChildStderr;

use super::spec::StdioSpec;

/// The rmcp client session with one child process.
pub(super) type Session = RunningService<RoleClient, ClientConfig>;

/// Longest stderr line logged; the rest of a longer line is dropped.
pub const MAX_STDERR_LINE: usize = 2048;

/// Why a process could not be started. Never carries the credential.
#[derive(Debug, thiserror::Error)]
pub(super) enum SpawnError {
    #[error("cannot start the program: {0}")]
    Spawn(std::io::Error),
    #[error("the MCP server did not initialize")]
    Initialize,
    #[error("the MCP server did not initialize in time")]
    Timeout,
}

/// Starts the program of `spec` with `credential` (when the mode has one) in its
/// `credential_env`, and initializes an MCP session with it.
pub(super) async fn spawn(
    upstream: &str,
    spec: &StdioSpec,
    credential: Option<&str>,
) -> Result<(Session, Option<u32>), SpawnError> {
    let mut command = tokio::process::Command::new(&spec.program);
    command.args(&spec.args).env_clear().kill_on_drop(true);
    for (name, value) in spec.env.vars() {
        command.env(name, value);
    }
    if let (Some(name), Some(value)) = (&spec.credential_env, credential) {
        command.env(name, value);
    }
    if let Some(dir) = &spec.working_dir {
        command.current_dir(dir);
    }
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(SpawnError::Spawn)?;
    let pid = transport.id();
    if let Some(stderr) = stderr {
        let redact: Vec<String> = credential
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .into_iter()
            .collect();
        tokio::spawn(log_stderr(stderr, upstream.to_owned(), pid, redact));
    }
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("idjag-gateway", env!("CARGO_PKG_VERSION")),
    );
    match tokio::time::timeout(spec.start_timeout, info.serve(transport)).await {
        Ok(Ok(session)) => Ok((session, pid)),
        Ok(Err(_)) => Err(SpawnError::Initialize),
        Err(_) => Err(SpawnError::Timeout),
    }
}

/// Logs the child's stderr, one event per line (at most [`MAX_STDERR_LINE`] bytes each),
/// with every occurrence of a value of `redact` replaced and control characters removed.
async fn log_stderr(
    mut stderr: ChildStderr,
    upstream: String,
    pid: Option<u32>,
    redact: Vec<String>,
) {
    let mut chunk = [0u8; 4096];
    let mut line = Vec::with_capacity(256);
    let mut skipping = false;
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &byte in &chunk[..n] {
            if byte == b'\n' {
                if !skipping {
                    emit(&upstream, pid, &line, &redact);
                }
                line.clear();
                skipping = false;
            } else if !skipping {
                line.push(byte);
                if line.len() >= MAX_STDERR_LINE {
                    emit(&upstream, pid, &line, &redact);
                    line.clear();
                    skipping = true;
                }
            }
        }
    }
    if !line.is_empty() && !skipping {
        emit(&upstream, pid, &line, &redact);
    }
}

fn emit(upstream: &str, pid: Option<u32>, line: &[u8], redact: &[String]) {
    let text = redacted(&String::from_utf8_lossy(line), redact);
    if !text.is_empty() {
        tracing::info!(upstream, pid, line = %text, "stdio upstream stderr");
    }
}

/// `text` with every value of `redact` replaced by `[redacted]` and control characters
/// removed.
pub fn redacted(text: &str, redact: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in redact.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret.as_str(), "[redacted]");
    }
    text.retain(|c| !c.is_control());
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_lines_lose_secrets_and_control_characters() {
        let secrets = vec!["tok-123".to_owned()];
        assert_eq!(
            redacted("auth tok-123 failed\u{1b}[31m for tok-123\r", &secrets),
            "auth [redacted] failed[31m for [redacted]"
        );
        assert_eq!(redacted("plain", &[]), "plain");
    }
}
