//! JSON parsing that rejects duplicate member names at every depth (RFC 7519 §4 lets a parser
//! reject them; idjag does, threat V24). serde_json's recursion limit stays on, and its
//! string decoding rejects lone surrogate escapes (threat V25).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{JoseError, Segment};

/// Parses `bytes` as one JSON object, rejecting duplicate member names anywhere inside.
///
/// ```
/// use idjag_core::jose::parse_object;
/// use idjag_core::{JoseError, Segment};
/// assert!(parse_object(br#"{"a":1,"b":{"c":2}}"#, Segment::Payload).is_ok());
/// assert_eq!(
///     parse_object(br#"{"aud":"evil","aud":"ours"}"#, Segment::Payload),
///     Err(JoseError::DuplicateMember { segment: Segment::Payload })
/// );
/// assert_eq!(
///     parse_object(b"[1]", Segment::Payload),
///     Err(JoseError::NotAnObject { segment: Segment::Payload })
/// );
/// ```
pub fn parse_object(bytes: &[u8], segment: Segment) -> Result<Map<String, Value>, JoseError> {
    match parse_value(bytes, segment)? {
        Value::Object(map) => Ok(map),
        _ => Err(JoseError::NotAnObject { segment }),
    }
}

/// The members of a top-level JSON object, in order. Duplicate names are rejected here and at
/// every depth below. A short vector with a linear duplicate check beats a map for the ten or
/// twenty members of a JOSE header or claim set.
pub(crate) type Members = Vec<(String, Value)>;

pub(crate) fn parse_members(bytes: &[u8], segment: Segment) -> Result<Members, JoseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JoseError::Utf8 { segment })?;
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(text);
    let members = de::Deserializer::deserialize_any(
        &mut de,
        TopLevel {
            duplicate: &duplicate,
        },
    )
    .and_then(|members| de.end().map(|()| members));
    match members {
        Ok(Some(members)) => Ok(members),
        Ok(None) => Err(JoseError::NotAnObject { segment }),
        Err(_) if duplicate.get() => Err(JoseError::DuplicateMember { segment }),
        Err(_) => Err(JoseError::Json { segment }),
    }
}

/// Visits the top-level value: an object becomes [`Members`]; anything else is `None`.
struct TopLevel<'f> {
    duplicate: &'f Cell<bool>,
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = Option<Members>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        StrictSeed {
            duplicate: self.duplicate,
        }
        .visit_seq(seq)
        .map(|_| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut members: Members = Vec::with_capacity(16);
        let seed = StrictSeed {
            duplicate: self.duplicate,
        };
        while let Some(key) = access.next_key::<String>()? {
            if members.iter().any(|(k, _)| *k == key) {
                self.duplicate.set(true);
                return Err(de::Error::custom("duplicate member"));
            }
            let value = access.next_value_seed(seed)?;
            members.push((key, value));
        }
        Ok(Some(members))
    }
}

pub(crate) fn parse_value(bytes: &[u8], segment: Segment) -> Result<Value, JoseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JoseError::Utf8 { segment })?;
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictSeed {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    value.map_err(|_| {
        if duplicate.get() {
            JoseError::DuplicateMember { segment }
        } else {
            JoseError::Json { segment }
        }
    })
}

#[derive(Clone, Copy)]
struct StrictSeed<'f> {
    duplicate: &'f Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                self.duplicate.set(true);
                return Err(de::Error::custom("duplicate member"));
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v24_duplicate_members_are_rejected_at_any_depth() {
        let nested = br#"{"a":{"b":1,"b":2}}"#;
        assert_eq!(
            parse_object(nested, Segment::Header),
            Err(JoseError::DuplicateMember {
                segment: Segment::Header
            })
        );
        let in_array = br#"{"a":[{"x":1,"x":1}]}"#;
        assert_eq!(
            parse_object(in_array, Segment::Payload),
            Err(JoseError::DuplicateMember {
                segment: Segment::Payload
            })
        );
    }

    #[test]
    fn v25_lone_surrogates_and_invalid_utf8_are_rejected() {
        assert_eq!(
            parse_object(br#"{"sub":"\ud800"}"#, Segment::Payload),
            Err(JoseError::Json {
                segment: Segment::Payload
            })
        );
        assert_eq!(
            parse_object(b"{\"sub\":\"\xff\"}", Segment::Payload),
            Err(JoseError::Utf8 {
                segment: Segment::Payload
            })
        );
    }

    #[test]
    fn v28_deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut deep = String::from(r#"{"authorization_details":"#);
        deep.push_str(&"[".repeat(10_000));
        deep.push_str(&"]".repeat(10_000));
        deep.push('}');
        assert_eq!(
            parse_object(deep.as_bytes(), Segment::Payload),
            Err(JoseError::Json {
                segment: Segment::Payload
            })
        );
    }

    #[test]
    fn v27_payload_must_be_an_object() {
        for bad in [&b"null"[..], b"[]", b"\"s\"", b"1", b"true"] {
            assert_eq!(
                parse_object(bad, Segment::Payload),
                Err(JoseError::NotAnObject {
                    segment: Segment::Payload
                })
            );
        }
        assert_eq!(
            parse_object(b"{} x", Segment::Payload),
            Err(JoseError::Json {
                segment: Segment::Payload
            })
        );
    }
}
