//! Token forging: compact JWS assembled by hand, so tests can send any header, any payload
//! and any signature (RFC 7515 §7.1), and JSON edits for claim sets.

use idjag_core::SigningKey;
use idjag_core::jose::base64url;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64url::encode(bytes)
}

/// `header.payload.signature` over the exact bytes given, signed by `key`.
pub fn sign_raw(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature))
}

/// A compact JWS of the JSON `header` and `claims`, signed by `key`, or with an empty
/// signature when `key` is `None`.
pub fn jws(header: &Value, claims: &Value, key: Option<&SigningKey>) -> String {
    match key {
        Some(key) => sign_raw(
            key,
            header.to_string().as_bytes(),
            claims.to_string().as_bytes(),
        ),
        None => with_signature(header, claims, ""),
    }
}

/// A compact JWS of the JSON `header` and `claims` with `signature` (base64url text) as its
/// third segment, verbatim.
pub fn with_signature(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string()),
        b64(claims.to_string())
    )
}

/// The decoded header and payload of a compact JWS (no verification).
pub fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next =
        || serde_json::from_slice(&base64url::decode(parts.next().unwrap()).unwrap()).unwrap();
    (next(), next())
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`: to forge HS256 tokens, which no idjag
/// backend can make (`none` and HMAC are not expressible there).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// `object` with member `name` set to `value`.
pub fn with(mut object: Value, name: &str, value: Value) -> Value {
    object[name] = value;
    object
}

/// `object` without member `name`.
pub fn without(mut object: Value, name: &str) -> Value {
    object.as_object_mut().unwrap().remove(name);
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 §4.3 (test case 2) and §4.7 (test case 6: a key longer than the block).
        let hex = |bytes: Vec<u8>| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn forged_tokens_decode_back() {
        let header = serde_json::json!({"alg": "none"});
        let claims = serde_json::json!({"sub": "x"});
        let token = with_signature(&header, &claims, "sig");
        assert!(token.ends_with(".sig"));
        assert_eq!(decode(&token), (header, claims));
        assert_eq!(
            without(with(serde_json::json!({}), "a", 1.into()), "a"),
            serde_json::json!({})
        );
    }
}
