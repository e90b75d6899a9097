//! The bridge to an upstream OpenID provider (Microsoft Entra ID, Google, Keycloak, ...):
//! its ID tokens (and, where configured, its refresh tokens) as subject tokens.
//!
//! An upstream ID token is accepted only when the core ID-token validator passes it with the
//! upstream issuer as the only trusted issuer, its published keys as the only keys (found
//! through its discovery document or a configured `jwks_uri`) and the requesting client's id
//! *at the upstream IdP* as the only audience (and `azp`, when present); then the configured
//! `required_claims` must hold exactly. The principal is built from configured claims: the
//! subject (`sub`, or `oid`, ...), the groups, the email and the tenant.
//!
//! Groups: a groups claim replaced by an overage marker (Entra ID's `_claim_names` entry when a
//! user is in more groups than fit in a token) is refused (audit reason `groups_overage`)
//! rather than read as "no groups", which would let a member of a denied group through.
//!
//! An upstream refresh token is redeemed at the upstream token endpoint with the requesting
//! client's upstream credentials (`grant_type=refresh_token`, `client_secret_basic`, no
//! redirects, a 10 s timeout, a 256 KiB cap), and the ID token in the answer is validated as
//! above. A refresh token the upstream refuses is `invalid_grant`; an upstream that does not
//! answer is `temporarily_unavailable`. The refresh token the upstream may return is dropped:
//! use this only with IdPs that do not revoke a refresh token once it has been used.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use idjag_core::server::AuthenticatedClient;
use idjag_core::{
    AlgorithmSet, Audience, BoxFuture, ClientId, ClientSecret, IdTokenClaims, IdTokenValidator,
    Issuer, KeySource, SharedClock, Subject, SubjectToken, TrustedIssuers, ValidationError,
};
use idjag_idp::{SubjectPrincipal, SubjectTokenError, SubjectTokenValidator};
use serde_json::{Map, Value};

/// Where the principal's facts come from in an upstream ID token.
#[derive(Debug, Clone)]
pub(crate) struct ClaimMap {
    pub(crate) subject: String,
    pub(crate) groups: Option<String>,
    pub(crate) email: String,
    pub(crate) tenant: Option<String>,
    pub(crate) required: BTreeMap<String, String>,
}

/// The requesting clients' registrations at the upstream IdP.
#[derive(Clone, Default)]
pub(crate) struct UpstreamClients {
    /// Client id here -> client id at the upstream IdP.
    pub(crate) ids: BTreeMap<ClientId, String>,
    /// Client id here -> secret at the upstream IdP (refresh tokens only).
    pub(crate) secrets: BTreeMap<ClientId, ClientSecret>,
}

impl fmt::Debug for UpstreamClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClients")
            .field("ids", &self.ids)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Validates upstream ID tokens for the client that presents them.
#[derive(Debug)]
pub(crate) struct UpstreamIdTokens {
    issuer: Issuer,
    keys: Arc<dyn KeySource>,
    algorithms: AlgorithmSet,
    clock: SharedClock,
    leeway: Duration,
    max_age: Duration,
    claims: ClaimMap,
    clients: Arc<UpstreamClients>,
}

impl UpstreamIdTokens {
    #[allow(clippy::too_many_arguments, reason = "a constructor of plain settings")]
    pub(crate) fn new(
        issuer: Issuer,
        keys: Arc<dyn KeySource>,
        algorithms: AlgorithmSet,
        clock: SharedClock,
        leeway: Duration,
        max_age: Duration,
        claims: ClaimMap,
        clients: Arc<UpstreamClients>,
    ) -> Self {
        Self {
            issuer,
            keys,
            algorithms,
            clock,
            leeway,
            max_age,
            claims,
            clients,
        }
    }

    /// The client's id at the upstream IdP.
    fn upstream_id<'a>(&'a self, client: &'a AuthenticatedClient) -> &'a str {
        self.clients
            .ids
            .get(client.client_id())
            .map_or(client.client_id().as_str(), String::as_str)
    }

    /// Validates an upstream ID token issued to `client` and maps its claims.
    pub(crate) async fn principal(
        &self,
        token: &str,
        client: &AuthenticatedClient,
    ) -> Result<SubjectPrincipal, SubjectTokenError> {
        let audience =
            Audience::new(self.upstream_id(client)).map_err(|_| SubjectTokenError::OtherClient)?;
        let validator = IdTokenValidator::new(
            TrustedIssuers::new().with(self.issuer.clone(), self.keys.clone()),
            audience,
            self.algorithms,
            self.clock.clone(),
        )
        .with_leeway(self.leeway)
        .and_then(|v| v.with_max_age(self.max_age))
        .map_err(|_| SubjectTokenError::Refused {
            reason: "upstream_validator_config",
        })?;
        let verified = validator.validate_async(token).await.map_err(|e| match e {
            ValidationError::AudienceMismatch => SubjectTokenError::OtherClient,
            other => SubjectTokenError::Invalid(other),
        })?;
        map_claims(&self.claims, verified.into_claims())
    }
}

