//! One client of the authorization server, whatever its source.

use std::fmt;
use std::sync::Arc;

use idjag_core::ClientId;
use idjag_core::server::RegisteredClient;

use crate::plan::RedirectUri;

/// Where a client comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientSource {
    /// `[[authorization_server.client]]`.
    Configured,
    /// RFC 7591 registration.
    Registered,
    /// A Client ID Metadata Document.
    MetadataDocument,
}

/// A known client.
#[derive(Clone)]
#[non_exhaustive]
pub struct Client {
    /// Its id.
    pub id: ClientId,
    /// Where it comes from.
    pub source: ClientSource,
    /// Its display name.
    pub name: Option<String>,
    /// Its redirect URIs.
    pub redirect_uris: Vec<RedirectUri>,
    /// How it authenticates at the token endpoint.
    pub registered: Arc<RegisteredClient>,
    /// The hosts the allow-list's patterns are matched against.
    pub hosts: Vec<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("source", &self.source)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// What to call it in front of a person: its name, or else its id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.id.as_str())
    }

    /// The registered redirect URI `presented` matches; with none presented, the only one.
    pub fn redirect_uri(&self, presented: Option<&str>) -> Option<String> {
        match presented {
            Some(uri) => self
                .redirect_uris
                .iter()
                .any(|r| r.matches(uri))
                .then(|| uri.to_owned()),
            None => match self.redirect_uris.as_slice() {
                [only] => Some(only.as_str().to_owned()),
                _ => None,
            },
        }
    }
}
