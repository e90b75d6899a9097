//! Strict base64url (RFC 7515 §2): the URL-safe alphabet, no padding, no whitespace and
//! canonical trailing bits. Anything else is an error (threat V26).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// The error of a base64url decode. Carries no input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not strict base64url")]
pub struct Base64Error;

/// Decodes strict base64url.
///
/// ```
/// use idjag_core::jose::base64url;
/// assert_eq!(base64url::decode("Zm9v").unwrap(), b"foo");
/// assert!(base64url::decode("Zm9v=").is_err());   // padding
/// assert!(base64url::decode("Zm9 v").is_err());   // whitespace
/// assert!(base64url::decode("Zm9w").is_ok());
/// assert!(base64url::decode("Zg").is_ok());
/// assert!(base64url::decode("Zh").is_err());      // non-canonical trailing bits
/// ```
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, Base64Error> {
    STRICT.decode(input).map_err(|_| Base64Error)
}

/// Encodes as base64url without padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    STRICT.encode(bytes)
}
