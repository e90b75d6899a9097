//! `passthrough`: the caller's inbound IdP access token, as is (an explicit, warned opt-in),
//! and only one issued for this route.
//!
//! A token forwarded as is can be replayed by the upstream wherever its audience is
//! accepted. So only an IdP access token whose `aud` is exactly this route's resource
//! identifier (`{public_url}/mcp/{name}`) goes through: an ID token (its audience is the
//! gateway's client id, and it would open every route and the IdP's token exchange to the
//! upstream) and a gateway-wide access token (audience the gateway's public URL: every
//! route) are refused with `401 invalid_token` and the route's resource metadata, so the
//! client asks for a token of this route (threat G31 in `docs/threat-model.md`).

use http::HeaderValue;
use idjag_core::{Audience, BoxFuture};

use crate::config::InboundKind;
use crate::inbound::{Authenticated, InboundToken};
use crate::upstream::credential::{Credential, CredentialError, UpstreamCredential};

/// `passthrough`: the inbound access token of this route, as is.
#[derive(Debug)]
pub struct PassthroughCredential {
    route: Audience,
}

impl PassthroughCredential {
    /// Passes through access tokens whose audience is exactly `route`.
    pub fn new(route: Audience) -> Self {
        Self { route }
    }
}

impl UpstreamCredential for PassthroughCredential {
    fn mode(&self) -> &'static str {
        "passthrough"
    }

    fn credential<'a>(
        &'a self,
        caller: &'a Authenticated,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async move {
            let identity = &caller.identity;
            let token = match &caller.token {
                InboundToken::AccessToken(token)
                    if identity.kind == InboundKind::AccessToken
                        && identity.audience == self.route.as_str() =>
                {
                    token
                }
                _ => return Err(CredentialError::NotForThisRoute),
            };
            HeaderValue::try_from(format!("Bearer {}", token.secret()))
                .map(|value| Credential::new(value, None))
                .map_err(|_| CredentialError::InvalidTemplateValue)
        })
    }
}
