//! Guardrails on tool arguments, checked before a `tools/call` goes upstream (after the
//! access rules allowed the tool).
//!
//! Per tool (`[upstream.tools.<name>]`): `max_argument_bytes` bounds the serialized
//! `arguments`, and each `[[upstream.tools.<name>.rules]]` looks at the value an RFC 6901
//! JSON pointer selects:
//!
//! - `max_bytes`: the serialized value's size;
//! - `deny`: patterns (`*` is any run of characters; no other syntax, linear-time matching)
//!   that block a value;
//! - `allow`: patterns one of which every value must match;
//! - `required`: block a call without the value.
//!
//! A string is matched as is, a number, boolean or `null` by its JSON text, an array
//! element by element; an object under a pattern rule is blocked (it cannot be matched, and
//! a wrapped value must not slip through a deny list). A blocked call gets a JSON-RPC error
//! naming the rule (`data.rule`) and an audit line with reason `argument_blocked`.

use serde::Serialize;
use serde_json::Value;

use crate::config::{GuardRuleConfig, ToolConfig};
use crate::policy::access::ToolPattern;
use crate::policy::approval::PolicyVersion;

/// Longest string value matched against patterns; longer values under a pattern rule are
/// blocked.
pub const MAX_MATCHED_BYTES: usize = 64 * 1024;

/// Why a rule blocked a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// A value matched a `deny` pattern.
    Denied,
    /// A value matched no `allow` pattern.
    NotAllowed,
    /// Over `max_bytes` or `max_argument_bytes`.
    TooLarge,
    /// The value is missing and `required`.
    Missing,
    /// An object, or a string too long to match.
    Unmatchable,
}

impl BlockKind {
    /// A stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Denied => "value_denied",
            Self::NotAllowed => "value_not_allowed",
            Self::TooLarge => "too_large",
            Self::Missing => "value_missing",
            Self::Unmatchable => "value_unmatchable",
        }
    }
}

/// A blocked call: which rule, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The rule's name (`max_argument_bytes` for the tool-wide limit).
    pub rule: String,
    /// Why.
    pub kind: BlockKind,
}

/// One argument rule.
#[derive(Debug, Clone, Serialize)]
pub struct GuardRule {
    name: String,
    pointer: String,
    allow: Vec<ToolPattern>,
    deny: Vec<ToolPattern>,
    max_bytes: Option<usize>,
    required: bool,
}

impl GuardRule {
    /// A rule from its configuration.
    pub fn from_config(config: &GuardRuleConfig) -> Result<Self, String> {
        if config.name.is_empty() || config.name.len() > 64 {
            return Err("rule names are 1 to 64 characters".to_owned());
        }
        check_pointer(&config.pointer)?;
        if config.allow.is_empty()
            && config.deny.is_empty()
            && config.max_bytes.is_none()
            && !config.required
        {
            return Err(format!("rule {} checks nothing", config.name));
        }
        let patterns = |list: &[String]| -> Result<Vec<ToolPattern>, String> {
            list.iter().map(|p| ToolPattern::new(p)).collect()
        };
        Ok(Self {
            name: config.name.clone(),
            pointer: config.pointer.clone(),
            allow: patterns(&config.allow)?,
            deny: patterns(&config.deny)?,
            max_bytes: config.max_bytes,
            required: config.required,
        })
    }

    fn check(&self, arguments: &Value) -> Result<(), BlockKind> {
        let Some(value) = arguments.pointer(&self.pointer) else {
            return if self.required {
                Err(BlockKind::Missing)
            } else {
                Ok(())
            };
        };
        if let Some(max) = self.max_bytes
            && serialized_len(value) > max
        {
            return Err(BlockKind::TooLarge);
        }
        if self.allow.is_empty() && self.deny.is_empty() {
            return Ok(());
        }
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for item in items {
            let text = match item {
                Value::String(s) if s.len() <= MAX_MATCHED_BYTES => s.clone(),
                Value::Number(_) | Value::Bool(_) | Value::Null => item.to_string(),
                _ => return Err(BlockKind::Unmatchable),
            };
            if self.deny.iter().any(|p| p.matches(&text)) {
                return Err(BlockKind::Denied);
            }
            if !self.allow.is_empty() && !self.allow.iter().any(|p| p.matches(&text)) {
                return Err(BlockKind::NotAllowed);
            }
        }
        Ok(())
    }
}

fn check_pointer(pointer: &str) -> Result<(), String> {
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        return Err(format!("{pointer:?} is not a JSON pointer (RFC 6901)"));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!("{pointer:?}: ~ must be followed by 0 or 1"));
        }
    }
    Ok(())
}

fn serialized_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// Everything checked before one tool runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ToolGuard {
    max_argument_bytes: Option<usize>,
    rules: Vec<GuardRule>,
    approval: bool,
    /// The planned policy an approval is bound to (tools needing approval).
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_version: Option<PolicyVersion>,
}

impl ToolGuard {
    /// The guard of a tool's configuration.
    pub fn from_config(config: &ToolConfig) -> Result<Self, String> {
        Ok(Self {
            max_argument_bytes: config.max_argument_bytes,
            rules: config
                .rules
                .iter()
                .map(GuardRule::from_config)
                .collect::<Result<_, _>>()?,
            approval: config.approval,
            policy_version: None,
        })
    }

    /// Whether calls need an administrator's approval.
    pub fn needs_approval(&self) -> bool {
        self.approval
    }

