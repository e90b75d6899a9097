//! The JWT-bearer grant, in the order of the redemption checks.

use http::{HeaderMap, Method, Response};
use idjag_core::claims::AuthorizationDetail;
use idjag_core::jose::{UnverifiedJws, parse_object};
use idjag_core::server::{AuthenticatedClient, FormBody, Replay, ReplayKey, read_form_request};
use idjag_core::{
    IdJagClaims, Resource, ScopeSet, Segment, Subject, ValidationError, Verified, wire,
};
use serde_json::Value;

use crate::audit::AuditRecord;
use crate::config::{
    AbsentResource, RegisteredResource, ReplayPolicy, ResolveError, SubjectMapping, TrustedIssuer,
    UngovernedResource,
};
use crate::error::GrantError;
use crate::mint::{Grant, mint};
use crate::server::Inner;

/// The optional parameters of a jwt-bearer request, parsed.
struct Requested {
    scope: Option<ScopeSet>,
    resource: Option<Resource>,
    authorization_details: Option<Vec<AuthorizationDetail>>,
}

impl Requested {
    fn parse(form: &FormBody) -> Result<Self, GrantError> {
        let scope = form
            .get("scope")
            .map(|s| ScopeSet::parse(s).map_err(|_| GrantError::MalformedScope))
            .transpose()?;
        let resource = form
            .get("resource")
            .map(|r| Resource::new(r).map_err(|_| GrantError::MalformedResource))
            .transpose()?;
        let authorization_details = form
            .get("authorization_details")
            .map(parse_details)
            .transpose()?;
        Ok(Self {
            scope,
            resource,
            authorization_details,
        })
    }
}

/// Parses an `authorization_details` parameter with the core's strict JSON parser
/// (duplicate members rejected, depth limited) by wrapping it as the one member of an
/// object: any text that is not exactly one JSON value either fails to parse or adds a
/// member.
fn parse_details(raw: &str) -> Result<Vec<AuthorizationDetail>, GrantError> {
    let wrapped = format!("{{\"v\":{raw}}}");
    let mut object = parse_object(wrapped.as_bytes(), Segment::Payload)
        .map_err(|_| GrantError::MalformedAuthorizationDetails)?;
    match (object.remove("v"), object.is_empty()) {
        (Some(Value::Array(items)), true) if !items.is_empty() => {
            AuthorizationDetail::from_json_array(items)
                .map_err(|_| GrantError::MalformedAuthorizationDetails)
        }
        _ => Err(GrantError::MalformedAuthorizationDetails),
    }
}

