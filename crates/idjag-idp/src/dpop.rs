//! DPoP proofs at the token endpoint (RFC 9449 §4.3; ID-JAG -04 §9.8; requirements TX-23, IDJAG-16;
//! threat X15). A valid proof binds the ID-JAG to its key through `cnf.jkt`.
//!
//! A proof is checked early ([`DpopVerifier::verify`]) but its `jti` is spent
//! ([`DpopVerifier::spend`]) only once the request has passed every other check (threat X21):
//! a proof attached to a request refused for another reason stays usable, and requests that
//! fail anyway never fill the replay store.

use std::sync::Arc;

use http::HeaderMap;
use idjag_core::crypto::default_backend;
use idjag_core::jose::{UnverifiedJws, base64url, parse_object, typ_matches};
use idjag_core::server::{Replay, ReplayCache, ReplayKey};
use idjag_core::{JoseError, KeyError, OAuthErrorCode, Segment, SharedClock, VerifyingKey, wire};
use serde_json::Value;
use url::Url;

/// Largest DPoP proof accepted, in bytes.
pub(crate) const MAX_DPOP_PROOF_BYTES: usize = 8 * 1024;
/// How old a proof's `iat` may be, in seconds.
pub(crate) const DPOP_MAX_AGE_SECS: i64 = 60;
/// How far in the future a proof's `iat` may be (clock skew), in seconds.
pub(crate) const DPOP_FUTURE_LEEWAY_SECS: i64 = 30;

/// Why a DPoP proof was refused (`invalid_dpop_proof`, or `temporarily_unavailable` when the
/// replay store failed or the client's quota there is used up). Proofs are at most 8 KiB,
/// their `iat` within 60 s in the past and 30 s in the future, their `jti` single-use (spent
/// only by a request that passed every other check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// More than one `DPoP` header, or one that is not visible ASCII.
    #[error("more than one DPoP header")]
    MultipleProofs,
    /// Not a compact JWS with an acceptable header (this covers `alg: none` and HS256, which
    /// cannot be expressed, and oversized proofs).
    #[error("DPoP proof is malformed: {0}")]
    Malformed(JoseError),
    /// `typ` is not `dpop+jwt`.
    #[error("DPoP proof typ is not dpop+jwt")]
    WrongType,
    /// The `jwk` header is missing, private, weak or does not fit `alg`.
    #[error("DPoP proof key is not acceptable")]
    Key(Option<KeyError>),
    /// The signature does not verify.
    #[error("DPoP proof signature is invalid")]
    BadSignature,
    /// A claim is missing or has the wrong type.
    #[error("DPoP proof claim {0} is missing or invalid")]
    Claim(&'static str),
    /// `htm` is not `POST`.
    #[error("DPoP proof htm does not match")]
    WrongMethod,
    /// `htu` is not this token endpoint.
    #[error("DPoP proof htu does not match")]
    WrongUri,
    /// `iat` is too old or too far in the future.
    #[error("DPoP proof iat is outside the accepted window")]
    Stale,
    /// The proof's `jti` was already used.
    #[error("DPoP proof was replayed")]
    Replayed,
    /// The replay store could not answer.
    #[error("replay store unavailable")]
    ReplayStore,
}

impl DpopError {
    /// The OAuth error code.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        match self {
            Self::ReplayStore => OAuthErrorCode::TemporarilyUnavailable,
            _ => OAuthErrorCode::InvalidDpopProof,
        }
    }

    /// A stable reason code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::MultipleProofs => "dpop_multiple_proofs",
            Self::Malformed(_) => "dpop_malformed",
            Self::WrongType => "dpop_wrong_typ",
            Self::Key(_) => "dpop_bad_key",
            Self::BadSignature => "dpop_bad_signature",
            Self::Claim(_) => "dpop_bad_claim",
            Self::WrongMethod => "dpop_wrong_htm",
            Self::WrongUri => "dpop_wrong_htu",
            Self::Stale => "dpop_stale",
            Self::Replayed => "dpop_replayed",
            Self::ReplayStore => "replay_store_unavailable",
        }
    }
}

/// The namespace of DPoP proof `jti`s in a replay store they may share with client
/// assertions ([`ReplayKey::namespaced`]).
pub(crate) const DPOP_REPLAY_NAMESPACE: &str = "dpop-proof";

/// A proof that passed every check but the single-use one: its key's thumbprint and the
/// replay entry to record once the request has otherwise passed.
#[derive(Debug, Clone)]
pub(crate) struct CheckedProof {
    thumbprint: String,
    key: ReplayKey,
    until: i64,
}

impl CheckedProof {
    /// The RFC 7638 thumbprint of the proof's key (the ID-JAG's `cnf.jkt`).
    pub(crate) fn into_thumbprint(self) -> String {
        self.thumbprint
    }
}

