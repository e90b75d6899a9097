//! Durations in the configuration: `"500ms"`, `"10s"`, `"5m"`, `"1h"` or a number of seconds.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A duration written as `"500ms"`, `"10s"`, `"5m"`, `"1h"` or a number of seconds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl fmt::Debug for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl ConfigDuration {
    /// Parses `"500ms"`, `"10s"`, `"5m"` or `"1h"`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = s.split_at(split);
        let n: u64 = number.parse().ok()?;
        let duration = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        Some(Self(duration))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(n) => Ok(Self(Duration::from_secs(n))),
            Raw::Text(text) => Self::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?} (use e.g. \"500ms\", \"10s\", \"5m\", \"1h\")"
                ))
            }),
        }
    }
}

/// `n` seconds.
pub(crate) fn secs(n: u64) -> ConfigDuration {
    ConfigDuration(Duration::from_secs(n))
}

/// Writes a duration the way the configuration reads it: `"1h"`, `"5m"`, `"10s"`, `"500ms"`
/// (the largest unit that divides it).
pub fn serialize<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&ConfigDuration(*duration))
}

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
