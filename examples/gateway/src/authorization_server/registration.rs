//! RFC 7591 dynamic client registration at `POST /oauth/register`, stateless: the client id
//! is the registration itself (`dcr.` and the base64url of the AEAD-sealed metadata), so every
//! gateway instance sharing the sealing key knows every registered client and nothing is
//! stored. A confidential client's secret is random; only its SHA-256 is sealed into the id.
//!
//! Modes (`registration`): `off` (404), `open`, `token` (an initial access token as
//! `Authorization: Bearer`, compared in constant time, RFC 7591 §3). Accepted metadata:
//! `redirect_uris` (1 to 8, each passing the redirect-URI rules), `token_endpoint_auth_method`
//! (`none`, `client_secret_basic` (default), `client_secret_post`), `grant_types`
//! (`authorization_code`, `refresh_token`), `response_types` (`code`), `client_name`
//! (128 characters). Anything else is ignored. Errors are RFC 7591 §3.2.2 JSON
//! (`invalid_redirect_uri`, `invalid_client_metadata`).

use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode};
use idjag_core::crypto::{AeadAlgorithm, AeadKey};
use idjag_core::server::{ClientAuthMethod, RegisteredClient, SecretHash, bearer_token};
use idjag_core::{ClientId, ClientSecret, OAuthErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::authorization_server::client::{Client, ClientSource};
use crate::authorization_server::pages;
use crate::config::RegistrationMode;
use crate::plan::authorization_server::{DCR_PREFIX, MAX_REDIRECT_URIS};
use crate::plan::{RedirectUri, Secret};

/// Largest registration request.
pub const MAX_REGISTRATION_BYTES: usize = 8 * 1024;
/// The associated data of sealed registrations.
const AAD: &[u8] = b"idjag-gateway/dcr/v1";

/// What a registered client id holds (sealed).
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Redirect URIs.
    r: Vec<String>,
    /// Authentication method.
    m: String,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    /// SHA-256 of the secret, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// Issued at.
    t: i64,
}

