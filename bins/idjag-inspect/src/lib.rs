//! # idjag-inspect
//!
//! A readable verdict on an ID-JAG, an OIDC ID token or an RFC 9068 access token: "a
//! readable verdict, not a stack trace".
//!
//! The token is decoded with idjag-core's JOSE parsing (duplicate members rejected), its kind
//! detected from `typ` (`oauth-id-jag+jwt`, `at+jwt`) and, without one, from its claims,
//! then checked claim by claim against the profile, each check naming its requirement id
//! (IDJAG-xx, JWT-xx) or its source (OIDC Core). With a JWK Set ([`Jwks`]) the signature is
//! verified too (a remote set through [`RemoteJwks`](idjag_core::remote::RemoteJwks), a
//! document through [`KeySet::from_jwks_json`](idjag_core::KeySet::from_jwks_json)); without
//! one the verdict says the signature was not checked. The token itself and its signature
//! are never printed: a SHA-256 fingerprint identifies it.
//!
//! ```text
//! $ idjag-inspect eyJ...            # or: echo "$TOKEN" | idjag-inspect -
//! $ idjag-inspect --jwks https://idp.example.com/jwks --json eyJ...
//! ```
//!
//! The binary exits with 1 when a check fails (or the signature does not verify), 0
//! otherwise.
//!
//! ## Contents
//!
//! | item | job |
//! |---|---|
//! | [`inspect`] | decodes, detects the kind, runs every check, verifies the signature |
//! | [`Report`], [`Check`], [`Verdict`], [`InspectedKind`] | the result, as text ([`Report::to_text`]) or JSON (`serde`) |
//! | [`Jwks`] | where verification keys come from |
//!
//! ## Example
//!
//! ```no_run
//! # async fn run() {
//! let token = std::env::var("TOKEN").unwrap_or_default();
//! let jwks = idjag_inspect::Jwks::Url("https://idp.example.com/jwks".to_owned());
//! let report =
//!     idjag_inspect::inspect(&token, Some(&jwks), idjag_core::SystemClock::shared()).await;
//! print!("{}", report.to_text());
//! # }
//! ```
//!
//! ## Security
//!
//! Every input is hostile: tokens longer than [`MAX_TOKEN_BYTES`] are not decoded, JSON with
//! duplicate members is refused, keys come only from the given JWK Set (never from `jku`,
//! `x5u`, `jwk` or `x5c`), and neither the token nor its signature reaches the report.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod claims;
mod report;
mod signature;

use idjag_core::jose::{base64url, parse_object, typ_matches};
use idjag_core::{Segment, SharedClock, wire};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use report::{Check, InspectedKind, Report, Verdict};
pub use signature::Jwks;

use report::Checks;

/// Largest token inspected.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat` (JWT-07).
pub const LEEWAY: i64 = 60;
/// Longest ID-JAG lifetime that counts as short-lived (IDJAG-17).
pub const SHORT_LIVED: i64 = 300;

fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex} ({} bytes)", token.len())
}

fn decode_segment(segment: &str, which: Segment) -> Result<Map<String, Value>, String> {
    let bytes = base64url::decode(segment).map_err(|_| "not base64url".to_owned())?;
    parse_object(&bytes, which).map_err(|e| e.to_string())
}

fn detect(header: &Map<String, Value>, claims: &Map<String, Value>) -> InspectedKind {
    match header.get("typ").and_then(Value::as_str) {
        Some(typ) if typ_matches(typ, wire::TYP_ID_JAG) => InspectedKind::IdJag,
        Some(typ) if typ_matches(typ, wire::TYP_ACCESS_TOKEN) => InspectedKind::AccessToken,
        _ if claims.contains_key("client_id") && !claims.contains_key("nonce") => {
            InspectedKind::AccessToken
        }
        _ => InspectedKind::IdToken,
    }
}

/// Inspects `token`, verifying its signature with `jwks` when given.
pub async fn inspect(token: &str, jwks: Option<&Jwks>, clock: SharedClock) -> Report {
    let token = token.trim();
    let mut checks = Checks(Vec::new());
    let mut report = Report {
        kind: InspectedKind::Unknown,
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
            Verdict::Fail,
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
                Verdict::Pass,
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
                Verdict::Fail,
                detail,
            );
            report.checks = checks.0;
            return report;
        }
    };
    let kind = detect(&header, &claims);
    claims::check_header(&mut checks, &header, kind);
    claims::check_times(&mut checks, &claims, kind, clock.now_unix());
    match kind {
        InspectedKind::IdJag => claims::check_id_jag(&mut checks, &claims),
        InspectedKind::AccessToken => claims::check_access_token(&mut checks, &claims),
        _ => claims::check_id_token(&mut checks, &claims),
    }
    report.signature_verified =
        signature::check_signature(&mut checks, token, jwks, &claims, clock).await;
    report.valid = checks.0.iter().all(|c| c.outcome != Verdict::Fail);
    report.kind = kind;
    report.header = Some(header);
    report.claims = Some(claims);
    report.checks = checks.0;
    report
}
#[cfg(test)]
mod tests;
