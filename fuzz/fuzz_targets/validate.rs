//! The whole ID-JAG validator on arbitrary input: it must never panic, and nothing random
//! verifies.
#![no_main]

use std::sync::{Arc, OnceLock};

use idjag_core::*;
use libfuzzer_sys::fuzz_target;

fn validator() -> &'static IdJagValidator {
    static VALIDATOR: OnceLock<IdJagValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let key = SigningKey::generate(Algorithm::Es256).unwrap().with_thumbprint_kid();
        IdJagValidator::new(
            TrustedIssuers::new().with(
                Issuer::new("https://idp.example").unwrap(),
                Arc::new(KeySet::new([key.verifying_key().unwrap()]).unwrap()),
            ),
            Audience::new("https://auth.chat.example").unwrap(),
            AlgorithmSet::all(),
            TestClock::at_unix(1_700_000_000).shared(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        assert!(validator().validate(token).is_err());
    }
});
