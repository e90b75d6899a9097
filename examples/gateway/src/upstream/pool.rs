//! The upstream HTTP clients: one per distinct transport setting, shared by every route
//! that has it. A client holds its TLS roots and connection pool, so building one per route
//! would cost start-up time and memory for nothing; routes to the same host with the same
//! setting also share warm connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// How long an idle pooled connection to an upstream is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a route's HTTP client is configured with. Routes with equal settings share
/// one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Transport {
    /// Time to connect.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub connect_timeout: Duration,
    /// Longest silence while waiting for or reading a response (no total timeout: SSE
    /// streams may run long).
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub read_timeout: Duration,
}

impl Transport {
    /// A transport with these timeouts.
    pub fn new(connect_timeout: Duration, read_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            read_timeout,
        }
    }

    /// A client with this setting: no redirects (a redirect would take the upstream
    /// credential elsewhere), the timeouts, pooled connections.
    fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()
    }
}

/// One upstream HTTP client, shared by the routes of one [`Transport`].
pub type SharedClient = Arc<reqwest::Client>;

/// The clients built so far, one per [`Transport`].
#[derive(Debug, Default)]
pub struct HttpClients {
    clients: HashMap<Transport, SharedClient>,
}

impl HttpClients {
    /// No client yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client for `transport`, built on its first request.
    pub fn get(&mut self, transport: Transport) -> Result<SharedClient, reqwest::Error> {
        if let Some(client) = self.clients.get(&transport) {
            return Ok(client.clone());
        }
        let client = Arc::new(transport.client()?);
        self.clients.insert(transport, client.clone());
        Ok(client)
    }

    /// How many distinct clients were built.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether none was built.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_settings_share_one_client_and_different_ones_get_their_own() {
        let secs = Duration::from_secs;
        let mut pool = HttpClients::new();
        let a = pool.get(Transport::new(secs(5), secs(60))).unwrap();
        let same = pool.get(Transport::new(secs(5), secs(60))).unwrap();
        let slower = pool.get(Transport::new(secs(5), secs(120))).unwrap();
        let other_connect = pool.get(Transport::new(secs(1), secs(60))).unwrap();
        assert!(Arc::ptr_eq(&a, &same));
        assert!(!Arc::ptr_eq(&a, &slower));
        assert!(!Arc::ptr_eq(&a, &other_connect));
        assert!(!Arc::ptr_eq(&slower, &other_connect));
        assert_eq!(pool.len(), 3);
    }
}