/// Seals registrations into client ids and opens them again.
pub struct Registrar {
    mode: RegistrationMode,
    token: Option<Secret>,
    key: AeadKey,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Registrar {
    /// A registrar in `mode` sealing with `key` (32 bytes, derived for this use only).
    pub fn new(
        mode: RegistrationMode,
        token: Option<Secret>,
        key: &[u8; 32],
    ) -> Result<Self, idjag_core::crypto::AeadError> {
        Ok(Self {
            mode,
            token,
            key: AeadKey::new(AeadAlgorithm::Aes256Gcm, key)?,
        })
    }

    /// Whether registration is on.
    pub fn enabled(&self) -> bool {
        self.mode != RegistrationMode::Off
    }

    /// Whether `id` is a registered client's id (by its form).
    pub fn claims(&self, id: &str) -> bool {
        id.starts_with(DCR_PREFIX)
    }

    /// The client a registered id describes; `None` if it was not sealed by this key.
    pub fn open(&self, id: &str) -> Option<Arc<Client>> {
        let sealed = URL_SAFE_NO_PAD.decode(id.strip_prefix(DCR_PREFIX)?).ok()?;
        let plain = self.key.open(AAD, &sealed).ok()?;
        let record: Sealed = serde_json::from_slice(plain.secret()).ok()?;
        let redirect_uris = record
            .r
            .iter()
            .map(|u| RedirectUri::parse(u).ok())
            .collect::<Option<Vec<_>>>()?;
        let client_id = ClientId::new(id).ok()?;
        let registered = match (record.m.as_str(), &record.s) {
            ("none", None) => RegisteredClient::public(client_id.clone()),
            (method, Some(hash)) => {
                let bytes: [u8; 32] = unhex(hash)?.try_into().ok()?;
                let method = match method {
                    "client_secret_post" => ClientAuthMethod::ClientSecretPost,
                    "client_secret_basic" => ClientAuthMethod::ClientSecretBasic,
                    _ => return None,
                };
                RegisteredClient::with_secret_check(
                    client_id.clone(),
                    Arc::new(SecretHash::from_bytes(bytes)),
                )
                .only_methods(&[method])
            }
            _ => return None,
        };
        let hosts = redirect_uris.iter().filter_map(RedirectUri::host).collect();
        Some(Arc::new(Client {
            id: client_id,
            source: ClientSource::Registered,
            name: record.n,
            redirect_uris,
            registered: Arc::new(registered),
            hosts,
        }))
    }

    /// `POST /oauth/register`.
    pub fn register(&self, headers: &HeaderMap, body: &Bytes, now: i64) -> Response {
        match self.mode {
            RegistrationMode::Off => {
                return pages::json(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
            }
            RegistrationMode::Token => {
                let presented = bearer_token(headers).ok().map(ClientSecret::new);
                let ok = match (&presented, &self.token) {
                    (Some(presented), Some(token)) => presented.ct_eq(token.value()),
                    _ => false,
                };
                if !ok {
                    return pages::oauth_error(
                        StatusCode::UNAUTHORIZED,
                        OAuthErrorCode::InvalidToken,
                        "A valid initial access token is required to register",
                        Some(http::HeaderValue::from_static(
                            "Bearer error=\"invalid_token\"",
                        )),
                    );
                }
            }
            RegistrationMode::Open => {}
        }
        let json_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json_type || body.len() > MAX_REGISTRATION_BYTES {
            return metadata_error(
                "invalid_client_metadata",
                "expected a JSON object of at most 8 KiB",
            );
        }
        let Ok(request) = serde_json::from_slice::<Request>(body) else {
            return metadata_error(
                "invalid_client_metadata",
                "the metadata is not a JSON object of the expected shape",
            );
        };
        match self.seal(request, now) {
            Ok(answer) => pages::json(StatusCode::CREATED, &answer),
            Err((code, description)) => metadata_error(code, description),
        }
    }

    fn seal(
        &self,
        request: Request,
        now: i64,
    ) -> Result<serde_json::Value, (&'static str, &'static str)> {
        let uris = request.redirect_uris.unwrap_or_default();
        if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
            return Err((
                "invalid_redirect_uri",
                "between 1 and 8 redirect_uris are required",
            ));
        }
        for uri in &uris {
            RedirectUri::parse(uri).map_err(|_| {
                (
                    "invalid_redirect_uri",
                    "redirect URIs must be https, http on loopback, or a private-use scheme, without fragment",
                )
            })?;
        }
        let method = request
            .token_endpoint_auth_method
            .unwrap_or_else(|| "client_secret_basic".to_owned());
        if !matches!(
            method.as_str(),
            "none" | "client_secret_basic" | "client_secret_post"
        ) {
            return Err((
                "invalid_client_metadata",
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
            ));
        }
        let grants = request
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
        if grants.is_empty()
            || grants
                .iter()
                .any(|g| g != "authorization_code" && g != "refresh_token")
        {
            return Err((
                "invalid_client_metadata",
                "grant_types may be authorization_code and refresh_token",
            ));
        }
        if let Some(types) = &request.response_types
            && types.iter().any(|t| t != "code")
        {
            return Err(("invalid_client_metadata", "response_types may only be code"));
        }
        let name = request.client_name.map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(128)
                .collect::<String>()
        });
        let secret = (method != "none")
            .then(|| idjag_core::random::url_safe(32))
            .transpose()
            .map_err(|_| ("invalid_client_metadata", "registration is unavailable"))?;
        let record = Sealed {
            r: uris.clone(),
            m: method.clone(),
            n: name.clone(),
            s: secret.as_ref().map(|s| hex(&sha2_of(s))),
            t: now,
        };
        let plain = serde_json::to_vec(&record)
            .map_err(|_| ("invalid_client_metadata", "registration is unavailable"))?;
        let sealed = self
            .key
            .seal(AAD, &plain)
            .map_err(|_| ("invalid_client_metadata", "registration is unavailable"))?;
        let client_id = format!("{DCR_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed));
        if client_id.len() > idjag_core::MAX_IDENTIFIER_LEN {
            return Err(("invalid_client_metadata", "the metadata is too large"));
        }
        let mut answer = json!({
            "client_id": client_id,
            "client_id_issued_at": now,
            "redirect_uris": uris,
            "token_endpoint_auth_method": method,
            "grant_types": grants,
            "response_types": ["code"],
        });
        if let Some(name) = name {
            answer["client_name"] = json!(name);
        }
        if let Some(secret) = secret {
            answer["client_secret"] = json!(secret);
            answer["client_secret_expires_at"] = json!(0);
        }
        Ok(answer)
    }
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
}

fn metadata_error(code: &str, description: &str) -> Response {
    pages::json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": code, "error_description": description }),
    )
}

fn sha2_of(s: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registrar() -> Registrar {
        Registrar::new(RegistrationMode::Open, None, &[7; 32]).unwrap()
    }

    fn register(r: &Registrar, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
        let response = r.register(&headers, &Bytes::from(body.to_string()), 1_700_000_000);
        let status = response.status();
        let body =
            futures::executor::block_on(http_body_util::BodyExt::collect(response.into_body()))
                .unwrap()
                .to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn a_registration_is_its_own_client_id() {
        let r = registrar();
        let (status, answer) = register(
            &r,
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "client_name": "CLI"}),
        );
        assert_eq!(status, StatusCode::CREATED);
        assert!(answer.get("client_secret").is_none());
        let id = answer["client_id"].as_str().unwrap();
        let client = r.open(id).unwrap();
        assert_eq!(client.name.as_deref(), Some("CLI"));
        assert!(
            client
                .redirect_uri(Some("http://127.0.0.1:5555/cb"))
                .is_some()
        );
        // Another key does not open it; a flipped character does not either.
        let other = Registrar::new(RegistrationMode::Open, None, &[8; 32]).unwrap();
        assert!(other.open(id).is_none());
        let mut tampered = id.to_owned();
        tampered.pop();
        tampered.push(if id.ends_with('A') { 'B' } else { 'A' });
        assert!(r.open(&tampered).is_none());
    }

    #[test]
    fn bad_metadata_gets_rfc_7591_errors() {
        let r = registrar();
        for (body, code) in [
            (
                json!({"redirect_uris": ["http://evil.example/cb"]}),
                "invalid_redirect_uri",
            ),
            (json!({"redirect_uris": []}), "invalid_redirect_uri"),
            (json!({}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
            (json!(["not an object"]), "invalid_client_metadata"),
        ] {
            let (status, answer) = register(&r, body);
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(answer["error"], code);
        }
    }
}
