//! Request bodies and headers as a client sends them.

use base64::Engine as _;

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A form body from `pairs`, in order.
pub fn body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Authorization` value of `client_secret_basic`: id and secret form-urlencoded, joined
/// by `:`, base64 (RFC 6749 §2.3.1).
pub fn basic(user: &str, secret: &str) -> String {
    let raw = format!("{}:{}", encode(user), encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}
