//! RFC 9068 access tokens minted from verified ID-JAGs (redemption check 20; requirements JWT-10,
//! JB-17 to JB-20).

use idjag_core::claims::AuthorizationDetail;
use idjag_core::server::AuthenticatedClient;
use idjag_core::{
    AccessTokenClaims, IdJagClaims, Jti, KeyError, NumericDate, Resource, ScopeSet, SignError,
    Subject, TokenResponse, Verified, wire,
};
use serde_json::Value;

use crate::error::GrantError;
use crate::server::Inner;

/// What the checks decided to grant.
pub(crate) struct Grant {
    pub(crate) subject: Subject,
    pub(crate) resource: Resource,
    pub(crate) scope: ScopeSet,
    pub(crate) details: Vec<AuthorizationDetail>,
}

/// A signed token and its response, not yet committed.
pub(crate) struct Issued {
    pub(crate) response: TokenResponse,
}

impl Issued {
    pub(crate) fn scope_text(&self) -> Option<String> {
        self.response.scope.as_ref().map(ToString::to_string)
    }
}

/// A fresh `jti` from the crypto backend: 128 random bits, base64url.
fn random_jti() -> Result<Jti, GrantError> {
    idjag_core::random::jti().map_err(|_| GrantError::Signing(SignError::Key(KeyError::Backend)))
}

/// The access-token expiry: `min(now + lifetime, id_jag.exp + beyond)` (decision D-08).
fn expiry(inner: &Inner, now: i64, id_jag: &IdJagClaims) -> Result<NumericDate, GrantError> {
    let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let nominal = now.saturating_add(secs(inner.lifetime.lifetime));
    let cap = id_jag
        .exp
        .unix()
        .saturating_add(secs(inner.lifetime.beyond_id_jag));
    let exp = nominal.min(cap);
    if exp <= now {
        return Err(GrantError::GrantExpiring);
    }
    NumericDate::from_unix(exp).ok_or(GrantError::GrantExpiring)
}

/// Signs the access token and builds the token response: `Bearer`, `expires_in`, the granted
/// `scope`, `authorization_details` and `resource`, and never a refresh token (requirement JB-18).
pub(crate) fn mint(
    inner: &Inner,
    verified: &Verified<IdJagClaims>,
    client: &AuthenticatedClient,
    grant: Grant,
) -> Result<Issued, GrantError> {
    let id_jag = verified.claims();
    let now = inner.clock.now_unix();
    let exp = expiry(inner, now, id_jag)?;
    let iat = NumericDate::from_unix(now).ok_or(GrantError::GrantExpiring)?;
    let mut claims = AccessTokenClaims::new(
        inner.issuer.clone(),
        grant.subject,
        grant.resource.clone().into(),
        client.client_id().clone(),
        random_jti()?,
        iat,
        exp,
    );
    claims.scope = (!grant.scope.is_empty()).then(|| grant.scope.clone());
    claims.authorization_details = (!grant.details.is_empty()).then(|| grant.details.clone());
    claims.auth_time = id_jag.auth_time;
    claims.acr = id_jag.acr.clone();
    claims.amr = id_jag.amr.clone();
    let token = inner
        .signing_key
        .sign_jwt(Some(wire::TYP_ACCESS_TOKEN), &claims)
        .map_err(GrantError::Signing)?;

    let mut response = TokenResponse::new(token.into_access_token(), wire::TOKEN_TYPE_BEARER);
    response.expires_in = u64::try_from(exp.unix() - now).ok();
    response.scope = claims.scope;
    response.authorization_details = claims.authorization_details.map(|details| {
        details
            .iter()
            .map(|d| Value::Object(d.as_object().clone()))
            .collect()
    });
    response.extra.insert(
        "resource".into(),
        Value::String(grant.resource.into_string()),
    );
    Ok(Issued { response })
}
