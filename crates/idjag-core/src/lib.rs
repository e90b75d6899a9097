//! # idjag-core
//!
//! The strict JOSE/JWT core of idjag, the Rust implementation of the Identity Assertion JWT
//! Authorization Grant (ID-JAG, `draft-ietf-oauth-identity-assertion-authz-grant-04`) and the
//! MCP Enterprise-Managed Authorization extension. It has no network I/O unless the `http`
//! feature is on.
//!
//! - [`wire`]: every URN and media type of the flow.
//! - Identifiers ([`Issuer`], [`ClientId`], [`Audience`], [`Resource`], [`ScopeSet`], [`Jti`],
//!   [`Kid`]) compared byte for byte, and secrets ([`ClientSecret`], [`IdJag`], ...) that never
//!   print.
//! - [`jose`]: strict compact-JWS parsing and the header policy.
//! - [`jsonrpc`]: the one strict reader of MCP's JSON-RPC messages, which refuses whatever
//!   two reasonable JSON parsers could read differently.
//! - Keys: [`VerifyingKey`], [`SigningKey`], [`KeySet`] (JWK/JWKS import under a key policy),
//!   behind a small [`crypto::CryptoBackend`] (aws-lc-rs by default, josekit as an option).
//! - Claims: [`IdJagClaims`], [`IdTokenClaims`], [`AccessTokenClaims`], [`ClientAssertionClaims`].
//! - [`Validator`]: one per token kind, returning [`Verified`] claims.
//! - Errors and the OAuth error wire format ([`OAuthErrorResponse`]); [`challenge`]: the one
//!   `WWW-Authenticate: Bearer` challenge type, rendered by resources and parsed by clients.
//! - [`oauth`]: metadata documents, token responses and [`SubjectTokenType`]; [`server`]:
//!   form, client-authentication and bearer plumbing of token endpoints; [`random`]: ids from
//!   the crypto backend's generator.
//! - `RemoteJwks` (feature `http`): the one JWKS cache the resource AS, the IdP and the
//!   gateway share.
//!
//! ## Example: sign and validate an ID-JAG
//!
//! ```
//! use std::sync::Arc;
//! use idjag_core::*;
//!
//! // The IdP signs an ID-JAG for the resource AS `https://auth.chat.example`.
//! let idp = Issuer::new("https://idp.example")?;
//! let ras = Issuer::new("https://auth.chat.example")?;
//! let signing_key = SigningKey::generate(Algorithm::Es256)?.with_thumbprint_kid();
//! let clock = TestClock::at_unix(1_700_000_000);
//! let mut claims = IdJagClaims::new(
//!     idp.clone(),
//!     Subject::new("alice@example.com")?,
//!     ras.to_audience(),
//!     ClientId::new("f53f191f9311af35")?,
//!     Jti::new("9b8e6f0a")?,
//!     NumericDate::from_unix(1_700_000_000).unwrap(),
//!     NumericDate::from_unix(1_700_000_300).unwrap(),
//! );
//! claims.resource = Some(vec![Resource::new("https://mcp.chat.example/")?]);
//! claims.scope = Some(ScopeSet::parse("chat.read chat.history")?);
//! let id_jag: IdJag = signing_key.sign_jwt(Some(wire::TYP_ID_JAG), &claims)?.into_id_jag();
//!
//! // The resource AS trusts the IdP's published keys and validates.
//! let idp_keys = KeySet::from_jwks_json(
//!     serde_json::json!({ "keys": [signing_key.public_jwk()] }).to_string().as_bytes(),
//! )?.keys;
//! let validator = IdJagValidator::new(
//!     TrustedIssuers::new().with(idp, Arc::new(idp_keys)),
//!     ras.to_audience(),
//!     AlgorithmSet::from([Algorithm::Es256]),
//!     clock.shared(),
//! );
//! let verified = validator.validate(id_jag.secret())?;
//! assert_eq!(verified.claims().client_id.as_str(), "f53f191f9311af35");
//!
//! // Five minutes and 30 s of leeway later, it has expired.
//! clock.advance(std::time::Duration::from_secs(330));
//! assert_eq!(validator.validate(id_jag.secret()).unwrap_err(), ValidationError::Expired);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Decisions on open questions
//!
//! - **`typ` comparison** (decision D-07): case-insensitive, with or without `application/`.
//! - **`aud`** (decision D-06; requirement IDJAG-06): a string or a one-element array, compared
//!   exactly; a validator may add exact aliases ([`Validator::with_audience_alias`]), never a
//!   normalisation. Every JWT kind here takes a single audience.
//! - **NumericDate**: a finite number in `[0, 2^53)`; fractions are floored.
//! - **Duplicate JSON members**: rejected at every depth, in header and payload.
//! - **RSA keys without `alg`**: pinned to RS256 (the OIDC default); EC keys to their curve's
//!   algorithm; Ed25519 keys to EdDSA.
//! - **Client assertions** must carry `jti` (so servers can refuse replays).
//!
//! ## Security
//!
//! Every input is hostile until verified. `none` and HMAC cannot be expressed; each key is
//! pinned to one algorithm; keys are looked up per issuer only, never from `jwk`, `jku`, `x5u`
//! or `x5c`; `crit`, `cty`, `b64` and `zip` are refused; the token size is capped before any
//! work. Secrets print as `[redacted]` and errors never carry token contents.
//!
//! ## Requirements, decisions and threats
//!
//! These docs cite the project's [requirements checklist] ("requirement TX-08"), its
//! [decisions on open questions] ("decision D-07"), its [threat model] ("threat G16"), and
//! [the flow] ("redemption check 13", "IdP step 4", or a page anchor such as
//! `docs/flow.md#renewal`). The pages live in the repository's `docs/` folder and in the
//! `idjag` crate's `manual` module.
//!
//! [requirements checklist]: https://github.com/idjag/idjag/blob/main/docs/requirements.md
//! [decisions on open questions]: https://github.com/idjag/idjag/blob/main/docs/requirements.md#decisions
//! [threat model]: https://github.com/idjag/idjag/blob/main/docs/threat-model.md
//! [the flow]: https://github.com/idjag/idjag/blob/main/docs/flow.md
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod alg;
pub mod challenge;
pub mod claims;
mod clock;
pub mod crypto;
pub mod endpoint;
mod error;
mod id;
pub mod jose;
pub mod jsonrpc;
pub mod jwk;
mod keys;
pub mod oauth;
pub mod random;
mod secret;
pub mod server;
mod validate;
pub mod wire;

