//! Signs an ID-JAG as an IdP would, then validates it as a resource authorization server
//! would, and shows a few of the checks refusing tampered or misdirected tokens.
//!
//! ```text
//! cargo run -p idjag-core --example sign_and_validate
//! ```
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use idjag_core::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = SystemClock::shared();
    let now = clock.now_unix();
    let idp = Issuer::new("https://acme.idp.example")?;
    let ras = Issuer::new("https://auth.chat.example")?;

    // The IdP's signing key and its published JWK Set.
    let idp_key = SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid();
    let jwks = serde_json::json!({ "keys": [idp_key.public_jwk()] }).to_string();
    println!(
        "1. IdP key {} (ES256), JWKS {} bytes",
        idp_key.kid().map(Kid::as_str).unwrap_or("-"),
        jwks.len()
    );

    // Token exchange done: the IdP signs an ID-JAG for the resource AS.
    let mut claims = IdJagClaims::new(
        idp.clone(),
        Subject::new("alice@acme.example")?,
        ras.to_audience(),
        ClientId::new("f53f191f9311af35")?,
        Jti::new(format!("jti-{now}"))?,
        NumericDate::from_unix(now).ok_or("clock before 1970")?,
        NumericDate::from_unix(now + 300).ok_or("clock overflow")?,
    );
    claims.resource = Some(vec![Resource::new("https://mcp.chat.example/")?]);
    claims.scope = Some(ScopeSet::parse("chat.read chat.history")?);
    let id_jag = idp_key
        .sign_jwt(Some(wire::TYP_ID_JAG), &claims)?
        .into_id_jag();
    println!(
        "2. ID-JAG issued: {} bytes, typ {}, 300 s lifetime (the token itself stays secret)",
        id_jag.len(),
        wire::TYP_ID_JAG
    );

    // The resource AS trusts this IdP's keys, and only for this issuer.
    let import = KeySet::from_jwks_json(jwks.as_bytes())?;
    let validator = IdJagValidator::new(
        TrustedIssuers::new().with(idp.clone(), Arc::new(import.keys)),
        ras.to_audience(),
        AlgorithmSet::from([Algorithm::Es256]),
        clock.clone(),
    );
    let verified = validator.validate(id_jag.secret())?;
    let c = verified.claims();
    println!(
        "3. Verified: sub={} client_id={} resource={} scope=\"{}\"",
        c.sub,
        c.client_id,
        c.resource
            .as_deref()
            .and_then(|r| r.first())
            .map(Resource::as_str)
            .unwrap_or("-"),
        c.scope
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    );

    // Some of the ways a token is refused.
    let other_as = IdJagValidator::new(
        TrustedIssuers::new().with(
            idp.clone(),
            Arc::new(KeySet::from_jwks_json(jwks.as_bytes())?.keys),
        ),
        Audience::new("https://auth.other.example")?,
        AlgorithmSet::from([Algorithm::Es256]),
        clock.clone(),
    );
    let mut tampered = id_jag.secret().to_owned();
    tampered.replace_range(tampered.len() - 2.., "AA");
    let as_access_token = idp_key.sign_jwt(Some(wire::TYP_ACCESS_TOKEN), &claims)?;
    for (what, result) in [
        (
            "the same ID-JAG at another resource AS",
            other_as.validate(id_jag.secret()).map(|_| ()),
        ),
        (
            "a tampered signature",
            validator.validate(&tampered).map(|_| ()),
        ),
        (
            "the same claims typed as an access token",
            validator.validate(as_access_token.secret()).map(|_| ()),
        ),
    ] {
        match result {
            Err(e) => println!(
                "4. Refused {what}: {e} ({} -> {})",
                e.reason_code(),
                e.oauth_error()
            ),
            Ok(()) => return Err(format!("{what} was accepted").into()),
        }
    }
    Ok(())
}
