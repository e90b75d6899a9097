//! Leg 1: the RFC 8693 token exchange at the IdP that returns an ID-JAG (ID-JAG -04 §4.3;
//! ID-JAG -04 §4.3, requirements TX-01 to TX-17), and the checks of the ID-JAG before it is used or
//! sent anywhere.

use std::fmt;

use idjag_core::jose::{DEFAULT_MAX_TOKEN_BYTES, UnverifiedJws, typ_matches};
use idjag_core::{
    AuthorizationDetail, ClientId, IdJag, IdJagClaims, IdJagValidator, Issuer, JwtClaims, ScopeSet,
    TrustedIssuers, wire,
};
use sha2::{Digest, Sha256};

use crate::client::IdJagClient;
use crate::config::TokenTypeCheck;
use crate::error::{ClientError, IdJagProblem, ResponseProblem, Stage};
use crate::form::Form;
use crate::response::TokenFields;
use crate::subject::UserToken;
use crate::target::AccessRequest;

/// An ID-JAG received from the IdP (leg 1), checked against the request: `typ`, `iss`, the single `aud`,
/// `client_id`, `resource`, `scope`, the time window and the DPoP binding. Its signature was
/// verified only when the IdP's keys were configured ([`Self::signature_verified`]); the
/// resource authorization server always verifies it.
///
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct ReceivedIdJag {
    id_jag: IdJag,
    claims: IdJagClaims,
    signature_verified: bool,
    expires_at: i64,
    scope: Option<ScopeSet>,
    authorization_details: Option<Vec<AuthorizationDetail>>,
}

impl fmt::Debug for ReceivedIdJag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedIdJag")
            .field("iss", &self.claims.iss)
            .field("aud", &self.claims.aud)
            .field("client_id", &self.claims.client_id)
            .field("jti_sha256", &short_hash(self.claims.jti.as_str()))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("signature_verified", &self.signature_verified)
            .finish_non_exhaustive()
    }
}

