//! Clients of the development authorization endpoint and their redirect URIs.

use std::sync::Arc;

use idjag_core::server::{RegisteredClient, SecretHash};
use idjag_core::{ClientId, ClientSecret, InvalidIdentifier};
use url::{Host, Url};

/// Why a development client could not be registered. Names the problem, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DevClientError {
    /// The client id is not a valid identifier.
    #[error("the client id is malformed")]
    ClientId,
    /// The secret is empty.
    #[error("the client secret is empty")]
    EmptySecret,
    /// The redirect URI is not an absolute `https` URL, or an `http` URL on a loopback IP
    /// literal (`127.0.0.1`, `[::1]`), without credentials or fragment.
    #[error(
        "redirect URIs must be https, or http on 127.0.0.1 or [::1], without credentials or fragment"
    )]
    RedirectUri,
}

impl From<InvalidIdentifier> for DevClientError {
    fn from(_: InvalidIdentifier) -> Self {
        Self::ClientId
    }
}

/// A client of the development authorization endpoint: its id, its secret (confidential
/// clients) and its exact redirect URIs. **For tests and demos only** (see the
/// [module docs](super)).
///
/// Redirect URIs match byte for byte. A public client registered with an `http` redirect URI
/// on `127.0.0.1` or `[::1]` may use any port there (RFC 8252 §7.3): the rest of the URI must
/// still match exactly. The secret is kept as its SHA-256 hash.
///
/// ```
/// use idjag_core::{ClientId, ClientSecret};
/// use idjag_idp::dev::DevClient;
///
/// let gateway = DevClient::confidential(ClientId::new("gateway")?, &ClientSecret::new("s3cret"))?
///     .with_redirect_uri("https://gateway.example/callback")?;
/// let cli = DevClient::public(ClientId::new("cli")?)
///     .with_redirect_uri("http://127.0.0.1/callback")?; // any port at request time
/// assert!(cli.is_public() && !gateway.is_public());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DevClient {
    client_id: ClientId,
    secret: Option<SecretHash>,
    redirect_uris: Vec<String>,
}

impl DevClient {
    /// A confidential client: it authenticates at the token endpoint with
    /// `client_secret_basic` or `client_secret_post`.
    pub fn confidential(
        client_id: ClientId,
        secret: &ClientSecret,
    ) -> Result<Self, DevClientError> {
        if secret.secret().is_empty() {
            return Err(DevClientError::EmptySecret);
        }
        Ok(Self {
            client_id,
            secret: Some(SecretHash::of(secret)),
            redirect_uris: Vec::new(),
        })
    }

    /// A public client (a native or browser app): no secret, PKCE only.
    pub fn public(client_id: ClientId) -> Self {
        Self {
            client_id,
            secret: None,
            redirect_uris: Vec::new(),
        }
    }

    /// Registers a redirect URI.
    pub fn with_redirect_uri(mut self, uri: &str) -> Result<Self, DevClientError> {
        let url = Url::parse(uri).map_err(|_| DevClientError::RedirectUri)?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(DevClientError::RedirectUri);
        }
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if loopback_authority(uri).is_some() => {}
            _ => return Err(DevClientError::RedirectUri),
        }
        if !self.redirect_uris.iter().any(|known| known == uri) {
            self.redirect_uris.push(uri.to_owned());
        }
        Ok(self)
    }

    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// Whether the client is public (no secret).
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
    }

    /// The registered redirect URIs, as given.
    pub fn redirect_uris(&self) -> impl Iterator<Item = &str> {
        self.redirect_uris.iter().map(String::as_str)
    }

    /// The same client for an [`IdJagIssuer`](crate::IdJagIssuer)'s client registry, so the
    /// client that signs users in can also exchange their ID tokens for ID-JAGs. Public
    /// clients come out public, and token exchange refuses them.
    pub fn registered_client(&self) -> RegisteredClient {
        match &self.secret {
            Some(hash) => {
                RegisteredClient::with_secret_check(self.client_id.clone(), Arc::new(hash.clone()))
            }
            None => RegisteredClient::public(self.client_id.clone()),
        }
    }

    /// The registered redirect URI that `requested` matches, if any: byte for byte, or, for
    /// a public client, a loopback URI that differs only in its port (RFC 8252 §7.3).
    pub(super) fn matches_redirect_uri(&self, requested: &str) -> bool {
        if self.redirect_uris.iter().any(|known| known == requested) {
            return true;
        }
        if !self.is_public() {
            return false;
        }
        let Some((host, port, rest)) = loopback_authority(requested) else {
            return false;
        };
        if port.is_some_and(|port| !matches!(port.parse::<u16>(), Ok(1..))) {
            return false;
        }
        self.redirect_uris.iter().any(|known| {
            loopback_authority(known)
                .is_some_and(|(known_host, _, known_rest)| known_host == host && known_rest == rest)
        })
    }
}

