//! Token kinds. Each has its own `typ` rule and claims, so an ID token, an ID-JAG, an access
//! token and a client assertion can never be taken for one another (RFC 8725 §3.12;
//! requirement JWT-04; threats V09, X05).

use crate::claims::{
    AccessTokenClaims, ClientAssertionClaims, IdJagClaims, IdTokenClaims, JwtClaims,
};
use crate::error::ValidationError;
use crate::jose::typ_matches;
use crate::wire;

mod sealed {
    #[allow(unnameable_types)] // sealed on purpose: only idjag defines token kinds
    pub trait Sealed {}
}

/// A kind of JWT, with its `typ` rule, claims and default limits.
pub trait TokenKind: sealed::Sealed + Send + Sync + 'static {
    /// The claims.
    type Claims: JwtClaims;
    /// A name for messages.
    const NAME: &'static str;
    /// Default maximum `exp - iat` (or `exp - now` without `iat`), in seconds.
    const DEFAULT_MAX_LIFETIME: i64;
    /// Default maximum age of `iat`, in seconds.
    const DEFAULT_MAX_AGE: i64;

    /// Checks the header `typ`.
    fn check_typ(typ: Option<&str>) -> Result<(), ValidationError>;

    /// Checks rules specific to the kind, after the registered claims.
    fn check_claims(_claims: &Self::Claims) -> Result<(), ValidationError> {
        Ok(())
    }
}

fn require(typ: Option<&str>, expected: &'static str) -> Result<(), ValidationError> {
    match typ {
        Some(typ) if typ_matches(typ, expected) => Ok(()),
        _ => Err(ValidationError::WrongType { expected }),
    }
}

/// `typ` absent or one of `allowed`; never an explicit type of another kind.
fn absent_or(
    typ: Option<&str>,
    allowed: &[&str],
    expected: &'static str,
) -> Result<(), ValidationError> {
    match typ {
        None => Ok(()),
        Some(typ) if allowed.iter().any(|a| typ_matches(typ, a)) => Ok(()),
        Some(_) => Err(ValidationError::WrongType { expected }),
    }
}

/// An ID-JAG: `typ` must be `oauth-id-jag+jwt` (requirements IDJAG-01, JB-05).
#[derive(Debug)]
#[non_exhaustive]
pub enum IdJag {}

/// An RFC 9068 access token: `typ` must be `at+jwt` (requirement JWT-10).
#[derive(Debug)]
#[non_exhaustive]
pub enum AccessToken {}

/// An OIDC ID token: `typ` absent or `JWT`.
#[derive(Debug)]
#[non_exhaustive]
pub enum IdToken {}

/// An RFC 7523 client assertion: `typ` absent, `JWT` or `client-authentication+jwt`;
/// `iss` and `sub` must be equal.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientAssertion {}

impl sealed::Sealed for IdJag {}
impl sealed::Sealed for AccessToken {}
impl sealed::Sealed for IdToken {}
impl sealed::Sealed for ClientAssertion {}

impl TokenKind for IdJag {
    type Claims = IdJagClaims;
    const NAME: &'static str = "ID-JAG";
    const DEFAULT_MAX_LIFETIME: i64 = 3600;
    const DEFAULT_MAX_AGE: i64 = 3600;

    fn check_typ(typ: Option<&str>) -> Result<(), ValidationError> {
        require(typ, wire::TYP_ID_JAG)
    }
}

impl TokenKind for AccessToken {
    type Claims = AccessTokenClaims;
    const NAME: &'static str = "access token";
    const DEFAULT_MAX_LIFETIME: i64 = 24 * 3600;
    const DEFAULT_MAX_AGE: i64 = 24 * 3600;

    fn check_typ(typ: Option<&str>) -> Result<(), ValidationError> {
        require(typ, wire::TYP_ACCESS_TOKEN)
    }
}

impl TokenKind for IdToken {
    type Claims = IdTokenClaims;
    const NAME: &'static str = "ID token";
    const DEFAULT_MAX_LIFETIME: i64 = 24 * 3600;
    const DEFAULT_MAX_AGE: i64 = 24 * 3600;

    fn check_typ(typ: Option<&str>) -> Result<(), ValidationError> {
        absent_or(typ, &[wire::TYP_JWT], wire::TYP_JWT)
    }

    fn check_claims(claims: &IdTokenClaims) -> Result<(), ValidationError> {
        match &claims.azp {
            Some(azp) if azp.as_str() != claims.aud.as_str() => {
                Err(ValidationError::AudienceMismatch)
            }
            _ => Ok(()),
        }
    }
}

impl TokenKind for ClientAssertion {
    type Claims = ClientAssertionClaims;
    const NAME: &'static str = "client assertion";
    const DEFAULT_MAX_LIFETIME: i64 = 600;
    const DEFAULT_MAX_AGE: i64 = 600;

    fn check_typ(typ: Option<&str>) -> Result<(), ValidationError> {
        absent_or(
            typ,
            &[wire::TYP_JWT, wire::TYP_CLIENT_AUTHENTICATION],
            wire::TYP_CLIENT_AUTHENTICATION,
        )
    }

    fn check_claims(claims: &ClientAssertionClaims) -> Result<(), ValidationError> {
        if claims.iss.as_str() == claims.sub.as_str() {
            Ok(())
        } else {
            Err(ValidationError::Claim(crate::error::ClaimError {
                claim: "sub",
                problem: crate::error::ClaimProblem::Invalid,
            }))
        }
    }
}
