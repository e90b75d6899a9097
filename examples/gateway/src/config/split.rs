//! Tables that hold an `idjag-ops` shape's keys and the gateway's own side by side
//! (`[server]`, `[admin]`, `[audit]`): each part is read on its own, both refusing unknown keys.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Splits the table `deserializer` holds: the keys in `keys` become an `A` (the
/// `idjag-ops` shape), the others a `B` (the gateway's).
pub(crate) fn split<'de, D, A, B>(deserializer: D, keys: &[&str]) -> Result<(A, B), D::Error>
where
    D: Deserializer<'de>,
    A: DeserializeOwned,
    B: DeserializeOwned,
{
    let mut table = toml::Table::deserialize(deserializer)?;
    let part = idjag_ops::config::split_keys(&mut table, keys);
    let ops = idjag_ops::config::from_table::<A>(part).map_err(D::Error::custom_from)?;
    let own = idjag_ops::config::from_table::<B>(table).map_err(D::Error::custom_from)?;
    Ok((ops, own))
}

trait CustomFrom: serde::de::Error {
    /// A nested problem as `key: problem`; an unknown key as the deserializer's own message
    /// (`unknown field …`), so that an environment override naming it is reported by name.
    fn custom_from(error: idjag_ops::config::ConfigError) -> Self {
        if error.key.is_empty() || error.problem.starts_with("unknown field") {
            Self::custom(error.problem)
        } else {
            Self::custom(format!("{}: {}", error.key, error.problem))
        }
    }
}

impl<E: serde::de::Error> CustomFrom for E {}