/// The first 12 hex digits of a SHA-256: enough to correlate log lines, useless to an attacker.
pub(crate) fn short_hash(value: &str) -> String {
    Sha256::digest(value.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ReceivedIdJag {
    /// The ID-JAG, to present at its resource authorization server only.
    pub fn id_jag(&self) -> &IdJag {
        &self.id_jag
    }

    /// Its claims (checked against the request; signed by the IdP only if
    /// [`Self::signature_verified`]).
    pub fn claims(&self) -> &IdJagClaims {
        &self.claims
    }

    /// Whether the signature was verified with configured IdP keys.
    pub fn signature_verified(&self) -> bool {
        self.signature_verified
    }

    /// When it stops being usable: `exp`, or earlier if `expires_in` says so (Unix seconds).
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The resource authorization server it is for (its `aud`).
    pub fn resource_as(&self) -> &str {
        self.claims.aud.as_str()
    }

    /// Our client id at that server (its `client_id`).
    pub fn client_id(&self) -> &ClientId {
        &self.claims.client_id
    }

    /// The granted scope: the response's `scope`, else the claim's.
    pub fn scope(&self) -> Option<&ScopeSet> {
        self.scope.as_ref()
    }

    /// The granted authorization details.
    pub fn authorization_details(&self) -> Option<&[AuthorizationDetail]> {
        self.authorization_details.as_deref()
    }

    /// The DPoP key thumbprint it is bound to (`cnf.jkt`).
    pub fn jkt(&self) -> Option<&str> {
        self.claims.cnf.as_ref().and_then(|c| c.jkt.as_deref())
    }
}

/// What leg 1 asked for, to compare the answer with.
pub(crate) struct Expectation<'a> {
    pub(crate) idp: &'a Issuer,
    pub(crate) resource_as: &'a Issuer,
    pub(crate) client_id: &'a ClientId,
    pub(crate) request: &'a AccessRequest,
    pub(crate) now: i64,
    pub(crate) leeway: i64,
    pub(crate) token_type_check: TokenTypeCheck,
    pub(crate) dpop_jkt: Option<&'a str>,
}

impl IdJagClient {
    /// Leg 1: exchanges the user's subject token at the IdP for an ID-JAG for `request`'s
    /// resource authorization server (requirements TX-01 to TX-05).
    ///
    /// The form carries, in this order: `grant_type`, `requested_token_type`, `audience` (the
    /// resource AS issuer), each `resource`, `scope`, `authorization_details`,
    /// `subject_token`, `subject_token_type`, then the client authentication of the IdP
    /// registration (one method only).
    pub async fn exchange(
        &self,
        subject: &UserToken,
        request: &AccessRequest,
    ) -> Result<ReceivedIdJag, ClientError> {
        subject.check()?;
        self.check_request(request)?;
        if let Some(exp) = subject.id_token_expiry()
            && self.now() >= exp
        {
            return Err(ClientError::ReauthenticationRequired {
                reason: crate::error::ReauthReason::IdTokenExpired,
            });
        }
        let ras = request.resource_as();
        let mut form = Form::new();
        form.push("grant_type", wire::GRANT_TYPE_TOKEN_EXCHANGE);
        form.push("requested_token_type", wire::TOKEN_TYPE_ID_JAG);
        form.push("audience", ras.issuer().as_str());
        for resource in request.resources() {
            form.push("resource", resource.as_str());
        }
        if !request.scope().is_empty() {
            form.push("scope", &request.scope().to_string());
        }
        if let Some(details) = request.authorization_details() {
            form.push("authorization_details", &details_json(details));
        }
        form.push("subject_token", subject.token().secret());
        form.push("subject_token_type", subject.token_type().urn());
        let stage = Stage::IdentityProvider;
        let fields = self.post_to_idp("token-exchange", form, true).await?;
        if let Some((keys, algorithms)) = self.idp.id_jag_keys() {
            let validator = IdJagValidator::new(
                TrustedIssuers::new().with(self.idp.issuer().clone(), keys.clone()),
                ras.issuer().to_audience(),
                *algorithms,
                self.clock.clone(),
            )
            .with_leeway(self.config.leeway)
            .map_err(|_| crate::InputError::Config { what: "leeway" })?;
            validator
                .validate_async(fields.access_token.secret())
                .await
                .map_err(|e| ClientError::malformed(stage, IdJagProblem::Signature(e)))?;
        }
        let expectation = Expectation {
            idp: self.idp.issuer(),
            resource_as: ras.issuer(),
            client_id: ras.credentials().client_id(),
            request,
            now: self.now(),
            leeway: self.config.leeway_secs(),
            token_type_check: self.config.token_type_check,
            dpop_jkt: self.dpop.as_ref().map(|k| k.thumbprint()),
        };
        let mut issued = check_exchange_response(fields, &expectation)
            .map_err(|p| ClientError::malformed(stage, p))?;
        issued.signature_verified = self.idp.id_jag_keys().is_some();
        tracing::debug!(
            target: "idjag_client",
            stage = %stage,
            iss = %issued.claims.iss,
            aud = %issued.claims.aud,
            client_id = %issued.claims.client_id,
            jti_sha256 = %short_hash(issued.claims.jti.as_str()),
            expires_at = issued.expires_at,
            signature_verified = issued.signature_verified,
            "ID-JAG issued"
        );
        Ok(issued)
    }
}

/// The RFC 9396 JSON array.
fn details_json(details: &[AuthorizationDetail]) -> String {
    serde_json::to_string(details).unwrap_or_else(|_| "[]".to_owned())
}

/// Every check of a leg-1 answer, in order. Pure, so it is tested without HTTP.
pub(crate) fn check_exchange_response(
    fields: TokenFields,
    ex: &Expectation<'_>,
) -> Result<ReceivedIdJag, ResponseProblem> {
    match fields.issued_token_type.as_deref() {
        Some(wire::TOKEN_TYPE_ID_JAG) => {}
        Some(_) => return Err(ResponseProblem::IssuedTokenType),
        None => {
            return Err(ResponseProblem::Missing {
                member: "issued_token_type",
            });
        }
    }
    let token_type_ok = match ex.token_type_check {
        TokenTypeCheck::Strict => fields.token_type == wire::TOKEN_TYPE_NOT_APPLICABLE,
        TokenTypeCheck::IgnoreCase => fields
            .token_type
            .eq_ignore_ascii_case(wire::TOKEN_TYPE_NOT_APPLICABLE),
    };
    if !token_type_ok {
        return Err(ResponseProblem::TokenType);
    }
    if fields.refresh_token.is_some() {
        return Err(ResponseProblem::UnexpectedRefreshToken);
    }
    if fields.expires_in == Some(0) {
        return Err(ResponseProblem::Invalid {
            member: "expires_in",
        });
    }
    let token = fields.access_token.secret();
    let jws = UnverifiedJws::parse(token, DEFAULT_MAX_TOKEN_BYTES).map_err(IdJagProblem::Jose)?;
    match jws.unverified_header().typ() {
        Some(typ) if typ_matches(typ, wire::TYP_ID_JAG) => {}
        _ => return Err(IdJagProblem::Type.into()),
    }
    let payload = jws.unverified_claims().map_err(IdJagProblem::Jose)?;
    let claims = IdJagClaims::from_claims(payload).map_err(IdJagProblem::Claim)?;
    check_claims(&claims, ex)?;

    let requested = ex.request.scope();
    if let Some(scope) = &fields.scope {
        if !requested.is_empty() && !scope.is_subset(requested) {
            return Err(ResponseProblem::ScopeExceeded);
        }
        if claims
            .scope
            .as_ref()
            .is_some_and(|claimed| claimed != scope)
        {
            return Err(ResponseProblem::ScopeInconsistent);
        }
    }
    if let Some(echoed) = &fields.resource {
        let asked = ex.request.resources();
        if !asked.is_empty() && !echoed.iter().all(|r| asked.contains(r)) {
            return Err(ResponseProblem::ResourceMismatch);
        }
    }
    let mut expires_at = claims.exp.unix();
    if let Some(expires_in) = fields.expires_in {
        let by_expires_in = ex
            .now
            .saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX));
        expires_at = expires_at.min(by_expires_in);
    }
    Ok(ReceivedIdJag {
        id_jag: IdJag::new(token),
        scope: fields.scope.or_else(|| claims.scope.clone()),
        authorization_details: fields
            .authorization_details
            .or_else(|| claims.authorization_details.clone()),
        claims,
        signature_verified: false,
        expires_at,
    })
}

