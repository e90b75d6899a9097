//! What every configuration shape of this crate shares: durations, the error that names the
//! bad key, and deserialization of a `toml::Table` that reports where it failed.
//!
//! The shapes themselves live with the code they configure:
//!
//! | TOML | type |
//! |---|---|
//! | `[server]` (`listen`, `tls`, limits) and `[admin]` | [`ListenerConfig`](crate::listener::ListenerConfig) |
//! | `[server.tls]` | [`TlsConfig`](crate::listener::TlsConfig) |
//! | `[telemetry]`, `[telemetry.traces]` | [`TelemetryConfig`](crate::telemetry::TelemetryConfig) |
//! | `[audit]`, `[[audit.sinks]]` | [`AuditConfig`](crate::audit::AuditConfig) |
//! | `trusted_proxies` | [`TrustedProxies`](crate::audit::TrustedProxies) |
//! | `[reload]` | [`WatchOptions`](crate::reload::WatchOptions) |
//!
//! Every shape refuses unknown keys, documents its defaults on each field, and has a
//! `validate(&self, at)` that checks what serde cannot and names the bad key relative to
//! `at` (the table the shape sits in, e.g. `"server"`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A configuration value that is not acceptable, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The dotted key, e.g. `server.tls.cert` or `audit.sinks[1].url`.
    pub key: String,
    /// What is wrong with it (never the value of a secret).
    pub problem: String,
}

impl ConfigError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// `at.key`, or `key` when `at` is empty.
pub(crate) fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// A duration written as `"250ms"`, `"10s"`, `"5m"`, `"1h"` or a whole number of seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ConfigDuration(pub Duration);

impl fmt::Debug for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ConfigDuration {
    /// `n` seconds.
    pub const fn secs(n: u64) -> Self {
        Self(Duration::from_secs(n))
    }

    /// `n` milliseconds.
    pub const fn millis(n: u64) -> Self {
        Self(Duration::from_millis(n))
    }

    /// Parses `"250ms"`, `"10s"`, `"5m"`, `"1h"` or `"10"` (seconds).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().ok()?;
        let duration = match unit {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        Some(Self(duration))
    }
}

/// Written the way it is read: `"1h"`, `"5m"`, `"10s"`, `"250ms"` (the largest unit that
/// divides it), so a configuration printed back (`check-config --print`, a rendered plan)
/// parses to the same value.
impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        let secs = self.0.as_secs();
        if self.0.subsec_millis() != 0 || (secs == 0 && millis != 0) {
            write!(f, "{millis}ms")
        } else if secs != 0 && secs.is_multiple_of(3600) {
            write!(f, "{}h", secs / 3600)
        } else if secs != 0 && secs.is_multiple_of(60) {
            write!(f, "{}m", secs / 60)
        } else {
            write!(f, "{secs}s")
        }
    }
}

impl serde::Serialize for ConfigDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl From<ConfigDuration> for Duration {
    fn from(value: ConfigDuration) -> Self {
        value.0
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(n) => Ok(Self::secs(n)),
            Raw::Text(text) => Self::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?} (use e.g. \"250ms\", \"10s\", \"5m\", \"1h\")"
                ))
            }),
        }
    }
}

/// Deserializes `T` from a parsed table; a failure names the key where it happened
/// (`server.tls.cert: missing field ...`).
///
/// [`env::Overrides::deserialize`](crate::env::Overrides::deserialize) does the same and
/// names the environment variable when one of them caused the failure.
pub fn from_table<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
        let key = error.path().to_string();
        let key = if key == "." { String::new() } else { key };
        ConfigError::new(key, first_line(&error.into_inner().to_string()))
    })
}

/// Parses a configuration file's text strictly into `T`. A failure names the key and its line
/// (`server.listen (line 3): invalid socket address`), never the text of the line, which could
/// hold a secret someone pasted where it does not belong.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let deserializer = toml::de::Deserializer::parse(text)
        .map_err(|e| ConfigError::new(at_line("(file)", text, e.span()), e.message()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let key = if path.is_empty() || path == "." {
            "(top level)".to_owned()
        } else {
            path
        };
        ConfigError::new(at_line(&key, text, e.inner().span()), e.inner().message())
    })
}

