//! Verification keys, signing keys and issuer-scoped key sets.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::crypto::{
    CryptoBackend, PrivateKeyMaterial, PublicKeyMaterial, SignatureSigner, SignatureVerifier,
    default_backend,
};
use crate::error::Segment;
use crate::error::{KeyError, KeyLookupError};
use crate::id::Kid;
use crate::jose::json::parse_value;
use crate::jose::{Header, base64url};
use crate::jwk;
use crate::secret::{CompactJwt, SecretBytes};

/// A public key pinned to exactly one algorithm, ready to verify.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Algorithm,
    kid: Option<Kid>,
    material: PublicKeyMaterial,
    verifier: Arc<dyn SignatureVerifier>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("material", &self.material)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Imports a public JWK under the key policy (EC P-256 or P-384, RSA of 2048 to 8192
    /// bits, Ed25519; no private members) with the default backend.
    ///
    /// ```
    /// use idjag_core::{Algorithm, SigningKey, VerifyingKey};
    /// let signing = SigningKey::generate(Algorithm::Es256).unwrap();
    /// let key = VerifyingKey::from_jwk(&signing.public_jwk()).unwrap();
    /// assert_eq!(key.alg(), Algorithm::Es256);
    /// ```
    pub fn from_jwk(jwk: &Value) -> Result<Self, KeyError> {
        Self::from_jwk_with(jwk, default_backend())
    }

    /// Imports a public JWK with the given backend.
    pub fn from_jwk_with(jwk: &Value, backend: &dyn CryptoBackend) -> Result<Self, KeyError> {
        let map = jwk.as_object().ok_or(KeyError::InvalidKeySet)?;
        let parsed = jwk::parse_public(map)?;
        Self::from_material_with(parsed.alg, parsed.kid, parsed.material, backend)
    }

    /// A key from raw public material, checked against the same policy as a JWK.
    pub fn from_material_with(
        alg: Algorithm,
        kid: Option<Kid>,
        material: PublicKeyMaterial,
        backend: &dyn CryptoBackend,
    ) -> Result<Self, KeyError> {
        let jwk = jwk::public_jwk(alg, kid.as_ref(), &material);
        // Round-trip through the JWK policy so raw material meets the same rules.
        let parsed = jwk::parse_public(&jwk)?;
        let verifier = backend.verifier(alg, &parsed.material)?;
        Ok(Self {
            alg,
            kid,
            material: parsed.material,
            verifier,
        })
    }

    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }

    /// The public key material.
    pub fn material(&self) -> &PublicKeyMaterial {
        &self.material
    }

    /// The public JWK (`use: "sig"`, with `alg` and `kid`).
    pub fn to_jwk(&self) -> Value {
        Value::Object(jwk::public_jwk(self.alg, self.kid.as_ref(), &self.material))
    }

    /// The RFC 7638 SHA-256 thumbprint.
    pub fn thumbprint(&self) -> String {
        jwk::thumbprint(&self.material)
    }

    /// Verifies a raw JWS signature over `message`. Fixed-length algorithms refuse any other
    /// length before the backend runs, so a DER-encoded ECDSA signature fails exactly as a
    /// wrong one does (threat V06).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self.alg.fixed_signature_len() {
            Some(len) if signature.len() != len => false,
            _ => self.verifier.verify(message, signature),
        }
    }
}

/// A private key pinned to one algorithm, for signing JWTs.
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    kid: Option<Kid>,
    public: PublicKeyMaterial,
    signer: Arc<dyn SignatureSigner>,
    backend: &'static dyn CryptoBackend,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

