//! `idjag-gateway approvals`: the admin API's approvals from a terminal (list, show,
//! approve, reject).
//!
//! The admin token comes from a file (`--token-file`) or an environment variable
//! (`--token-env`, default `IDJAG_GATEWAY_ADMIN_TOKEN`), never from the command line itself
//! (other users of the machine can read a process's arguments), and is never printed. What
//! the gateway answers is shown with control characters escaped, so a hostile tool name or
//! argument cannot drive the terminal.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use idjag_core::ClientSecret;
use serde_json::Value;

/// Where the admin API is and how to authenticate to it.
#[derive(Debug, Args)]
pub struct AdminTarget {
    /// The admin API's base URL (the gateway's, or its admin listener's), e.g.
    /// `https://gateway-admin.internal`.
    #[arg(long, env = "IDJAG_GATEWAY_ADMIN_URL")]
    pub admin_url: String,
    /// A file holding the admin token (a trailing newline is ignored).
    #[arg(long, env = "IDJAG_GATEWAY_ADMIN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The environment variable holding the admin token (when no file is given).
    #[arg(long, default_value = "IDJAG_GATEWAY_ADMIN_TOKEN")]
    pub token_env: String,
    /// Print the admin API's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What to do with approvals.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// The held calls: pending first, then the decided ones.
    List,
    /// One held call, with its arguments as the audit log records them.
    Show {
        /// The approval id (`apr_...`).
        id: String,
    },
    /// Approves a pending call: the agent's identical retry runs once.
    Approve {
        /// The approval id.
        id: String,
    },
    /// Rejects a pending call.
    Reject {
        /// The approval id.
        id: String,
    },
}

/// The token, from the file or the environment variable; errors name where, never the value.
fn token(target: &AdminTarget) -> Result<ClientSecret, String> {
    if let Some(path) = &target.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the token file {}: {}",
                path.display(),
                e.kind()
            )
        })?;
        let token = text.trim_end_matches(['\r', '\n']);
        if token.is_empty() {
            return Err(format!("the token file {} is empty", path.display()));
        }
        return Ok(ClientSecret::new(token));
    }
    match std::env::var(&target.token_env) {
        Ok(token) if !token.is_empty() => Ok(ClientSecret::new(token)),
        _ => Err(format!(
            "no admin token: set {} or pass --token-file",
            target.token_env
        )),
    }
}

/// `text` with control characters (and the other invisible steering characters) escaped.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn text(call: &Value, key: &str) -> String {
    printable(call.get(key).and_then(Value::as_str).unwrap_or("-"))
}

fn line(call: &Value) -> String {
    format!(
        "{id}  {status:<8}  {user}  {agent}  {upstream}/{tool}",
        id = text(call, "id"),
        status = text(call, "status"),
        user = text(call, "user"),
        agent = text(call, "agent"),
        upstream = text(call, "upstream"),
        tool = text(call, "tool"),
    )
}

fn details(call: &Value) -> String {
    let arguments = match call.get("arguments") {
        None | Some(Value::Null) => "(not recorded)".to_owned(),
        Some(value) => serde_json::to_string_pretty(value).unwrap_or_default(),
    };
    let number = |key: &str| call.get(key).and_then(Value::as_i64).unwrap_or(0);
    format!(
        "id:        {id}\nstatus:    {status}\nuser:      {user}\nissuer:    {issuer}\nagent:     {agent}\n\
         upstream:  {upstream}\ntool:      {tool}\nheld at:   {created} (Unix seconds)\nexpires:   {expires} (Unix seconds)\n\
         arguments: {arguments}\n",
        id = text(call, "id"),
        status = text(call, "status"),
        user = text(call, "user"),
        issuer = text(call, "issuer"),
        agent = text(call, "agent"),
        upstream = text(call, "upstream"),
        tool = text(call, "tool"),
        created = number("created"),
        expires = number("expires"),
        arguments = printable(&arguments).replace("\\u{a}", "\n           "),
    )
}

/// What an error answer means.
fn refusal(status: reqwest::StatusCode, body: &Value) -> String {
    let code = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    match status.as_u16() {
        401 => "the admin API refused the token (401)".to_owned(),
        404 if code == "not_found" => "no such approval, or the admin API is off (404)".to_owned(),
        409 => "that call was already decided (409 already_decided)".to_owned(),
        503 => "the gateway's store did not answer; try again (503)".to_owned(),
        _ => format!(
            "the admin API answered {} {}",
            status.as_u16(),
            printable(code)
        ),
    }
}

/// Runs `command` against the admin API; writes the answer to `out`.
pub async fn run(
    target: &AdminTarget,
    command: &ApprovalsCommand,
    out: &mut dyn Write,
) -> Result<(), String> {
    let token = token(target)?;
    let base = idjag_core::endpoint::check_endpoint(&target.admin_url)
        .map_err(|e| format!("--admin-url: {e}"))?;
    let base = base.as_str().trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.without_url().to_string())?;
    let valid_id = |id: &str| {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            Err(format!("not an approval id: {}", printable(id)))
        } else {
            Ok(())
        }
    };
    let request = match command {
        ApprovalsCommand::List | ApprovalsCommand::Show { .. } => {
            client.get(format!("{base}/admin/approvals"))
        }
        ApprovalsCommand::Approve { id } => {
            valid_id(id)?;
            client.post(format!("{base}/admin/approvals/{id}/approve"))
        }
        ApprovalsCommand::Reject { id } => {
            valid_id(id)?;
            client.post(format!("{base}/admin/approvals/{id}/reject"))
        }
    };
    let response = request
        .bearer_auth(token.secret())
        .send()
        .await
        .map_err(|e| format!("cannot reach the admin API: {}", e.without_url()))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|_| format!("the admin API answered {} without JSON", status.as_u16()))?;
    if !status.is_success() {
        return Err(refusal(status, &body));
    }
    let write = |out: &mut dyn Write, text: String| {
        out.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the answer: {}", e.kind()))
    };
    match command {
        ApprovalsCommand::List => {
            if target.json {
                return write(out, format!("{body:#}\n"));
            }
            let mut calls: Vec<&Value> = body
                .get("approvals")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            calls.sort_by_key(|c| {
                (
                    c.get("status").and_then(Value::as_str) != Some("pending"),
                    c.get("created").and_then(Value::as_i64),
                )
            });
            let pending = calls
                .iter()
                .filter(|c| c.get("status").and_then(Value::as_str) == Some("pending"))
                .count();
            let mut text = format!("{pending} pending, {} in all\n", calls.len());
            for call in calls {
                text.push_str(&line(call));
                text.push('\n');
            }
            write(out, text)
        }
        ApprovalsCommand::Show { id } => {
            let call = body
                .get("approvals")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
                })
                .ok_or_else(|| format!("no such approval: {}", printable(id)))?;
            if target.json {
                return write(out, format!("{call:#}\n"));
            }
            write(out, details(call))
        }
        ApprovalsCommand::Approve { .. } | ApprovalsCommand::Reject { .. } => {
            if target.json {
                return write(out, format!("{body:#}\n"));
            }
            write(out, format!("{}\n", line(&body)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_characters_are_escaped() {
        assert_eq!(
            printable("publish\u{1b}[2J\u{202e}txt.exe\n"),
            "publish\\u{1b}[2J\\u{202e}txt.exe\\u{a}"
        );
    }
}
