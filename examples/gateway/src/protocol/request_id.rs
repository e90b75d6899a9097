//! `X-Request-Id`: the client's when it is one acceptable id, else a new one of 128 random
//! bits. The id goes upstream, back to the client and into the audit line, so nothing else
//! gets through.

use http::HeaderMap;

use crate::protocol::headers::REQUEST_ID;

/// Longest client request id kept.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// A random 128-bit request id, hex; `unavailable` if the system generator fails (the id
/// only correlates log lines, so the request goes on).
pub fn new_request_id() -> String {
    idjag_core::random::hex_id(16).unwrap_or_else(|_| "unavailable".to_owned())
}

/// The client's `X-Request-Id` when it is one acceptable id (1 to 128 characters of
/// `A-Za-z0-9._:-`), else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    let mut values = headers.get_all(REQUEST_ID).iter();
    match (values.next(), values.next()) {
        (Some(value), None)
            if (1..=MAX_REQUEST_ID_BYTES).contains(&value.len())
                && value
                    .as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b)) =>
        {
            value
                .to_str()
                .map_or_else(|_| new_request_id(), str::to_owned)
        }
        _ => new_request_id(),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(REQUEST_ID, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn one_acceptable_client_id_is_kept() {
        assert_eq!(request_id(&with(&["trace-1.a:b_c"])), "trace-1.a:b_c");
    }

    #[test]
    fn anything_else_gets_a_new_hex_id() {
        let long = "a".repeat(MAX_REQUEST_ID_BYTES + 1);
        let long = HeaderValue::from_str(&long).unwrap();
        let mut too_long = HeaderMap::new();
        too_long.insert(REQUEST_ID, long);
        for headers in [
            HeaderMap::new(),
            with(&["a b"]),
            with(&["a", "b"]),
            with(&[""]),
            too_long,
        ] {
            let id = request_id(&headers);
            assert_eq!(id.len(), 32, "{headers:?}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }
}