/// Why a JWT could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The claims did not serialise to a JSON object.
    #[error("claims are not a JSON object")]
    Claims,
    /// The key or backend failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl SigningKey {
    /// Generates a fresh key with the default backend (RSA keys have 2048 bits).
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        Self::generate_with(alg, default_backend())
    }

    /// Generates a fresh key with the given backend.
    pub fn generate_with(
        alg: Algorithm,
        backend: &'static dyn CryptoBackend,
    ) -> Result<Self, KeyError> {
        let material = backend.generate(alg)?;
        Self::from_material_with(alg, None, &material, backend)
    }

    /// Imports a PKCS#8 DER private key for `alg`.
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        Self::from_pkcs8_der_with(alg, der, default_backend())
    }

    /// Imports a PKCS#8 DER private key for `alg` with the given backend.
    pub fn from_pkcs8_der_with(
        alg: Algorithm,
        der: &[u8],
        backend: &'static dyn CryptoBackend,
    ) -> Result<Self, KeyError> {
        let material = PrivateKeyMaterial::Pkcs8(SecretBytes::new(der));
        Self::from_material_with(alg, None, &material, backend)
    }

    /// Imports a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) private key for `alg`.
    pub fn from_pkcs8_pem(alg: Algorithm, pem: &str) -> Result<Self, KeyError> {
        Self::from_pkcs8_pem_with(alg, pem, default_backend())
    }

    /// Imports a PKCS#8 PEM private key for `alg` with the given backend.
    pub fn from_pkcs8_pem_with(
        alg: Algorithm,
        pem: &str,
        backend: &'static dyn CryptoBackend,
    ) -> Result<Self, KeyError> {
        let der =
            PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| KeyError::Encoding)?;
        Self::from_pkcs8_der_with(alg, der.secret_pkcs8_der(), backend)
    }

    /// Imports a private JWK (its `alg`, when given, must fit the key).
    pub fn from_jwk(jwk: &Value) -> Result<Self, KeyError> {
        Self::from_jwk_with(jwk, default_backend())
    }

    /// Imports a private JWK with the given backend.
    pub fn from_jwk_with(
        jwk: &Value,
        backend: &'static dyn CryptoBackend,
    ) -> Result<Self, KeyError> {
        let map = jwk.as_object().ok_or(KeyError::InvalidKeySet)?;
        let parsed = jwk::parse_private(map)?;
        Self::from_material_with(parsed.alg, parsed.kid, &parsed.material, backend)
    }

    /// A key from private material.
    pub fn from_material_with(
        alg: Algorithm,
        kid: Option<Kid>,
        material: &PrivateKeyMaterial,
        backend: &'static dyn CryptoBackend,
    ) -> Result<Self, KeyError> {
        let signer = backend.signer(alg, material)?;
        Self::from_signer(alg, kid, signer, backend)
    }

    /// Wraps an external signer (an HSM or a KMS). Its public key must meet the key policy.
    pub fn from_signer(
        alg: Algorithm,
        kid: Option<Kid>,
        signer: Arc<dyn SignatureSigner>,
        backend: &'static dyn CryptoBackend,
    ) -> Result<Self, KeyError> {
        let public = signer.public_key();
        if !public.fits(alg) {
            return Err(KeyError::AlgorithmMismatch);
        }
        let checked = jwk::parse_public(&jwk::public_jwk(alg, None, &public))?;
        Ok(Self {
            alg,
            kid,
            public: checked.material,
            signer,
            backend,
        })
    }

    /// Sets the key id.
    pub fn with_kid(mut self, kid: Kid) -> Self {
        self.kid = Some(kid);
        self
    }

    /// Sets the key id to the RFC 7638 thumbprint of the public key.
    pub fn with_thumbprint_kid(self) -> Self {
        let kid = Kid::new(self.thumbprint()).expect("a thumbprint is a valid kid");
        self.with_kid(kid)
    }

    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }

    /// The backend that holds the key.
    pub fn backend(&self) -> &'static dyn CryptoBackend {
        self.backend
    }

    /// The public key material.
    pub fn public_material(&self) -> &PublicKeyMaterial {
        &self.public
    }

    /// The public JWK to publish.
    pub fn public_jwk(&self) -> Value {
        Value::Object(jwk::public_jwk(self.alg, self.kid.as_ref(), &self.public))
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key.
    pub fn thumbprint(&self) -> String {
        jwk::thumbprint(&self.public)
    }

    /// The matching verification key (same backend, same `kid`).
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        VerifyingKey::from_material_with(
            self.alg,
            self.kid.clone(),
            self.public.clone(),
            self.backend,
        )
    }

    /// Signs raw bytes.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signer.sign(message)
    }

    /// Signs `claims` as a compact JWT with header `{"alg", "typ", "kid"}`.
    ///
    /// ```
    /// use idjag_core::{Algorithm, SigningKey, wire};
    /// let key = SigningKey::generate(Algorithm::Es256).unwrap().with_thumbprint_kid();
    /// let jwt = key.sign_jwt(Some(wire::TYP_ID_JAG), &serde_json::json!({"sub": "alice"})).unwrap();
    /// assert_eq!(jwt.secret().split('.').count(), 3);
    /// ```
    pub fn sign_jwt(
        &self,
        typ: Option<&str>,
        claims: &impl Serialize,
    ) -> Result<CompactJwt, SignError> {
        let payload = serde_json::to_vec(claims).map_err(|_| SignError::Claims)?;
        if !matches!(
            parse_value(&payload, Segment::Payload),
            Ok(Value::Object(_))
        ) {
            return Err(SignError::Claims);
        }
        let header = Header::new(self.alg, typ, self.kid.clone()).to_json();
        let mut token = String::with_capacity(payload.len() * 4 / 3 + 128);
        token.push_str(&base64url::encode(header));
        token.push('.');
        token.push_str(&base64url::encode(payload));
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&base64url::encode(signature));
        Ok(CompactJwt::new(token))
    }
}

