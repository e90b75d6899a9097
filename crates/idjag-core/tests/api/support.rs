//! The core tests' fixtures: an IdP key and the resource AS's validator. Token forging, the
//! test time and JSON edits come from idjag-test-support.

use std::sync::Arc;

use idjag_core::*;
use serde_json::{Value, json};

pub const IDP: &str = "https://idp.example";
pub const RAS: &str = "https://auth.chat.example";
pub use idjag_test_support::clock::NOW;
pub use idjag_test_support::forge::{with, without};

pub struct Fixture {
    pub key: SigningKey,
    pub clock: TestClock,
    pub validator: IdJagValidator,
}

impl Fixture {
    pub fn new(alg: Algorithm) -> Self {
        Self::with_backend(alg, crypto::default_backend())
    }

    pub fn with_backend(alg: Algorithm, backend: &'static dyn crypto::CryptoBackend) -> Self {
        let key = SigningKey::generate_with(alg, backend)
            .unwrap()
            .with_kid(Kid::new("idp-key-1").unwrap());
        let clock = TestClock::at_unix(NOW);
        let keys = KeySet::new([key.verifying_key().unwrap()]).unwrap();
        let validator = IdJagValidator::new(
            TrustedIssuers::new().with(Issuer::new(IDP).unwrap(), Arc::new(keys)),
            Audience::new(RAS).unwrap(),
            AlgorithmSet::all(),
            clock.shared(),
        );
        Self {
            key,
            clock,
            validator,
        }
    }

    pub fn header(&self) -> Value {
        json!({"alg": self.key.alg().as_str(), "typ": "oauth-id-jag+jwt", "kid": "idp-key-1"})
    }

    /// Signs arbitrary header and payload JSON text with the IdP key.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        sign_raw_with(&self.key, header, payload)
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    pub fn validate(&self, token: &str) -> Result<Verified<IdJagClaims>, ValidationError> {
        self.validator.validate(token)
    }
}

/// Signs arbitrary header and payload JSON text with `key`.
pub fn sign_raw_with(key: &SigningKey, header: &str, payload: &str) -> String {
    idjag_test_support::forge::sign_raw(key, header.as_bytes(), payload.as_bytes())
}

pub fn claims() -> Value {
    json!({
        "iss": IDP,
        "sub": "alice",
        "aud": RAS,
        "client_id": "agent-at-ras",
        "jti": "jti-1",
        "iat": NOW,
        "exp": NOW + 300,
        "resource": "https://mcp.chat.example/",
        "scope": "chat.read chat.history",
    })
}

pub fn claim_error(claim: &'static str, problem: ClaimProblem) -> ValidationError {
    ValidationError::Claim(ClaimError { claim, problem })
}
