//! Environment overrides for every setting of a TOML configuration, and the redacting printer
//! behind `check-config --print`.
//!
//! ## The naming rule
//!
//! `<PREFIX>__<KEY>__<KEY>…`: the server's prefix (`IDJAG_GATEWAY`, `IDJAG_RESOURCE`,
//! `IDJAG_ISSUER`), then the keys of the setting from the top of the file, upper-cased,
//! separated by two underscores. Array elements are addressed by their index.
//!
//! | variable | setting |
//! |---|---|
//! | `IDJAG_GATEWAY__SERVER__LISTEN=0.0.0.0:8443` | `[server] listen = "0.0.0.0:8443"` |
//! | `IDJAG_GATEWAY__SERVER__TLS__CERT=/run/tls/chain.pem` | `[server.tls] cert = …` |
//! | `IDJAG_GATEWAY__AUDIT__SINKS__1__URL=https://siem.example/ingest` | `url` of the second `[[audit.sinks]]` |
//! | `IDJAG_GATEWAY__SERVER__MAX_CONNECTIONS=20000` | an integer |
//! | `IDJAG_GATEWAY__TRUSTED_PROXIES=["10.0.0.0/8"]` | an array |
//!
//! - A key is matched case-insensitively against the keys already in that table, otherwise
//!   used in lower case. Tables and array elements that do not exist yet are created; an index
//!   may be at most the array's length (that length appends an element).
//! - The value is read as a TOML value when it parses as one (`20000`, `true`, `1.5`,
//!   `"quoted"`, `[1, 2]`, `{ a = 1 }`), as a string otherwise (`0.0.0.0:8443`). When the
//!   setting is a string and the value parsed as something else (`IDJAG_…__NAME=123`), it is
//!   taken as the string `"123"`.
//! - Overrides are applied to the parsed `toml::Table` before it is deserialized, so they go
//!   through exactly the checks the file does. A key the configuration does not have is an
//!   error naming the variable: `IDJAG_GATEWAY__SERVER__LISTN: unknown key server.listn`.
//! - Variables with the prefix and a single underscore (`IDJAG_GATEWAY_IDP_SECRET`) are not
//!   overrides: they stay free for the secrets a configuration names with `secret_env`.
//!
//! ## The redacting printer
//!
//! [`Redactor`] prints the effective configuration (file plus overrides) with secret values
//! replaced by `"[redacted]"`: the paths the caller names (`idp.client.secret`,
//! `audit.sinks[*].headers.*`), every key whose name looks secret (it contains `secret`,
//! `password`, `passwd`, `token`, `credential` or `authorization`, or it is `key` or ends in
//! `_key`/`apikey`; names ending in `_env`, `_file` or `_path` only name where a secret is
//! and are shown), and every string that holds a PEM private key or looks like a JWT. A
//! section whose name only looks secret (`[token_exchange]`, `[tokens]`) can be exempted from
//! the name rule with [`Redactor::shown`]: what is inside is still judged by its own names and
//! values.

use std::fmt;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::config::{ConfigError, at_line, parse_toml};

/// A problem with an override variable, or with the configuration it produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// The variable's name does not follow the rule, or its path runs into a value of another
    /// kind (a key under a string, an index past the end).
    #[error("{variable}: {problem}")]
    Name {
        /// The variable.
        variable: String,
        /// What is wrong.
        problem: String,
    },
    /// The variable names a key the configuration does not have.
    #[error("{variable}: unknown key {key}")]
    UnknownKey {
        /// The variable.
        variable: String,
        /// The dotted key it names.
        key: String,
    },
    /// The variable's value is not acceptable for its key.
    #[error("{variable}: {key}: {problem}")]
    Invalid {
        /// The variable.
        variable: String,
        /// The dotted key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A variable with the prefix whose value is not valid UTF-8.
    #[error("{variable}: the value is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        variable: String,
    },
    /// The configuration is invalid where no override touched it.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

#[derive(Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn display_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => {
                out.push_str(&format!("[{index}]"));
            }
        }
    }
    out
}

#[derive(Clone)]
struct Override {
    variable: String,
    path: Vec<Segment>,
    raw: String,
}

/// The overrides found in the environment (or given), ready to apply.
#[derive(Clone, Default)]
pub struct Overrides {
    entries: Vec<Override>,
}

impl fmt::Debug for Overrides {
    // Values may be secrets: only the variable names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("variables", &self.variables())
            .finish()
    }
}

