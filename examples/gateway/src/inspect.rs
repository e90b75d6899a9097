//! `idjag-gateway inspect <token>`: a readable verdict on an ID-JAG, an ID token or an
//! access token (INTEROP §6: "a readable verdict, not a stack trace").
//!
//! The token is decoded with idjag-core's JOSE parsing (duplicate members rejected), its kind
//! detected from `typ` (`oauth-id-jag+jwt`, `at+jwt`) and, without one, from its claims,
//! then checked claim by claim against the profile, each check naming its SPEC checklist id
//! (IDJAG-xx, JWT-xx) or its source (OIDC Core). With `--jwks <url|file>` the signature is
//! verified too (a remote set through [`RemoteJwks`], a file through
//! [`KeySet::from_jwks_json`]); without it the verdict says the signature was not checked.
//! The token itself and its signature are never printed: a SHA-256 fingerprint identifies
//! it.
//!
//! ```text
//! $ idjag-gateway inspect eyJ...            # or: echo "$TOKEN" | idjag-gateway inspect -
//! $ idjag-gateway inspect --jwks https://idp.example.com/jwks --json eyJ...
//! ```
//!
//! The exit code is 1 when a check fails (or the signature does not verify), 0 otherwise.

use std::fmt::{self, Write as _};

use idjag_core::jose::{Header, UnverifiedJws, base64url, parse_object, typ_matches};
use idjag_core::remote::RemoteJwks;
use idjag_core::{
    AccessTokenClaims, Algorithm, Audience, ClientId, IdJagClaims, IdTokenClaims, Issuer, Jti,
    JwtClaims, KeySet, KeySource, Resource, ScopeSet, Segment, SharedClock, Subject, wire,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Largest token inspected.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat` (JWT-07).
pub const LEEWAY: i64 = 60;
/// Longest ID-JAG lifetime that counts as short-lived (IDJAG-17).
pub const SHORT_LIVED: i64 = 300;

/// The kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenKind {
    /// An ID-JAG (`typ` `oauth-id-jag+jwt`).
    IdJag,
    /// An RFC 9068 access token (`typ` `at+jwt`, or untyped with `client_id`).
    AccessToken,
    /// An OIDC ID token.
    IdToken,
    /// Not decodable.
    Unknown,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IdJag => "ID-JAG",
            Self::AccessToken => "access token (RFC 9068)",
            Self::IdToken => "ID token (OIDC)",
            Self::Unknown => "not a JWT",
        })
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Holds.
    Pass,
    /// Worth a look, not fatal.
    Warn,
    /// Fails: the token would be refused.
    Fail,
    /// Not checked.
    Skip,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Check {
    /// The SPEC checklist id or source.
    pub id: &'static str,
    /// The rule.
    pub rule: &'static str,
    /// The outcome.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
}

/// The whole verdict.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The detected kind.
    pub kind: TokenKind,
    /// `sha256:` and the first 16 hex digits of the token's SHA-256, and its length.
    pub fingerprint: String,
    /// The decoded header.
    pub header: Option<Map<String, Value>>,
    /// The decoded claims.
    pub claims: Option<Map<String, Value>>,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Whether every check passed or only warned.
    pub valid: bool,
    /// Whether the signature was verified.
    pub signature_verified: bool,
}

/// Where verification keys come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Jwks {
    /// A JWK Set document already read.
    Document(Vec<u8>),
    /// A `jwks_uri`.
    Url(String),
}

struct Checks(Vec<Check>);

impl Checks {
    fn add(
        &mut self,
        id: &'static str,
        rule: &'static str,
        outcome: Outcome,
        detail: impl Into<String>,
    ) {
        self.0.push(Check {
            id,
            rule,
            outcome,
            detail: detail.into(),
        });
    }

    fn pass_or_fail(
        &mut self,
        id: &'static str,
        rule: &'static str,
        ok: bool,
        detail: impl Into<String>,
    ) {
        let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
        self.add(id, rule, outcome, detail);
    }
}

fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex} ({} bytes)", token.len())
}

fn decode_segment(segment: &str, which: Segment) -> Result<Map<String, Value>, String> {
    let bytes = base64url::decode(segment).map_err(|_| "not base64url".to_owned())?;
    parse_object(&bytes, which).map_err(|e| e.to_string())
}

fn detect(header: &Map<String, Value>, claims: &Map<String, Value>) -> TokenKind {
    match header.get("typ").and_then(Value::as_str) {
        Some(typ) if typ_matches(typ, wire::TYP_ID_JAG) => TokenKind::IdJag,
        Some(typ) if typ_matches(typ, wire::TYP_ACCESS_TOKEN) => TokenKind::AccessToken,
        _ if claims.contains_key("client_id") && !claims.contains_key("nonce") => {
            TokenKind::AccessToken
        }
        _ => TokenKind::IdToken,
    }
}

/// Inspects `token`, verifying its signature with `jwks` when given.
pub async fn inspect(token: &str, jwks: Option<&Jwks>, clock: SharedClock) -> Report {
    let token = token.trim();
    let mut checks = Checks(Vec::new());
    let mut report = Report {
        kind: TokenKind::Unknown,
        fingerprint: fingerprint(token),
        header: None,
        claims: None,
        checks: Vec::new(),
        valid: false,
        signature_verified: false,
    };
    let parts: Vec<&str> = token.split('.').collect();
    if token.len() > MAX_TOKEN_BYTES || parts.len() != 3 {
        checks.add(
            "JWT-05",
            "a compact JWS: three base64url parts",
            Outcome::Fail,
            if parts.len() == 5 {
                "five parts: an encrypted JWT (JWE), which idjag does not accept".to_owned()
            } else {
                format!("{} parts, {} bytes", parts.len(), token.len())
            },
        );
        report.checks = checks.0;
        return report;
    }
    let header = decode_segment(parts[0], Segment::Header);
    let claims = decode_segment(parts[1], Segment::Payload);
    let (header, claims) = match (header, claims) {
        (Ok(h), Ok(c)) => {
            checks.add(
                "JWT-05",
                "header and claims are JSON objects without duplicate members",
                Outcome::Pass,
                "decoded",
            );
            (h, c)
        }
        (h, c) => {
            let detail = [("header", h.err()), ("claims", c.err())]
                .into_iter()
                .filter_map(|(what, e)| e.map(|e| format!("{what}: {e}")))
                .collect::<Vec<_>>()
                .join("; ");
            checks.add(
                "JWT-05",
                "header and claims are JSON objects without duplicate members",
                Outcome::Fail,
                detail,
            );
            report.checks = checks.0;
            return report;
        }
    };
    let kind = detect(&header, &claims);
    check_header(&mut checks, &header, kind);
    check_times(&mut checks, &claims, kind, clock.now_unix());
    match kind {
        TokenKind::IdJag => check_id_jag(&mut checks, &claims),
        TokenKind::AccessToken => check_access_token(&mut checks, &claims),
        _ => check_id_token(&mut checks, &claims),
    }
    report.signature_verified = check_signature(&mut checks, token, jwks, &claims, clock).await;
    report.valid = checks.0.iter().all(|c| c.outcome != Outcome::Fail);
    report.kind = kind;
    report.header = Some(header);
    report.claims = Some(claims);
    report.checks = checks.0;
    report
}

fn check_header(checks: &mut Checks, header: &Map<String, Value>, kind: TokenKind) {
    let alg = header.get("alg").and_then(Value::as_str);
    match alg {
        Some(name) if name.eq_ignore_ascii_case("none") => checks.add(
            "JWT-01",
            "alg is a signature algorithm from the allow-list, never none",
            Outcome::Fail,
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
            Outcome::Fail,
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
            Outcome::Pass
        } else {
            Outcome::Warn
        },
        if embedded.is_empty() {
            "none in the header".to_owned()
        } else {
            format!("{} present (ignored by idjag)", embedded.join(", "))
        },
    );
    let typ = header.get("typ").and_then(Value::as_str);
    let (id, expected, ok) = match kind {
        TokenKind::IdJag => ("IDJAG-01", wire::TYP_ID_JAG, true),
        TokenKind::AccessToken => (
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

fn check_times(checks: &mut Checks, claims: &Map<String, Value>, kind: TokenKind, now: i64) {
    let id = match kind {
        TokenKind::IdJag => "IDJAG-17",
        _ => "JWT-07",
    };
    match number(claims, "exp") {
        None => checks.add(id, "exp is in the future", Outcome::Fail, "no numeric exp"),
        Some(exp) if exp + LEEWAY <= now => checks.add(
            id,
            "exp is in the future",
            Outcome::Fail,
            format!("expired {} s ago", now - exp),
        ),
        Some(exp) if exp <= now => checks.add(
            id,
            "exp is in the future",
            Outcome::Warn,
            format!("expired {} s ago, within the {LEEWAY} s leeway", now - exp),
        ),
        Some(exp) => checks.add(
            id,
            "exp is in the future",
            Outcome::Pass,
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
        if kind == TokenKind::IdJag
            && let Some(exp) = number(claims, "exp")
        {
            let life = exp - iat;
            checks.add(
                "IDJAG-17",
                "the ID-JAG is short-lived",
                if life <= SHORT_LIVED {
                    Outcome::Pass
                } else {
                    Outcome::Warn
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
        None => checks.add(id, rule, Outcome::Fail, format!("{name} missing")),
        Some(Value::String(s)) => match parse(s) {
            Ok(_) => checks.add(id, rule, Outcome::Pass, format!("{name} {s:?}")),
            Err(e) => checks.add(id, rule, Outcome::Fail, format!("{name}: {e}")),
        },
        Some(_) => checks.add(id, rule, Outcome::Fail, format!("{name} is not a string")),
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
        None => checks.add(id, rule, Outcome::Fail, "aud missing"),
        Some(Value::String(s)) => checks.pass_or_fail(
            id,
            rule,
            Audience::new(s.as_str()).is_ok(),
            format!("aud {s:?}"),
        ),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => checks.add(
            id,
            rule,
            Outcome::Pass,
            format!("aud {}", detail(&items[0])),
        ),
        Some(Value::Array(items))
            if !single && !items.is_empty() && items.iter().all(Value::is_string) =>
        {
            checks.add(
                id,
                rule,
                Outcome::Warn,
                format!("aud has {} entries", items.len()),
            )
        }
        Some(Value::Array(items)) => checks.add(
            id,
            rule,
            Outcome::Fail,
            format!("aud is an array of {} entries", items.len()),
        ),
        Some(other) => checks.add(id, rule, Outcome::Fail, format!("aud is {}", detail(other))),
    }
}

fn structural<T: JwtClaims>(
    checks: &mut Checks,
    claims: &Map<String, Value>,
    id: &'static str,
    what: &'static str,
) {
    match T::from_claims(claims.clone()) {
        Ok(_) => checks.add(id, what, Outcome::Pass, "read by idjag-core"),
        Err(e) => checks.add(id, what, Outcome::Fail, e.to_string()),
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

fn check_id_jag(checks: &mut Checks, claims: &Map<String, Value>) {
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

fn check_access_token(checks: &mut Checks, claims: &Map<String, Value>) {
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

fn check_id_token(checks: &mut Checks, claims: &Map<String, Value>) {
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

async fn check_signature(
    checks: &mut Checks,
    token: &str,
    jwks: Option<&Jwks>,
    claims: &Map<String, Value>,
    clock: SharedClock,
) -> bool {
    const ID: &str = "IDJAG-02";
    const RULE: &str = "signed by a key of the issuer (JWT-08: kid and alg select it)";
    let Some(jwks) = jwks else {
        checks.add(
            ID,
            RULE,
            Outcome::Skip,
            "not checked: pass --jwks <url|file>",
        );
        return false;
    };
    let jws = match UnverifiedJws::parse(token, MAX_TOKEN_BYTES) {
        Ok(jws) => jws,
        Err(e) => {
            checks.add(ID, RULE, Outcome::Fail, format!("cannot be verified: {e}"));
            return false;
        }
    };
    let header = jws.unverified_header();
    let key = match jwks {
        Jwks::Document(document) => match KeySet::from_jwks_json(document) {
            Ok(import) => import
                .keys
                .find(header.kid(), header.alg())
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("the JWK Set is unusable: {e}")),
        },
        Jwks::Url(url) => {
            let issuer = claims
                .get("iss")
                .and_then(Value::as_str)
                .and_then(|s| Issuer::new(s).ok())
                .or_else(|| Issuer::new(url.as_str()).ok());
            match issuer.map(|i| RemoteJwks::from_jwks_uri(i, url, clock)) {
                Some(Ok(remote)) => match remote.refresh_now().await {
                    Ok(()) => remote
                        .find(header.kid(), header.alg())
                        .map_err(|e| format!("{e:?}")),
                    Err(e) => Err(format!("the JWK Set could not be fetched: {e}")),
                },
                Some(Err(e)) => Err(format!("unusable JWKS URL: {e}")),
                None => Err("unusable JWKS URL".to_owned()),
            }
        }
    };
    match key {
        Err(reason) => {
            checks.add(ID, RULE, Outcome::Fail, format!("no key: {reason}"));
            false
        }
        Ok(key) => {
            let ok = key.verify(jws.signing_input(), jws.signature());
            let kid = header.kid().map_or("(none)", |k| k.as_str());
            checks.pass_or_fail(
                ID,
                RULE,
                ok,
                if ok {
                    format!("verified with kid {kid}")
                } else {
                    format!("the signature does not verify with kid {kid}")
                },
            );
            ok
        }
    }
}

impl Report {
    /// The readable verdict.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "token        {}", self.fingerprint);
        let _ = writeln!(out, "kind         {}", self.kind);
        if let Some(header) = &self.header {
            let _ = writeln!(out, "header       {}", Value::Object(header.clone()));
        }
        if let Some(claims) = &self.claims {
            let _ = writeln!(out, "claims       {}", Value::Object(claims.clone()));
        }
        let _ = writeln!(out);
        for check in &self.checks {
            let mark = match check.outcome {
                Outcome::Pass => "ok  ",
                Outcome::Warn => "warn",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            let _ = writeln!(
                out,
                "{mark} {:<13} {}: {}",
                check.id, check.rule, check.detail
            );
        }
        let _ = writeln!(out);
        let verdict = match (self.valid, self.signature_verified) {
            (false, _) => {
                let failed: Vec<&str> = self
                    .checks
                    .iter()
                    .filter(|c| c.outcome == Outcome::Fail)
                    .map(|c| c.id)
                    .collect();
                format!("INVALID: fails {}", failed.join(", "))
            }
            (true, true) => "VALID: every check passed and the signature verifies".to_owned(),
            (true, false) => {
                "VALID CLAIMS: every check passed; the signature was not verified".to_owned()
            }
        };
        let _ = writeln!(out, "verdict      {verdict}");
        out
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::{NumericDate, SigningKey, TestClock};
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn new_key() -> SigningKey {
        SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_thumbprint_kid()
    }

    fn id_jag_claims() -> Value {
        json!({
            "iss": "https://idp.example", "sub": "alice", "aud": "https://as.example",
            "client_id": "agent", "jti": "j1", "iat": NOW - 10, "exp": NOW + 290,
            "resource": "https://mcp.example/mcp", "scope": "notes.read"
        })
    }

    fn sign(key: &SigningKey, typ: Option<&str>, claims: &Value) -> String {
        key.sign_jwt(typ, claims).unwrap().secret().to_owned()
    }

    fn unsigned(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.",
            base64url::encode(header),
            base64url::encode(claims)
        )
    }

    fn jwks(key: &SigningKey) -> Jwks {
        let set = json!({ "keys": [key.public_jwk()] });
        Jwks::Document(set.to_string().into_bytes())
    }

    async fn run(token: &str, jwks: Option<&Jwks>) -> Report {
        inspect(token, jwks, TestClock::at_unix(NOW).shared()).await
    }

    fn failed(report: &Report) -> Vec<&'static str> {
        report
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.id)
            .collect()
    }

    #[tokio::test]
    async fn a_valid_id_jag_passes_every_check_and_verifies() {
        let key = new_key();
        let token = sign(&key, Some(wire::TYP_ID_JAG), &id_jag_claims());
        let report = run(&token, Some(&jwks(&key))).await;
        assert_eq!(report.kind, TokenKind::IdJag);
        assert!(
            report.valid && report.signature_verified,
            "{}",
            report.to_text()
        );
        let text = report.to_text();
        assert!(text.contains("VALID: every check passed"));
        for id in [
            "IDJAG-01", "IDJAG-02", "IDJAG-03", "IDJAG-06", "IDJAG-08", "JWT-01",
        ] {
            assert!(text.contains(id), "{id}");
        }
        // Never the token or its signature.
        let signature = token.rsplit('.').next().unwrap();
        assert!(!text.contains(&token) && !text.contains(signature));
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains(signature));
    }

    #[tokio::test]
    async fn valid_access_and_id_tokens_are_recognised() {
        let key = new_key();
        let at = json!({
            "iss": "https://idp.example", "sub": "alice", "aud": "https://gw.example/mcp/notes",
            "client_id": "agent", "jti": "a1", "iat": NOW, "exp": NOW + 300, "scope": "x"
        });
        let report = run(&sign(&key, Some(wire::TYP_ACCESS_TOKEN), &at), None).await;
        assert_eq!(report.kind, TokenKind::AccessToken);
        assert!(report.valid, "{}", report.to_text());
        assert!(!report.signature_verified);
        assert!(report.to_text().contains("the signature was not verified"));
        let id = json!({
            "iss": "https://idp.example", "sub": "alice", "aud": "mcp-gateway",
            "iat": NOW, "exp": NOW + 300, "nonce": "n"
        });
        let report = run(&sign(&key, None, &id), Some(&jwks(&key))).await;
        assert_eq!(report.kind, TokenKind::IdToken);
        assert!(
            report.valid && report.signature_verified,
            "{}",
            report.to_text()
        );
    }

    #[tokio::test]
    async fn each_recognisable_catalogue_case_fails_with_its_rule() {
        let key = new_key();
        let other = new_key();
        let mut two_audiences = id_jag_claims();
        two_audiences["aud"] = json!(["https://as.example", "https://evil.example"]);
        let mut expired = id_jag_claims();
        expired["exp"] = json!(NOW - 600);
        expired["iat"] = json!(NOW - 900);
        let mut no_jti = id_jag_claims();
        no_jti.as_object_mut().unwrap().remove("jti");
        let mut bad_resource = id_jag_claims();
        bad_resource["resource"] = json!("not a uri");
        // The claims changed after signing: the signature no longer matches.
        let good = sign(&key, Some(wire::TYP_ID_JAG), &id_jag_claims());
        let mut forged = id_jag_claims();
        forged["sub"] = json!("mallory");
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            base64url::encode(forged.to_string()),
            parts[2]
        );
        let cases: Vec<(&str, String, Option<Jwks>, &str)> = vec![
            (
                "alg none",
                unsigned(
                    r#"{"alg":"none","typ":"oauth-id-jag+jwt"}"#,
                    &id_jag_claims().to_string(),
                ),
                None,
                "JWT-01",
            ),
            (
                "wrong typ (an ID-JAG typed as an access token)",
                sign(&key, Some(wire::TYP_ACCESS_TOKEN), &{
                    let mut c = id_jag_claims();
                    c.as_object_mut().unwrap().remove("jti");
                    c
                }),
                None,
                "JWT-10",
            ),
            (
                "untyped token with client_id",
                sign(&key, None, &id_jag_claims()),
                None,
                "JWT-10",
            ),
            (
                "aud array of two",
                sign(&key, Some(wire::TYP_ID_JAG), &two_audiences),
                None,
                "IDJAG-06",
            ),
            (
                "expired",
                sign(&key, Some(wire::TYP_ID_JAG), &expired),
                None,
                "IDJAG-17",
            ),
            (
                "missing jti",
                sign(&key, Some(wire::TYP_ID_JAG), &no_jti),
                None,
                "IDJAG-08",
            ),
            (
                "bad resource",
                sign(&key, Some(wire::TYP_ID_JAG), &bad_resource),
                None,
                "IDJAG-09",
            ),
            (
                "duplicate members",
                unsigned(
                    r#"{"alg":"ES256","typ":"oauth-id-jag+jwt"}"#,
                    r#"{"iss":"https://idp.example","aud":"a","aud":"b"}"#,
                ),
                None,
                "JWT-05",
            ),
            (
                "crit header",
                unsigned(
                    r#"{"alg":"ES256","typ":"oauth-id-jag+jwt","crit":["exp"]}"#,
                    &id_jag_claims().to_string(),
                ),
                None,
                "JWT-02",
            ),
            (
                "bad signature",
                tampered.clone(),
                Some(jwks(&key)),
                "IDJAG-02",
            ),
            (
                "unknown kid",
                sign(&other, Some(wire::TYP_ID_JAG), &id_jag_claims()),
                Some(jwks(&key)),
                "IDJAG-02",
            ),
            ("not a JWT", "abc.def".to_owned(), None, "JWT-05"),
            ("JWE", "a.b.c.d.e".to_owned(), None, "JWT-05"),
        ];
        for (name, token, jwks, id) in cases {
            let report = run(&token, jwks.as_ref()).await;
            assert!(
                !report.valid || !report.signature_verified && jwks.is_some(),
                "{name}"
            );
            assert!(
                failed(&report).contains(&id),
                "{name}: {:?}\n{}",
                failed(&report),
                report.to_text()
            );
            assert!(report.to_text().contains("INVALID"), "{name}");
        }
    }

    #[tokio::test]
    async fn an_expiry_within_the_leeway_is_a_warning() {
        let key = new_key();
        let mut claims = id_jag_claims();
        claims["exp"] = json!(NOW - 5);
        let report = run(&sign(&key, Some(wire::TYP_ID_JAG), &claims), None).await;
        assert!(report.valid);
        assert!(
            report
                .checks
                .iter()
                .any(|c| c.outcome == Outcome::Warn && c.detail.contains("within"))
        );
        let _ = NumericDate::from_unix(NOW);
    }
}
