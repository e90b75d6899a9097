//! `[audit]`: where audit lines go (`idjag-ops`'s sinks) and what they record of tool
//! arguments.

use serde::{Deserialize, Deserializer};

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

/// `[audit]`: the sinks, their queues and what a full queue means (`idjag-ops`'s
/// [`AuditConfig`](idjag_ops::audit::AuditConfig): `queue_capacity`, `on_full`,
/// `[[audit.sinks]]`), and the gateway's keys ([`ArgumentsConfig`]), in one table.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AuditSettings {
    /// The sinks (default: one `stdout` sink), queue and `on_full`.
    pub sinks: idjag_ops::audit::AuditConfig,
    /// What is recorded of tool arguments.
    pub arguments: ArgumentsConfig,
}

impl<'de> Deserialize<'de> for AuditSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (sinks, arguments) =
            super::split::split(deserializer, idjag_ops::audit::AuditConfig::KEYS)?;
        Ok(Self { sinks, arguments })
    }
}

/// The gateway's keys of `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ArgumentsConfig {
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
}

impl Default for ArgumentsConfig {
    fn default() -> Self {
        Self {
            arguments: ArgumentMode::default(),
            redact_keys: redact_keys(),
            max_argument_bytes: max_argument_bytes(),
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