/// Reads a value as TOML when it is one (and only one), as a string otherwise.
fn parse_value(raw: &str) -> Value {
    let document = format!("v = {raw}");
    match toml::from_str::<Table>(&document) {
        Ok(mut table) if table.len() == 1 => table
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        _ => Value::String(raw.to_owned()),
    }
}

impl Overrides {
    /// The variables `<prefix>__…` of this process's environment.
    pub fn from_env(prefix: &str) -> Result<Self, EnvError> {
        let marker = format!("{prefix}__");
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(&marker) {
                continue;
            }
            let value = value.into_string().map_err(|_| EnvError::NotUnicode {
                variable: name.to_owned(),
            })?;
            vars.push((name.to_owned(), value));
        }
        Self::from_vars(prefix, vars)
    }

    /// The variables `<prefix>__…` among `vars` (others are ignored).
    pub fn from_vars(
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, EnvError> {
        let marker = format!("{prefix}__");
        let mut entries = Vec::new();
        for (variable, raw) in vars {
            let Some(rest) = variable.strip_prefix(&marker) else {
                continue;
            };
            let mut path = Vec::new();
            for part in rest.split("__") {
                if part.is_empty() {
                    return Err(EnvError::Name {
                        variable,
                        problem: "empty key (keys are separated by exactly two underscores)"
                            .to_owned(),
                    });
                }
                if part.bytes().all(|b| b.is_ascii_digit()) {
                    let index = part.parse().map_err(|_| EnvError::Name {
                        variable: variable.clone(),
                        problem: format!("index {part} is too large"),
                    })?;
                    if path.is_empty() {
                        return Err(EnvError::Name {
                            variable,
                            problem: "the first key cannot be an index".to_owned(),
                        });
                    }
                    path.push(Segment::Index(index));
                } else {
                    path.push(Segment::Key(part.to_ascii_lowercase()));
                }
            }
            entries.push(Override {
                variable,
                path,
                raw,
            });
        }
        // Sorted, so that `…__0__…` is applied before `…__1__…` and the outcome does not
        // depend on the environment's order.
        entries.sort_by(|a, b| a.variable.cmp(&b.variable));
        Ok(Self { entries })
    }

    /// Whether there is no override.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The variables, in the order they are applied.
    pub fn variables(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.variable.as_str()).collect()
    }

    /// Applies every override to `table`.
    pub fn apply(&self, table: &mut Table) -> Result<(), EnvError> {
        self.apply_with(table, &[])
    }

    fn apply_with(&self, table: &mut Table, as_string: &[usize]) -> Result<(), EnvError> {
        for (i, entry) in self.entries.iter().enumerate() {
            let value = if as_string.contains(&i) {
                Value::String(entry.raw.clone())
            } else {
                parse_value(&entry.raw)
            };
            set(table, entry, value)?;
        }
        Ok(())
    }

    /// Applies the overrides to `table` and deserializes `T` from it. A failure caused by a
    /// variable names it (unknown key, unacceptable value); other failures name the key.
    pub fn deserialize<T: DeserializeOwned>(&self, table: Table) -> Result<T, EnvError> {
        let mut as_string: Vec<usize> = Vec::new();
        loop {
            let mut effective = table.clone();
            self.apply_with(&mut effective, &as_string)?;
            let error = match serde_path_to_error::deserialize::<_, T>(Value::Table(effective)) {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let at = error.path().to_string();
            let at = if at == "." { String::new() } else { at };
            let message = crate::config::first_line(&error.into_inner().to_string());
            if let Some(field) = unknown_field(&message) {
                // The path already ends with the unknown field.
                let key = if at == field || at.ends_with(&format!(".{field}")) {
                    at.clone()
                } else if at.is_empty() {
                    field.to_owned()
                } else {
                    format!("{at}.{field}")
                };
                if let Some(entry) = self.entry_under(&key) {
                    return Err(EnvError::UnknownKey {
                        variable: entry.variable.clone(),
                        key: display_path(&entry.path),
                    });
                }
            }
            if let Some((i, entry)) = self
                .entries
                .iter()
                .enumerate()
                .find(|(_, e)| display_path(&e.path) == at)
            {
                if message.starts_with("invalid type")
                    && !as_string.contains(&i)
                    && !matches!(parse_value(&entry.raw), Value::String(_))
                {
                    as_string.push(i);
                    continue;
                }
                return Err(EnvError::Invalid {
                    variable: entry.variable.clone(),
                    key: at,
                    problem: message,
                });
            }
            return Err(EnvError::Config(ConfigError::new(at, message)));
        }
    }

    /// The override at `key` or beneath it.
    fn entry_under(&self, key: &str) -> Option<&Override> {
        self.entries.iter().find(|e| {
            let path = display_path(&e.path);
            path == key
                || path
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// Finds `key` in `table` case-insensitively, or returns it as given.
fn table_key(table: &Table, key: &str) -> String {
    if table.contains_key(key) {
        return key.to_owned();
    }
    table
        .keys()
        .find(|k| k.eq_ignore_ascii_case(key))
        .cloned()
        .unwrap_or_else(|| key.to_owned())
}

fn empty_for(next: &Segment) -> Value {
    match next {
        Segment::Key(_) => Value::Table(Table::new()),
        Segment::Index(_) => Value::Array(Vec::new()),
    }
}

fn set(root: &mut Table, entry: &Override, value: Value) -> Result<(), EnvError> {
    let Some((Segment::Key(first), rest)) = entry.path.split_first() else {
        return Err(EnvError::Name {
            variable: entry.variable.clone(),
            problem: "no key".to_owned(),
        });
    };
    let key = table_key(root, first);
    match rest.first() {
        None => {
            root.insert(key, value);
            Ok(())
        }
        Some(next) => {
            let slot = root.entry(key).or_insert_with(|| empty_for(next));
            set_in(slot, rest, 1, entry, value)
        }
    }
}

/// Applies `path` (its first segment addresses inside `slot`).
fn set_in(
    slot: &mut Value,
    path: &[Segment],
    depth: usize,
    entry: &Override,
    value: Value,
) -> Result<(), EnvError> {
    let conflict = |problem: String| EnvError::Name {
        variable: entry.variable.clone(),
        problem: format!("{}: {problem}", display_path(&entry.path[..depth])),
    };
    let next = path.get(1);
    match (&path[0], slot) {
        (Segment::Key(key), Value::Table(table)) => {
            let key = table_key(table, key);
            match next {
                None => {
                    table.insert(key, value);
                    Ok(())
                }
                Some(next) => {
                    let slot = table.entry(key).or_insert_with(|| empty_for(next));
                    set_in(slot, &path[1..], depth + 1, entry, value)
                }
            }
        }
        (Segment::Index(index), Value::Array(array)) => {
            let index = *index;
            if index > array.len() {
                return Err(conflict(format!(
                    "index {index} is past the end ({} elements)",
                    array.len()
                )));
            }
            match next {
                None if index == array.len() => {
                    array.push(value);
                    Ok(())
                }
                None => {
                    array[index] = value;
                    Ok(())
                }
                Some(next) => {
                    if index == array.len() {
                        array.push(empty_for(next));
                    }
                    set_in(&mut array[index], &path[1..], depth + 1, entry, value)
                }
            }
        }
        (Segment::Key(_), _) => Err(conflict("not a table".to_owned())),
        (Segment::Index(_), _) => Err(conflict("not an array".to_owned())),
    }
}

const REDACTED: &str = "[redacted]";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Key(String),
    AnyKey,
    Index(usize),
    AnyIndex,
}

/// Prints a configuration with its secret values redacted (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    paths: Vec<Vec<Pattern>>,
    shown: Vec<Vec<Pattern>>,
}

fn parse_pattern(path: &str) -> Vec<Pattern> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(if key == "*" {
                Pattern::AnyKey
            } else {
                Pattern::Key(key.to_owned())
            });
        }
        while let Some(open) = rest.strip_prefix('[') {
            let Some(close) = open.find(']') else { break };
            let index = &open[..close];
            out.push(match index.parse() {
                Ok(i) => Pattern::Index(i),
                Err(_) => Pattern::AnyIndex,
            });
            rest = &open[close + 1..];
        }
    }
    out
}

