//! Token validation in a fixed order, returning [`Verified`] claims.
//!
//! ```
//! use std::sync::Arc;
//! use idjag_core::{
//!     Algorithm, AlgorithmSet, Audience, ClientId, IdJagClaims, IdJagValidator, Issuer, Jti,
//!     KeySet, NumericDate, SigningKey, Subject, TestClock, TrustedIssuers, wire,
//! };
//!
//! let idp = Issuer::new("https://idp.example").unwrap();
//! let ras = Issuer::new("https://auth.chat.example").unwrap();
//! let key = SigningKey::generate(Algorithm::Es256).unwrap().with_thumbprint_kid();
//! let clock = TestClock::at_unix(1_700_000_000);
//!
//! let claims = IdJagClaims::new(
//!     idp.clone(),
//!     Subject::new("alice").unwrap(),
//!     ras.to_audience(),
//!     ClientId::new("agent-at-ras").unwrap(),
//!     Jti::new("jti-1").unwrap(),
//!     NumericDate::from_unix(1_700_000_000).unwrap(),
//!     NumericDate::from_unix(1_700_000_300).unwrap(),
//! );
//! let token = key.sign_jwt(Some(wire::TYP_ID_JAG), &claims).unwrap();
//!
//! let keys = KeySet::new([key.verifying_key().unwrap()]).unwrap();
//! let validator = IdJagValidator::new(
//!     TrustedIssuers::new().with(idp, Arc::new(keys)),
//!     ras.to_audience(),
//!     AlgorithmSet::from([Algorithm::Es256]),
//!     clock.shared(),
//! );
//! let verified = validator.validate(token.secret()).unwrap();
//! assert_eq!(verified.claims().sub.as_str(), "alice");
//! ```

mod kind;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

pub use kind::{AccessToken, ClientAssertion, IdJag, IdToken, TokenKind};

use crate::alg::{Algorithm, AlgorithmSet};
use crate::claims::{ClaimReader, JwtClaims};
use crate::clock::SharedClock;
use crate::error::ValidationError;
use crate::id::{Audience, Issuer, Kid};
use crate::jose::{DEFAULT_MAX_TOKEN_BYTES, UnverifiedJws};
use crate::keys::{KeyMiss, KeySource, VerifyingKey};

/// Default clock-skew leeway: 30 s.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The largest leeway a validator accepts: 5 minutes (RFC 7519 §4.1.4: "a few minutes").
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The trusted issuers and, for each, the one source of its keys. Issuers are compared byte
/// for byte; a key is only ever looked up among its issuer's keys (requirement JB-07; threats V16,
/// V17).
#[derive(Clone, Default)]
pub struct TrustedIssuers {
    issuers: Vec<(Issuer, Arc<dyn KeySource>)>,
}

impl fmt::Debug for TrustedIssuers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.issuers.iter().map(|(i, k)| (i, k)))
            .finish()
    }
}

impl TrustedIssuers {
    /// No trusted issuer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `issuer`, with its keys from `keys`.
    pub fn with(mut self, issuer: Issuer, keys: Arc<dyn KeySource>) -> Self {
        self.issuers.retain(|(known, _)| *known != issuer);
        self.issuers.push((issuer, keys));
        self
    }

    /// The key source of `issuer`, if trusted (exact, byte-for-byte match).
    pub fn get(&self, issuer: &str) -> Option<&Arc<dyn KeySource>> {
        self.issuers
            .iter()
            .find(|(known, _)| known.as_str() == issuer)
            .map(|(_, keys)| keys)
    }

    /// Whether no issuer is trusted.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }
}

/// Claims whose signature, header, issuer, audience and time window were verified.
///
/// Only a [`Validator`] makes one: minting, policy and audit code take `&Verified<_>` and so
/// cannot be handed unverified claims.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    claims: T,
    alg: Algorithm,
    kid: Option<Kid>,
}

