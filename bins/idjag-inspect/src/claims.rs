//! The claim-by-claim checks of each kind of token, each naming its requirement id.

use std::fmt;

use idjag_core::jose::{Header, typ_matches};
use idjag_core::{
    AccessTokenClaims, Algorithm, Audience, ClientId, IdJagClaims, IdTokenClaims, Issuer, Jti,
    JwtClaims, Resource, ScopeSet, Subject, wire,
};
use serde_json::{Map, Value};

use crate::report::{Checks, InspectedKind, Verdict};
use crate::{LEEWAY, SHORT_LIVED};

pub(crate) fn check_header(checks: &mut Checks, header: &Map<String, Value>, kind: InspectedKind) {
    let alg = header.get("alg").and_then(Value::as_str);
    match alg {
        Some(name) if name.eq_ignore_ascii_case("none") => checks.add(
            "JWT-01",
            "alg is a signature algorithm from the allow-list, never none",
            Verdict::Fail,
            "alg none: an unsigned token",
        ),
        Some(name) => checks.pass_or_fail(
            "JWT-01",
            "alg is a signature algorithm from the allow-list, never none",
            Algorithm::from_name(name).is_some(),
            format!("alg {name}"),
        ),
        None => checks.add(
            "JWT-01",
            "alg is a signature algorithm from the allow-list, never none",
            Verdict::Fail,
            "no alg",
        ),
    }
    checks.pass_or_fail(
        "JWT-02",
        "no crit (or other unsupported) header parameter",
        !["crit", "cty", "b64", "zip"]
            .iter()
            .any(|m| header.contains_key(*m)),
        match Header::from_object(header) {
            Err(idjag_core::JoseError::ForbiddenHeader { member }) => format!("{member} present"),
            _ => "none".to_owned(),
        },
    );
    let embedded: Vec<&str> = ["jku", "x5u", "jwk", "x5c"]
        .into_iter()
        .filter(|m| header.contains_key(*m))
        .collect();
    checks.add(
        "JWT-03",
        "keys come from the issuer's JWKS, never from jku/x5u/jwk/x5c",
        if embedded.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn
        },
        if embedded.is_empty() {
            "none in the header".to_owned()
        } else {
            format!("{} present (ignored by idjag)", embedded.join(", "))
        },
    );
    let typ = header.get("typ").and_then(Value::as_str);
    let (id, expected, ok) = match kind {
        InspectedKind::IdJag => ("IDJAG-01", wire::TYP_ID_JAG, true),
        InspectedKind::AccessToken => (
            "JWT-10",
            wire::TYP_ACCESS_TOKEN,
            typ.is_some_and(|t| typ_matches(t, wire::TYP_ACCESS_TOKEN)),
        ),
        _ => (
            "JWT-04",
            "JWT or none",
            typ.is_none_or(|t| t.eq_ignore_ascii_case("jwt")),
        ),
    };
    checks.pass_or_fail(
        id,
        "typ names the kind of token (mutually exclusive validation, JWT-04)",
        ok,
        format!("typ {}, expected {expected}", typ.unwrap_or("absent")),
    );
}

fn number(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}

pub(crate) fn check_times(
    checks: &mut Checks,
    claims: &Map<String, Value>,
    kind: InspectedKind,
    now: i64,
) {
    let id = match kind {
        InspectedKind::IdJag => "IDJAG-17",
        _ => "JWT-07",
    };
    match number(claims, "exp") {
        None => checks.add(id, "exp is in the future", Verdict::Fail, "no numeric exp"),
        Some(exp) if exp + LEEWAY <= now => checks.add(
            id,
            "exp is in the future",
            Verdict::Fail,
            format!("expired {} s ago", now - exp),
        ),
        Some(exp) if exp <= now => checks.add(
            id,
            "exp is in the future",
            Verdict::Warn,
            format!("expired {} s ago, within the {LEEWAY} s leeway", now - exp),
        ),
        Some(exp) => checks.add(
            id,
            "exp is in the future",
            Verdict::Pass,
            format!("expires in {} s", exp - now),
        ),
    }
    if let Some(nbf) = number(claims, "nbf") {
        checks.pass_or_fail(
            "JWT-07",
            "nbf is not in the future",
            nbf <= now + LEEWAY,
            format!("nbf {} s from now", nbf - now),
        );
    }
    if let Some(iat) = number(claims, "iat") {
        checks.pass_or_fail(
            "JWT-07",
            "iat is not in the future",
            iat <= now + LEEWAY,
            format!("issued {} s ago", now - iat),
        );
        if kind == InspectedKind::IdJag
            && let Some(exp) = number(claims, "exp")
        {
            let life = exp - iat;
            checks.add(
                "IDJAG-17",
                "the ID-JAG is short-lived",
                if life <= SHORT_LIVED {
                    Verdict::Pass
                } else {
                    Verdict::Warn
                },
                format!("lifetime {life} s"),
            );
        }
    }
}

fn string_check<T, E: fmt::Display>(
    checks: &mut Checks,
    claims: &Map<String, Value>,
    name: &str,
    id: &'static str,
    rule: &'static str,
    parse: impl Fn(&str) -> Result<T, E>,
) {
    match claims.get(name) {
        None => checks.add(id, rule, Verdict::Fail, format!("{name} missing")),
        Some(Value::String(s)) => match parse(s) {
            Ok(_) => checks.add(id, rule, Verdict::Pass, format!("{name} {s:?}")),
            Err(e) => checks.add(id, rule, Verdict::Fail, format!("{name}: {e}")),
        },
        Some(_) => checks.add(id, rule, Verdict::Fail, format!("{name} is not a string")),
    }
}

