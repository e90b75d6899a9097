//! The clients of the authorization server, from three sources, and the operator's
//! allow-list over all of them:
//!
//! | source | `client_id` | how it is known |
//! |---|---|---|
//! | configured | any id but an `https` URL or `dcr.…` | `[[authorization_server.client]]` |
//! | registered | `dcr.…` | RFC 7591 registration ([`crate::authorization_server::registration`]): the id is the sealed registration itself, so nothing is stored |
//! | metadata document | an `https` URL | fetched and checked ([`crate::authorization_server::cimd`]) |
//!
//! The allow-list (`[authorization_server.allowed_clients]`), when present, lets through
//! configured clients, listed ids, metadata documents whose host matches a host pattern, and
//! registered clients every one of whose redirect URIs' hosts does.

use std::collections::HashMap;
use std::sync::Arc;

use idjag_core::server::{ClientRegistry, RegisteredClient};
use idjag_core::{BoxFuture, ClientId};

use crate::authorization_server::cimd::{DocumentError, DocumentFetcher};
use crate::authorization_server::client::{Client, ClientSource};
use crate::authorization_server::registration::Registrar;
use crate::plan::{AllowList, AsClientPlan};

/// Why a client cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientRefusal {
    /// No such client.
    #[error("unknown client")]
    Unknown,
    /// Its metadata document cannot be used.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// Not on the operator's allow-list.
    #[error("client not allowed")]
    NotAllowed,
}

impl ClientRefusal {
    /// A stable reason code.
    pub fn reason_code(self) -> &'static str {
        match self {
            Self::Unknown => "unknown_client",
            Self::Document(e) => e.reason_code(),
            Self::NotAllowed => "client_not_allowed",
        }
    }
}

/// Every client source and the allow-list.
#[derive(Debug)]
pub struct Clients {
    configured: HashMap<String, Arc<Client>>,
    registrar: Registrar,
    documents: DocumentFetcher,
    allow: Option<AllowList>,
}

impl Clients {
    /// The configured clients, registrations sealed by `registrar`, documents fetched by
    /// `documents`, filtered by `allow`.
    pub fn new(
        configured: &[AsClientPlan],
        registrar: Registrar,
        documents: DocumentFetcher,
        allow: Option<AllowList>,
    ) -> Self {
        let configured = configured
            .iter()
            .map(|c| {
                let registered = match &c.secret {
                    Some(secret) => RegisteredClient::with_secret(c.id.clone(), secret.value()),
                    None => RegisteredClient::public(c.id.clone()),
                };
                let client = Client {
                    id: c.id.clone(),
                    source: ClientSource::Configured,
                    name: c.name.clone(),
                    redirect_uris: c.redirect_uris.clone(),
                    registered: Arc::new(registered),
                    hosts: Vec::new(),
                };
                (c.id.as_str().to_owned(), Arc::new(client))
            })
            .collect();
        Self {
            configured,
            registrar,
            documents,
            allow,
        }
    }

    /// The registrar (RFC 7591).
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// The client `id`, if it exists and is allowed.
    pub async fn resolve(&self, id: &str) -> Result<Arc<Client>, ClientRefusal> {
        let client = self.find(id).await?;
        if self.allows(&client) {
            Ok(client)
        } else {
            Err(ClientRefusal::NotAllowed)
        }
    }

    /// The client `id`, allowed or not ([`Self::allows`] says).
    pub async fn find(&self, id: &str) -> Result<Arc<Client>, ClientRefusal> {
        if let Some(client) = self.configured.get(id) {
            Ok(client.clone())
        } else if self.registrar.claims(id) {
            self.registrar.open(id).ok_or(ClientRefusal::Unknown)
        } else if self.documents.claims(id) {
            Ok(self.documents.client(id).await?)
        } else {
            Err(ClientRefusal::Unknown)
        }
    }

    /// Whether the allow-list lets `client` through (configured clients always).
    pub fn allows(&self, client: &Client) -> bool {
        let Some(allow) = &self.allow else {
            return true;
        };
        if client.source == ClientSource::Configured || allow.has_id(client.id.as_str()) {
            return true;
        }
        !client.hosts.is_empty() && client.hosts.iter().all(|h| allow.has_host(h))
    }
}

/// [`Clients`] as the core [`ClientRegistry`] (client authentication at the token and
/// revocation endpoints, and the embedded JWT-bearer redemption).
#[derive(Debug, Clone)]
pub struct Registry(pub Arc<Clients>);

impl ClientRegistry for Registry {
    fn client<'a>(
        &'a self,
        client_id: &'a ClientId,
    ) -> BoxFuture<'a, Option<Arc<RegisteredClient>>> {
        Box::pin(async move {
            self.0
                .resolve(client_id.as_str())
                .await
                .ok()
                .map(|c| c.registered.clone())
        })
    }
}
