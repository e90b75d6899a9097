//! Endpoint URL rules shared by every idjag component that talks HTTP, and the address classes
//! that decide where a discovered URL may lead ([`AddressClass`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::id::Issuer;
use crate::wire;

/// Why an endpoint URL was refused. Carries no part of the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Not an absolute URL.
    #[error("endpoint is not an absolute URL")]
    NotAUrl,
    /// Plain `http` to a host that is not loopback (requirements EMA-09, MCP-06).
    #[error("endpoint must use https (plain http is allowed only on loopback)")]
    NotHttps,
    /// The URL carries a username, password or fragment.
    #[error("endpoint must not carry credentials or a fragment")]
    Forbidden,
}

/// Whether `url`'s host is loopback (`localhost`, `127.0.0.0/8`, `[::1]`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses an endpoint URL and checks it: `https`, or `http` on loopback only; no userinfo;
/// no fragment.
///
/// ```
/// use idjag_core::endpoint::{EndpointError, check_endpoint};
/// assert!(check_endpoint("https://idp.example/token").is_ok());
/// assert!(check_endpoint("http://127.0.0.1:8080/token").is_ok());
/// assert_eq!(check_endpoint("http://idp.example/token"), Err(EndpointError::NotHttps));
/// assert_eq!(check_endpoint("https://u:p@idp.example/"), Err(EndpointError::Forbidden));
/// ```
pub fn check_endpoint(url: &str) -> Result<Url, EndpointError> {
    let parsed = Url::parse(url).map_err(|_| EndpointError::NotAUrl)?;
    check_endpoint_url(&parsed)?;
    Ok(parsed)
}

/// Checks an already parsed endpoint URL (see [`check_endpoint`]).
pub fn check_endpoint_url(url: &Url) -> Result<(), EndpointError> {
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(EndpointError::Forbidden);
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" | "https" => Err(EndpointError::NotHttps),
        _ => Err(EndpointError::NotHttps),
    }
}

/// What an IP address reaches, for the address policy of discovered URLs (threat C10).
///
/// IPv4 addresses embedded in IPv6 ones (mapped `::ffff:0:0/96`, compatible `::/96`, NAT64
/// `64:ff9b::/96`, 6to4 `2002::/16`) are classified as the IPv4 address they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// Anything else: the public internet.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), carrier-grade NAT (`100.64/10`) and
    /// unique local IPv6 (`fc00::/7`): private networks.
    Private,
    /// Never a destination: link-local (`169.254/16`, home of cloud metadata endpoints such
    /// as `169.254.169.254`; `fe80::/10`), unspecified, "this network" (`0/8`), broadcast,
    /// multicast, reserved (`240/4`), benchmarking (`198.18/15`), deprecated site-local
    /// (`fec0::/10`), Teredo (`2001::/32`) and local-use NAT64 (`64:ff9b:1::/48`).
    Blocked,
}

impl AddressClass {
    /// The class of `ip`.
    ///
    /// ```
    /// use idjag_core::endpoint::AddressClass;
    /// let class = |ip: &str| AddressClass::of(ip.parse().unwrap());
    /// assert_eq!(class("93.184.215.14"), AddressClass::Public);
    /// assert_eq!(class("10.1.2.3"), AddressClass::Private);
    /// assert_eq!(class("100.64.0.1"), AddressClass::Private);
    /// assert_eq!(class("169.254.169.254"), AddressClass::Blocked);
    /// assert_eq!(class("::ffff:127.0.0.1"), AddressClass::Loopback);
    /// assert_eq!(class("fd00::1"), AddressClass::Private);
    /// assert_eq!(class("fe80::1"), AddressClass::Blocked);
    /// ```
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => match embedded_ipv4(v6) {
                Some(v4) => Self::of_v4(v4),
                None => Self::of_v6(v6),
            },
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, ..] = ip.octets();
        if ip.is_loopback() {
            Self::Loopback
        } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
            Self::Private
        } else if ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || a == 0
            || a >= 240
            || (a == 198 && (b == 18 || b == 19))
        {
            Self::Blocked
        } else {
            Self::Public
        }
    }

    fn of_v6(ip: Ipv6Addr) -> Self {
        let s = ip.segments();
        if ip.is_loopback() {
            Self::Loopback
        } else if s[0] & 0xfe00 == 0xfc00 {
            Self::Private
        } else if ip.is_unspecified()
            || ip.is_multicast()
            || s[0] & 0xffc0 == 0xfe80
            || s[0] & 0xffc0 == 0xfec0
            || s[..2] == [0x2001, 0]
            || s[..3] == [0x64, 0xff9b, 1]
        {
            Self::Blocked
        } else {
            Self::Public
        }
    }
}