impl<T> Verified<T> {
    /// The verified claims.
    pub fn claims(&self) -> &T {
        &self.claims
    }

    /// The verified claims, owned.
    pub fn into_claims(self) -> T {
        self.claims
    }

    /// The algorithm the signature was made with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `kid` of the key that verified the signature.
    pub fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }
}

/// Why a validator setting was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidatorConfigError {
    /// The leeway is above [`MAX_LEEWAY`].
    #[error("leeway above the 5 minute maximum")]
    LeewayTooLarge,
    /// A limit is zero or does not fit in seconds.
    #[error("limit must be positive")]
    NonPositive,
}

/// A validator for one token kind. Its constructor takes every trust setting (issuers with
/// their keys, the expected audience, the algorithm allow-list and the clock), so a missing
/// one is a compile error; limits have documented defaults.
///
/// Checks run in this order, and the first failure is the error (redemption checks 4 to 11,
/// `docs/flow.md#redemption-checks`):
/// 1. size cap ([`DEFAULT_MAX_TOKEN_BYTES`]), counted split, strict base64url;
/// 2. JSON header and payload (UTF-8, no duplicate members, objects);
/// 3. header policy (`crit`, `cty`, `b64`, `zip` refused), `typ` for the kind, `alg` allowed;
/// 4. `iss` exactly a trusted issuer, key looked up among that issuer's keys only;
/// 5. signature;
/// 6. claims: types, `aud`, `exp`/`nbf`/`iat` with leeway, lifetime and age caps, kind rules.
///
/// So an expired token with a forged signature reports the signature (threat V33).
pub struct Validator<K: TokenKind> {
    issuers: TrustedIssuers,
    audience: Audience,
    audience_aliases: Vec<Audience>,
    algorithms: AlgorithmSet,
    clock: SharedClock,
    leeway: i64,
    max_lifetime: i64,
    max_age: i64,
    max_token_bytes: usize,
    kind: PhantomData<fn() -> K>,
}

impl<K: TokenKind> fmt::Debug for Validator<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("kind", &K::NAME)
            .field("issuers", &self.issuers)
            .field("audience", &self.audience)
            .field("audience_aliases", &self.audience_aliases)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .field("max_age", &self.max_age)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish_non_exhaustive()
    }
}

impl<K: TokenKind> Clone for Validator<K> {
    fn clone(&self) -> Self {
        Self {
            issuers: self.issuers.clone(),
            audience: self.audience.clone(),
            audience_aliases: self.audience_aliases.clone(),
            algorithms: self.algorithms,
            clock: self.clock.clone(),
            leeway: self.leeway,
            max_lifetime: self.max_lifetime,
            max_age: self.max_age,
            max_token_bytes: self.max_token_bytes,
            kind: PhantomData,
        }
    }
}

/// Validates ID-JAGs.
pub type IdJagValidator = Validator<IdJag>;
/// Validates RFC 9068 access tokens.
pub type AccessTokenValidator = Validator<AccessToken>;
/// Validates OIDC ID tokens.
pub type IdTokenValidator = Validator<IdToken>;
/// Validates RFC 7523 client assertions.
pub type ClientAssertionValidator = Validator<ClientAssertion>;

fn secs(d: Duration) -> Result<i64, ValidatorConfigError> {
    i64::try_from(d.as_secs()).map_err(|_| ValidatorConfigError::NonPositive)
}

impl<K: TokenKind> Validator<K> {
    /// A validator with every trust setting and default limits: leeway 30 s, the kind's
    /// maximum lifetime and `iat` age, and a 16 KiB token cap.
    pub fn new(
        issuers: TrustedIssuers,
        audience: Audience,
        algorithms: AlgorithmSet,
        clock: SharedClock,
    ) -> Self {
        Self {
            issuers,
            audience,
            audience_aliases: Vec::new(),
            algorithms,
            clock,
            leeway: secs(DEFAULT_LEEWAY).unwrap_or(30),
            max_lifetime: K::DEFAULT_MAX_LIFETIME,
            max_age: K::DEFAULT_MAX_AGE,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            kind: PhantomData,
        }
    }

