//! The compact JWS serialisation, split and decoded strictly.

use serde_json::{Map, Value};

use crate::error::{JoseError, Segment};
use crate::jose::base64url;
use crate::jose::header::Header;
use crate::jose::json::{Members, parse_members, parse_object};

/// Default cap on a compact token's length: 16 KiB.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A compact JWS whose structure and header passed every check and whose signature has
/// not been verified. It offers only the header: nothing in the payload is to be trusted.
#[derive(Debug)]
pub struct UnverifiedJws<'a> {
    signing_input: &'a str,
    header: Header,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> UnverifiedJws<'a> {
    /// Parses a compact JWS.
    ///
    /// The length is checked first, before any other work, and the split stops at the third
    /// dot, so an oversized or dot-flooded input costs O(`max_bytes`) at most.
    ///
    /// ```
    /// use idjag_core::jose::UnverifiedJws;
    /// use idjag_core::{Algorithm, JoseError};
    /// let jws = UnverifiedJws::parse("eyJhbGciOiJFUzI1NiJ9.e30.AAAA", 16 * 1024).unwrap();
    /// assert_eq!(jws.unverified_header().alg(), Algorithm::Es256);
    /// assert_eq!(UnverifiedJws::parse("a.b", 16 * 1024).unwrap_err(), JoseError::SegmentCount);
    /// ```
    pub fn parse(token: &'a str, max_bytes: usize) -> Result<Self, JoseError> {
        if token.len() > max_bytes {
            return Err(JoseError::TooLarge { max: max_bytes });
        }
        let (header_b64, payload_b64, signature_b64) = split3(token)?;
        if header_b64.is_empty() {
            return Err(JoseError::EmptySegment {
                segment: Segment::Header,
            });
        }
        if signature_b64.is_empty() {
            return Err(JoseError::EmptySegment {
                segment: Segment::Signature,
            });
        }
        let header_bytes = base64url::decode(header_b64).map_err(|_| JoseError::Base64 {
            segment: Segment::Header,
        })?;
        let payload = base64url::decode(payload_b64).map_err(|_| JoseError::Base64 {
            segment: Segment::Payload,
        })?;
        let signature = base64url::decode(signature_b64).map_err(|_| JoseError::Base64 {
            segment: Segment::Signature,
        })?;
        let header = Header::from_members(&parse_members(&header_bytes, Segment::Header)?)?;
        Ok(Self {
            signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
            header,
            payload,
            signature,
        })
    }

    /// The header. Its values are untrusted until the signature is verified.
    pub fn unverified_header(&self) -> &Header {
        &self.header
    }

    /// The bytes the signature covers: `BASE64URL(header) "." BASE64URL(payload)`.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The decoded payload bytes. Untrusted until the signature is verified.
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload as a JSON object (duplicate members rejected). Untrusted until the
    /// signature is verified.
    pub fn unverified_claims(&self) -> Result<Map<String, Value>, JoseError> {
        parse_object(&self.payload, Segment::Payload)
    }

    pub(crate) fn unverified_members(&self) -> Result<Members, JoseError> {
        parse_members(&self.payload, Segment::Payload)
    }
}

