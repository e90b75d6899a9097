//! A client registration, planned: the client id, and the secret read or the key loaded.

use std::fmt;
use std::path::PathBuf;

use idjag_client::ClientCredentials;
use idjag_client::auth::PrivateKeyJwt;
use idjag_core::{Algorithm, ClientId, Kid, SharedClock, SigningKey};
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::config::{AuthMethod, ClientRegistration, ConfigError, invalid};
use crate::plan::Planner;
use crate::plan::environment::{Secret, SecretSource, inline, read_file};

/// The gateway's registration at one token endpoint, ready to authenticate.
#[derive(Clone)]
pub struct ClientPlan {
    client_id: ClientId,
    auth: ClientAuthPlan,
}

#[derive(Clone)]
enum ClientAuthPlan {
    Secret {
        credentials: ClientCredentials,
        method: AuthMethod,
        secret: Secret,
    },
    PrivateKeyJwt {
        key: SigningKey,
        key_file: PathBuf,
    },
}

impl ClientPlan {
    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The credentials; client assertions (`private_key_jwt`) are timed by `clock`.
    pub fn credentials(&self, clock: SharedClock) -> ClientCredentials {
        match &self.auth {
            ClientAuthPlan::Secret { credentials, .. } => credentials.clone(),
            ClientAuthPlan::PrivateKeyJwt { key, .. } => ClientCredentials::private_key_jwt(
                self.client_id.clone(),
                PrivateKeyJwt::new(key.clone(), clock),
            ),
        }
    }
}

impl fmt::Debug for ClientPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientPlan");
        d.field("client_id", &self.client_id);
        match &self.auth {
            ClientAuthPlan::Secret { method, secret, .. } => {
                d.field("auth", method).field("secret", secret)
            }
            ClientAuthPlan::PrivateKeyJwt { key_file, .. } => d
                .field("auth", &AuthMethod::PrivateKeyJwt)
                .field("key_file", key_file),
        };
        d.finish()
    }
}

impl Serialize for ClientPlan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("client_id", &self.client_id)?;
        match &self.auth {
            ClientAuthPlan::Secret { method, secret, .. } => {
                map.serialize_entry("auth", method)?;
                map.serialize_entry("secret", secret)?;
            }
            ClientAuthPlan::PrivateKeyJwt { key, key_file } => {
                map.serialize_entry("auth", &AuthMethod::PrivateKeyJwt)?;
                map.serialize_entry("key_file", key_file)?;
                map.serialize_entry("key_alg", key.alg().as_str())?;
                map.serialize_entry("key_id", &key.kid().map(Kid::as_str))?;
            }
        }
        map.end()
    }
}

impl Planner<'_> {
    /// A client registration at `key`: exactly one secret source for the secret methods,
    /// `key_file` and no secret for `private_key_jwt`; the secret is read or the key loaded.
    pub(crate) fn client(
        &mut self,
        key: &str,
        config: &ClientRegistration,
    ) -> Result<ClientPlan, ConfigError> {
        let client_id = ClientId::new(config.id.as_str())
            .map_err(|e| invalid(format!("{key}.id"), e.to_string()))?;
        let sources = [
            config.secret.is_some(),
            config.secret_env.is_some(),
            config.secret_file.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        let auth = match config.auth {
            AuthMethod::PrivateKeyJwt => {
                let Some(key_file) = config.key_file.as_ref().filter(|_| sources == 0) else {
                    return Err(invalid(key, "private_key_jwt takes key_file and no secret"));
                };
                let alg = key_algorithm(key, config.key_alg.as_deref())?;
                let pem = read_file(&format!("{key}.key_file"), key_file, self.environment)?;
                let signing = SigningKey::from_pkcs8_pem(alg, &pem)
                    .map_err(|e| invalid(format!("{key}.key_file"), e.to_string()))?;
                let signing = match &config.key_id {
                    Some(kid) => signing.with_kid(
                        Kid::new(kid.as_str())
                            .map_err(|e| invalid(format!("{key}.key_id"), e.to_string()))?,
                    ),
                    None => signing.with_thumbprint_kid(),
                };
                ClientAuthPlan::PrivateKeyJwt {
                    key: signing,
                    key_file: key_file.clone(),
                }
            }
            method => {
                if sources != 1 || config.key_file.is_some() {
                    return Err(invalid(
                        key,
                        "set exactly one of secret_env, secret_file or secret",
                    ));
                }
                let secret = match &config.secret {
                    Some(secret) => inline(secret),
                    None => SecretSource::secret(
                        config.secret_env.as_ref(),
                        config.secret_file.as_ref(),
                    )
                    .read(key, self.environment)?
                    .ok_or_else(|| invalid(key, "no secret configured"))?,
                };
                let value = secret.value().clone();
                let credentials = if method == AuthMethod::ClientSecretPost {
                    ClientCredentials::secret_post(client_id.clone(), value)
                } else {
                    ClientCredentials::secret_basic(client_id.clone(), value)
                }
                .map_err(|e| invalid(key, e.to_string()))?;
                ClientAuthPlan::Secret {
                    credentials,
                    method,
                    secret,
                }
            }
        };
        if config.has_inline_secret() {
            self.warn(
                &format!("{key}.secret"),
                "inline secret: prefer secret_env or secret_file",
            );
        }
        Ok(ClientPlan { client_id, auth })
    }
}

fn key_algorithm(key: &str, name: Option<&str>) -> Result<Algorithm, ConfigError> {
    let name = name.unwrap_or("ES256");
    Algorithm::from_name(name).ok_or_else(|| {
        invalid(
            format!("{key}.key_alg"),
            format!("unknown algorithm {name}"),
        )
    })
}