fn check_claims(claims: &IdJagClaims, ex: &Expectation<'_>) -> Result<(), IdJagProblem> {
    if &claims.iss != ex.idp {
        return Err(IdJagProblem::Issuer);
    }
    if claims.aud.as_str() != ex.resource_as.as_str() {
        return Err(IdJagProblem::Audience);
    }
    if &claims.client_id != ex.client_id {
        return Err(IdJagProblem::ClientId);
    }
    if let Some(resources) = &claims.resource {
        let asked = ex.request.resources();
        if !asked.is_empty() && !resources.iter().all(|r| asked.contains(r)) {
            return Err(IdJagProblem::Resource);
        }
    }
    if let Some(scope) = &claims.scope {
        let requested = ex.request.scope();
        if !requested.is_empty() && !scope.is_subset(requested) {
            return Err(IdJagProblem::Scope);
        }
    }
    if ex.now >= claims.exp.unix() {
        return Err(IdJagProblem::Expired);
    }
    if claims.iat.unix() > ex.now.saturating_add(ex.leeway) {
        return Err(IdJagProblem::IssuedInFuture);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf.unix() > ex.now.saturating_add(ex.leeway))
    {
        return Err(IdJagProblem::NotYetValid);
    }
    let jkt = claims.cnf.as_ref().and_then(|c| c.jkt.as_deref());
    match (ex.dpop_jkt, jkt) {
        (Some(_), None) => Err(IdJagProblem::ConfirmationMissing),
        (Some(ours), Some(theirs)) if ours != theirs => Err(IdJagProblem::ConfirmationMismatch),
        (None, Some(_)) => Err(IdJagProblem::ConfirmationUnexpected),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::{AccessToken, ClientSecret, Resource};

    use super::*;
    use crate::auth::ClientCredentials;
    use crate::target::ResourceAsTarget;

    fn fields(token: &str) -> TokenFields {
        TokenFields {
            access_token: AccessToken::new(token),
            token_type: "N_A".into(),
            issued_token_type: Some(wire::TOKEN_TYPE_ID_JAG.into()),
            expires_in: None,
            scope: None,
            refresh_token: None,
            authorization_details: None,
            resource: None,
            id_token: None,
        }
    }

    proptest::proptest! {
        /// Whatever the IdP puts in `access_token`, the checks end in an error, never a panic.
        #[test]
        fn arbitrary_tokens_are_refused_without_panic(token in "\\PC{0,300}", dots in 0usize..4) {
            let ras = ResourceAsTarget::new(
                Issuer::new("https://as.example").unwrap(),
                "https://as.example/token",
                ClientCredentials::secret_basic(ClientId::new("c").unwrap(), ClientSecret::new("s")).unwrap(),
            )
            .unwrap();
            let request = AccessRequest::new(ras).with_resource(Resource::new("https://mcp.example/").unwrap());
            let idp = Issuer::new("https://idp.example").unwrap();
            let expectation = Expectation {
                idp: &idp,
                resource_as: request.resource_as().issuer(),
                client_id: request.resource_as().credentials().client_id(),
                request: &request,
                now: 1_700_000_000,
                leeway: 30,
                token_type_check: TokenTypeCheck::Strict,
                dpop_jkt: None,
            };
            let token = format!("{token}{}", ".".repeat(dots));
            proptest::prop_assert!(check_exchange_response(fields(&token), &expectation).is_err());
        }
    }
}
