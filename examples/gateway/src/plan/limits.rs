//! `[limits]`, planned: each limit checked positive, each rate a GCRA quota.

use std::num::NonZeroU32;

use crate::config::{ConfigError, LimitsConfig, PrincipalLimitsConfig, RateConfig, invalid};
use crate::plan::Planner;
pub use crate::policy::fairness::{LimitsPlan, PrincipalLimits, RatePlan};

/// The largest cap on pending approvals or sessions: each check counts the principal's
/// live entries in the store, so a cap is a bound on that work too.
pub const MAX_STORE_CAP: u32 = 100_000;

impl Planner<'_> {
    /// `[limits]`.
    pub(crate) fn limits(&mut self, limits: &LimitsConfig) -> Result<LimitsPlan, ConfigError> {
        Ok(LimitsPlan {
            user: principal("limits.user", &limits.user)?,
            agent: principal("limits.agent", &limits.agent)?,
            upstream: principal("limits.upstream", &limits.upstream)?,
        })
    }
}

fn positive(key: String, value: Option<u32>) -> Result<Option<NonZeroU32>, ConfigError> {
    value
        .map(|v| NonZeroU32::new(v).ok_or_else(|| invalid(key, "must be positive")))
        .transpose()
}

fn principal(key: &str, config: &PrincipalLimitsConfig) -> Result<PrincipalLimits, ConfigError> {
    Ok(PrincipalLimits {
        in_flight: positive(format!("{key}.in_flight"), config.in_flight)?,
        streams: positive(format!("{key}.streams"), config.streams)?,
        rate: config
            .rate
            .as_ref()
            .map(|rate| self::rate(&format!("{key}.rate"), rate))
            .transpose()?,
        pending_approvals: cap(format!("{key}.pending_approvals"), config.pending_approvals)?,
        sessions: cap(format!("{key}.sessions"), config.sessions)?,
    })
}

/// A cap kept in the store: positive, and at most [`MAX_STORE_CAP`].
fn cap(key: String, value: Option<u32>) -> Result<Option<NonZeroU32>, ConfigError> {
    match value {
        Some(v) if v > MAX_STORE_CAP => {
            Err(invalid(key, format!("must be at most {MAX_STORE_CAP}")))
        }
        _ => positive(key, value),
    }
}

fn rate(key: &str, rate: &RateConfig) -> Result<RatePlan, ConfigError> {
    let requests =
        positive(format!("{key}.requests"), Some(rate.requests))?.unwrap_or(NonZeroU32::MIN);
    let burst = positive(format!("{key}.burst"), rate.burst)?.unwrap_or(requests);
    let interval = rate.per.0 / requests.get();
    if interval.is_zero() {
        return Err(invalid(
            format!("{key}.per"),
            "must be at least one nanosecond per request",
        ));
    }
    Ok(RatePlan { interval, burst })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ConfigDuration;

    #[test]
    fn limits_must_be_positive_and_rates_become_intervals() {
        let config = PrincipalLimitsConfig {
            in_flight: Some(4),
            streams: None,
            rate: Some(RateConfig {
                requests: 10,
                per: ConfigDuration(Duration::from_secs(1)),
                burst: None,
            }),
            pending_approvals: Some(5),
            sessions: None,
        };
        let planned = principal("limits.user", &config).unwrap();
        assert_eq!(planned.in_flight, NonZeroU32::new(4));
        assert_eq!(
            planned.rate,
            Some(RatePlan {
                interval: Duration::from_millis(100),
                burst: NonZeroU32::new(10).unwrap(),
            })
        );
        let zero = PrincipalLimitsConfig {
            streams: Some(0),
            ..config.clone()
        };
        assert_eq!(
            principal("limits.agent", &zero).unwrap_err().to_string(),
            "limits.agent.streams: must be positive"
        );
        assert_eq!(planned.pending_approvals, NonZeroU32::new(5));
        assert_eq!(planned.sessions, None);
        let no_sessions = PrincipalLimitsConfig {
            sessions: Some(0),
            ..config.clone()
        };
        assert_eq!(
            principal("limits.user", &no_sessions)
                .unwrap_err()
                .to_string(),
            "limits.user.sessions: must be positive"
        );
        let too_many = PrincipalLimitsConfig {
            pending_approvals: Some(MAX_STORE_CAP + 1),
            ..config.clone()
        };
        assert_eq!(
            principal("limits.agent", &too_many)
                .unwrap_err()
                .to_string(),
            "limits.agent.pending_approvals: must be at most 100000"
        );
        let mut no_requests = config;
        no_requests.rate.as_mut().unwrap().requests = 0;
        assert_eq!(
            principal("limits.upstream", &no_requests)
                .unwrap_err()
                .to_string(),
            "limits.upstream.rate.requests: must be positive"
        );
    }
}
