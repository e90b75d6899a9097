//! `[idp]` and `[inbound]`, planned: the trusted IdP, how its keys are cached, the
//! gateway's registration there, and which of its tokens come in.

use std::time::Duration;

use idjag_core::{Algorithm, AlgorithmSet, Issuer};
use serde::Serialize;
use url::Url;

use crate::config::{ConfigError, IdpConfig, InboundConfig, invalid};
use crate::plan::client::ClientPlan;
use crate::plan::{Planner, check_url};

/// The enterprise IdP.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct IdpPlan {
    /// Its issuer.
    pub issuer: Issuer,
    /// Its JWKS URL; `None`: from its metadata.
    pub jwks_uri: Option<Url>,
    /// Its token endpoint; `None`: from its metadata.
    pub token_endpoint: Option<Url>,
    /// How its keys are cached.
    pub jwks: JwksTimings,
    /// The gateway's registration there.
    pub client: ClientPlan,
}

/// How the IdP's keys are cached.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct JwksTimings {
    /// How long fetched keys are used before a refresh.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub max_age: Duration,
    /// How long past `max_age` the last good keys stay usable while the IdP is down.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub stale_if_error: Duration,
    /// Least time between two fetches.
    #[serde(serialize_with = "crate::config::serialize_duration")]
    pub cooldown: Duration,
}

/// What inbound validation takes from `[idp]`.
pub(crate) struct Validation {
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) leeway: Duration,
}

impl Planner<'_> {
    /// `[idp]`; reads the gateway's client secret (or key) there.
    pub(crate) fn idp(&mut self, idp: &IdpConfig) -> Result<(IdpPlan, Validation), ConfigError> {
        check_url("idp.issuer", &idp.issuer)?;
        let issuer =
            Issuer::new(idp.issuer.as_str()).map_err(|e| invalid("idp.issuer", e.to_string()))?;
        let jwks_uri = idp
            .jwks_uri
            .as_deref()
            .map(|uri| check_url("idp.jwks_uri", uri))
            .transpose()?;
        let token_endpoint = idp
            .token_endpoint
            .as_deref()
            .map(|uri| check_url("idp.token_endpoint", uri))
            .transpose()?;
        let algorithms = idp
            .algorithms
            .iter()
            .map(|name| {
                Algorithm::from_name(name)
                    .ok_or_else(|| invalid("idp.algorithms", format!("unknown algorithm {name}")))
            })
            .collect::<Result<AlgorithmSet, _>>()?;
        if idp.leeway.0 > idjag_core::MAX_LEEWAY {
            return Err(invalid("idp.leeway", "at most 5 minutes"));
        }
        let client = self.client("idp.client", &idp.client)?;
        let plan = IdpPlan {
            issuer,
            jwks_uri,
            token_endpoint,
            jwks: JwksTimings {
                max_age: idp.jwks_max_age.0,
                stale_if_error: idp.jwks_stale_if_error.0,
                cooldown: idp.jwks_cooldown.0,
            },
            client,
        };
        let validation = Validation {
            algorithms,
            leeway: idp.leeway.0,
        };
        Ok((plan, validation))
    }

    /// `[inbound]`: its limits (the settings are assembled once the routes are known).
    pub(crate) fn inbound(&mut self, inbound: &InboundConfig) -> Result<(), ConfigError> {
        if inbound.accept.is_empty() {
            return Err(invalid("inbound.accept", "must not be empty"));
        }
        if inbound.max_token_bytes == 0 || inbound.cache_capacity == 0 || inbound.max_groups == 0 {
            return Err(invalid("inbound", "limits must be positive"));
        }
        Ok(())
    }
}
