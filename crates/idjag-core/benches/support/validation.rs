//! The one realistic ID-JAG that the `validate` bench and the `validation_cost` example both
//! measure (551 bytes with ES256: `resource`, `scope`, a 36-character `jti`), so that their
//! wall-clock and instruction ratios describe the same work.

use std::sync::Arc;

use idjag_core::crypto::CryptoBackend;
use idjag_core::*;

/// The time the token is validated at.
pub(crate) const NOW: i64 = 1_700_000_000;

/// A signed ID-JAG, its validator, and the raw pieces of its signature check.
pub(crate) struct Fixture {
    /// The compact token.
    pub(crate) token: CompactJwt,
    /// The validator for it, with its one key and algorithm.
    pub(crate) validator: IdJagValidator,
    /// The public key that signed it.
    pub(crate) verifying: VerifyingKey,
    /// The JWS signing input (`header.payload`).
    pub(crate) input: String,
    /// The decoded signature.
    pub(crate) signature: Vec<u8>,
}

/// The fixture signed with a fresh `alg` key of `backend`.
pub(crate) fn fixture(alg: Algorithm, backend: &'static dyn CryptoBackend) -> Fixture {
    let key = SigningKey::generate_with(alg, backend)
        .unwrap()
        .with_thumbprint_kid();
    let mut claims = IdJagClaims::new(
        Issuer::new("https://idp.example").unwrap(),
        Subject::new("alice@example.com").unwrap(),
        Audience::new("https://auth.chat.example").unwrap(),
        ClientId::new("f53f191f9311af35").unwrap(),
        Jti::new("9b8e6f0a-5f44-4a2e-9c1d-2f0d3e7b1a6c").unwrap(),
        NumericDate::from_unix(NOW).unwrap(),
        NumericDate::from_unix(NOW + 300).unwrap(),
    );
    claims.resource = Some(vec![Resource::new("https://mcp.chat.example/").unwrap()]);
    claims.scope = Some(ScopeSet::parse("chat.read chat.history").unwrap());
    let token = key.sign_jwt(Some(wire::TYP_ID_JAG), &claims).unwrap();
    let verifying = key.verifying_key().unwrap();
    let validator = IdJagValidator::new(
        TrustedIssuers::new().with(
            claims.iss.clone(),
            Arc::new(KeySet::new([verifying.clone()]).unwrap()),
        ),
        claims.aud.clone(),
        AlgorithmSet::from([alg]),
        TestClock::at_unix(NOW).shared(),
    );
    let (input, signature) = token.secret().rsplit_once('.').unwrap();
    let signature = jose::base64url::decode(signature).unwrap();
    assert!(validator.validate(token.secret()).is_ok());
    Fixture {
        input: input.to_owned(),
        signature,
        token,
        validator,
        verifying,
    }
}