/// Default cap on a JWK Set document: 256 KiB (enough for sets carrying certificate chains).
pub const DEFAULT_MAX_JWKS_BYTES: usize = 256 * 1024;
/// Default cap on the number of keys in a JWK Set.
pub const DEFAULT_MAX_JWKS_KEYS: usize = 100;

/// The usable keys of one issuer. Lookup never leaves this set: keys are scoped per issuer
/// (threat V16).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
}

/// A key that a JWK Set import refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// The key's `kid`, when it had a valid one.
    pub kid: Option<Kid>,
    /// Why it was refused.
    pub reason: KeyError,
}

/// The result of importing a JWK Set: the usable keys and a report of the refused ones.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwksImport {
    /// The usable keys.
    pub keys: KeySet,
    /// Keys left out, with the reason.
    pub rejected: Vec<RejectedKey>,
}

impl KeySet {
    /// A set of keys. Keys sharing a `kid` are refused with [`KeyError::DuplicateKid`].
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Result<Self, KeyError> {
        let keys: Vec<_> = keys.into_iter().map(Arc::new).collect();
        for (i, key) in keys.iter().enumerate() {
            if key.kid.is_some() && keys[..i].iter().any(|other| other.kid == key.kid) {
                return Err(KeyError::DuplicateKid);
            }
        }
        Ok(Self { keys })
    }

    /// Imports a JWK Set document (`{"keys": [...]}`) with the default backend and limits.
    ///
    /// The document itself must be well-formed JSON without duplicate members, at most
    /// [`DEFAULT_MAX_JWKS_BYTES`] long, with at most [`DEFAULT_MAX_JWKS_KEYS`] keys; otherwise
    /// the whole import fails. Individual keys that break the key policy are left out and
    /// reported; the others stay usable (threat K04).
    pub fn from_jwks_json(document: &[u8]) -> Result<JwksImport, KeyError> {
        Self::from_jwks_json_with(document, default_backend())
    }

    /// Imports a JWK Set document with the given backend.
    pub fn from_jwks_json_with(
        document: &[u8],
        backend: &dyn CryptoBackend,
    ) -> Result<JwksImport, KeyError> {
        if document.len() > DEFAULT_MAX_JWKS_BYTES {
            return Err(KeyError::InvalidKeySet);
        }
        let set = match parse_value(document, Segment::Payload) {
            Ok(Value::Object(set)) => set,
            _ => return Err(KeyError::InvalidKeySet),
        };
        let Some(Value::Array(entries)) = set.get("keys") else {
            return Err(KeyError::InvalidKeySet);
        };
        if entries.len() > DEFAULT_MAX_JWKS_KEYS {
            return Err(KeyError::InvalidKeySet);
        }
        Ok(Self::import_entries(entries, backend))
    }

