//! The client's settings ([`ClientConfig`]) and the leniencies they choose between.

use std::time::Duration;

use crate::error::InputError;
use crate::http::DEFAULT_MAX_RESPONSE_BYTES;

/// How strictly leg 1's `token_type` is compared with `N_A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenTypeCheck {
    /// Exactly `N_A` (RFC 8693 §2.2.1). The default.
    #[default]
    Strict,
    /// `N_A` in any case (`n_a`), for IdPs that vary it.
    IgnoreCase,
}

/// What to do with a `refresh_token` in a response that should not carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnexpectedRefreshToken {
    /// Refuse the response (requirements TX-17, JB-18). The default.
    #[default]
    Reject,
    /// Drop the refresh token and keep the access token (leg 2 only).
    Discard,
}

/// Client settings, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Leg 1 `token_type` check. Default [`TokenTypeCheck::Strict`].
    pub token_type_check: TokenTypeCheck,
    /// Clock skew allowed on the `iat` and `nbf` of issued ID-JAGs. Default 30 s, at most 5 min.
    pub leeway: Duration,
    /// Largest response body read. Default 1 MiB.
    pub max_response_bytes: usize,
    /// Send `resource` at leg 2 (requirement MCP-01: MCP clients send it in token requests). Default `true`.
    pub send_resource_at_redemption: bool,
    /// Send `scope` at leg 2. Default `false`: the ID-JAG carries the grant, and resending
    /// the requested scope could undo the IdP's narrowing.
    pub send_scope_at_redemption: bool,
    /// A `refresh_token` at leg 2. Default [`UnexpectedRefreshToken::Reject`].
    pub unexpected_refresh_token: UnexpectedRefreshToken,
    /// Lifetime assumed for an access token whose response has no `expires_in`. Default 60 s.
    pub assumed_access_token_lifetime: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            token_type_check: TokenTypeCheck::Strict,
            leeway: Duration::from_secs(30),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            send_resource_at_redemption: true,
            send_scope_at_redemption: false,
            unexpected_refresh_token: UnexpectedRefreshToken::Reject,
            assumed_access_token_lifetime: Duration::from_secs(60),
        }
    }
}

impl ClientConfig {
    pub(crate) fn check(&self) -> Result<(), InputError> {
        if self.leeway > idjag_core::MAX_LEEWAY {
            return Err(InputError::Config { what: "leeway" });
        }
        if self.max_response_bytes == 0 {
            return Err(InputError::Config {
                what: "max_response_bytes",
            });
        }
        if self.assumed_access_token_lifetime < Duration::from_secs(1) {
            return Err(InputError::Config {
                what: "assumed_access_token_lifetime",
            });
        }
        Ok(())
    }

    pub(crate) fn leeway_secs(&self) -> i64 {
        i64::try_from(self.leeway.as_secs()).unwrap_or(300)
    }
}