    /// The version of the planned policy approvals of this tool are bound to (set by the
    /// planning pass for tools needing approval).
    pub fn policy_version(&self) -> Option<PolicyVersion> {
        self.policy_version
    }

    /// Binds approvals of this tool to `version`.
    pub fn with_policy_version(mut self, version: PolicyVersion) -> Self {
        self.policy_version = Some(version);
        self
    }

    /// Whether it checks anything at all.
    pub fn is_empty(&self) -> bool {
        self.max_argument_bytes.is_none() && self.rules.is_empty() && !self.approval
    }

    /// Checks `arguments` (absent arguments are an empty object).
    pub fn check(&self, arguments: Option<&Value>) -> Result<(), Blocked> {
        let empty = Value::Object(serde_json::Map::new());
        let arguments = arguments.unwrap_or(&empty);
        if let Some(max) = self.max_argument_bytes
            && serialized_len(arguments) > max
        {
            return Err(Blocked {
                rule: "max_argument_bytes".to_owned(),
                kind: BlockKind::TooLarge,
            });
        }
        for rule in &self.rules {
            rule.check(arguments).map_err(|kind| Blocked {
                rule: rule.name.clone(),
                kind,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn guard(rules: Vec<GuardRuleConfig>, max: Option<usize>) -> ToolGuard {
        let config = ToolConfig {
            max_argument_bytes: max,
            rules,
            ..ToolConfig::default()
        };
        ToolGuard::from_config(&config).unwrap()
    }

    fn rule(name: &str, pointer: &str, allow: &[&str], deny: &[&str]) -> GuardRuleConfig {
        GuardRuleConfig {
            name: name.into(),
            pointer: pointer.into(),
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
            deny: deny.iter().map(|s| (*s).to_owned()).collect(),
            max_bytes: None,
            required: false,
        }
    }

    #[test]
    fn deny_allow_and_sizes_name_their_rule() {
        let g = guard(
            vec![
                rule("no-etc", "/path", &[], &["/etc/*"]),
                rule("tmp-only", "/path", &["/tmp/*"], &[]),
            ],
            Some(64),
        );
        assert_eq!(g.check(Some(&json!({"path": "/tmp/a"}))), Ok(()));
        let blocked = g.check(Some(&json!({"path": "/etc/passwd"}))).unwrap_err();
        assert_eq!(
            (blocked.rule.as_str(), blocked.kind),
            ("no-etc", BlockKind::Denied)
        );
        let blocked = g.check(Some(&json!({"path": "/home/x"}))).unwrap_err();
        assert_eq!(
            (blocked.rule.as_str(), blocked.kind),
            ("tmp-only", BlockKind::NotAllowed)
        );
        let blocked = g
            .check(Some(&json!({"path": "/tmp/".to_owned() + &"a".repeat(80)})))
            .unwrap_err();
        assert_eq!(
            (blocked.rule.as_str(), blocked.kind),
            ("max_argument_bytes", BlockKind::TooLarge)
        );
        assert_eq!(g.check(None), Ok(()));
    }

    #[test]
    fn arrays_are_checked_element_by_element_and_objects_cannot_hide_a_value() {
        let g = guard(vec![rule("no-etc", "/paths", &[], &["/etc/*"])], None);
        assert_eq!(g.check(Some(&json!({"paths": ["/a", "/b"]}))), Ok(()));
        assert_eq!(
            g.check(Some(&json!({"paths": ["/a", "/etc/x"]})))
                .unwrap_err()
                .kind,
            BlockKind::Denied
        );
        assert_eq!(
            g.check(Some(&json!({"paths": {"p": "/etc/x"}})))
                .unwrap_err()
                .kind,
            BlockKind::Unmatchable
        );
        let numbers = guard(vec![rule("small", "/n", &["1", "2"], &[])], None);
        assert_eq!(numbers.check(Some(&json!({"n": 2}))), Ok(()));
        assert_eq!(
            numbers.check(Some(&json!({"n": 3}))).unwrap_err().kind,
            BlockKind::NotAllowed
        );
    }

    #[test]
    fn required_values_and_per_value_limits() {
        let mut r = rule("limit", "/text", &[], &[]);
        r.max_bytes = Some(10);
        r.required = true;
        let g = guard(vec![r], None);
        assert_eq!(g.check(Some(&json!({"text": "short"}))), Ok(()));
        assert_eq!(
            g.check(Some(&json!({"text": "much too long"})))
                .unwrap_err()
                .kind,
            BlockKind::TooLarge
        );
        assert_eq!(
            g.check(Some(&json!({}))).unwrap_err().kind,
            BlockKind::Missing
        );
    }

    #[test]
    fn bad_rules_are_configuration_errors() {
        for (name, pointer, deny, error) in [
            (
                "x",
                "path",
                &["a"][..],
                r#""path" is not a JSON pointer (RFC 6901)"#,
            ),
            (
                "x",
                "/a~2",
                &["a"],
                r#""/a~2": ~ must be followed by 0 or 1"#,
            ),
            ("x", "/a", &[], "rule x checks nothing"),
            ("", "/a", &["a"], "rule names are 1 to 64 characters"),
        ] {
            assert_eq!(
                GuardRule::from_config(&rule(name, pointer, &[], deny)).unwrap_err(),
                error
            );
        }
        assert!(GuardRule::from_config(&rule("x", "/a~1b", &[], &["a"])).is_ok());
    }
}