    /// Sets the clock-skew leeway for `exp`, `nbf` and `iat` (at most [`MAX_LEEWAY`]).
    pub fn with_leeway(mut self, leeway: Duration) -> Result<Self, ValidatorConfigError> {
        if leeway > MAX_LEEWAY {
            return Err(ValidatorConfigError::LeewayTooLarge);
        }
        self.leeway = secs(leeway)?;
        Ok(self)
    }

    /// Sets the maximum lifetime (`exp - iat`).
    pub fn with_max_lifetime(mut self, max: Duration) -> Result<Self, ValidatorConfigError> {
        self.max_lifetime = positive(max)?;
        Ok(self)
    }

    /// Sets the maximum age of `iat`.
    pub fn with_max_age(mut self, max: Duration) -> Result<Self, ValidatorConfigError> {
        self.max_age = positive(max)?;
        Ok(self)
    }

    /// Sets the token size cap in bytes.
    pub fn with_max_token_bytes(mut self, max: usize) -> Result<Self, ValidatorConfigError> {
        if max == 0 {
            return Err(ValidatorConfigError::NonPositive);
        }
        self.max_token_bytes = max;
        Ok(self)
    }

    /// Also accepts `alias` as the audience (for example a resource AS issuer written with a
    /// trailing slash during a migration; decision D-06). Matching stays exact.
    pub fn with_audience_alias(mut self, alias: Audience) -> Self {
        self.audience_aliases.push(alias);
        self
    }

    /// The expected audience.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> &TrustedIssuers {
        &self.issuers
    }

    /// Validates with the keys at hand, without I/O. A remote key source whose cache is stale
    /// or lacks the `kid` makes this fail closed; use [`Self::validate_async`] with remote keys.
    pub fn validate(&self, token: &str) -> Result<Verified<K::Claims>, ValidationError> {
        let pending = self.check_structure(token)?;
        let key = pending
            .source
            .find(
                pending.jws.unverified_header().kid(),
                pending.jws.unverified_header().alg(),
            )
            .map_err(|miss| ValidationError::Key(miss.error))?;
        self.finish(pending, &key)
    }

    /// Validates, refreshing the issuer's keys once (single-flight, rate-limited by the
    /// source) when the lookup says a refresh may help, for example on an unknown `kid`.
    pub async fn validate_async(
        &self,
        token: &str,
    ) -> Result<Verified<K::Claims>, ValidationError> {
        let pending = self.check_structure(token)?;
        let (kid, alg) = (
            pending.jws.unverified_header().kid(),
            pending.jws.unverified_header().alg(),
        );
        let key = match pending.source.find(kid, alg) {
            Ok(key) => key,
            Err(KeyMiss {
                refresh_may_help: true,
                ..
            }) => {
                pending.source.refresh().await;
                pending
                    .source
                    .find(kid, alg)
                    .map_err(|miss| ValidationError::Key(miss.error))?
            }
            Err(miss) => return Err(ValidationError::Key(miss.error)),
        };
        self.finish(pending, &key)
    }

    /// Steps 1 to 4, up to the issuer's key source.
    fn check_structure<'t>(&self, token: &'t str) -> Result<Pending<'t, '_>, ValidationError> {
        let jws = UnverifiedJws::parse(token, self.max_token_bytes)?;
        let payload = jws.unverified_members()?;
        let header = jws.unverified_header();
        K::check_typ(header.typ())?;
        if !self.algorithms.contains(header.alg()) {
            return Err(ValidationError::AlgorithmNotAllowed);
        }
        let source = match payload.iter().find(|(k, _)| k == "iss") {
            Some((_, serde_json::Value::String(iss))) => self.issuers.get(iss),
            _ => None,
        }
        .ok_or(ValidationError::UntrustedIssuer)?;
        Ok(Pending {
            jws,
            payload,
            source,
        })
    }

    /// Steps 5 and 6.
    fn finish(
        &self,
        pending: Pending<'_, '_>,
        key: &VerifyingKey,
    ) -> Result<Verified<K::Claims>, ValidationError> {
        if !key.verify(pending.jws.signing_input(), pending.jws.signature()) {
            return Err(ValidationError::BadSignature);
        }
        let claims = K::Claims::from_reader(ClaimReader::from_members(pending.payload))?;
        self.check_registered(&claims)?;
        K::check_claims(&claims)?;
        Ok(Verified {
            claims,
            alg: key.alg(),
            kid: key.kid().cloned(),
        })
    }

    fn check_registered(&self, claims: &K::Claims) -> Result<(), ValidationError> {
        let r = claims.registered();
        if r.aud != &self.audience && !self.audience_aliases.contains(r.aud) {
            return Err(ValidationError::AudienceMismatch);
        }
        let now = self.clock.now_unix();
        let leeway = self.leeway;
        if now >= r.exp.unix().saturating_add(leeway) {
            return Err(ValidationError::Expired);
        }
        if let Some(nbf) = r.nbf
            && nbf.unix() > now.saturating_add(leeway)
        {
            return Err(ValidationError::NotYetValid);
        }
        match r.iat {
            Some(iat) => {
                if iat.unix() > now.saturating_add(leeway) {
                    return Err(ValidationError::IssuedInFuture);
                }
                if r.exp.unix() - iat.unix() > self.max_lifetime {
                    return Err(ValidationError::LifetimeTooLong);
                }
                if now.saturating_sub(iat.unix()) > self.max_age.saturating_add(leeway) {
                    return Err(ValidationError::TooOld);
                }
            }
            None => {
                if r.exp.unix().saturating_sub(now) > self.max_lifetime.saturating_add(leeway) {
                    return Err(ValidationError::ExpiresTooFarAhead);
                }
            }
        }
        Ok(())
    }
}