/// Whether a key's name says its value is a secret.
pub fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_env") || key.ends_with("_file") || key.ends_with("_path") {
        return false;
    }
    [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "authorization",
        "apikey",
    ]
    .iter()
    .any(|word| key.contains(word))
        || key == "key"
        || key.ends_with("_key")
        || key.ends_with("-key")
}

/// Whether a string value is a secret whatever its key: a PEM private key or a JWT.
fn looks_secret_value(value: &str) -> bool {
    (value.contains("-----BEGIN") && value.contains("PRIVATE KEY"))
        || (value.starts_with("eyJ") && value.bytes().filter(|b| *b == b'.').count() >= 2)
}

impl Redactor {
    /// The name and value rules only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also redacts the value at `path` (`idp.client.secret`; `*` for any key, `[*]` for any
    /// element: `audit.sinks[*].headers.*`).
    pub fn secret(mut self, path: &str) -> Self {
        self.paths.push(parse_pattern(path));
        self
    }

    /// Exempts the key at `path` from the name rule (a section such as `token_exchange` whose
    /// name only looks secret): its value is still redacted when it looks secret, and the keys
    /// inside a table are judged by their own names. A path named by [`Self::secret`] stays
    /// redacted.
    pub fn shown(mut self, path: &str) -> Self {
        self.shown.push(parse_pattern(path));
        self
    }

