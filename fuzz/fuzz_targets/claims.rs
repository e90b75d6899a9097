//! Claims and NumericDate parsing for every token kind; accepted ID-JAG claims round-trip.
#![no_main]

use idjag_core::{AccessTokenClaims, ClientAssertionClaims, IdJagClaims, IdTokenClaims, JwtClaims};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(claims) = IdJagClaims::from_json_slice(data) {
        let json = serde_json::to_vec(&claims).unwrap();
        assert_eq!(IdJagClaims::from_json_slice(&json).unwrap(), claims);
    }
    let _ = IdTokenClaims::from_json_slice(data);
    let _ = AccessTokenClaims::from_json_slice(data);
    let _ = ClientAssertionClaims::from_json_slice(data);
});
