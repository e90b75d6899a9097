//! The envelope of a token-endpoint request: method, size, content type, form body.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use http::{Method, StatusCode};

use super::form::{FormBody, FormError, is_form_content_type};
use crate::error::OAuthErrorCode;

/// Why a request to a form-encoded OAuth endpoint was refused before its parameters were
/// looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormRequestError {
    /// Not `POST` (answer 405 with `Allow: POST`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body (or its declared `Content-Length`) exceeds the limit (413).
    #[error("request body exceeds {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// Not exactly one `Content-Type`, or not `application/x-www-form-urlencoded`.
    #[error("content type is not application/x-www-form-urlencoded")]
    ContentType,
    /// The body is not a strict form (threat X16).
    #[error(transparent)]
    Form(#[from] FormError),
}

impl FormRequestError {
    /// Always `invalid_request`.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        OAuthErrorCode::InvalidRequest
    }

    /// 405, 413 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ContentType | Self::Form(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A stable, low-cardinality reason code for audit logs and metrics, the same at every
    /// token endpoint (the IdP's and the resource authorization server's).
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::ContentType => "not_form_encoded",
            Self::Form(FormError::Duplicate { .. }) => "duplicate_parameter",
            Self::Form(FormError::TooManyParameters) => "too_many_parameters",
            Self::Form(_) => "malformed_form",
        }
    }
}

/// Reads a token-endpoint request: `POST`, a body (and a declared `Content-Length`) within
/// `max_body_bytes`, exactly one form `Content-Type`, and a strict form body in which only the
/// parameters named in `repeatable` may repeat. Nothing else is looked at until this passes.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method, header::CONTENT_TYPE};
/// use idjag_core::server::{FormRequestError, read_form_request};
/// let mut headers = HeaderMap::new();
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
/// let form = read_form_request(&Method::POST, &headers, b"grant_type=x", 1024, &[]).unwrap();
/// assert_eq!(form.get("grant_type"), Some("x"));
/// assert_eq!(
///     read_form_request(&Method::GET, &headers, b"", 1024, &[]).unwrap_err(),
///     FormRequestError::MethodNotAllowed
/// );
/// ```
pub fn read_form_request(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    max_body_bytes: usize,
    repeatable: &[&str],
) -> Result<FormBody, FormRequestError> {
    if method != Method::POST {
        return Err(FormRequestError::MethodNotAllowed);
    }
    let declared_too_large = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > max_body_bytes as u64);
    if declared_too_large || body.len() > max_body_bytes {
        return Err(FormRequestError::BodyTooLarge {
            max: max_body_bytes,
        });
    }
    let mut content_types = headers.get_all(CONTENT_TYPE).iter();
    match (
        content_types.next().map(|v| v.to_str()),
        content_types.next(),
    ) {
        (Some(Ok(value)), None) if is_form_content_type(value) => {}
        _ => return Err(FormRequestError::ContentType),
    }
    Ok(FormBody::parse_with_repeatable(body, repeatable)?)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn form_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers
    }

    #[test]
    fn x16_the_envelope_is_checked_before_the_form() {
        let headers = form_headers();
        assert_eq!(
            read_form_request(&Method::PUT, &headers, b"", 8, &[]).unwrap_err(),
            FormRequestError::MethodNotAllowed
        );
        assert_eq!(
            read_form_request(&Method::POST, &headers, b"a=123456789", 8, &[]).unwrap_err(),
            FormRequestError::BodyTooLarge { max: 8 }
        );
        let mut declared = form_headers();
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("9"));
        assert_eq!(
            read_form_request(&Method::POST, &declared, b"a=1", 8, &[]).unwrap_err(),
            FormRequestError::BodyTooLarge { max: 8 }
        );
        let mut json = HeaderMap::new();
        json.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(
            read_form_request(&Method::POST, &json, b"a=1", 8, &[]).unwrap_err(),
            FormRequestError::ContentType
        );
        let mut two = form_headers();
        two.append(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            read_form_request(&Method::POST, &two, b"a=1", 8, &[]).unwrap_err(),
            FormRequestError::ContentType
        );
        assert_eq!(
            read_form_request(&Method::POST, &headers, b"a=1&a=2", 64, &[]).unwrap_err(),
            FormRequestError::Form(FormError::Duplicate { name: "a".into() })
        );
        assert!(read_form_request(&Method::POST, &headers, b"a=1&a=2", 64, &["a"]).is_ok());
    }

    #[test]
    fn every_refusal_has_its_status_and_reason_code() {
        let cases = [
            (
                FormRequestError::MethodNotAllowed,
                405,
                "method_not_allowed",
            ),
            (
                FormRequestError::BodyTooLarge { max: 8 },
                413,
                "body_too_large",
            ),
            (FormRequestError::ContentType, 400, "not_form_encoded"),
            (
                FormRequestError::Form(FormError::Duplicate { name: "a".into() }),
                400,
                "duplicate_parameter",
            ),
            (
                FormRequestError::Form(FormError::TooManyParameters),
                400,
                "too_many_parameters",
            ),
            (
                FormRequestError::Form(FormError::Encoding),
                400,
                "malformed_form",
            ),
        ];
        for (error, status, reason) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.reason_code(), reason, "{error}");
            assert_eq!(error.oauth_error(), OAuthErrorCode::InvalidRequest);
        }
    }
}
