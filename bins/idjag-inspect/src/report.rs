//! The result of an inspection: the detected kind, each check and the verdict.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde_json::{Map, Value};

/// The kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InspectedKind {
    /// An ID-JAG (`typ` `oauth-id-jag+jwt`).
    IdJag,
    /// An RFC 9068 access token (`typ` `at+jwt`, or untyped with `client_id`).
    AccessToken,
    /// An OIDC ID token.
    IdToken,
    /// Not decodable.
    Unknown,
}

impl fmt::Display for InspectedKind {
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
pub enum Verdict {
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
    /// The requirement id (docs/requirements.md) or source.
    pub id: &'static str,
    /// The rule.
    pub rule: &'static str,
    /// The outcome.
    pub outcome: Verdict,
    /// What was found.
    pub detail: String,
}

/// The whole verdict.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The detected kind.
    pub kind: InspectedKind,
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

/// The checks made so far.
pub(crate) struct Checks(pub(crate) Vec<Check>);

impl Checks {
    pub(crate) fn add(
        &mut self,
        id: &'static str,
        rule: &'static str,
        outcome: Verdict,
        detail: impl Into<String>,
    ) {
        self.0.push(Check {
            id,
            rule,
            outcome,
            detail: detail.into(),
        });
    }

    pub(crate) fn pass_or_fail(
        &mut self,
        id: &'static str,
        rule: &'static str,
        ok: bool,
        detail: impl Into<String>,
    ) {
        let outcome = if ok { Verdict::Pass } else { Verdict::Fail };
        self.add(id, rule, outcome, detail);
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
                Verdict::Pass => "ok  ",
                Verdict::Warn => "warn",
                Verdict::Fail => "FAIL",
                Verdict::Skip => "skip",
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
                    .filter(|c| c.outcome == Verdict::Fail)
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