    /// `table` with its secrets replaced by `"[redacted]"`.
    pub fn redact(&self, table: &Table) -> Table {
        let mut path = Vec::new();
        self.redact_table(table, &mut path)
    }

    /// `table`, redacted, as TOML text.
    pub fn print(&self, table: &Table) -> String {
        toml::to_string_pretty(&self.redact(table))
            .unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    fn named(&self, path: &[Segment]) -> bool {
        Self::matches(&self.paths, path)
    }

    fn matches(patterns: &[Vec<Pattern>], path: &[Segment]) -> bool {
        patterns.iter().any(|pattern| {
            pattern.len() == path.len()
                && pattern.iter().zip(path).all(|(p, s)| match (p, s) {
                    (Pattern::AnyKey, Segment::Key(_)) | (Pattern::AnyIndex, Segment::Index(_)) => {
                        true
                    }
                    (Pattern::Key(a), Segment::Key(b)) => a == b,
                    (Pattern::Index(a), Segment::Index(b)) => a == b,
                    _ => false,
                })
        })
    }

    fn redact_table(&self, table: &Table, path: &mut Vec<Segment>) -> Table {
        let mut out = Table::new();
        for (key, value) in table {
            path.push(Segment::Key(key.clone()));
            let by_name = looks_secret(key) && !Self::matches(&self.shown, path);
            let redacted = if by_name || self.named(path) {
                Value::String(REDACTED.to_owned())
            } else {
                self.redact_value(value, path)
            };
            path.pop();
            out.insert(key.clone(), redacted);
        }
        out
    }

    fn redact_value(&self, value: &Value, path: &mut Vec<Segment>) -> Value {
        match value {
            Value::Table(table) => Value::Table(self.redact_table(table, path)),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        path.push(Segment::Index(i));
                        let out = if self.named(path) {
                            Value::String(REDACTED.to_owned())
                        } else {
                            self.redact_value(item, path)
                        };
                        path.pop();
                        out
                    })
                    .collect(),
            ),
            Value::String(text) if looks_secret_value(text) => Value::String(REDACTED.to_owned()),
            other => other.clone(),
        }
    }
}

/// idjag-ops' environment errors (`VARIABLE: problem`) as configuration errors naming the
/// variable.
impl From<EnvError> for ConfigError {
    fn from(error: EnvError) -> Self {
        let text = error.to_string();
        match text.split_once(": ") {
            Some((key, problem)) => ConfigError::new(key, problem),
            None => ConfigError::new("(environment)", text),
        }
    }
}

/// A configuration file read with its environment overrides ([`load_file`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadedFile<C> {
    /// The configuration: the file with the overrides applied.
    pub config: C,
    /// The file's directory: relative paths inside the file are relative to it.
    pub base: std::path::PathBuf,
    /// The effective configuration as a table (file plus overrides), for `check-config
    /// --print` and for telling what a reload changed.
    pub effective: Table,
}

/// Reads `path` and parses it strictly into `C`, with the overrides of the environment
/// variables under `prefix` ([`Overrides::from_env`]). Errors name the key (and its line, or
/// the variable), never a value.
pub fn load_file<C: DeserializeOwned>(
    path: &std::path::Path,
    prefix: &str,
) -> Result<LoadedFile<C>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path.display().to_string(), format!("cannot read: {e}")))?;
    let overrides = Overrides::from_env(prefix)?;
    let config = if overrides.is_empty() {
        parse_toml(&text)?
    } else {
        let table: Table = toml::from_str(&text)
            .map_err(|e| ConfigError::new(at_line("(file)", &text, e.span()), e.message()))?;
        overrides.deserialize(table)?
    };
    let mut effective: Table = toml::from_str(&text).unwrap_or_default();
    overrides.apply(&mut effective)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
    Ok(LoadedFile {
        config,
        base,
        effective,
    })
}
