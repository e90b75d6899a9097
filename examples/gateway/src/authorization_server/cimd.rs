//! Client ID Metadata Documents (MCP 2025-11-25, `draft-ietf-oauth-client-id-metadata-document`):
//! an `https` URL as the `client_id`, whose JSON document the gateway fetches to learn the
//! client's redirect URIs (requirement MCP-09: the fetch is an SSRF surface, threat G30).
//!
//! - The URL: `https`, a host, a path other than `/`, no fragment, no user info, no dot
//!   segments, at most 2048 bytes.
//! - The address policy: the host is resolved once and **every** address must be public
//!   (not loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT
//!   100.64/10, unique-local, multicast, documentation, benchmarking or reserved, nor an
//!   IPv4-mapped or NAT64 form of one); the connection then goes to exactly those addresses
//!   (the resolver is the HTTP client's, so there is no gap between check and use). IP
//!   literals are checked the same way before the request.
//! - Limits: the configured timeout for the whole fetch, no redirects, the configured
//!   largest body (declared `Content-Length` and bytes read), a JSON content type.
//! - The document: its `client_id` must equal the URL exactly; `redirect_uris` must be
//!   present and each pass the redirect-URI rules; `token_endpoint_auth_method` `none` (the
//!   default) or `private_key_jwt` with inline `jwks`.
//! - Fetched documents are cached for the configured time (one fetch at a time per URL).
//!
//! `allow_loopback` (tests only, off by default) also allows `http` URLs whose host is
//! loopback, and loopback addresses.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use idjag_core::server::RegisteredClient;
use idjag_core::{ClientId, KeySet};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Deserialize;
use url::Url;

use crate::authorization_server::client::{Client, ClientSource};
use crate::plan::{MetadataDocumentsPlan, RedirectUri, authorization_server::is_loopback_host};

/// Why a metadata document cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The URL breaks the rules (not https, no path, a fragment, ...).
    #[error("the client id is not a valid metadata document URL")]
    Url,
    /// The host resolves to an address the policy refuses (private, loopback, ...).
    #[error("the metadata document's host has a non-public address")]
    Address,
    /// The host does not resolve, or the connection failed.
    #[error("the metadata document could not be fetched")]
    Unreachable,
    /// The fetch took too long.
    #[error("fetching the metadata document took too long")]
    Timeout,
    /// The server answered with a redirect.
    #[error("the metadata document URL redirects")]
    Redirect,
    /// The server answered with another status than 200.
    #[error("the metadata document URL answered with an error")]
    Status,
    /// The document is larger than the limit.
    #[error("the metadata document is too large")]
    TooLarge,
    /// Not JSON.
    #[error("the metadata document is not JSON")]
    NotJson,
    /// Its `client_id` is not its URL.
    #[error("the metadata document's client_id is not its URL")]
    ClientIdMismatch,
    /// `redirect_uris` missing, empty, too many, or one breaks the rules.
    #[error("the metadata document's redirect_uris are not acceptable")]
    RedirectUris,
    /// An authentication method the gateway does not take for documents.
    #[error("the metadata document's token_endpoint_auth_method is not supported")]
    AuthMethod,
}

impl DocumentError {
    /// A stable reason code (pages, audit).
    pub fn reason_code(self) -> &'static str {
        match self {
            Self::Url => "metadata_url_invalid",
            Self::Address => "metadata_address_refused",
            Self::Unreachable => "metadata_unreachable",
            Self::Timeout => "metadata_timeout",
            Self::Redirect => "metadata_redirect",
            Self::Status => "metadata_status",
            Self::TooLarge => "metadata_too_large",
            Self::NotJson => "metadata_not_json",
            Self::ClientIdMismatch => "metadata_client_id_mismatch",
            Self::RedirectUris => "metadata_redirect_uris_invalid",
            Self::AuthMethod => "metadata_auth_method_unsupported",
        }
    }
}