    fn import_entries(entries: &[Value], backend: &dyn CryptoBackend) -> JwksImport {
        let mut accepted: Vec<(usize, VerifyingKey)> = Vec::new();
        let mut rejected = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match VerifyingKey::from_jwk_with(entry, backend) {
                Ok(key) => accepted.push((index, key)),
                Err(reason) => rejected.push(RejectedKey {
                    index,
                    kid: entry
                        .get("kid")
                        .and_then(Value::as_str)
                        .and_then(|k| Kid::new(k).ok()),
                    reason,
                }),
            }
        }
        // Among usable keys, a shared kid makes every holder of it unusable.
        let shared: Vec<Kid> = accepted
            .iter()
            .enumerate()
            .filter_map(|(i, (_, key))| {
                let kid = key.kid.as_ref()?;
                accepted[..i]
                    .iter()
                    .any(|(_, k)| k.kid.as_ref() == Some(kid))
                    .then(|| kid.clone())
            })
            .collect();
        let mut keys = Vec::new();
        for (index, key) in accepted {
            if key.kid.as_ref().is_some_and(|kid| shared.contains(kid)) {
                rejected.push(RejectedKey {
                    index,
                    kid: key.kid,
                    reason: KeyError::DuplicateKid,
                });
            } else {
                keys.push(Arc::new(key));
            }
        }
        rejected.sort_by_key(|r| r.index);
        JwksImport {
            keys: KeySet { keys },
            rejected,
        }
    }

    /// Finds the key for a token header (threats V04, V15):
    /// - with a `kid`: the key with that `kid`, which must be pinned to `alg`;
    /// - without: the one key pinned to `alg`, and an error when there are several.
    pub fn find(
        &self,
        kid: Option<&Kid>,
        alg: Algorithm,
    ) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        match kid {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.kid.as_ref() == Some(kid))
                    .ok_or(KeyLookupError::UnknownKid)?;
                if key.alg == alg {
                    Ok(key.clone())
                } else {
                    Err(KeyLookupError::AlgorithmMismatch)
                }
            }
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.alg == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => Ok(key.clone()),
                    (None, _) => Err(KeyLookupError::NoMatchingKey),
                    (Some(_), Some(_)) => Err(KeyLookupError::AmbiguousKey),
                }
            }
        }
    }

    /// The keys.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter().map(|k| k.as_ref())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public JWK Set document: `{"keys": [...]}`.
    pub fn to_jwks(&self) -> Value {
        let keys = self.keys.iter().map(|k| k.to_jwk()).collect();
        let mut set = Map::new();
        set.insert("keys".into(), Value::Array(keys));
        Value::Object(set)
    }
}

/// A key lookup that found nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyMiss {
    /// Why.
    pub error: KeyLookupError,
    /// Whether a [`KeySource::refresh`] might produce the key (for example an unknown `kid`
    /// at a remote source whose refetch cooldown has passed).
    pub refresh_may_help: bool,
}

impl KeyMiss {
    /// A miss that no refresh can fix.
    pub fn final_(error: KeyLookupError) -> Self {
        Self {
            error,
            refresh_may_help: false,
        }
    }
}

/// A boxed future, as returned by [`KeySource::refresh`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where one issuer's verification keys come from: a static [`KeySet`], or a remote JWKS
/// (`RemoteJwks`, feature `http`). `find` never does I/O; `refresh` may.
pub trait KeySource: fmt::Debug + Send + Sync {
    /// The key for a token header, from what is at hand.
    fn find(&self, kid: Option<&Kid>, alg: Algorithm) -> Result<Arc<VerifyingKey>, KeyMiss>;

    /// Refreshes the keys (single-flight and rate-limited by the source). Static sets do nothing.
    fn refresh(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

impl KeySource for KeySet {
    fn find(&self, kid: Option<&Kid>, alg: Algorithm) -> Result<Arc<VerifyingKey>, KeyMiss> {
        KeySet::find(self, kid, alg).map_err(KeyMiss::final_)
    }
}