impl Inner {
    /// Runs the grant. No check before the last step writes anything: the replay entry is
    /// recorded only once every other check has passed and the access token is signed, so
    /// a refused or abandoned request leaves no state behind (threat J06).
    pub(crate) async fn grant(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
        audit: &mut AuditRecord,
    ) -> Result<Response<Vec<u8>>, GrantError> {
        let form = self.read_form(method, headers, body)?;

        // redemption check 1: the grant type.
        match form.get("grant_type") {
            None => return Err(GrantError::MissingParameter { name: "grant_type" }),
            Some(wire::GRANT_TYPE_JWT_BEARER) => {}
            Some(_) => return Err(GrantError::UnsupportedGrantType),
        }
        // Row 2: client authentication, one method, confidential unless allowed.
        let client = self
            .authenticator
            .authenticate(headers, &form)
            .await
            .map_err(GrantError::Client)?;
        audit.client_id = Some(client.client_id().as_str().to_owned());
        // Row 3: exactly one non-empty assertion (duplicates were refused by the form parser).
        let assertion = form
            .get("assertion")
            .ok_or(GrantError::MissingParameter { name: "assertion" })?;
        let requested = Requested::parse(&form)?;

        // Rows 4 to 11: structure, typ, alg, issuer, issuer-scoped key, signature, aud, time.
        let verified = match self.validator.validate_async(assertion).await {
            Ok(verified) => verified,
            Err(e) => return Err(self.assertion_error(assertion, e, audit)),
        };
        let claims = verified.claims();
        audit.issuer = Some(claims.iss.as_str().to_owned());
        audit.jti = Some(claims.jti.as_str().to_owned());
        audit.kid = verified.kid().map(|k| k.as_str().to_owned());
        let trusted = self
            .trusted
            .get(claims.iss.as_str())
            .ok_or(GrantError::Assertion(ValidationError::UntrustedIssuer))?;

        // Row 10: client continuity, and the issuer's client relationships (-04 §4.1).
        if claims.client_id != *client.client_id() {
            return Err(GrantError::ClientMismatch);
        }
        if trusted
            .clients
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(client.client_id()))
        {
            return Err(GrantError::ClientNotAllowedForIssuer);
        }
        // Row 12 (replay) is deliberately deferred to the end: see `record_redemption`.
        // Row 13: tenant and subject.
        check_tenant(trusted, claims)?;
        let subject = resolve_subject(trusted, claims).await?;
        audit.subject = Some((subject.as_str().to_owned(), self.audit_subjects));
        // Rows 15 to 17: resource, scope, authorization details.
        let resource = self.grant_resource(claims, requested.resource.as_ref())?;
        audit.resource = Some(resource.resource.as_str().to_owned());
        if trusted
            .resources
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(&resource.resource))
        {
            return Err(GrantError::ResourceNotAllowedForIssuer);
        }
        let scope = grant_scope(resource, claims, requested.scope.as_ref())?;
        let details = grant_details(resource, claims, requested.authorization_details)?;
        // Row 18: a sender-constrained grant needs a proof idjag cannot check.
        if claims.cnf.is_some() {
            return Err(GrantError::ConfirmationUnsupported);
        }
        // Row 19: never redeem a grant of our own (unreachable unless misconfigured, since
        // the builder refuses to trust this server's issuer).
        if claims.iss == self.issuer {
            return Err(GrantError::SelfIssued);
        }

        // Row 20: sign, then commit.
        let grant = Grant {
            subject,
            resource: resource.resource.clone(),
            scope,
            details,
        };
        let issued = mint(self, &verified, &client, grant)?;
        self.record_redemption(&verified, &client).await?;
        audit.scope = issued.scope_text();
        Ok(Self::ok_json(&issued.response))
    }

    /// POST, a body within the limit, form-encoded, parsed strictly.
    pub(crate) fn read_form(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<FormBody, GrantError> {
        read_form_request(method, headers, body, self.max_body_bytes, &[])
            .map_err(GrantError::Envelope)
    }

    /// The grant error for a failed validation; the audit names the issuer only when the
    /// (unverified) `iss` is one this server trusts, so no attacker string reaches the log.
    fn assertion_error(
        &self,
        assertion: &str,
        error: ValidationError,
        audit: &mut AuditRecord,
    ) -> GrantError {
        let claimed_iss = UnverifiedJws::parse(assertion, self.max_assertion_bytes)
            .ok()
            .and_then(|jws| jws.unverified_claims().ok())
            .and_then(|claims| claims.get("iss").and_then(Value::as_str).map(str::to_owned));
        match claimed_iss {
            Some(iss)
                if iss == self.issuer.as_str() && error == ValidationError::UntrustedIssuer =>
            {
                GrantError::SelfIssued
            }
            Some(iss) if self.trusted.contains_key(&iss) => {
                audit.issuer = Some(iss);
                GrantError::Assertion(error)
            }
            _ => GrantError::Assertion(error),
        }
    }

    /// redemption check 15 (requirements EMA-17, JB-14, threat V31): every resource of the ID-JAG
    /// is registered; the token is for one of them, picked by the request's `resource` when several
    /// remain.
    fn grant_resource(
        &self,
        claims: &IdJagClaims,
        requested: Option<&Resource>,
    ) -> Result<&RegisteredResource, GrantError> {
        let registered = |r: &Resource| self.resources.iter().find(|o| o.resource == *r);
        let ungoverned = match self.ungoverned {
            UngovernedResource::InvalidTarget => GrantError::ResourceNotGoverned,
            _ => GrantError::ResourceNotRegistered,
        };
        let candidates: Vec<&RegisteredResource> = match &claims.resource {
            Some(resources) => resources
                .iter()
                .map(|r| registered(r).ok_or_else(|| ungoverned.clone()))
                .collect::<Result<_, _>>()?,
            None => match &self.absent {
                AbsentResource::BindTo(r) => {
                    vec![registered(r).ok_or(GrantError::ResourceNotRegistered)?]
                }
                _ => return Err(GrantError::ResourceAbsent),
            },
        };
        match requested {
            Some(wanted) => candidates
                .into_iter()
                .find(|c| c.resource == *wanted)
                .ok_or(GrantError::ResourceNotGranted),
            None => match candidates.as_slice() {
                [one] => Ok(one),
                _ => Err(GrantError::ResourceAmbiguous),
            },
        }
    }

    /// redemption check 12, run last on purpose. The store's atomic check-and-insert is the only
    /// write of the whole grant; running it after every check and after signing means a
    /// refused request never consumes the ID-JAG, and a concurrent duplicate loses the race
    /// here and gets no token (threats J05, J06). The entry lives until the ID-JAG's
    /// `exp` plus the leeway, after which the validator refuses the ID-JAG anyway.
    async fn record_redemption(
        &self,
        verified: &Verified<IdJagClaims>,
        client: &AuthenticatedClient,
    ) -> Result<(), GrantError> {
        let claims = verified.claims();
        let key = ReplayKey::new(claims.iss.as_str(), claims.jti.as_str());
        let until = claims.exp.unix().saturating_add(self.leeway_secs);
        match self
            .replay
            .record(key, client.client_id().as_str(), until)
            .await
        {
            Ok(Replay::First) => Ok(()),
            Ok(Replay::Seen { same_holder: true })
                if self.replay_policy == ReplayPolicy::AllowSameClient =>
            {
                Ok(())
            }
            Ok(_) => Err(GrantError::Replayed),
            Err(e) => Err(GrantError::ReplayStore(e)),
        }
    }
}