fn check_audience(
    checks: &mut Checks,
    claims: &Map<String, Value>,
    id: &'static str,
    single: bool,
) {
    let rule = if single {
        "aud is one value: a string or a one-element array"
    } else {
        "aud is present"
    };
    let detail = |v: &Value| v.to_string();
    match claims.get("aud") {
        None => checks.add(id, rule, Verdict::Fail, "aud missing"),
        Some(Value::String(s)) => checks.pass_or_fail(
            id,
            rule,
            Audience::new(s.as_str()).is_ok(),
            format!("aud {s:?}"),
        ),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => checks.add(
            id,
            rule,
            Verdict::Pass,
            format!("aud {}", detail(&items[0])),
        ),
        Some(Value::Array(items))
            if !single && !items.is_empty() && items.iter().all(Value::is_string) =>
        {
            checks.add(
                id,
                rule,
                Verdict::Warn,
                format!("aud has {} entries", items.len()),
            )
        }
        Some(Value::Array(items)) => checks.add(
            id,
            rule,
            Verdict::Fail,
            format!("aud is an array of {} entries", items.len()),
        ),
        Some(other) => checks.add(id, rule, Verdict::Fail, format!("aud is {}", detail(other))),
    }
}

fn structural<T: JwtClaims>(
    checks: &mut Checks,
    claims: &Map<String, Value>,
    id: &'static str,
    what: &'static str,
) {
    match T::from_claims(claims.clone()) {
        Ok(_) => checks.add(id, what, Verdict::Pass, "read by idjag-core"),
        Err(e) => checks.add(id, what, Verdict::Fail, e.to_string()),
    }
}

/// One check that every claim of `names` is present.
fn require(
    checks: &mut Checks,
    claims: &Map<String, Value>,
    names: &[&str],
    id: &'static str,
    rule: &'static str,
) {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|c| !claims.contains_key(*c))
        .collect();
    checks.pass_or_fail(
        id,
        rule,
        missing.is_empty(),
        if missing.is_empty() {
            "present".to_owned()
        } else {
            format!("missing {}", missing.join(", "))
        },
    );
}

pub(crate) fn check_id_jag(checks: &mut Checks, claims: &Map<String, Value>) {
    string_check(
        checks,
        claims,
        "iss",
        "IDJAG-03",
        "iss is the IdP's issuer identifier",
        |s| Issuer::new(s),
    );
    string_check(
        checks,
        claims,
        "sub",
        "IDJAG-04",
        "sub identifies the user",
        |s| Subject::new(s),
    );
    check_audience(checks, claims, "IDJAG-06", true);
    string_check(
        checks,
        claims,
        "client_id",
        "IDJAG-07",
        "client_id is the client at the RAS",
        |s| ClientId::new(s),
    );
    require(
        checks,
        claims,
        &["jti", "iat", "exp"],
        "IDJAG-08",
        "jti, iat and exp are present",
    );
    if let Some(resource) = claims.get("resource") {
        let values: Vec<&Value> = match resource {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        let ok = !values.is_empty()
            && values
                .iter()
                .all(|v| v.as_str().is_some_and(|s| Resource::new(s).is_ok()));
        checks.pass_or_fail(
            "IDJAG-09",
            "resource is an absolute URI or an array of them (RFC 8707)",
            ok,
            format!("resource {resource}"),
        );
    }
    if let Some(scope) = claims.get("scope") {
        checks.pass_or_fail(
            "IDJAG-10",
            "scope is a space-delimited string",
            scope.as_str().is_some_and(|s| ScopeSet::parse(s).is_ok()),
            format!("scope {scope}"),
        );
    }
    if let Some(cnf) = claims.get("cnf") {
        checks.pass_or_fail(
            "IDJAG-16",
            "cnf holds the DPoP key thumbprint (jkt)",
            cnf.get("jkt").is_some_and(Value::is_string),
            "cnf present",
        );
    }
    structural::<IdJagClaims>(checks, claims, "IDJAG-08", "the claims read as an ID-JAG");
}

pub(crate) fn check_access_token(checks: &mut Checks, claims: &Map<String, Value>) {
    require(
        checks,
        claims,
        &["iss", "exp", "aud", "sub", "client_id", "iat", "jti"],
        "JWT-10",
        "iss, exp, aud, sub, client_id, iat and jti are present (RFC 9068 §2.2)",
    );
    string_check(
        checks,
        claims,
        "iss",
        "JWT-10",
        "iss is an issuer identifier",
        |s| Issuer::new(s),
    );
    check_audience(checks, claims, "JWT-06", false);
    string_check(checks, claims, "jti", "JWT-10", "jti is a string", |s| {
        Jti::new(s)
    });
    structural::<AccessTokenClaims>(
        checks,
        claims,
        "JWT-10",
        "the claims read as an RFC 9068 access token",
    );
}

pub(crate) fn check_id_token(checks: &mut Checks, claims: &Map<String, Value>) {
    require(
        checks,
        claims,
        &["iss", "sub", "aud", "exp", "iat"],
        "OIDC Core §2",
        "iss, sub, aud, exp and iat are present",
    );
    string_check(
        checks,
        claims,
        "iss",
        "OIDC Core §2",
        "iss is an issuer identifier",
        |s| Issuer::new(s),
    );
    check_audience(checks, claims, "JWT-06", false);
    if claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1)
    {
        checks.pass_or_fail(
            "OIDC Core §2",
            "an ID token for several audiences names its azp",
            claims.get("azp").is_some_and(Value::is_string),
            "aud has several entries",
        );
    }
    structural::<IdTokenClaims>(
        checks,
        claims,
        "OIDC Core §2",
        "the claims read as an ID token",
    );
}
