//! The signature check (IDJAG-02) against a JWK Set document or a `jwks_uri`.

use idjag_core::jose::UnverifiedJws;
use idjag_core::remote::RemoteJwks;
use idjag_core::{Issuer, KeySet, KeySource, SharedClock};
use serde_json::{Map, Value};

use crate::MAX_TOKEN_BYTES;
use crate::report::{Checks, Verdict};

/// Where verification keys come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Jwks {
    /// A JWK Set document already read.
    Document(Vec<u8>),
    /// A `jwks_uri`.
    Url(String),
}

pub(crate) async fn check_signature(
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
            Verdict::Skip,
            "not checked: pass --jwks <url|file>",
        );
        return false;
    };
    let jws = match UnverifiedJws::parse(token, MAX_TOKEN_BYTES) {
        Ok(jws) => jws,
        Err(e) => {
            checks.add(ID, RULE, Verdict::Fail, format!("cannot be verified: {e}"));
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
            checks.add(ID, RULE, Verdict::Fail, format!("no key: {reason}"));
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
