//! OAuth JSON responses with the headers every token endpoint answer needs.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PRAGMA, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::error::OAuthErrorResponse;

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1; requirement TX-18; threat J08).
pub fn no_store_headers(headers: &mut http::HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A JSON response with no-store headers.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Vec<u8>> {
    let bytes =
        serde_json::to_vec(body).unwrap_or_else(|_| br#"{"error":"server_error"}"#.to_vec());
    let mut response = Response::new(bytes);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store_headers(response.headers_mut());
    response
}

/// An RFC 6749 §5.2 error response, with its status and, for `invalid_client` after HTTP
/// authentication, the `WWW-Authenticate` challenge.
pub fn error_response(
    error: &OAuthErrorResponse,
    www_authenticate: Option<HeaderValue>,
) -> Response<Vec<u8>> {
    let mut response = json_response(error.status(), error);
    if let Some(challenge) = www_authenticate {
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    response
}
