//! OIDC ID tokens as subject tokens (requirement TX-08; threats X03 to X06).

use std::sync::Arc;
use std::time::Duration;

use idjag_core::server::AuthenticatedClient;
use idjag_core::{
    AlgorithmSet, Audience, BoxFuture, IdTokenValidator, Issuer, KeySource, SharedClock,
    SubjectToken, TrustedIssuers, ValidationError, ValidatorConfigError,
};

use super::{SubjectPrincipal, SubjectTokenError, SubjectTokenValidator};

/// Validates ID tokens this IdP issued, for the client that presents them.
///
/// The token goes through the core [`IdTokenValidator`] with this IdP as the only trusted
/// issuer, its keys as the only keys, and the authenticated client's id at the IdP as the
/// only audience (and `azp`, when present, must be that client too). So an ID token issued to
/// another client, by another issuer, expired, badly signed, or of another JWT kind (an
/// ID-JAG, an access token: their `typ` is refused, RFC 8725 §3.12) never passes.
#[derive(Debug, Clone)]
pub struct IdTokenSubjectValidator {
    issuer: Issuer,
    keys: Arc<dyn KeySource>,
    algorithms: AlgorithmSet,
    clock: SharedClock,
    leeway: Option<Duration>,
    max_age: Option<Duration>,
}

impl IdTokenSubjectValidator {
    /// A validator for ID tokens of `issuer`, signed by a key of `keys` under `algorithms`.
    pub fn new(
        issuer: Issuer,
        keys: Arc<dyn KeySource>,
        algorithms: AlgorithmSet,
        clock: SharedClock,
    ) -> Self {
        Self {
            issuer,
            keys,
            algorithms,
            clock,
            leeway: None,
            max_age: None,
        }
    }

    /// Sets the clock-skew leeway (default 30 s, at most [`idjag_core::MAX_LEEWAY`]).
    pub fn with_leeway(mut self, leeway: Duration) -> Result<Self, ValidatorConfigError> {
        if leeway > idjag_core::MAX_LEEWAY {
            return Err(ValidatorConfigError::LeewayTooLarge);
        }
        self.leeway = Some(leeway);
        Ok(self)
    }

    /// Refuses ID tokens whose `iat` is older than `max_age` (default 24 hours).
    pub fn with_max_age(mut self, max_age: Duration) -> Result<Self, ValidatorConfigError> {
        if max_age.as_secs() == 0 {
            return Err(ValidatorConfigError::NonPositive);
        }
        self.max_age = Some(max_age);
        Ok(self)
    }

    /// The core validator for ID tokens issued to `audience`.
    fn validator(&self, audience: Audience) -> IdTokenValidator {
        let validator = IdTokenValidator::new(
            TrustedIssuers::new().with(self.issuer.clone(), self.keys.clone()),
            audience,
            self.algorithms,
            self.clock.clone(),
        );
        // Both limits were checked against the core's rules when they were set.
        let validator = match self.leeway {
            Some(leeway) => validator.clone().with_leeway(leeway).unwrap_or(validator),
            None => validator,
        };
        match self.max_age {
            Some(max_age) => validator.clone().with_max_age(max_age).unwrap_or(validator),
            None => validator,
        }
    }

    async fn check(
        &self,
        token: &SubjectToken,
        client: &AuthenticatedClient,
    ) -> Result<SubjectPrincipal, SubjectTokenError> {
        let audience = Audience::new(client.client_id().as_str())
            .map_err(|_| SubjectTokenError::OtherClient)?;
        let verified = self
            .validator(audience)
            .validate_async(token.secret())
            .await
            .map_err(|e| match e {
                ValidationError::AudienceMismatch => SubjectTokenError::OtherClient,
                other => SubjectTokenError::Invalid(other),
            })?;
        let claims = verified.into_claims();
        Ok(SubjectPrincipal {
            subject: claims.sub,
            email: claims.email,
            groups: claims.groups.unwrap_or_default(),
            tenant: claims.tenant,
            auth_time: claims.auth_time,
            acr: claims.acr,
            amr: claims.amr,
        })
    }
}

impl SubjectTokenValidator for IdTokenSubjectValidator {
    fn validate<'a>(
        &'a self,
        token: &'a SubjectToken,
        client: &'a AuthenticatedClient,
    ) -> BoxFuture<'a, Result<SubjectPrincipal, SubjectTokenError>> {
        Box::pin(self.check(token, client))
    }
}