/// The IPv4 address carried by an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 address.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [a, b, c, d, e, f, g, h] = ip.segments();
    let low = Ipv4Addr::from((u32::from(g) << 16) | u32::from(h));
    match [a, b, c, d, e, f] {
        [0, 0, 0, 0, 0, 0xffff] | [0x64, 0xff9b, 0, 0, 0, 0] => Some(low),
        [0, 0, 0, 0, 0, 0] if !ip.is_loopback() && !ip.is_unspecified() => Some(low),
        [0x2002, ..] => Some(Ipv4Addr::from((u32::from(b) << 16) | u32::from(c))),
        _ => None,
    }
}

/// The IP address of an IP-literal URL host.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

/// The well-known URL for `issuer`, with the well-known path inserted between the host and
/// the issuer's path (RFC 8414 §3.1, RFC 9728 §3.1): `https://as.example/tenant` gives
/// `https://as.example/.well-known/oauth-authorization-server/tenant`.
pub fn well_known_inserted(base: &Url, well_known: &str) -> Url {
    let mut url = base.clone();
    let path = base.path().trim_end_matches('/');
    url.set_path(&format!("{well_known}{path}"));
    url.set_query(None);
    url
}

/// The well-known URL with the well-known path appended to the issuer's path (OIDC
/// Discovery §4): `https://as.example/tenant` gives
/// `https://as.example/tenant/.well-known/openid-configuration`.
pub fn well_known_appended(base: &Url, well_known: &str) -> Url {
    let mut url = base.clone();
    let path = base.path().trim_end_matches('/');
    url.set_path(&format!("{path}{well_known}"));
    url.set_query(None);
    url
}

/// The metadata URLs to try for an authorization server, in the order of MCP 2025-11-25
/// (requirement MD-11): RFC 8414 with path insertion, then OIDC with path insertion, then OIDC with
/// path appending. Duplicates are dropped (an issuer without a path yields two URLs).
pub fn authorization_server_metadata_urls(issuer: &Issuer) -> Result<Vec<Url>, EndpointError> {
    let base = check_endpoint(issuer.as_str())?;
    let mut urls = vec![
        well_known_inserted(&base, wire::WELL_KNOWN_OAUTH_AUTHORIZATION_SERVER),
        well_known_inserted(&base, wire::WELL_KNOWN_OPENID_CONFIGURATION),
        well_known_appended(&base, wire::WELL_KNOWN_OPENID_CONFIGURATION),
    ];
    urls.dedup();
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_follow_mcp_2025_11_25_order() {
        let with_path = Issuer::new("https://auth.example/tenant1").unwrap();
        let urls: Vec<String> = authorization_server_metadata_urls(&with_path)
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            urls,
            [
                "https://auth.example/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example/.well-known/openid-configuration/tenant1",
                "https://auth.example/tenant1/.well-known/openid-configuration",
            ]
        );
        let bare = Issuer::new("https://auth.example").unwrap();
        let urls: Vec<String> = authorization_server_metadata_urls(&bare)
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            urls,
            [
                "https://auth.example/.well-known/oauth-authorization-server",
                "https://auth.example/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn c10_address_classes_cover_private_link_local_and_embedded_addresses() {
        let class = |ip: &str| AddressClass::of(ip.parse().unwrap());
        for ip in [
            "8.8.8.8",
            "2606:4700::1111",
            "192.0.2.1",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert_eq!(class(ip), AddressClass::Public, "{ip}");
        }
        for ip in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(class(ip), AddressClass::Loopback, "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
        ] {
            assert_eq!(class(ip), AddressClass::Private, "{ip}");
        }
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "::",
            "ff02::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::1",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "2002:a9fe:a9fe::",
        ] {
            assert_eq!(class(ip), AddressClass::Blocked, "{ip}");
        }
        assert_eq!(
            literal_ip(&Url::parse("https://[fd00::1]:8443/x").unwrap()),
            Some("fd00::1".parse().unwrap())
        );
        assert_eq!(
            literal_ip(&Url::parse("https://mcp.example/").unwrap()),
            None
        );
    }

    #[test]
    fn loopback_is_the_only_plain_http() {
        for ok in [
            "http://localhost:1/x",
            "http://127.0.0.2/",
            "http://[::1]:8/",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/",
            "http://localhost.evil/",
            "ftp://x/",
            "file:///etc/passwd",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }
}
