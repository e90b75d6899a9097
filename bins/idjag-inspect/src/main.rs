//! The `idjag-inspect` binary: a claim-by-claim verdict on one token. See the library docs.

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::Parser;
use idjag_inspect::{Jwks, inspect};

/// Longest token read from standard input.
const MAX_STDIN_BYTES: u64 = 1 << 20;

/// Decode an ID-JAG, ID token or access token and check it claim by claim against the
/// profile (requirement ids); exits 1 when a check fails.
#[derive(Debug, Parser)]
#[command(name = "idjag-inspect", version, about)]
struct Cli {
    /// The token, or `-` to read it from standard input.
    token: String,
    /// Verify the signature with this JWK Set: an `https` URL (or `http` on loopback) or a
    /// file.
    #[arg(long)]
    jwks: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs one inspection: the report goes to `out`; `Ok(false)` when the token fails.
async fn run(cli: &Cli, out: &mut dyn Write) -> Result<bool, String> {
    let token = if cli.token == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(MAX_STDIN_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the token from standard input: {e}"))?;
        text
    } else {
        cli.token.clone()
    };
    let jwks = match cli.jwks.as_deref() {
        None => None,
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Some(Jwks::Url(url.to_owned()))
        }
        Some(path) => Some(Jwks::Document(
            std::fs::read(path).map_err(|e| format!("cannot read {path}: {}", e.kind()))?,
        )),
    };
    let report = inspect(&token, jwks.as_ref(), idjag_core::SystemClock::shared()).await;
    let text = if cli.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n"
    } else {
        report.to_text()
    };
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(report.valid && (report.signature_verified || jwks.is_none()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli, &mut std::io::stdout())) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            ExitCode::FAILURE
        }
    }
}
