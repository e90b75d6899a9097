//! DPoP (RFC 9449) proofs, to ask the IdP for a key-bound ID-JAG (ID-JAG -04 §9.8) and to
//! present it at the resource authorization server.
//!
//! With a [`DpopKey`] configured, leg 1 carries a `DPoP` proof and the returned ID-JAG must
//! carry `cnf.jkt` equal to this key's thumbprint; an ID-JAG without it is a downgrade and is
//! refused (threat C03). Leg 2 carries a proof too, and a `DPoP` access token is
//! accepted. Use [`DpopKey::proof`] to make the proofs for the resource requests (`ath` set).

use std::fmt;

use idjag_core::jose::base64url;
use idjag_core::{AccessToken, CompactJwt, SharedClock, SigningKey, wire};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::auth::{AssertionError, random_jti};

/// A DPoP key: signs proofs whose header carries the public key.
#[derive(Clone)]
pub struct DpopKey {
    key: SigningKey,
    clock: SharedClock,
    public_jwk: Value,
    thumbprint: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.key.alg())
            .field("thumbprint", &self.thumbprint)
            .finish()
    }
}

impl DpopKey {
    /// A DPoP key from a signing key, reading time from `clock`.
    pub fn new(key: SigningKey, clock: SharedClock) -> Self {
        let mut public_jwk = key.public_jwk();
        if let Value::Object(members) = &mut public_jwk {
            // Only the key itself goes in the proof header.
            for name in ["kid", "use", "alg", "key_ops"] {
                members.remove(name);
            }
        }
        let thumbprint = key.thumbprint();
        Self {
            key,
            clock,
            public_jwk,
            thumbprint,
        }
    }

    /// The RFC 7638 thumbprint: the `cnf.jkt` a bound token must carry.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A proof for `method` on `url` (query and fragment are left out of `htu`), with `ath`
    /// when an access token is given and `nonce` when the server asked for one.
    pub fn proof(
        &self,
        method: &http::Method,
        url: &Url,
        access_token: Option<&AccessToken>,
        nonce: Option<&str>,
    ) -> Result<CompactJwt, AssertionError> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let header = json!({
            "typ": wire::TYP_DPOP,
            "alg": self.key.alg().as_str(),
            "jwk": self.public_jwk,
        });
        let mut claims = Map::new();
        claims.insert("jti".into(), Value::String(random_jti()?.into_string()));
        claims.insert("htm".into(), Value::String(method.as_str().to_owned()));
        claims.insert("htu".into(), Value::String(htu.into()));
        claims.insert("iat".into(), Value::from(self.clock.now_unix()));
        if let Some(token) = access_token {
            let digest = Sha256::digest(token.secret().as_bytes());
            claims.insert("ath".into(), Value::String(base64url::encode(digest)));
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), Value::String(nonce.to_owned()));
        }
        let mut token = base64url::encode(header.to_string());
        token.push('.');
        token.push_str(&base64url::encode(Value::Object(claims).to_string()));
        let signature = self
            .key
            .sign(token.as_bytes())
            .map_err(|_| AssertionError)?;
        token.push('.');
        token.push_str(&base64url::encode(signature));
        Ok(CompactJwt::new(token))
    }
}
