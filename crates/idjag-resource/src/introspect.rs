//! RFC 7662 token introspection, for authenticated clients only.
//!
//! A client sees its own tokens; a client registered with
//! [`introspection_client`](crate::ResourceAuthorizationServerBuilder::introspection_client)
//! (a resource server) sees every token of this server. Anything else, including tokens
//! of other clients, expired tokens and tokens of other servers, is `{"active": false}`,
//! so the endpoint cannot be used to probe tokens (RFC 7662 §4).

use http::{HeaderMap, Method, Response};
use idjag_core::server::AuthenticatedClient;
use idjag_core::{AccessTokenClaims, wire};
use serde::Serialize;

use crate::error::GrantError;
use crate::server::Inner;

/// The RFC 7662 §2.2 response.
#[derive(Debug, Serialize)]
struct Introspection<'a> {
    active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    token: Option<ActiveToken<'a>>,
}

#[derive(Debug, Serialize)]
struct ActiveToken<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    client_id: &'a str,
    sub: &'a str,
    aud: &'a str,
    iss: &'a str,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    jti: &'a str,
    token_type: &'static str,
}

impl<'a> ActiveToken<'a> {
    fn of(claims: &'a AccessTokenClaims) -> Self {
        Self {
            scope: claims.scope.as_ref().map(ToString::to_string),
            client_id: claims.client_id.as_str(),
            sub: claims.sub.as_str(),
            aud: claims.aud.as_str(),
            iss: claims.iss.as_str(),
            exp: claims.exp.unix(),
            iat: claims.iat.unix(),
            nbf: claims.nbf.map(|n| n.unix()),
            jti: claims.jti.as_str(),
            token_type: wire::TOKEN_TYPE_BEARER,
        }
    }
}

impl Inner {
    pub(crate) async fn introspect(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Vec<u8>>, GrantError> {
        let form = self.read_form(method, headers, body)?;
        let caller = self
            .authenticator
            .authenticate(headers, &form)
            .await
            .map_err(GrantError::Client)?;
        let token = form
            .get("token")
            .ok_or(GrantError::MissingParameter { name: "token" })?;
        let verified = self.own_tokens.validate(token).ok();
        let visible = verified
            .as_ref()
            .map(|v| v.claims())
            .filter(|claims| self.may_see(&caller, claims));
        Ok(Self::ok_json(&Introspection {
            active: visible.is_some(),
            token: visible.map(ActiveToken::of),
        }))
    }

    fn may_see(&self, caller: &AuthenticatedClient, claims: &AccessTokenClaims) -> bool {
        claims.client_id == *caller.client_id() || self.introspectors.contains(caller.client_id())
    }
}