/// `key (line N)` for a span of `text`.
pub(crate) fn at_line(key: &str, text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{key} (line {line})")
        }
        None => key.to_owned(),
    }
}

/// Serializes a map of secret values (headers with API keys) with every value replaced by
/// `"[redacted]"`, so a rendered configuration shows which headers are set, never their values.
pub fn serialize_redacted<S: serde::Serializer>(
    map: &std::collections::BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.keys().map(|k| (k, "[redacted]")))
}

/// Moves the entries of `table` whose key is one of `keys` into a new table: how a server
/// embeds a shape of this crate ([`ListenerConfig`](crate::listener::ListenerConfig),
/// [`AuditConfig`](crate::audit::AuditConfig)) in a table that also holds its own keys. Each
/// part is then deserialized on its own, both refusing unknown keys.
pub fn split_keys(table: &mut toml::Table, keys: &[&str]) -> toml::Table {
    let mut part = toml::Table::new();
    for key in keys {
        if let Some(value) = table.remove(*key) {
            part.insert((*key).to_owned(), value);
        }
    }
    part
}

/// A deserializer's message without the context toml appends on further lines (the key is
/// reported separately).
pub(crate) fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only parsed")]
    struct Shape {
        server: Server,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only parsed")]
    struct Server {
        listen: String,
    }

    #[test]
    fn parse_toml_names_the_key_and_its_line_never_the_value() {
        let error =
            parse_toml::<Shape>("[server]\nlisten = \"a\"\nsecret = \"hunter2\"\n").unwrap_err();
        assert_eq!(error.key, "server.secret (line 3)");
        assert!(
            error.problem.starts_with("unknown field `secret`"),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"));
        let error = parse_toml::<Shape>("[server]\nlisten = 1\n").unwrap_err();
        assert_eq!(error.key, "server.listen (line 2)");
        let error = parse_toml::<Shape>("\n[server\n").unwrap_err();
        assert_eq!(error.key, "(file) (line 2)");
        let error = parse_toml::<Shape>("").unwrap_err();
        assert_eq!(error.key, "(top level) (line 1)");
    }

    #[test]
    fn durations_parse_in_every_unit_and_refuse_others() {
        assert_eq!(
            ConfigDuration::parse("250ms"),
            Some(ConfigDuration::millis(250))
        );
        assert_eq!(ConfigDuration::parse("10s"), Some(ConfigDuration::secs(10)));
        assert_eq!(ConfigDuration::parse("5m"), Some(ConfigDuration::secs(300)));
        assert_eq!(
            ConfigDuration::parse("1h"),
            Some(ConfigDuration::secs(3600))
        );
        assert_eq!(ConfigDuration::parse("7"), Some(ConfigDuration::secs(7)));
        assert_eq!(ConfigDuration::parse("1d"), None);
        assert_eq!(ConfigDuration::parse("-1s"), None);
    }

    #[test]
    fn durations_are_written_in_their_largest_whole_unit() {
        for (duration, text) in [
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_millis(10), "10ms"),
            (Duration::ZERO, "0s"),
        ] {
            let written = ConfigDuration(duration).to_string();
            assert_eq!(written, text);
            assert_eq!(ConfigDuration::parse(&written).unwrap().0, duration);
        }
    }

    #[test]
    fn from_table_names_the_key() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            timeout: ConfigDuration,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            server: Inner,
        }
        let table: toml::Table = toml::from_str("[server]\ntimeout = \"1d\"").unwrap();
        let error = from_table::<Outer>(table).unwrap_err();
        assert_eq!(error.key, "server.timeout");
        assert_eq!(
            error.problem,
            "invalid duration \"1d\" (use e.g. \"250ms\", \"10s\", \"5m\", \"1h\")"
        );
        let table: toml::Table = toml::from_str("[server]\ntimeout = 1\nextra = 2").unwrap();
        let error = from_table::<Outer>(table).unwrap_err();
        assert_eq!(error.key, "server.extra");
        assert!(
            error.problem.starts_with("unknown field `extra`"),
            "{error}"
        );
    }
}
