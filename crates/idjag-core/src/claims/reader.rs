//! Typed extraction of claims from a JSON object.

use serde_json::{Map, Value};

use super::NumericDate;
use crate::error::ClaimError;
use crate::id::{Audience, InvalidIdentifier, Resource, ScopeSet};
use crate::jose::json::Members;

/// Takes claims out of a payload object one by one, typed, and returns what is left.
///
/// `null` counts as absent for optional claims and as missing for required ones.
#[derive(Debug)]
pub struct ClaimReader {
    members: Members,
}

impl ClaimReader {
    /// A reader over a payload object.
    pub fn new(map: Map<String, Value>) -> Self {
        Self {
            members: map.into_iter().collect(),
        }
    }

    pub(crate) fn from_members(members: Members) -> Self {
        Self { members }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        let at = self.members.iter().position(|(k, _)| k == name)?;
        match self.members.swap_remove(at).1 {
            Value::Null => None,
            v => Some(v),
        }
    }

    /// A required string claim.
    pub fn string(&mut self, name: &'static str) -> Result<String, ClaimError> {
        self.opt_string(name)?.ok_or(ClaimError::missing(name))
    }

    /// An optional string claim.
    pub fn opt_string(&mut self, name: &'static str) -> Result<Option<String>, ClaimError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ClaimError::wrong_type(name)),
        }
    }

    /// A required identifier claim (non-empty, bounded, no control characters).
    pub fn id<T>(
        &mut self,
        name: &'static str,
        make: fn(String) -> Result<T, InvalidIdentifier>,
    ) -> Result<T, ClaimError> {
        self.opt_id(name, make)?.ok_or(ClaimError::missing(name))
    }

    /// An optional identifier claim.
    pub fn opt_id<T>(
        &mut self,
        name: &'static str,
        make: fn(String) -> Result<T, InvalidIdentifier>,
    ) -> Result<Option<T>, ClaimError> {
        self.opt_string(name)?
            .map(|s| make(s).map_err(|e| ClaimError::from_identifier(name, e)))
            .transpose()
    }

    /// A required NumericDate claim.
    pub fn date(&mut self, name: &'static str) -> Result<NumericDate, ClaimError> {
        self.opt_date(name)?.ok_or(ClaimError::missing(name))
    }

    /// An optional NumericDate claim.
    pub fn opt_date(&mut self, name: &'static str) -> Result<Option<NumericDate>, ClaimError> {
        match self.take(name) {
            None => Ok(None),
            Some(v @ Value::Number(_)) => NumericDate::from_json(&v)
                .map(Some)
                .ok_or(ClaimError::invalid(name)),
            Some(_) => Err(ClaimError::wrong_type(name)),
        }
    }

    /// An optional boolean claim.
    pub fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, ClaimError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(ClaimError::wrong_type(name)),
        }
    }

    /// A single audience: a string, or an array of exactly one string. Every other array is
    /// rejected, even one that contains the expected value (requirement IDJAG-06; threat V19).
    pub fn single_audience(&mut self, name: &'static str) -> Result<Audience, ClaimError> {
        let s = match self.take(name) {
            None => return Err(ClaimError::missing(name)),
            Some(Value::String(s)) => s,
            Some(Value::Array(mut items)) => match (items.pop(), items.is_empty()) {
                (Some(Value::String(s)), true) => s,
                (Some(_), true) => return Err(ClaimError::wrong_type(name)),
                _ => return Err(ClaimError::invalid(name)),
            },
            Some(_) => return Err(ClaimError::wrong_type(name)),
        };
        Audience::new(s).map_err(|e| ClaimError::from_identifier(name, e))
    }

    /// A space-delimited scope string (RFC 6749 §3.3; a JSON array is a wrong type, threat V30).
    pub fn opt_scope(&mut self, name: &'static str) -> Result<Option<ScopeSet>, ClaimError> {
        self.opt_string(name)?
            .map(|s| ScopeSet::parse(&s).map_err(|_| ClaimError::invalid(name)))
            .transpose()
    }

    /// A resource claim: a string or a non-empty array of strings, each an absolute URI
    /// without fragment (requirement IDJAG-09; threat V31).
    pub fn opt_resources(
        &mut self,
        name: &'static str,
    ) -> Result<Option<Vec<Resource>>, ClaimError> {
        let items = match self.take(name) {
            None => return Ok(None),
            Some(Value::String(s)) => vec![Value::String(s)],
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) => return Err(ClaimError::invalid(name)),
            Some(_) => return Err(ClaimError::wrong_type(name)),
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Resource::new(s).map_err(|_| ClaimError::invalid(name)),
                _ => Err(ClaimError::wrong_type(name)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional array of strings.
    pub fn opt_strings(&mut self, name: &'static str) -> Result<Option<Vec<String>>, ClaimError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(ClaimError::wrong_type(name)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ClaimError::wrong_type(name)),
        }
    }

    /// An optional JSON object.
    pub fn opt_object(
        &mut self,
        name: &'static str,
    ) -> Result<Option<Map<String, Value>>, ClaimError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(ClaimError::wrong_type(name)),
        }
    }

    /// An optional JSON array.
    pub fn opt_array(&mut self, name: &'static str) -> Result<Option<Vec<Value>>, ClaimError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(ClaimError::wrong_type(name)),
        }
    }

    /// The claims not taken.
    pub fn rest(self) -> Map<String, Value> {
        self.members.into_iter().collect()
    }
}
