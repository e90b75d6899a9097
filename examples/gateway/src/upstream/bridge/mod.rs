//! Bridging to MCP servers that do not speak ID-JAG: the credential modes besides
//! [`IdJagCredential`](crate::upstream::IdJagCredential), chosen per upstream in the
//! configuration (`[upstream.credential] mode`). Each runs after the same inbound
//! authentication and tool-level authorization, and only for its own upstream: a secret is
//! read once at start-up (a missing one is a configuration error from `check-config` and
//! `serve`), kept in a redacted type, and set on that upstream's requests only.
//!
//! | mode | what the upstream gets |
//! |---|---|
//! | `client_credentials` | `Authorization: Bearer` with the gateway's own token (RFC 6749 §4.4), cached until 30 s before expiry, one fetch for concurrent callers; client authentication `client_secret_basic`, `client_secret_post` or `private_key_jwt` through `idjag-client` |
//! | `static` | `{header}: {scheme} {secret}`, the secret from `secret_env` or `secret_file` |
//! | `header_template` | headers rendered from a template over the caller's identity and the secret |
//! | `passthrough` | the caller's inbound IdP token (explicit opt-in; a warning at start-up) |
//!
//! ## Header templates
//!
//! A template is text with placeholders: `{user}` (`sub`), `{issuer}`, `{agent}`, `{teams}`
//! (comma-separated), `{secret}`; `{{` and `}}` are literal braces. Nothing else is
//! recognised (an unknown placeholder is a configuration error) and nothing is evaluated. A
//! rendered value with a control character is refused (no header injection), so is a header
//! the gateway owns (hop-by-hop, framing, MCP, `x-request-id`).

mod client_credentials;
mod passthrough;
mod static_key;
mod template;

use http::HeaderName;

pub use client_credentials::{ClientCredentialsGrant, ClientCredentialsTarget};
pub use passthrough::PassthroughCredential;
pub use static_key::StaticCredential;
pub use template::{HeaderTemplates, TemplateCredential};

use crate::protocol::headers::{REQUEST_ID, is_hop_by_hop};

/// Headers a bridging mode may not set besides the hop-by-hop ones: the gateway owns them.
const OWNED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "accept",
    "last-event-id",
    REQUEST_ID,
];

/// Checks a header name a bridging mode sets.
pub fn check_bridge_header(name: &str) -> Result<HeaderName, String> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    let lower = header.as_str();
    if OWNED.contains(&lower) || is_hop_by_hop(lower) || lower.starts_with("mcp-") {
        return Err(format!("{name} is a header the gateway owns"));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_headers_cannot_be_set() {
        for name in [
            "host",
            "Content-Length",
            "mcp-session-id",
            "x-request-id",
            "te",
        ] {
            assert!(check_bridge_header(name).is_err(), "{name}");
        }
        assert!(check_bridge_header("x-api-key").is_ok());
        assert!(check_bridge_header("authorization").is_ok());
    }
}
