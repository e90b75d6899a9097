//! What a stdio upstream runs: the command, the child's environment and the lifecycle
//! limits, as planned.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::Isolation;

/// The planned command of one stdio upstream and its lifecycle limits.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StdioSpec {
    /// The program (an absolute path, or a name looked up in the child's `PATH`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory (`None`: the gateway's).
    pub working_dir: Option<PathBuf>,
    /// The child's whole environment, besides the credential.
    pub env: ChildEnvironment,
    /// The variable that receives the upstream credential (`None`: mode `none`).
    pub credential_env: Option<String>,
    /// Who shares a process.
    #[serde(serialize_with = "isolation")]
    pub isolation: Isolation,
    /// Time to start and answer `initialize`.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub start_timeout: Duration,
    /// Longest wait for the answer to one request.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub call_timeout: Duration,
    /// An unused process is ended after this long.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub idle_timeout: Duration,
    /// Most processes of this upstream at once.
    pub max_processes: usize,
    /// First wait before a crashed process starts again (doubled per crash in a row).
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub restart_backoff: Duration,
    /// Longest wait before a restart.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub max_restart_backoff: Duration,
}

fn isolation<S: serde::Serializer>(isolation: &Isolation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match isolation {
        Isolation::Shared => "shared",
        _ => "per_user",
    })
}

impl StdioSpec {
    /// The wait before the next start after `crashes` crashes in a row.
    pub fn backoff(&self, crashes: u32) -> Duration {
        if crashes == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32
            .checked_shl(crashes.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        self.restart_backoff
            .saturating_mul(factor)
            .min(self.max_restart_backoff)
    }
}

/// The child's environment: the allow-listed variables of the gateway (read while planning)
/// and the configured ones. `Debug` and `Serialize` show the names only.
#[derive(Clone, Default)]
pub struct ChildEnvironment {
    /// Allow-listed names, and whether the gateway had each set.
    inherited: BTreeMap<String, Option<String>>,
    /// Configured name → value.
    configured: BTreeMap<String, String>,
}

impl ChildEnvironment {
    /// `inherited` (name → the gateway's value, if set) and `configured` (name → value).
    pub fn new(
        inherited: BTreeMap<String, Option<String>>,
        configured: BTreeMap<String, String>,
    ) -> Self {
        Self {
            inherited,
            configured,
        }
    }

    /// Every variable the child gets, configured values after inherited ones.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inherited
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.as_deref()?)))
            .chain(
                self.configured
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
    }
}

impl fmt::Debug for ChildEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildEnvironment")
            .field("inherited", &self.inherited.keys().collect::<Vec<_>>())
            .field("configured", &self.configured.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Serialize for ChildEnvironment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Names<'a> {
            inherited: Vec<&'a str>,
            configured: Vec<&'a str>,
        }
        Names {
            inherited: self.inherited.keys().map(String::as_str).collect(),
            configured: self.configured.keys().map(String::as_str).collect(),
        }
        .serialize(serializer)
    }
}
