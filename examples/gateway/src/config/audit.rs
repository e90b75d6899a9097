//! `[audit]`: the JSON-lines audit log.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration::ConfigDuration;

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditOutput {
    /// Standard output (the default).
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for AuditOutput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "stdout" | "-" => Self::Stdout,
            "stderr" => Self::Stderr,
            _ => Self::File(PathBuf::from(text)),
        })
    }
}

/// How tool arguments are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ArgumentMode {
    /// Not at all.
    Omit,
    /// Object keys only, every value replaced by `"[redacted]"` (the default).
    #[default]
    Keys,
    /// Values too, except under keys matching `redact_keys` and strings that look like
    /// JWTs, which become `"[redacted]"`.
    Redact,
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditConfig {
    /// `"stdout"` (default), `"stderr"` or a file path.
    #[serde(default)]
    pub output: AuditOutput,
    /// How tool arguments are recorded. Default `keys`.
    #[serde(default)]
    pub arguments: ArgumentMode,
    /// With `arguments = "redact"`: values under keys containing one of these
    /// (case-insensitive) are replaced by `"[redacted]"`.
    #[serde(default = "redact_keys")]
    pub redact_keys: Vec<String>,
    /// Longest recorded arguments (serialized); longer ones are replaced by a marker.
    /// Default 2 KiB.
    #[serde(default = "max_argument_bytes")]
    pub max_argument_bytes: usize,
    /// How often the audit writer writes what is queued (one write for many lines under
    /// load). `0` writes and flushes each line on its own. Default 10 ms.
    #[serde(default = "flush_interval")]
    pub flush_interval: ConfigDuration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            output: AuditOutput::default(),
            arguments: ArgumentMode::default(),
            redact_keys: redact_keys(),
            max_argument_bytes: max_argument_bytes(),
            flush_interval: flush_interval(),
        }
    }
}

fn redact_keys() -> Vec<String> {
    [
        "password",
        "passwd",
        "secret",
        "token",
        "authorization",
        "api_key",
        "apikey",
        "credential",
        "private_key",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect()
}

fn max_argument_bytes() -> usize {
    2048
}

fn flush_interval() -> ConfigDuration {
    ConfigDuration(Duration::from_millis(10))
}
