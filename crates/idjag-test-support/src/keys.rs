//! Key fixtures: fresh keys from the default crypto backend, and the key sets that trust them.

use std::sync::Arc;

use idjag_core::{Algorithm, KeySet, Kid, SigningKey};

/// A fresh ES256 key with `kid`.
pub fn es256(kid: &str) -> SigningKey {
    generate(Algorithm::Es256).with_kid(Kid::new(kid).unwrap())
}

/// A fresh ES256 key whose `kid` is its RFC 7638 thumbprint.
pub fn es256_thumbprint() -> SigningKey {
    generate(Algorithm::Es256).with_thumbprint_kid()
}

/// A fresh key for `alg`, without a `kid`.
pub fn generate(alg: Algorithm) -> SigningKey {
    SigningKey::generate(alg).unwrap()
}

/// The key set of the public halves of `keys`.
pub fn key_set<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Arc<KeySet> {
    Arc::new(KeySet::new(keys.into_iter().map(|k| k.verifying_key().unwrap())).unwrap())
}

/// The JWKS document (`{"keys": [...]}`) of the public halves of `keys`.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> serde_json::Value {
    let keys: Vec<_> = keys.into_iter().map(SigningKey::public_jwk).collect();
    serde_json::json!({ "keys": keys })
}
