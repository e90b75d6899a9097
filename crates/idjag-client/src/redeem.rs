//! Leg 2: the RFC 7523 JWT-bearer grant at the resource authorization server (ID-JAG -04
//! §4.4; ID-JAG -04 §4.4, requirements JB-01, JB-02, JB-17, JB-18).

use std::fmt;

use idjag_core::{AccessToken, AuthorizationDetail, Issuer, ScopeSet, wire};

use crate::client::IdJagClient;
use crate::config::UnexpectedRefreshToken;
use crate::error::{ClientError, InputError, ResponseProblem, Stage};
use crate::exchange::{ReceivedIdJag, short_hash};
use crate::form::Form;
use crate::response::TokenFields;
use crate::subject::UserToken;
use crate::target::AccessRequest;

/// How the access token is presented to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenType {
    /// `Authorization: Bearer <token>` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP <token>` with a DPoP proof (RFC 9449).
    Dpop,
}

impl TokenType {
    /// The authorization scheme.
    pub const fn scheme(self) -> &'static str {
        match self {
            Self::Bearer => wire::TOKEN_TYPE_BEARER,
            Self::Dpop => wire::TOKEN_TYPE_DPOP,
        }
    }
}

/// An access token from the resource authorization server. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessTokenGrant {
    access_token: AccessToken,
    token_type: TokenType,
    issued_at: i64,
    expires_at: i64,
    expires_in: Option<u64>,
    scope: Option<ScopeSet>,
    authorization_details: Option<Vec<AuthorizationDetail>>,
    resource_as: Issuer,
}

impl fmt::Debug for AccessTokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenGrant")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("resource_as", &self.resource_as)
            .finish_non_exhaustive()
    }
}