#[cfg(feature = "http")]
pub mod remote;

pub use alg::{Algorithm, AlgorithmSet};
pub use claims::{
    AccessTokenClaims, AuthorizationDetail, ClientAssertionClaims, Confirmation, IdJagClaims,
    IdTokenClaims, JwtClaims, NumericDate, SubjectIdentifier,
};
pub use clock::{Clock, SharedClock, SystemClock, TestClock};
pub use error::{
    ClaimError, ClaimProblem, ErrorCode, JoseError, KeyError, KeyLookupError, OAuthErrorCode,
    OAuthErrorResponse, RandomError, Segment, ValidationError,
};
pub use id::{
    Audience, ClientId, InvalidIdentifier, Issuer, Jti, Kid, MAX_IDENTIFIER_LEN, MAX_KID_LEN,
    Resource, Scope, ScopeSet, Subject,
};
pub use keys::{
    BoxFuture, DEFAULT_MAX_JWKS_BYTES, DEFAULT_MAX_JWKS_KEYS, JwksImport, KeyMiss, KeySet,
    KeySource, RejectedKey, SignError, SigningKey, VerifyingKey,
};
pub use oauth::{
    AuthorizationServerMetadata, ProtectedResourceMetadata, SubjectTokenType, TokenResponse,
};
pub use secret::{
    AccessToken, ClientAssertion, ClientSecret, CompactJwt, IdJag, IdToken, RefreshToken,
    SecretBytes, SubjectToken,
};
pub use validate::{
    AccessTokenValidator, ClientAssertionValidator, DEFAULT_LEEWAY, IdJagValidator,
    IdTokenValidator, MAX_LEEWAY, TrustedIssuers, Validator, ValidatorConfigError, Verified,
    VerifiedJws, verify_jws,
};

/// Token kinds for [`Validator`].
pub mod kind {
    pub use crate::validate::{AccessToken, ClientAssertion, IdJag, IdToken, TokenKind};
}