impl SubjectTokenValidator for UpstreamIdTokens {
    fn validate<'a>(
        &'a self,
        token: &'a SubjectToken,
        client: &'a AuthenticatedClient,
    ) -> BoxFuture<'a, Result<SubjectPrincipal, SubjectTokenError>> {
        Box::pin(self.principal(token.secret(), client))
    }
}

/// A claim by name: a registered one, or a dotted path into the other claims.
fn claim<'a>(
    claims: &'a IdTokenClaims,
    extra: &'a Map<String, Value>,
    name: &str,
) -> Option<Value> {
    match name {
        "sub" => Some(Value::from(claims.sub.as_str())),
        "email" => claims.email.clone().map(Value::from),
        "tenant" => claims.tenant.clone().map(Value::from),
        "groups" => claims.groups.clone().map(Value::from),
        "acr" => claims.acr.clone().map(Value::from),
        path => {
            let mut parts = path.split('.');
            let mut value = extra.get(parts.next()?)?;
            for part in parts {
                value = value.as_object()?.get(part)?;
            }
            Some(value.clone())
        }
    }
}

fn refused(reason: &'static str) -> SubjectTokenError {
    SubjectTokenError::Refused { reason }
}

/// The principal from verified upstream claims.
fn map_claims(
    map: &ClaimMap,
    claims: IdTokenClaims,
) -> Result<SubjectPrincipal, SubjectTokenError> {
    let extra = &claims.extra;
    for (name, expected) in &map.required {
        match claim(&claims, extra, name) {
            Some(Value::String(actual)) if actual == *expected => {}
            _ => return Err(refused("required_claim_mismatch")),
        }
    }
    let subject = match claim(&claims, extra, &map.subject) {
        Some(Value::String(s)) => Subject::new(s).map_err(|_| refused("subject_claim_invalid"))?,
        _ => return Err(refused("subject_claim_missing")),
    };
    let mut principal = SubjectPrincipal::new(subject);
    if let Some(groups_claim) = &map.groups {
        let overage = extra
            .get("_claim_names")
            .and_then(Value::as_object)
            .is_some_and(|names| names.contains_key(groups_claim.as_str()));
        if overage {
            return Err(refused("groups_overage"));
        }
        let groups = match claim(&claims, extra, groups_claim) {
            None => Vec::new(),
            Some(Value::String(one)) => vec![one],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(refused("groups_claim_invalid")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(refused("groups_claim_invalid")),
        };
        principal = principal.with_groups(groups);
    }
    if let Some(Value::String(email)) = claim(&claims, extra, &map.email) {
        principal = principal.with_email(email);
    }
    if let Some(tenant_claim) = &map.tenant
        && let Some(Value::String(tenant)) = claim(&claims, extra, tenant_claim)
    {
        principal = principal.with_tenant(tenant);
    }
    Ok(principal.with_authentication(claims.auth_time, claims.acr, claims.amr))
}

/// Upstream refresh tokens: redeemed at the upstream token endpoint for a fresh ID token.
#[derive(Debug)]
pub(crate) struct UpstreamRefreshTokens {
    id_tokens: Arc<UpstreamIdTokens>,
    token_endpoint: TokenEndpoint,
    scope: String,
    http: reqwest::Client,
}

/// The upstream token endpoint: configured, or read once from the discovery document.
#[derive(Debug)]
pub(crate) enum TokenEndpoint {
    Fixed(url::Url),
    Discover(tokio::sync::OnceCell<url::Url>),
}

/// The largest upstream token response read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

impl UpstreamRefreshTokens {
    pub(crate) fn new(
        id_tokens: Arc<UpstreamIdTokens>,
        token_endpoint: TokenEndpoint,
        scope: String,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            id_tokens,
            token_endpoint,
            scope,
            http,
        })
    }

    async fn endpoint(&self) -> Result<url::Url, SubjectTokenError> {
        match &self.token_endpoint {
            TokenEndpoint::Fixed(url) => Ok(url.clone()),
            TokenEndpoint::Discover(cell) => {
                cell.get_or_try_init(|| self.discover()).await.cloned()
            }
        }
    }

    async fn discover(&self) -> Result<url::Url, SubjectTokenError> {
        let issuer = self.id_tokens.issuer.as_str().trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let body = self.get_json(self.http.get(url)).await?;
        if body.get("issuer").and_then(Value::as_str) != Some(self.id_tokens.issuer.as_str()) {
            return Err(refused("upstream_metadata_issuer_mismatch"));
        }
        let endpoint = body
            .get("token_endpoint")
            .and_then(Value::as_str)
            .ok_or(SubjectTokenError::Unavailable)?;
        idjag_core::endpoint::check_endpoint(endpoint).map_err(|_| SubjectTokenError::Unavailable)
    }

    /// Sends `request`; a JSON object answer with its status.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Map<String, Value>), SubjectTokenError> {
        let mut response = request
            .send()
            .await
            .map_err(|_| SubjectTokenError::Unavailable)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| SubjectTokenError::Unavailable)?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(SubjectTokenError::Unavailable);
            }
            body.extend_from_slice(&chunk);
        }
        let json = idjag_core::jose::parse_object(&body, idjag_core::Segment::Payload)
            .map_err(|_| SubjectTokenError::Unavailable)?;
        Ok((status, json))
    }

    async fn get_json(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Map<String, Value>, SubjectTokenError> {
        match self.send(request).await? {
            (200, json) => Ok(json),
            _ => Err(SubjectTokenError::Unavailable),
        }
    }

    async fn redeem(
        &self,
        token: &SubjectToken,
        client: &AuthenticatedClient,
    ) -> Result<SubjectPrincipal, SubjectTokenError> {
        let secret = self
            .id_tokens
            .clients
            .secrets
            .get(client.client_id())
            .ok_or(refused("no_upstream_credentials"))?;
        let client_id = self.id_tokens.upstream_id(client).to_owned();
        let endpoint = self.endpoint().await?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token.secret()),
            ("scope", self.scope.as_str()),
        ];
        let request = self
            .http
            .post(endpoint)
            .basic_auth(form_encode(&client_id), Some(form_encode(secret.secret())))
            .form(&form);
        let (status, body) = self.send(request).await?;
        match status {
            200 => {}
            400 | 401 => return Err(SubjectTokenError::Unknown),
            _ => return Err(SubjectTokenError::Unavailable),
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(refused("upstream_refresh_without_id_token"))?;
        self.id_tokens.principal(id_token, client).await
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic authentication.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl SubjectTokenValidator for UpstreamRefreshTokens {
    fn validate<'a>(
        &'a self,
        token: &'a SubjectToken,
        client: &'a AuthenticatedClient,
    ) -> BoxFuture<'a, Result<SubjectPrincipal, SubjectTokenError>> {
        Box::pin(self.redeem(token, client))
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::NumericDate;
    use serde_json::json;

    use super::*;

    fn claims(extra: Value) -> IdTokenClaims {
        let mut claims = IdTokenClaims::new(
            Issuer::new("https://login.example/v2.0").unwrap(),
            Subject::new("pairwise-sub").unwrap(),
            Audience::new("app").unwrap(),
            NumericDate::from_unix(1).unwrap(),
            NumericDate::from_unix(2).unwrap(),
        );
        claims.extra = extra.as_object().unwrap().clone();
        claims
    }

    fn map(subject: &str, groups: Option<&str>) -> ClaimMap {
        ClaimMap {
            subject: subject.into(),
            groups: groups.map(Into::into),
            email: "email".into(),
            tenant: Some("tid".into()),
            required: BTreeMap::new(),
        }
    }

    #[test]
    fn entra_style_claims_map_to_the_principal() {
        let c = claims(json!({"oid": "5f1c", "tid": "72f9", "groups": ["g1", "g2"]}));
        let mut c2 = c.clone();
        c2.groups = Some(vec!["g1".into(), "g2".into()]);
        let principal = map_claims(&map("oid", Some("groups")), c2).unwrap();
        assert_eq!(principal.subject.as_str(), "5f1c");
        assert_eq!(principal.groups, ["g1", "g2"]);
        assert_eq!(principal.tenant.as_deref(), Some("72f9"));
    }

    #[test]
    fn group_overage_is_refused_not_read_as_no_groups() {
        let c = claims(json!({"_claim_names": {"groups": "src1"}, "_claim_sources": {}}));
        assert_eq!(
            map_claims(&map("sub", Some("groups")), c).unwrap_err(),
            SubjectTokenError::Refused {
                reason: "groups_overage"
            }
        );
    }

    #[test]
    fn nested_group_claims_required_claims_and_bad_shapes() {
        let c = claims(json!({"realm_access": {"roles": ["admin"]}, "hd": "acme.com"}));
        let mut m = map("sub", Some("realm_access.roles"));
        m.required.insert("hd".into(), "acme.com".into());
        let principal = map_claims(&m, c.clone()).unwrap();
        assert_eq!(principal.groups, ["admin"]);
        m.required.insert("hd".into(), "evil.com".into());
        assert_eq!(
            map_claims(&m, c).unwrap_err(),
            SubjectTokenError::Refused {
                reason: "required_claim_mismatch"
            }
        );
        let c = claims(json!({"roles": [1]}));
        assert_eq!(
            map_claims(&map("sub", Some("roles")), c).unwrap_err(),
            SubjectTokenError::Refused {
                reason: "groups_claim_invalid"
            }
        );
        let c = claims(json!({}));
        assert_eq!(
            map_claims(&map("oid", None), c).unwrap_err(),
            SubjectTokenError::Refused {
                reason: "subject_claim_missing"
            }
        );
    }
}
