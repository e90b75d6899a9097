//! Endpoint URL rules shared by every idjag component that talks HTTP.

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
