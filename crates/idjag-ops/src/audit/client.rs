//! The fields every audit line adds: the client's address and the trace id.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

use crate::listener::ConnectionInfo;

/// `trusted_proxies`: the proxies whose `X-Forwarded-For`/`Forwarded` headers are believed,
/// as CIDRs (`"10.0.0.0/8"`) or single addresses (`"127.0.0.1"`). Default: none, so the
/// client address is always the socket's peer.
///
/// The client address is found by walking the forwarding chain from the right (the hop
/// nearest to this server): the socket peer first, then each address the trusted hop before it
/// reported. The first address that is not a trusted proxy is the client. A peer that is not
/// trusted is the client, whatever headers it sends; an entry that is not an address
/// (`unknown`, an obfuscated `_node`) stops the walk at the last trusted hop. `Forwarded`
/// (RFC 7239) is used when present, `X-Forwarded-For` otherwise.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|n| n.to_string()))
            .finish()
    }
}

/// A `trusted_proxies` entry that is neither a CIDR nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trusted proxy {entry:?}: expected a CIDR (10.0.0.0/8) or an address")]
#[non_exhaustive]
pub struct InvalidProxy {
    /// The entry.
    pub entry: String,
}

impl TrustedProxies {
    /// No trusted proxy.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses CIDRs and single addresses.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidProxy> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidProxy {
                        entry: entry.to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let chain = if headers.contains_key(http::header::FORWARDED) {
            forwarded_for(headers)
        } else {
            x_forwarded_for(headers)
        };
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.contains(client) {
                        return client;
                    }
                }
                None => return client,
            }
        }
        client
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(deserializer)?;
        Self::parse(&entries).map_err(serde::de::Error::custom)
    }
}

/// One hop: an address with an optional port, `[v6]:port`, or quoted.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    let inner = text.strip_prefix('[')?;
    inner.split(']').next()?.parse().ok()
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| {
            let text = value.to_str().unwrap_or("invalid");
            text.split(',').map(parse_hop).collect::<Vec<_>>()
        })
        .collect()
}

fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in text.split(',') {
            let for_param = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then_some(value)
            });
            // An element without `for` says nothing about the client: it ends the chain.
            hops.push(for_param.and_then(parse_hop));
        }
    }
    hops
}

/// The fields every audit line adds: put it in the line's struct with `#[serde(flatten)]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditContext {
    /// The client's address (see [`TrustedProxies`]).
    pub client_address: Option<IpAddr>,
    /// The request's trace id (32 hex digits), when traced.
    pub trace_id: Option<String>,
}

impl AuditContext {
    /// The context of `request` (its [`ConnectionInfo`] and headers) in the current span.
    pub fn of<B>(request: &http::Request<B>, proxies: &TrustedProxies) -> Self {
        Self::from_parts(
            request.extensions().get::<ConnectionInfo>(),
            request.headers(),
            proxies,
        )
    }

    /// The same from a request's parts.
    pub fn from_parts(
        connection: Option<&ConnectionInfo>,
        headers: &HeaderMap,
        proxies: &TrustedProxies,
    ) -> Self {
        Self {
            client_address: connection.map(|c| proxies.client_address(c.remote.ip(), headers)),
            trace_id: crate::telemetry::current_trace_id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, http::HeaderValue::from_static(v));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_sends() {
        let proxies = TrustedProxies::none();
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(
            proxies.client_address(ip("203.0.113.9"), &spoofed),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_spoof_x_forwarded_for() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            proxies.client_address(ip("203.0.113.9"), &spoofed),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.1"]).unwrap();
        // The client forged the first entry; the edge proxy appended the real one.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(
            proxies.client_address(ip("192.0.2.1"), &chain),
            ip("198.51.100.7")
        );
        // Several header lines are one list.
        let split = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.5"), &split),
            ip("198.51.100.7")
        );
        // Every hop trusted: the leftmost is the client.
        let inner = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.5"), &inner),
            ip("10.9.9.9")
        );
        // Garbage stops the walk at the last trusted hop.
        let garbage = headers(&[("x-forwarded-for", "6.6.6.6, nonsense")]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.5"), &garbage),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn forwarded_wins_and_handles_ports_ipv6_and_obfuscation() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "::1"]).unwrap();
        let forwarded = headers(&[
            ("x-forwarded-for", "7.7.7.7"),
            (
                "forwarded",
                "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.2.2.2:443",
            ),
        ]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.5"), &forwarded),
            ip("2001:db8:cafe::17")
        );
        let hidden = headers(&[("forwarded", "for=_hidden, for=10.2.2.2")]);
        assert_eq!(proxies.client_address(ip("::1"), &hidden), ip("10.2.2.2"));
        let mapped = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(
            proxies.client_address(ip("::ffff:10.0.0.1"), &mapped),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn entries_parse_as_cidrs_or_addresses() {
        let error = TrustedProxies::parse(&["10.0.0.0/33"]).unwrap_err();
        assert_eq!(error.entry, "10.0.0.0/33");
        assert!(
            TrustedProxies::parse(&["127.0.0.1", "fd00::/8"])
                .unwrap()
                .contains(ip("fd12::1"))
        );
    }
}