/// redemption check 13 (requirements IDJAG-12, TX-14): the tenant the issuer is trusted for.
fn check_tenant(trusted: &TrustedIssuer, claims: &IdJagClaims) -> Result<(), GrantError> {
    match (&trusted.tenants, &claims.tenant) {
        (None, _) => Ok(()),
        (Some(allowed), Some(tenant)) if allowed.contains(tenant) => Ok(()),
        (Some(_), _) => Err(GrantError::Tenant),
    }
}

/// redemption check 13 (requirement JB-12): the local principal. `sub_id` is never used
/// (requirement JB-13).
async fn resolve_subject(
    trusted: &TrustedIssuer,
    claims: &IdJagClaims,
) -> Result<Subject, GrantError> {
    match &trusted.subject {
        SubjectMapping::Sub => Ok(claims.sub.clone()),
        SubjectMapping::AudSub { aud_tenant } => {
            if aud_tenant.is_some() && claims.aud_tenant != *aud_tenant {
                return Err(GrantError::Tenant);
            }
            claims
                .aud_sub
                .as_deref()
                .and_then(|s| Subject::new(s).ok())
                .ok_or(GrantError::UnknownSubject)
        }
        SubjectMapping::Resolver(resolver) => resolver.resolve(claims).await.map_err(|e| match e {
            ResolveError::Unavailable => GrantError::SubjectDirectoryUnavailable,
            _ => GrantError::UnknownSubject,
        }),
    }
}

/// redemption check 16 (requirements EMA-19, JB-15; decision D-05): the granted scope is the
/// requested scope ∩ the ID-JAG's scope ∩ the resource's policy. Without a `scope` parameter the
/// client gets what the ID-JAG and the policy allow. An explicit request that keeps nothing is
/// `invalid_scope`; otherwise the scope is narrowed and the response says so.
fn grant_scope(
    resource: &RegisteredResource,
    claims: &IdJagClaims,
    requested: Option<&ScopeSet>,
) -> Result<ScopeSet, GrantError> {
    let from_idp = claims.scope.clone().unwrap_or_default();
    let allowed = match &resource.scopes {
        Some(policy) => from_idp.intersection(policy),
        None => from_idp,
    };
    match requested {
        Some(wanted) if !wanted.is_empty() => {
            let granted = wanted.intersection(&allowed);
            if granted.is_empty() {
                Err(GrantError::ScopeNotGranted)
            } else {
                Ok(granted)
            }
        }
        _ => Ok(allowed),
    }
}

/// redemption check 17 (requirement JB-16): the ID-JAG's details, checked against the resource's
/// known types; a request may ask for a subset of them (each item equal to one of the ID-JAG's).
fn grant_details(
    resource: &RegisteredResource,
    claims: &IdJagClaims,
    requested: Option<Vec<AuthorizationDetail>>,
) -> Result<Vec<AuthorizationDetail>, GrantError> {
    let from_idp = claims.authorization_details.clone().unwrap_or_default();
    if let Some(types) = &resource.detail_types
        && from_idp.iter().any(|d| !types.contains(d.kind()))
    {
        return Err(GrantError::AuthorizationDetailTypeNotAllowed);
    }
    match requested {
        None => Ok(from_idp),
        Some(wanted) => {
            if wanted.iter().all(|w| from_idp.contains(w)) {
                Ok(wanted)
            } else {
                Err(GrantError::AuthorizationDetailsNotGranted)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_details_parameter_is_one_strict_json_array() {
        assert_eq!(
            parse_details(r#"[{"type":"chat","channel":"x"}]"#)
                .unwrap()
                .len(),
            1
        );
        for bad in [
            r#"{"type":"chat"}"#,
            "[]",
            "[1]",
            r#"[{"kind":"x"}]"#,
            r#"[{"type":"a","type":"b"}]"#,
            r#"[], "w": 1"#,
            r#"[]}"#,
            "",
            "[",
        ] {
            assert_eq!(
                parse_details(bad),
                Err(GrantError::MalformedAuthorizationDetails),
                "{bad}"
            );
        }
    }
}