impl AccessTokenGrant {
    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// How to present it.
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }

    /// The `Authorization` header value (`Bearer <token>` or `DPoP <token>`), marked sensitive.
    pub fn authorization_header(&self) -> Result<http::HeaderValue, InputError> {
        let mut value = http::HeaderValue::try_from(format!(
            "{} {}",
            self.token_type.scheme(),
            self.access_token.secret()
        ))
        .map_err(|_| InputError::MalformedToken {
            what: "access token",
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// When it was received (Unix seconds, by the client's clock).
    pub fn issued_at(&self) -> i64 {
        self.issued_at
    }

    /// When it expires: `issued_at + expires_in`, or the configured assumption when the
    /// server sent no `expires_in` (Unix seconds).
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The `expires_in` the server sent.
    pub fn expires_in(&self) -> Option<u64> {
        self.expires_in
    }

    /// The granted scope: the response's `scope`, else the ID-JAG's (RFC 6749 §5.1: omitted
    /// means as granted).
    pub fn scope(&self) -> Option<&ScopeSet> {
        self.scope.as_ref()
    }

    /// The granted authorization details.
    pub fn authorization_details(&self) -> Option<&[AuthorizationDetail]> {
        self.authorization_details.as_deref()
    }

    /// The resource authorization server that issued it.
    pub fn resource_as(&self) -> &Issuer {
        &self.resource_as
    }
}

impl IdJagClient {
    /// Both legs, without caching: a new ID-JAG, redeemed once.
    pub async fn access_token(
        &self,
        subject: &UserToken,
        request: &AccessRequest,
    ) -> Result<AccessTokenGrant, ClientError> {
        let id_jag = self.exchange(subject, request).await?;
        self.redeem(&id_jag, request).await
    }

    /// Leg 2: redeems `id_jag` at `request`'s resource authorization server, and only there.
    ///
    /// Refused before sending when the ID-JAG is for another server or client id, has
    /// expired, or is DPoP-bound to a key this client does not hold. The form carries
    /// `grant_type`, `assertion`, each `resource` (unless configured off), `scope` (when
    /// configured), then the client authentication of that server's registration.
    pub async fn redeem(
        &self,
        id_jag: &ReceivedIdJag,
        request: &AccessRequest,
    ) -> Result<AccessTokenGrant, ClientError> {
        self.check_request(request)?;
        let ras = request.resource_as();
        if id_jag.resource_as() != ras.issuer().as_str()
            || id_jag.client_id() != ras.credentials().client_id()
        {
            return Err(InputError::WrongResourceAuthorizationServer.into());
        }
        if self.now() >= id_jag.expires_at() {
            return Err(InputError::IdJagExpired.into());
        }
        if let Some(jkt) = id_jag.jkt()
            && self.dpop.as_ref().is_none_or(|key| key.thumbprint() != jkt)
        {
            return Err(InputError::DpopKeyMissing.into());
        }
        let mut form = Form::new();
        form.push("grant_type", wire::GRANT_TYPE_JWT_BEARER);
        form.push("assertion", id_jag.id_jag().secret());
        if self.config.send_resource_at_redemption {
            for resource in request.resources() {
                form.push("resource", resource.as_str());
            }
        }
        if self.config.send_scope_at_redemption && !request.scope().is_empty() {
            form.push("scope", &request.scope().to_string());
        }
        let stage = Stage::ResourceAuthorizationServer;
        let fields = self.post_to_resource_as(ras, "jwt-bearer", form).await?;
        let grant = self
            .check_redemption(fields, id_jag, request)
            .map_err(|p| ClientError::malformed(stage, p))?;
        tracing::debug!(
            target: "idjag_client",
            stage = %stage,
            resource_as = %grant.resource_as,
            token_type = grant.token_type.scheme(),
            expires_at = grant.expires_at,
            jti_sha256 = %short_hash(id_jag.claims().jti.as_str()),
            "access token issued"
        );
        Ok(grant)
    }

    fn check_redemption(
        &self,
        fields: TokenFields,
        id_jag: &ReceivedIdJag,
        request: &AccessRequest,
    ) -> Result<AccessTokenGrant, ResponseProblem> {
        let token_type = if fields
            .token_type
            .eq_ignore_ascii_case(wire::TOKEN_TYPE_BEARER)
        {
            TokenType::Bearer
        } else if self.dpop.is_some()
            && fields
                .token_type
                .eq_ignore_ascii_case(wire::TOKEN_TYPE_DPOP)
        {
            TokenType::Dpop
        } else {
            return Err(ResponseProblem::TokenType);
        };
        if fields.refresh_token.is_some()
            && self.config.unexpected_refresh_token == UnexpectedRefreshToken::Reject
        {
            return Err(ResponseProblem::UnexpectedRefreshToken);
        }
        if fields.expires_in == Some(0) {
            return Err(ResponseProblem::Invalid {
                member: "expires_in",
            });
        }
        if let Some(scope) = &fields.scope {
            let within_id_jag = id_jag
                .scope()
                .is_none_or(|granted| scope.is_subset(granted));
            let requested = request.scope();
            let within_request = requested.is_empty() || scope.is_subset(requested);
            if !within_id_jag || !within_request {
                return Err(ResponseProblem::ScopeExceeded);
            }
        }
        if let Some(echoed) = &fields.resource {
            let asked = request.resources();
            let bound = id_jag.claims().resource.as_deref().unwrap_or(asked);
            if !bound.is_empty() && !echoed.iter().all(|r| bound.contains(r)) {
                return Err(ResponseProblem::ResourceMismatch);
            }
        }
        let now = self.now();
        let lifetime = match fields.expires_in {
            Some(secs) => i64::try_from(secs).unwrap_or(i64::MAX),
            None => {
                i64::try_from(self.config.assumed_access_token_lifetime.as_secs()).unwrap_or(60)
            }
        };
        Ok(AccessTokenGrant {
            access_token: fields.access_token,
            token_type,
            issued_at: now,
            expires_at: now.saturating_add(lifetime),
            expires_in: fields.expires_in,
            scope: fields.scope.or_else(|| id_jag.scope().cloned()),
            authorization_details: fields
                .authorization_details
                .or_else(|| id_jag.authorization_details().map(<[_]>::to_vec)),
            resource_as: request.resource_as().issuer().clone(),
        })
    }
}