/// Splits at exactly two dots. Stops scanning at a third dot.
fn split3(token: &str) -> Result<(&str, &str, &str), JoseError> {
    let mut parts = token.splitn(4, '.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(JoseError::SegmentCount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JoseError;

    const HEADER: &str = "eyJhbGciOiJFUzI1NiJ9"; // {"alg":"ES256"}

    fn parse(token: &str) -> Result<UnverifiedJws<'_>, JoseError> {
        UnverifiedJws::parse(token, DEFAULT_MAX_TOKEN_BYTES)
    }

    #[test]
    fn v02_empty_signature_and_two_segments_are_rejected() {
        assert_eq!(
            parse(&format!("{HEADER}.e30.")).unwrap_err(),
            JoseError::EmptySegment {
                segment: Segment::Signature
            }
        );
        assert_eq!(
            parse(&format!("{HEADER}.e30")).unwrap_err(),
            JoseError::SegmentCount
        );
    }

    #[test]
    fn v12_jwe_and_json_serialisation_are_rejected() {
        assert_eq!(parse("a.b.c.d.e").unwrap_err(), JoseError::SegmentCount);
        assert_eq!(
            parse(r#"{"payload":"e30","signatures":[]}"#).unwrap_err(),
            JoseError::SegmentCount
        );
    }

    #[test]
    fn v28_oversized_and_dot_flooded_tokens_fail_fast() {
        let huge = "a".repeat(1024 * 1024);
        assert_eq!(
            parse(&huge).unwrap_err(),
            JoseError::TooLarge {
                max: DEFAULT_MAX_TOKEN_BYTES
            }
        );
        let dots = ".".repeat(100_000);
        assert_eq!(
            parse(&dots).unwrap_err(),
            JoseError::TooLarge {
                max: DEFAULT_MAX_TOKEN_BYTES
            }
        );
        let few_dots = ".".repeat(1000);
        assert_eq!(parse(&few_dots).unwrap_err(), JoseError::SegmentCount);
    }

    #[test]
    fn v26_base64url_must_be_strict() {
        for (token, segment) in [
            (format!("{HEADER}=.e30.AAAA"), Segment::Header),
            (format!("{HEADER}.e30=.AAAA"), Segment::Payload),
            (format!("{HEADER}.e3 0.AAAA"), Segment::Payload),
            (format!("{HEADER}.e30.AA+A"), Segment::Signature),
            (format!("{HEADER}.e30.AA/A"), Segment::Signature),
            (format!("{HEADER}.e31.AAAA"), Segment::Payload), // non-canonical trailing bits
        ] {
            assert_eq!(
                parse(&token).unwrap_err(),
                JoseError::Base64 { segment },
                "{token}"
            );
        }
    }

    #[test]
    fn v26_spaces_inside_the_decoded_header_json_are_accepted() {
        let header = base64url::encode(r#"{ "alg" : "ES256" }"#);
        assert!(parse(&format!("{header}.e30.AAAA")).is_ok());
    }

    #[test]
    fn v10_v11_forbidden_header_members_are_rejected() {
        for (json, member) in [
            (r#"{"alg":"ES256","crit":["exp"]}"#, "crit"),
            (r#"{"alg":"ES256","crit":["x-unknown"]}"#, "crit"),
            (r#"{"alg":"ES256","crit":[]}"#, "crit"),
            (r#"{"alg":"ES256","cty":"JWT"}"#, "cty"),
            (r#"{"alg":"ES256","cty":"json"}"#, "cty"),
            (r#"{"alg":"ES256","b64":false}"#, "b64"),
            (r#"{"alg":"ES256","zip":"DEF"}"#, "zip"),
        ] {
            let token = format!("{}.e30.AAAA", base64url::encode(json));
            assert_eq!(
                parse(&token).unwrap_err(),
                JoseError::ForbiddenHeader { member },
                "{json}"
            );
        }
    }

    #[test]
    fn v01_alg_none_in_every_case_and_hmac_are_unsupported() {
        for alg in ["none", "None", "NONE", "HS256"] {
            let token = format!(
                "{}.e30.AAAA",
                base64url::encode(format!(r#"{{"alg":"{alg}"}}"#))
            );
            assert_eq!(
                parse(&token).unwrap_err(),
                JoseError::UnsupportedAlgorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn v14_hostile_kids_are_rejected_without_use() {
        let long = "k".repeat(10 * 1024);
        for kid in [
            serde_json::json!(long),
            serde_json::json!("a\u{0}b"),
            serde_json::json!(7),
            serde_json::json!(null),
            serde_json::json!(""),
        ] {
            let json = serde_json::json!({"alg":"ES256","kid":kid}).to_string();
            let token = format!("{}.e30.AAAA", base64url::encode(json));
            assert_eq!(
                parse(&token).unwrap_err(),
                JoseError::InvalidHeader { member: "kid" },
                "{kid}"
            );
        }
    }

    #[test]
    fn typ_must_be_a_string() {
        for typ in [
            serde_json::json!(1),
            serde_json::json!(["oauth-id-jag+jwt"]),
        ] {
            let json = serde_json::json!({"alg":"ES256","typ":typ}).to_string();
            let token = format!("{}.e30.AAAA", base64url::encode(json));
            assert_eq!(
                parse(&token).unwrap_err(),
                JoseError::InvalidHeader { member: "typ" }
            );
        }
    }
}