/// Checks DPoP proofs sent to one token endpoint.
#[derive(Debug, Clone)]
pub(crate) struct DpopVerifier {
    htu: Url,
    replay: Arc<dyn ReplayCache>,
    clock: SharedClock,
}

/// The URI a proof's `htu` must match: no query, no fragment (RFC 9449 §4.3 item 9).
fn target_uri(url: &str) -> Option<Url> {
    let mut url = Url::parse(url).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url)
}

impl DpopVerifier {
    pub(crate) fn new(
        token_endpoint: &Url,
        replay: Arc<dyn ReplayCache>,
        clock: SharedClock,
    ) -> Self {
        let mut htu = token_endpoint.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        Self { htu, replay, clock }
    }

    /// Every check of the proof but the single-use one; `None` when no proof was sent. The
    /// proof's `jti` is not recorded: call [`Self::spend`] once the request has passed.
    pub(crate) fn verify(&self, headers: &HeaderMap) -> Result<Option<CheckedProof>, DpopError> {
        let mut proofs = headers.get_all("dpop").iter();
        let Some(proof) = proofs.next() else {
            return Ok(None);
        };
        if proofs.next().is_some() {
            return Err(DpopError::MultipleProofs);
        }
        let proof = proof.to_str().map_err(|_| DpopError::MultipleProofs)?;
        let jws =
            UnverifiedJws::parse(proof, MAX_DPOP_PROOF_BYTES).map_err(DpopError::Malformed)?;
        let header = jws.unverified_header();
        if !header
            .typ()
            .is_some_and(|typ| typ_matches(typ, wire::TYP_DPOP))
        {
            return Err(DpopError::WrongType);
        }
        let key = proof_key(proof, header.alg())?;
        if !key.verify(jws.signing_input(), jws.signature()) {
            return Err(DpopError::BadSignature);
        }
        let claims = jws.unverified_claims().map_err(DpopError::Malformed)?;
        let string = |name: &'static str| match claims.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
            _ => Err(DpopError::Claim(name)),
        };
        let jti = string("jti")?;
        if jti.len() > 256 {
            return Err(DpopError::Claim("jti"));
        }
        if string("htm")? != "POST" {
            return Err(DpopError::WrongMethod);
        }
        if target_uri(string("htu")?).as_ref() != Some(&self.htu) {
            return Err(DpopError::WrongUri);
        }
        let iat = match claims.get("iat") {
            Some(Value::Number(n)) => n.as_i64().ok_or(DpopError::Claim("iat"))?,
            _ => return Err(DpopError::Claim("iat")),
        };
        let now = self.clock.now_unix();
        if iat > now.saturating_add(DPOP_FUTURE_LEEWAY_SECS)
            || iat < now.saturating_sub(DPOP_MAX_AGE_SECS)
        {
            return Err(DpopError::Stale);
        }
        let thumbprint = key.thumbprint();
        let until = iat
            .saturating_add(DPOP_MAX_AGE_SECS)
            .saturating_add(DPOP_FUTURE_LEEWAY_SECS);
        Ok(Some(CheckedProof {
            key: ReplayKey::namespaced(DPOP_REPLAY_NAMESPACE, &thumbprint, jti),
            thumbprint,
            until,
        }))
    }

    /// Spends the proof's `jti` for `holder` (the client, whose quota it counts in): the only
    /// write of a DPoP check, made after every other check of the request passed.
    pub(crate) async fn spend(&self, proof: &CheckedProof, holder: &str) -> Result<(), DpopError> {
        match self.replay.record(proof.key, holder, proof.until).await {
            Ok(Replay::First) => Ok(()),
            Ok(_) => Err(DpopError::Replayed),
            Err(_) => Err(DpopError::ReplayStore),
        }
    }
}

/// The public key in the proof's `jwk` header, pinned to the header's `alg`. The key policy
/// of the core refuses private members, weak RSA keys and points off the curve.
fn proof_key(proof: &str, alg: idjag_core::Algorithm) -> Result<VerifyingKey, DpopError> {
    let header_b64 = proof.split('.').next().unwrap_or_default();
    let header = base64url::decode(header_b64).map_err(|_| {
        DpopError::Malformed(JoseError::Base64 {
            segment: Segment::Header,
        })
    })?;
    let header = parse_object(&header, Segment::Header).map_err(DpopError::Malformed)?;
    let jwk = header.get("jwk").ok_or(DpopError::Key(None))?;
    let key = VerifyingKey::from_jwk(jwk).map_err(|e| DpopError::Key(Some(e)))?;
    if key.alg() == alg {
        return Ok(key);
    }
    // An RSA JWK without `alg` imports as RS256; a PS256 proof may still use it.
    let names_alg = jwk.get("alg").is_some();
    if names_alg || !key.material().fits(alg) {
        return Err(DpopError::Key(Some(KeyError::AlgorithmMismatch)));
    }
    VerifyingKey::from_material_with(alg, None, key.material().clone(), default_backend())
        .map_err(|e| DpopError::Key(Some(e)))
}
