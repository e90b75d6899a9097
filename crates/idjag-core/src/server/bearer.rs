//! Bearer tokens on protected resources (RFC 6750 §2.1); their challenges are
//! [`BearerChallenge`](crate::challenge::BearerChallenge).

use http::StatusCode;
use http::header::{AUTHORIZATION, HeaderMap};

use crate::error::OAuthErrorCode;

/// Why no bearer token could be taken from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization` header.
    #[error("no credentials")]
    Missing,
    /// An `Authorization` header with another scheme (for example `Basic`).
    #[error("not a bearer credential")]
    OtherScheme,
    /// More than one `Authorization` header, extra whitespace, or characters outside token68
    /// (threat G04).
    #[error("malformed authorization header")]
    Malformed,
}

impl BearerError {
    /// The OAuth error code for the challenge: none for a request without credentials
    /// (RFC 6750 §3.1), `invalid_request` for a malformed one.
    pub fn oauth_error(self) -> Option<OAuthErrorCode> {
        match self {
            Self::Missing | Self::OtherScheme => None,
            Self::Malformed => Some(OAuthErrorCode::InvalidRequest),
        }
    }

    /// The HTTP status: 401, or 400 for a malformed header.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Missing | Self::OtherScheme => StatusCode::UNAUTHORIZED,
            Self::Malformed => StatusCode::BAD_REQUEST,
        }
    }
}

fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The bearer token of a request: exactly one `Authorization` header, scheme `Bearer` in any
/// case, one space, a token68 value. Tokens in the query string or body are never looked at
/// (requirement MCP-03; threat G05).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
/// use idjag_core::server::{BearerError, bearer_token};
/// let mut headers = HeaderMap::new();
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc.def-ghi"));
/// assert_eq!(bearer_token(&headers), Ok("abc.def-ghi"));
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer  abc"));
/// assert_eq!(bearer_token(&headers), Err(BearerError::Malformed));
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(BearerError::OtherScheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::OtherScheme);
    }
    if is_token68(token) {
        Ok(token)
    } else {
        Err(BearerError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;

    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn g04_malformed_authorization_headers_are_refused() {
        assert_eq!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcjpwdw=="])),
            Err(BearerError::OtherScheme)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer  a"])),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer a b"])),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer a,b"])),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer ="])),
            Err(BearerError::Malformed)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer"])),
            Err(BearerError::OtherScheme)
        );
        assert_eq!(bearer_token(&headers(&[])), Err(BearerError::Missing));
        assert_eq!(bearer_token(&headers(&["bEaReR tok=="])), Ok("tok=="));
    }
}