/// Whether `ip` may be fetched from: public unicast only (`loopback` also allows
/// 127.0.0.0/8 and `::1`).
pub fn address_allowed(ip: IpAddr, loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, loopback),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_allowed(v4, loopback);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96): the embedded IPv4 address decides.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return v4_allowed(Ipv4Addr::new(a, b, c, d), loopback);
            }
            if v6.is_loopback() {
                return loopback;
            }
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments, Teredo
                || s[0] == 0x0100 && s[1..4] == [0, 0, 0] // discard-only 100::/64
                || s[0] == 0x2002 // 6to4
                || (s[0..5] == [0, 0, 0, 0, 0] && s[5] == 0)) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn v4_allowed(ip: Ipv4Addr, loopback: bool) -> bool {
    if ip.is_loopback() {
        return loopback;
    }
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16: cloud metadata
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 192 && b == 88 && c == 99) // 6to4 relay
        || ip.is_multicast()
        || a >= 240 // reserved and broadcast
        || ip.is_broadcast())
}

/// The address policy as the HTTP client's resolver: every resolved address is checked and
/// the connection uses exactly the checked ones.
#[derive(Debug, Clone, Copy)]
struct CheckedResolver {
    loopback: bool,
}

/// The resolver's refusal (found again in the error chain).
#[derive(Debug)]
struct AddressRefused;

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("address refused by policy")
    }
}

