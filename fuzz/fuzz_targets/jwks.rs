//! JWK Set import under the key policy; usable keys re-export and re-import identically.
#![no_main]

use idjag_core::KeySet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(import) = KeySet::from_jwks_json(data) {
        let exported = import.keys.to_jwks().to_string();
        let again = KeySet::from_jwks_json(exported.as_bytes()).unwrap();
        assert_eq!(again.keys.len(), import.keys.len());
        assert!(again.rejected.is_empty());
    }
});
