//! The declarative subject map of a trusted IdP: which ID-JAG claim names the user, an
//! explicit table from the IdP's value to the local subject, and the rule for users the table
//! does not list.
//!
//! The rule for unmapped users, in full:
//!
//! - with a `map` and no `unmapped` setting, a user whose claim value is not in the map is
//!   refused (`invalid_grant`, audit reason `unknown_subject`): listing users means only they
//!   get in;
//! - with `unmapped = "use_claim"` (the default without a `map`), the claim value itself,
//!   after the optional `prefix`, is the local subject;
//! - an ID-JAG without the claim, or with a non-string value, is always refused the same way.

use std::collections::BTreeMap;
use std::future::ready;

use idjag_core::{BoxFuture, IdJagClaims, Subject};
use idjag_resource::{ResolveError, SubjectMapping, SubjectResolver};
use serde_json::Value;

use crate::config::{ConfigError, SubjectConfig};

/// What happens to a user the map does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unmapped {
    Refuse,
    UseClaim,
}

/// A [`SubjectResolver`] over one IdP's claims.
#[derive(Debug)]
pub(crate) struct SubjectMap {
    claim: String,
    map: BTreeMap<String, String>,
    unmapped: Unmapped,
    prefix: String,
}

/// The library mapping for `[trusted_idps.subject]` at `at` (`None`: the ID-JAG's `sub`).
pub(crate) fn mapping(
    at: &str,
    config: Option<&SubjectConfig>,
) -> Result<SubjectMapping, ConfigError> {
    Ok(match subject_map(at, config)? {
        Some(map) => SubjectMapping::Resolver(std::sync::Arc::new(map)),
        None => SubjectMapping::Sub,
    })
}

/// The resolver for `config`, or `None` when the ID-JAG's `sub` is used as it is.
fn subject_map(
    at: &str,
    config: Option<&SubjectConfig>,
) -> Result<Option<SubjectMap>, ConfigError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let claim = config.claim.clone().unwrap_or_else(|| "sub".to_owned());
    if claim.is_empty() {
        return Err(ConfigError::new(format!("{at}.claim"), "must name a claim"));
    }
    let unmapped = match config.unmapped.as_deref() {
        None if config.map.is_empty() => Unmapped::UseClaim,
        None | Some("refuse") => Unmapped::Refuse,
        Some("use_claim") => Unmapped::UseClaim,
        Some(other) => {
            return Err(ConfigError::new(
                format!("{at}.unmapped"),
                format!("{other:?} is not \"refuse\" or \"use_claim\""),
            ));
        }
    };
    for (from, to) in &config.map {
        if Subject::new(to.as_str()).is_err() {
            return Err(ConfigError::new(
                format!("{at}.map.{from}"),
                "not a valid subject (empty or control characters)",
            ));
        }
    }
    let prefix = config.prefix.clone().unwrap_or_default();
    if prefix.chars().any(char::is_control) {
        return Err(ConfigError::new(
            format!("{at}.prefix"),
            "holds control characters",
        ));
    }
    if claim == "sub"
        && config.map.is_empty()
        && prefix.is_empty()
        && unmapped == Unmapped::UseClaim
    {
        return Ok(None);
    }
    Ok(Some(SubjectMap {
        claim,
        map: config.map.clone(),
        unmapped,
        prefix,
    }))
}

/// The string value of claim `name` in verified ID-JAG claims.
fn claim_value<'a>(claims: &'a IdJagClaims, name: &str) -> Option<&'a str> {
    match name {
        "sub" => Some(claims.sub.as_str()),
        "aud_sub" => claims.aud_sub.as_deref(),
        "email" => claims.email.as_deref(),
        "tenant" => claims.tenant.as_deref(),
        "client_id" | "iss" | "aud" | "jti" => None,
        other => claims.extra.get(other).and_then(Value::as_str),
    }
}

impl SubjectMap {
    fn resolve_now(&self, claims: &IdJagClaims) -> Result<Subject, ResolveError> {
        let value = claim_value(claims, &self.claim).ok_or(ResolveError::Unknown)?;
        let local = match (self.map.get(value), self.unmapped) {
            (Some(local), _) => local.clone(),
            (None, Unmapped::UseClaim) => format!("{}{value}", self.prefix),
            (None, Unmapped::Refuse) => return Err(ResolveError::Unknown),
        };
        Subject::new(local).map_err(|_| ResolveError::Unknown)
    }
}

impl SubjectResolver for SubjectMap {
    fn resolve<'a>(
        &'a self,
        claims: &'a IdJagClaims,
    ) -> BoxFuture<'a, Result<Subject, ResolveError>> {
        Box::pin(ready(self.resolve_now(claims)))
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::{Audience, ClientId, Issuer, Jti, NumericDate};

    use super::*;

    fn claims(sub: &str) -> IdJagClaims {
        let mut claims = IdJagClaims::new(
            Issuer::new("https://idp.example").unwrap(),
            Subject::new(sub).unwrap(),
            Audience::new("https://as.example").unwrap(),
            ClientId::new("c").unwrap(),
            Jti::new("j").unwrap(),
            NumericDate::from_unix(1).unwrap(),
            NumericDate::from_unix(2).unwrap(),
        );
        claims.extra.insert("oid".into(), Value::from("0f3a"));
        claims.extra.insert("n".into(), Value::from(7));
        claims
    }

    fn resolver(config: SubjectConfig) -> SubjectMap {
        subject_map("s", Some(&config))
            .unwrap()
            .expect("a resolver")
    }

    fn config(claim: &str, map: &[(&str, &str)], unmapped: Option<&str>) -> SubjectConfig {
        SubjectConfig {
            claim: Some(claim.into()),
            map: map
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect(),
            unmapped: unmapped.map(Into::into),
            prefix: None,
        }
    }

    #[test]
    fn a_map_refuses_unlisted_users_unless_told_to_use_the_claim() {
        let listed = resolver(config("sub", &[("00u1", "alice")], None));
        assert_eq!(
            listed.resolve_now(&claims("00u1")).unwrap().as_str(),
            "alice"
        );
        assert_eq!(
            listed.resolve_now(&claims("00u2")),
            Err(ResolveError::Unknown)
        );
        let open = resolver(config("sub", &[("00u1", "alice")], Some("use_claim")));
        assert_eq!(open.resolve_now(&claims("00u2")).unwrap().as_str(), "00u2");
    }

    #[test]
    fn another_claim_names_the_user_and_must_be_a_string() {
        let oid = resolver(config("oid", &[], None));
        assert_eq!(oid.resolve_now(&claims("x")).unwrap().as_str(), "0f3a");
        let number = resolver(config("n", &[], None));
        assert_eq!(number.resolve_now(&claims("x")), Err(ResolveError::Unknown));
        let missing = resolver(config("absent", &[], None));
        assert_eq!(
            missing.resolve_now(&claims("x")),
            Err(ResolveError::Unknown)
        );
        let mut prefixed = config("sub", &[], None);
        prefixed.prefix = Some("acme:".into());
        assert_eq!(
            resolver(prefixed)
                .resolve_now(&claims("bob"))
                .unwrap()
                .as_str(),
            "acme:bob"
        );
    }

    #[test]
    fn plain_sub_needs_no_resolver_and_bad_settings_name_their_key() {
        assert!(matches!(
            mapping("s", Some(&config("sub", &[], None))).unwrap(),
            SubjectMapping::Sub
        ));
        let error = mapping(
            "trusted_idps[0].subject",
            Some(&config("sub", &[], Some("allow"))),
        )
        .unwrap_err();
        assert_eq!(error.key, "trusted_idps[0].subject.unmapped");
    }
}
