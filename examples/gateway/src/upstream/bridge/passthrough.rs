//! `passthrough`: the caller's inbound IdP token, as is (an explicit, warned opt-in).

use http::HeaderValue;
use idjag_core::BoxFuture;

use crate::inbound::{Authenticated, InboundToken};
use crate::upstream::credential::{Credential, CredentialError, UpstreamCredential};

/// The caller's inbound IdP token, as a string (passthrough only). The gateway's own tokens
/// never leave it.
fn inbound_token(caller: &Authenticated) -> Result<&str, CredentialError> {
    match &caller.token {
        InboundToken::IdToken(token) => Ok(token.secret()),
        InboundToken::AccessToken(token) => Ok(token.secret()),
        InboundToken::GatewayToken => Err(CredentialError::NoIdpSignIn),
    }
}

/// `passthrough`: the inbound token, as is.
#[derive(Debug, Default)]
pub struct PassthroughCredential;

impl UpstreamCredential for PassthroughCredential {
    fn mode(&self) -> &'static str {
        "passthrough"
    }

    fn credential<'a>(
        &'a self,
        caller: &'a Authenticated,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async move {
            HeaderValue::try_from(format!("Bearer {}", inbound_token(caller)?))
                .map(|value| Credential::new(value, None))
                .map_err(|_| CredentialError::InvalidTemplateValue)
        })
    }
}
