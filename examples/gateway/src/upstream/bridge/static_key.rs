//! `static`: one header with a key read at start-up, the same on every call.

use std::fmt;

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use idjag_core::{BoxFuture, ClientSecret};

use crate::inbound::Authenticated;
use crate::upstream::credential::{Credential, CredentialError, UpstreamCredential};

/// A `static` credential: one header, fixed at start-up.
pub struct StaticCredential {
    header: HeaderName,
    scheme: Option<String>,
    credential: Credential,
}

impl fmt::Debug for StaticCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticCredential([redacted])")
    }
}

impl StaticCredential {
    /// `header: {scheme} {secret}`; the scheme defaults to `Bearer` for `authorization`. The
    /// header must pass [`check_bridge_header`](super::check_bridge_header).
    pub fn new(
        name: HeaderName,
        scheme: Option<&str>,
        secret: &ClientSecret,
    ) -> Result<Self, String> {
        let scheme = scheme.or((name == AUTHORIZATION).then_some("Bearer"));
        let text = match scheme {
            Some(scheme) => format!("{scheme} {}", secret.secret()),
            None => secret.secret().to_owned(),
        };
        let value = HeaderValue::try_from(text)
            .map_err(|_| "the secret is not a valid header value".to_owned())?;
        Ok(Self {
            header: name.clone(),
            scheme: scheme.map(str::to_owned),
            credential: Credential::from_headers(vec![(name, value)]),
        })
    }

    /// The header it sets.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The scheme before the secret, if any.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }
}

impl UpstreamCredential for StaticCredential {
    fn mode(&self) -> &'static str {
        "static"
    }

    fn credential<'a>(
        &'a self,
        _caller: &'a Authenticated,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async move { Ok(self.credential.clone()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_key_never_prints() {
        let key = StaticCredential::new(
            HeaderName::from_static("x-api-key"),
            None,
            &ClientSecret::new("k-123"),
        )
        .unwrap();
        assert!(!format!("{key:?}").contains("k-123"));
        assert!(key.credential.headers()[0].1.is_sensitive());
    }
}