/// Splits `http://127.0.0.1[:port]rest` or `http://[::1][:port]rest` into the host literal, the
/// port digits and the rest (path and query), without any normalisation. `None` for anything
/// else, including `localhost` (RFC 8252 §8.3) and URIs with credentials or a fragment.
fn loopback_authority(uri: &str) -> Option<(&'static str, Option<&str>, &str)> {
    let after_scheme = uri.strip_prefix("http://")?;
    let (host, after_host) = ["127.0.0.1", "[::1]"]
        .into_iter()
        .find_map(|host| after_scheme.strip_prefix(host).map(|rest| (host, rest)))?;
    let (port, rest) = match after_host.strip_prefix(':') {
        Some(with_port) => {
            let end = with_port
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(with_port.len());
            let (digits, rest) = with_port.split_at(end);
            if digits.is_empty() || digits.len() > 5 {
                return None;
            }
            (Some(digits), rest)
        }
        None => (None, after_host),
    };
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) || rest.contains('#') {
        return None;
    }
    // The whole URI must still be a URL whose host is that loopback literal.
    let url = Url::parse(uri).ok()?;
    let host_ok = match url.host() {
        Some(Host::Ipv4(ip)) => host == "127.0.0.1" && ip.is_loopback(),
        Some(Host::Ipv6(ip)) => host == "[::1]" && ip.is_loopback(),
        _ => false,
    };
    (host_ok && url.username().is_empty() && url.password().is_none()).then_some((host, port, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ClientId {
        ClientId::new(s).unwrap()
    }

    #[test]
    fn redirect_uris_must_be_https_or_loopback_http_without_credentials_or_fragment() {
        for good in [
            "https://app.example/cb",
            "https://app.example/cb?tenant=a",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]:8080/cb",
        ] {
            assert!(
                DevClient::public(id("c")).with_redirect_uri(good).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "http://app.example/cb",
            "http://localhost:8080/cb",
            "https://app.example/cb#x",
            "https://u:p@app.example/cb",
            "http://u@127.0.0.1/cb",
            "com.example.app:/cb",
            "/cb",
            "http://127.0.0.1.evil.example/cb",
        ] {
            assert_eq!(
                DevClient::public(id("c"))
                    .with_redirect_uri(bad)
                    .unwrap_err(),
                DevClientError::RedirectUri,
                "{bad}"
            );
        }
        assert_eq!(
            DevClient::confidential(id("c"), &ClientSecret::new("")).unwrap_err(),
            DevClientError::EmptySecret
        );
    }

    #[test]
    fn redirect_uris_match_exactly_and_loopback_ports_vary_for_public_clients_only() {
        let public = DevClient::public(id("cli"))
            .with_redirect_uri("http://127.0.0.1/callback")
            .unwrap()
            .with_redirect_uri("http://[::1]:9000/cb?x=1")
            .unwrap();
        for good in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51234/callback",
            "http://[::1]:9000/cb?x=1",
            "http://[::1]:1/cb?x=1",
            "http://[::1]/cb?x=1",
        ] {
            assert!(public.matches_redirect_uri(good), "{good}");
        }
        for bad in [
            "http://127.0.0.1:51234/callback/",
            "http://127.0.0.1:51234/Callback",
            "http://127.0.0.1:51234/callback?x=1",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:51234/a/../callback",
            "http://127.0.0.1:51234/callback#f",
            "http://[::1]:9000/callback",
            "http://localhost:51234/callback",
            "https://127.0.0.1:51234/callback",
            "http://127.0.0.2:51234/callback",
        ] {
            assert!(!public.matches_redirect_uri(bad), "{bad}");
        }
        let confidential = DevClient::confidential(id("gw"), &ClientSecret::new("s"))
            .unwrap()
            .with_redirect_uri("http://127.0.0.1:8080/callback")
            .unwrap();
        assert!(confidential.matches_redirect_uri("http://127.0.0.1:8080/callback"));
        assert!(!confidential.matches_redirect_uri("http://127.0.0.1:8081/callback"));
        assert!(!confidential.matches_redirect_uri("http://127.0.0.1/callback"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let client =
            DevClient::confidential(id("gw"), &ClientSecret::new("hunter2-secret")).unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }
}
