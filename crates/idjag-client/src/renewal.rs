//! Keeping the user's subject token alive at the IdP (`docs/flow.md#renewal`; ID-JAG -04 §4.5):
//!
//! - [`IdJagClient::renew_id_token`]: the OIDC `refresh_token` grant, for a fresh ID token
//!   once the old one has expired;
//! - [`IdJagClient::saml_to_refresh_token`]: the SAML assertion traded once for an IdP
//!   refresh token (`requested_token_type` refresh_token), which then serves as the subject
//!   token or to renew ID tokens.

use std::fmt;

use idjag_core::jose::UnverifiedJws;
use idjag_core::{IdToken, RefreshToken, ScopeSet, wire};
use serde_json::Value;

use crate::client::IdJagClient;
use crate::config::TokenTypeCheck;
use crate::error::{ClientError, IdJagProblem, InputError, ReauthReason, ResponseProblem, Stage};
use crate::form::Form;
use idjag_core::SubjectTokenType;

use crate::subject::{MAX_SUBJECT_TOKEN_BYTES, UserToken, check_token};
use crate::transport::is_invalid_grant;

/// A renewed ID token and, when the IdP rotated it, the new refresh token.
#[derive(Clone)]
#[non_exhaustive]
pub struct RenewedIdToken {
    /// The new ID token.
    pub id_token: IdToken,
    /// The rotated refresh token, when the IdP sent one: keep it, the old one may be dead.
    pub refresh_token: Option<RefreshToken>,
    /// The new ID token's `exp`.
    pub expires_at: i64,
}

impl fmt::Debug for RenewedIdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenewedIdToken")
            .field("id_token", &self.id_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl IdJagClient {
    /// Renews the user's ID token with an IdP refresh token (OIDC Core §12). An
    /// `invalid_grant` answer becomes [`ClientError::ReauthenticationRequired`]: the user has
    /// to sign in again (threat C05).
    ///
    /// The new ID token is checked before use: a compact JWS, `iss` the IdP, `aud` naming our
    /// client id at the IdP, `exp` ahead.
    pub async fn renew_id_token(
        &self,
        refresh_token: &RefreshToken,
    ) -> Result<RenewedIdToken, ClientError> {
        check_token(refresh_token.secret(), "refresh token")?;
        let mut form = Form::new();
        form.push("grant_type", wire::GRANT_TYPE_REFRESH_TOKEN);
        form.push("refresh_token", refresh_token.secret());
        let stage = Stage::IdentityProvider;
        let fields = self
            .post_to_idp("refresh_token", form, false)
            .await
            .map_err(|e| {
                if is_invalid_grant(&e) {
                    ClientError::ReauthenticationRequired {
                        reason: ReauthReason::RefreshRejected,
                    }
                } else {
                    e
                }
            })?;
        let id_token = fields.id_token.ok_or(ClientError::malformed(
            stage,
            ResponseProblem::Missing { member: "id_token" },
        ))?;
        let expires_at = self
            .check_id_token(&id_token)
            .map_err(|p| ClientError::malformed(stage, ResponseProblem::IdToken(p)))?;
        let refresh_token = match fields.refresh_token {
            Some(t) if t.is_empty() => {
                return Err(ClientError::malformed(
                    stage,
                    ResponseProblem::Invalid {
                        member: "refresh_token",
                    },
                ));
            }
            other => other.map(RefreshToken::new),
        };
        tracing::debug!(target: "idjag_client", stage = %stage, expires_at, rotated = refresh_token.is_some(), "ID token renewed");
        Ok(RenewedIdToken {
            id_token: IdToken::new(id_token),
            refresh_token,
            expires_at,
        })
    }

    fn check_id_token(&self, token: &str) -> Result<i64, IdJagProblem> {
        let jws =
            UnverifiedJws::parse(token, MAX_SUBJECT_TOKEN_BYTES).map_err(IdJagProblem::Jose)?;
        let claims = jws.unverified_claims().map_err(IdJagProblem::Jose)?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.idp.issuer().as_str()) {
            return Err(IdJagProblem::Issuer);
        }
        let client_id = self.idp.credentials().client_id().as_str();
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == client_id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
            _ => false,
        };
        if !audience_ok {
            return Err(IdJagProblem::Audience);
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(IdJagProblem::Claim(idjag_core::ClaimError {
                claim: "exp",
                problem: idjag_core::ClaimProblem::Missing,
            }))?;
        if self.now() >= exp {
            return Err(IdJagProblem::Expired);
        }
        Ok(exp)
    }

    /// Trades a SAML 2.0 assertion for an IdP refresh token (ID-JAG -04 §4.5): a token
    /// exchange with `requested_token_type` refresh_token and, by default, scope
    /// `openid offline_access` (requirement TX-24).
    pub async fn saml_to_refresh_token(
        &self,
        subject: &UserToken,
        scope: Option<&ScopeSet>,
    ) -> Result<RefreshToken, ClientError> {
        subject.check()?;
        if subject.token_type() != SubjectTokenType::Saml2 {
            return Err(InputError::MalformedToken {
                what: "SAML assertion",
            }
            .into());
        }
        let mut form = Form::new();
        form.push("grant_type", wire::GRANT_TYPE_TOKEN_EXCHANGE);
        form.push("requested_token_type", wire::TOKEN_TYPE_REFRESH_TOKEN);
        form.push(
            "scope",
            &scope.map_or_else(|| "openid offline_access".to_owned(), ToString::to_string),
        );
        form.push("subject_token", subject.token().secret());
        form.push("subject_token_type", wire::TOKEN_TYPE_SAML2);
        let stage = Stage::IdentityProvider;
        let fields = self
            .post_to_idp("token-exchange (saml2 to refresh_token)", form, false)
            .await?;
        if fields.issued_token_type.as_deref() != Some(wire::TOKEN_TYPE_REFRESH_TOKEN) {
            return Err(ClientError::malformed(
                stage,
                ResponseProblem::IssuedTokenType,
            ));
        }
        let na = match self.config.token_type_check {
            TokenTypeCheck::Strict => fields.token_type == wire::TOKEN_TYPE_NOT_APPLICABLE,
            TokenTypeCheck::IgnoreCase => fields
                .token_type
                .eq_ignore_ascii_case(wire::TOKEN_TYPE_NOT_APPLICABLE),
        };
        if !na {
            return Err(ClientError::malformed(stage, ResponseProblem::TokenType));
        }
        Ok(RefreshToken::new(fields.access_token.secret()))
    }
}
