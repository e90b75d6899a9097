//! The user's credential from single sign-on, presented at the IdP as the token-exchange
//! `subject_token` (ID-JAG -04 §4.3; requirement TX-05).

use std::fmt;

use idjag_core::jose::{UnverifiedJws, base64url};
use idjag_core::{IdToken, RefreshToken, SubjectToken, SubjectTokenType};
use sha2::{Digest, Sha256};

use crate::error::InputError;

/// Longest subject token accepted: 64 KiB (SAML assertions can be large).
pub const MAX_SUBJECT_TOKEN_BYTES: usize = 64 * 1024;

/// A cache key for a user: the SHA-256 of a caller-given subject id, or of the subject token
/// itself. Raw tokens are never used as keys, and `Debug` shows only a short prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectKey([u8; 32]);

impl SubjectKey {
    fn digest(domain: &[u8], value: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(domain);
        hasher.update([0]);
        hasher.update(value);
        Self(hasher.finalize().into())
    }

    /// The key of a caller-given subject id (for example the user's `sub` at the IdP).
    pub fn from_subject_id(subject_id: &str) -> Self {
        Self::digest(b"idjag-client subject id", subject_id.as_bytes())
    }

    /// The key of a subject token.
    pub fn from_token(token: &str) -> Self {
        Self::digest(b"idjag-client subject token", token.as_bytes())
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectKey(")?;
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// The user's credential for leg 1, with an optional IdP refresh token to renew an expired ID
/// token (`docs/flow.md#renewal`; threat C05).
///
/// `Debug` shows the token type and the key, never a token.
///
/// ```
/// use idjag_client::UserToken;
/// use idjag_core::{IdToken, SubjectTokenType};
/// let subject = UserToken::id_token(IdToken::new("eyJ...id-token")).with_subject_id("alice@acme");
/// assert_eq!(subject.token_type(), SubjectTokenType::IdToken);
/// assert!(!format!("{subject:?}").contains("eyJ"));
/// ```
#[derive(Clone)]
pub struct UserToken {
    token: SubjectToken,
    token_type: SubjectTokenType,
    key: SubjectKey,
    refresh_token: Option<RefreshToken>,
}

impl fmt::Debug for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserToken")
            .field("token_type", &self.token_type)
            .field("key", &self.key)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish()
    }
}

impl UserToken {
    fn new(token: SubjectToken, token_type: SubjectTokenType) -> Self {
        let key = SubjectKey::from_token(token.secret());
        Self {
            token,
            token_type,
            key,
            refresh_token: None,
        }
    }

    /// An OIDC ID token whose `aud` is our client id at the IdP.
    pub fn id_token(token: IdToken) -> Self {
        Self::new(token.into(), SubjectTokenType::IdToken)
    }

    /// An IdP refresh token, for IdPs that accept one as `subject_token`.
    pub fn refresh_token(token: RefreshToken) -> Self {
        Self::new(token.into(), SubjectTokenType::RefreshToken)
    }

    /// A SAML 2.0 assertion (the XML bytes); it is sent base64url encoded without padding.
    pub fn saml2_assertion(xml: &[u8]) -> Self {
        Self::new(
            SubjectToken::new(base64url::encode(xml)),
            SubjectTokenType::Saml2,
        )
    }

    /// A SAML 2.0 assertion that is already base64url encoded; it is passed through as given
    /// (with or without `=` padding).
    pub fn saml2_base64url(encoded: impl Into<String>) -> Self {
        Self::new(SubjectToken::new(encoded), SubjectTokenType::Saml2)
    }

    /// Keys the cache by this caller-given subject id instead of the token's hash, so that a
    /// renewed ID token keeps its cache entry.
    pub fn with_subject_id(mut self, subject_id: &str) -> Self {
        self.key = SubjectKey::from_subject_id(subject_id);
        self
    }

    /// An IdP refresh token used to renew the ID token once it expires.
    pub fn with_refresh_token(mut self, refresh_token: RefreshToken) -> Self {
        self.refresh_token = Some(refresh_token);
        self
    }

    /// The same subject (same cache key and renewal token) with a renewed ID token.
    pub(crate) fn renewed(&self, id_token: IdToken) -> Self {
        Self {
            token: id_token.into(),
            token_type: SubjectTokenType::IdToken,
            key: self.key,
            refresh_token: self.refresh_token.clone(),
        }
    }

    /// The subject token.
    pub fn token(&self) -> &SubjectToken {
        &self.token
    }

    /// Its type.
    pub fn token_type(&self) -> SubjectTokenType {
        self.token_type
    }

    /// The cache key.
    pub fn key(&self) -> SubjectKey {
        self.key
    }

    /// The refresh token for renewal, if any.
    pub fn renewal_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// The `exp` of an ID token, read without verification (only to schedule its renewal;
    /// the IdP is the one that checks it). `None` for other types or unreadable tokens.
    pub fn id_token_expiry(&self) -> Option<i64> {
        if self.token_type != SubjectTokenType::IdToken {
            return None;
        }
        unverified_exp(self.token.secret())
    }

    /// Checks the token before it is sent: non-empty, bounded, printable ASCII without
    /// whitespace, and for SAML strict base64url.
    pub(crate) fn check(&self) -> Result<(), InputError> {
        check_token(self.token.secret(), "subject token")?;
        // Padding is tolerated on a pass-through assertion (RFC 4648 §5 allows it); the rest
        // must be strict base64url.
        if self.token_type == SubjectTokenType::Saml2
            && base64url::decode(unpadded(self.token.secret())).is_err()
        {
            return Err(InputError::MalformedToken {
                what: "subject token",
            });
        }
        if let Some(refresh) = &self.refresh_token {
            check_token(refresh.secret(), "refresh token")?;
        }
        Ok(())
    }
}

/// `s` without up to two trailing `=`, and only at a length where padding is well-formed.
fn unpadded(s: &str) -> &str {
    let trimmed = s.trim_end_matches('=');
    let pad = s.len() - trimmed.len();
    if pad <= 2 && s.len().is_multiple_of(4) {
        trimmed
    } else {
        s
    }
}

/// Checks a token before it goes on the wire.
pub(crate) fn check_token(token: &str, what: &'static str) -> Result<(), InputError> {
    if token.is_empty() {
        return Err(InputError::Empty { what });
    }
    if token.len() > MAX_SUBJECT_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InputError::MalformedToken { what });
    }
    Ok(())
}

/// The `exp` claim of a compact JWT, unverified.
pub(crate) fn unverified_exp(token: &str) -> Option<i64> {
    let jws = UnverifiedJws::parse(token, MAX_SUBJECT_TOKEN_BYTES).ok()?;
    let claims = jws.unverified_claims().ok()?;
    claims.get("exp")?.as_i64()
}
