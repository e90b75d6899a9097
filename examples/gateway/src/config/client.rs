//! A client registration block (`[idp.client]`, an upstream credential's `client`): the
//! gateway's client id at a token endpoint and how it authenticates there.

use std::fmt;
use std::path::PathBuf;

use idjag_core::ClientSecret;
use serde::Deserialize;

/// How a client authenticates at a token endpoint, and with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic with the client secret (the default).
    #[default]
    ClientSecretBasic,
    /// The client secret in the form body.
    ClientSecretPost,
    /// A signed client assertion (RFC 7523), with `key_file`.
    PrivateKeyJwt,
}

/// A client registration: `id`, `auth` and exactly one secret source (`secret_env`,
/// `secret_file` or the inline `secret`), or `key_file` for `private_key_jwt`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientRegistration {
    /// The client id at that server.
    pub id: String,
    /// The authentication method.
    #[serde(default)]
    pub auth: AuthMethod,
    /// The secret inline (discouraged outside demos: `check-config` warns).
    #[serde(default)]
    pub secret: Option<ClientSecret>,
    /// The name of an environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// `private_key_jwt`: a PKCS#8 PEM private key file.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// `private_key_jwt`: the key's algorithm. Default ES256.
    #[serde(default)]
    pub key_alg: Option<String>,
    /// `private_key_jwt`: the `kid` to send. Default: the key's RFC 7638 thumbprint.
    #[serde(default)]
    pub key_id: Option<String>,
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("id", &self.id)
            .field("auth", &self.auth)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl ClientRegistration {
    /// Whether the secret is written in the file itself.
    pub fn has_inline_secret(&self) -> bool {
        self.secret.is_some()
    }
}