fn positive(d: Duration) -> Result<i64, ValidatorConfigError> {
    match secs(d)? {
        0 => Err(ValidatorConfigError::NonPositive),
        s => Ok(s),
    }
}

struct Pending<'t, 'v> {
    jws: UnverifiedJws<'t>,
    payload: crate::jose::json::Members,
    source: &'v Arc<dyn KeySource>,
}

/// A compact JWS whose header passed the policy and whose signature verified, with its raw
/// payload. This is the JWS layer of [`Validator`] without `typ`, issuer or claim rules: for
/// payloads that are not JWT claim sets (for example test vectors).
#[derive(Debug)]
pub struct VerifiedJws {
    header: crate::jose::Header,
    payload: Vec<u8>,
}

impl VerifiedJws {
    /// The verified header.
    pub fn header(&self) -> &crate::jose::Header {
        &self.header
    }

    /// The verified payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Verifies a compact JWS against one key set: size cap, strict parsing, header policy,
/// algorithm allow-list, key lookup and signature.
pub fn verify_jws(
    token: &str,
    keys: &dyn KeySource,
    algorithms: AlgorithmSet,
    max_token_bytes: usize,
) -> Result<VerifiedJws, ValidationError> {
    let jws = UnverifiedJws::parse(token, max_token_bytes)?;
    let header = jws.unverified_header();
    if !algorithms.contains(header.alg()) {
        return Err(ValidationError::AlgorithmNotAllowed);
    }
    let key = keys
        .find(header.kid(), header.alg())
        .map_err(|miss| ValidationError::Key(miss.error))?;
    if !key.verify(jws.signing_input(), jws.signature()) {
        return Err(ValidationError::BadSignature);
    }
    Ok(VerifiedJws {
        header: header.clone(),
        payload: jws.unverified_payload().to_vec(),
    })
}
