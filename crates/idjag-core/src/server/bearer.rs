//! Bearer tokens on protected resources (RFC 6750 §2.1, §3) and their challenges (RFC 9728 §5.1).

use http::StatusCode;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use crate::error::OAuthErrorCode;
use crate::id::ScopeSet;

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

/// A `WWW-Authenticate: Bearer ...` challenge (RFC 6750 §3, RFC 9728 §5.1, MCP 2025-11-25).
///
/// ```
/// use idjag_core::server::BearerChallenge;
/// use idjag_core::{OAuthErrorCode, ScopeSet};
/// let challenge = BearerChallenge::new()
///     .with_resource_metadata("https://mcp.example/.well-known/oauth-protected-resource")
///     .with_error(OAuthErrorCode::InsufficientScope)
///     .with_scope(ScopeSet::parse("tools.write").unwrap());
/// assert_eq!(
///     challenge.to_string(),
///     r#"Bearer error="insufficient_scope", scope="tools.write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource""#
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    realm: Option<String>,
    error: Option<OAuthErrorCode>,
    error_description: Option<String>,
    scope: Option<ScopeSet>,
    resource_metadata: Option<String>,
}

impl BearerChallenge {
    /// A bare `Bearer` challenge.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `realm`.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Sets `error`.
    pub fn with_error(mut self, error: OAuthErrorCode) -> Self {
        self.error = Some(error);
        self
    }

    /// Sets `error_description` (keep it generic: it is sent to the client).
    pub fn with_error_description(mut self, description: impl Into<String>) -> Self {
        self.error_description = Some(description.into());
        self
    }

    /// Sets `scope`: the scope needed.
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Sets `resource_metadata`: the RFC 9728 metadata URL.
    pub fn with_resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// The header value.
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

fn quoted(out: &mut std::fmt::Formatter<'_>, value: &str) -> std::fmt::Result {
    out.write_str("\"")?;
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.write_str("\\")?;
        }
        write!(out, "{c}")?;
    }
    out.write_str("\"")
}

impl std::fmt::Display for BearerChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer")?;
        let scope = self.scope.as_ref().map(ToString::to_string);
        let params = [
            ("realm", self.realm.as_deref()),
            ("error", self.error.map(OAuthErrorCode::as_str)),
            ("error_description", self.error_description.as_deref()),
            ("scope", scope.as_deref()),
            ("resource_metadata", self.resource_metadata.as_deref()),
        ];
        let mut first = true;
        for (name, value) in params {
            if let Some(value) = value {
                f.write_str(if first { " " } else { ", " })?;
                first = false;
                write!(f, "{name}=")?;
                quoted(f, value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn challenge_values_are_quoted_and_escaped() {
        let c = BearerChallenge::new().with_realm("a\"b\\c\nd");
        assert_eq!(c.to_string(), r#"Bearer realm="a\"b\\cd""#);
        assert_eq!(BearerChallenge::new().to_string(), "Bearer");
    }
}
