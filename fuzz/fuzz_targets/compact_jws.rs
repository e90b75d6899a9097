//! The compact JWS parser: size cap, counted split, strict base64url, header JSON and policy.
#![no_main]

use idjag_core::jose::{DEFAULT_MAX_TOKEN_BYTES, UnverifiedJws};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data)
        && let Ok(jws) = UnverifiedJws::parse(token, DEFAULT_MAX_TOKEN_BYTES)
    {
        let _ = jws.unverified_claims();
        assert!(jws.signing_input().len() < token.len());
    }
});
