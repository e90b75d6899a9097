//! What the audit log records of a call's tool arguments: nothing, the keys only, or the
//! values with sensitive keys and JWT-looking strings redacted; always within a size cap.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::ArgumentMode;

const REDACTED: &str = "[redacted]";

/// The argument rule: mode, sensitive key fragments and a size cap.
#[derive(Debug, Clone, Serialize)]
pub struct ArgumentRule {
    mode: ArgumentMode,
    redact_keys: Vec<String>,
    max_bytes: usize,
}

impl ArgumentRule {
    /// A rule; `redact_keys` match case-insensitively as substrings.
    pub fn new(mode: ArgumentMode, redact_keys: &[String], max_bytes: usize) -> Self {
        Self {
            mode,
            redact_keys: redact_keys.iter().map(|k| k.to_ascii_lowercase()).collect(),
            max_bytes,
        }
    }

    /// What is recorded of `arguments`.
    pub fn apply(&self, arguments: &Value) -> Option<Value> {
        let recorded = match self.mode {
            ArgumentMode::Omit => return None,
            ArgumentMode::Keys => keys_only(arguments),
            ArgumentMode::Redact => self.redact(arguments),
        };
        let size = serde_json::to_vec(&recorded).map_or(usize::MAX, |v| v.len());
        if size > self.max_bytes {
            return Some(Value::String(format!(
                "[{size} bytes, over the audit limit]"
            )));
        }
        Some(recorded)
    }

    fn sensitive(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        self.redact_keys.iter().any(|k| key.contains(k.as_str()))
    }

    fn redact(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if self.sensitive(k) {
                            Value::from(REDACTED)
                        } else {
                            self.redact(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.redact(v)).collect()),
            Value::String(s) if looks_like_jwt(s) => Value::from(REDACTED),
            other => other.clone(),
        }
    }
}

fn keys_only(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), keys_only(v)))
                .collect::<Map<_, _>>(),
        ),
        _ => Value::from(REDACTED),
    }
}

fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.bytes().filter(|b| *b == b'.').count() >= 2
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(mode: ArgumentMode) -> ArgumentRule {
        ArgumentRule::new(mode, &["password".into(), "token".into()], 200)
    }

    #[test]
    fn keys_mode_keeps_the_shape_and_hides_every_value() {
        let args = json!({"title": "q3 plan", "meta": {"tags": ["a"], "n": 3}});
        assert_eq!(
            rule(ArgumentMode::Keys).apply(&args),
            Some(json!({"title": "[redacted]", "meta": {"tags": "[redacted]", "n": "[redacted]"}}))
        );
        assert_eq!(rule(ArgumentMode::Omit).apply(&args), None);
    }

    #[test]
    fn redact_mode_hides_sensitive_keys_and_jwts_at_any_depth() {
        let args = json!({
            "text": "hello",
            "db": {"Password": "hunter2", "AccessToken": "abc"},
            "list": ["eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", 4]
        });
        assert_eq!(
            rule(ArgumentMode::Redact).apply(&args),
            Some(json!({
                "text": "hello",
                "db": {"Password": "[redacted]", "AccessToken": "[redacted]"},
                "list": ["[redacted]", 4]
            }))
        );
    }

    #[test]
    fn oversized_arguments_are_replaced_by_their_size() {
        let args = json!({"text": "x".repeat(500)});
        assert_eq!(
            rule(ArgumentMode::Redact).apply(&args),
            Some(json!("[511 bytes, over the audit limit]"))
        );
    }
}