impl StdError for AddressRefused {}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let loopback = self.loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !address_allowed(a.ip(), loopback)) {
                return Err(Box::new(AddressRefused) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn refused_by_policy(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = source {
        if e.is::<AddressRefused>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The document's members the gateway reads.
#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    jwks: Option<serde_json::Value>,
}

/// Fetches, checks and caches metadata documents.
#[derive(Debug)]
pub struct DocumentFetcher {
    plan: MetadataDocumentsPlan,
    http: reqwest::Client,
    cache: moka::future::Cache<String, Arc<Client>>,
}

impl DocumentFetcher {
    /// A fetcher with the plan's limits.
    pub fn new(plan: MetadataDocumentsPlan) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver {
                loopback: plan.allow_loopback,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(plan.timeout)
            .connect_timeout(plan.timeout)
            .no_proxy()
            .user_agent("idjag-gateway (client metadata)")
            .build()?;
        let cache = moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(plan.cache_ttl.max(std::time::Duration::from_secs(1)))
            .build();
        Ok(Self { plan, http, cache })
    }

    /// Whether `id` looks like a metadata document URL (`https://` or `http://`): such ids are
    /// resolved by fetching, after the URL rules (so an `http` URL is refused as such).
    pub fn claims(&self, id: &str) -> bool {
        self.plan.enabled && (id.starts_with("https://") || id.starts_with("http://"))
    }

    /// The client of the document at `url`, from the cache or fetched.
    pub async fn client(&self, url: &str) -> Result<Arc<Client>, DocumentError> {
        let parsed = self.check_url(url)?;
        self.cache
            .try_get_with(url.to_owned(), async {
                self.fetch(url, &parsed).await.map(Arc::new)
            })
            .await
            .map_err(|e: Arc<DocumentError>| *e)
    }

    fn check_url(&self, url: &str) -> Result<Url, DocumentError> {
        if url.len() > idjag_core::MAX_IDENTIFIER_LEN {
            return Err(DocumentError::Url);
        }
        let parsed = Url::parse(url).map_err(|_| DocumentError::Url)?;
        let scheme_ok = parsed.scheme() == "https"
            || (self.plan.allow_loopback && parsed.scheme() == "http" && is_loopback_host(&parsed));
        // The URL must be the document's exact, normalised form: no dot segments, no
        // fragment, no user info, a path.
        if !scheme_ok
            || parsed.as_str() != url
            || parsed.fragment().is_some()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
            || parsed.path() == "/"
            || parsed.path().split('/').any(|s| s == "." || s == "..")
            || parsed.host().is_none()
        {
            return Err(DocumentError::Url);
        }
        // IP literals skip the resolver: check them here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !address_allowed(ip, self.plan.allow_loopback)
        {
            return Err(DocumentError::Address);
        }
        Ok(parsed)
    }

    async fn fetch(&self, url: &str, parsed: &Url) -> Result<Client, DocumentError> {
        let transport = |e: reqwest::Error| {
            if refused_by_policy(&e) {
                DocumentError::Address
            } else if e.is_timeout() {
                DocumentError::Timeout
            } else {
                DocumentError::Unreachable
            }
        };
        let mut response = self
            .http
            .get(parsed.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        if response.status().is_redirection() {
            return Err(DocumentError::Redirect);
        }
        if response.status() != http::StatusCode::OK {
            return Err(DocumentError::Status);
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.plan.max_bytes as u64)
        {
            return Err(DocumentError::TooLarge);
        }
        let json_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        if !json_type {
            return Err(DocumentError::NotJson);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.plan.max_bytes {
                return Err(DocumentError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let document: Document =
            serde_json::from_slice(&body).map_err(|_| DocumentError::NotJson)?;
        if document.client_id != url {
            return Err(DocumentError::ClientIdMismatch);
        }
        let uris = document
            .redirect_uris
            .filter(|u| {
                !u.is_empty() && u.len() <= crate::plan::authorization_server::MAX_REDIRECT_URIS
            })
            .ok_or(DocumentError::RedirectUris)?;
        let redirect_uris = uris
            .iter()
            .map(|u| RedirectUri::parse(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| DocumentError::RedirectUris)?;
        let id = ClientId::new(url).map_err(|_| DocumentError::Url)?;
        let registered = match document.token_endpoint_auth_method.as_deref() {
            None | Some("none") => RegisteredClient::public(id.clone()),
            Some("private_key_jwt") => {
                let jwks = document.jwks.ok_or(DocumentError::AuthMethod)?;
                let keys = KeySet::from_jwks_json(jwks.to_string().as_bytes())
                    .map_err(|_| DocumentError::AuthMethod)?
                    .keys;
                RegisteredClient::with_private_key_jwt(id.clone(), Arc::new(keys))
            }
            Some(_) => return Err(DocumentError::AuthMethod),
        };
        Ok(Client {
            id,
            source: ClientSource::MetadataDocument,
            name: document
                .client_name
                .map(|n| n.chars().filter(|c| !c.is_control()).take(128).collect()),
            redirect_uris,
            registered: Arc::new(registered),
            hosts: parsed.host_str().map(str::to_owned).into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(!address_allowed(ip, false), "{refused}");
        }
        for allowed in ["93.184.216.34", "1.1.1.1", "100.128.0.1", "2606:4700::1111"] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert!(address_allowed(ip, false), "{allowed}");
        }
        assert!(address_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(address_allowed("::1".parse().unwrap(), true));
        assert!(!address_allowed("10.0.0.1".parse().unwrap(), true));
    }

    fn fetcher(allow_loopback: bool) -> DocumentFetcher {
        DocumentFetcher::new(MetadataDocumentsPlan {
            enabled: true,
            max_bytes: 5120,
            timeout: std::time::Duration::from_secs(2),
            cache_ttl: std::time::Duration::from_secs(60),
            allow_loopback,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn urls_follow_the_rules_before_any_fetch() {
        let f = fetcher(false);
        for (url, error) in [
            ("http://client.example/meta.json", DocumentError::Url),
            ("https://client.example/", DocumentError::Url),
            ("https://client.example/a/../meta.json", DocumentError::Url),
            ("https://client.example/meta.json#x", DocumentError::Url),
            ("https://u@client.example/meta.json", DocumentError::Url),
            ("https://127.0.0.1/meta.json", DocumentError::Address),
            ("https://[::1]/meta.json", DocumentError::Address),
            (
                "https://169.254.169.254/latest/meta-data",
                DocumentError::Address,
            ),
            ("https://10.0.0.8/meta.json", DocumentError::Address),
            ("https://localhost/meta.json", DocumentError::Address),
            ("http://127.0.0.1:9/meta.json", DocumentError::Url),
        ] {
            assert_eq!(f.client(url).await.unwrap_err(), error, "{url}");
        }
    }
}
