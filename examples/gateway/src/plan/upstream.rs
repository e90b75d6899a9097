//! `[[upstream]]`, planned: each route's endpoint, transport, credential mode (secrets
//! read), access rules, tool scopes and guardrails.

use std::collections::{BTreeMap, BTreeSet};

use idjag_core::{Audience, Issuer, Resource, ScopeSet};
use serde::Serialize;
use serde::ser::SerializeMap;
use url::Url;

use crate::config::{ConfigError, CredentialConfig, InboundKind, UpstreamConfig, invalid};
use crate::plan::client::ClientPlan;
use crate::plan::environment::{SecretOrigin, SecretSource};
use crate::plan::{Planner, check_url};
use crate::policy::access::{AccessRule, Subjects, ToolPattern, UpstreamRules};
use crate::policy::approval::PolicyVersion;
use crate::policy::guardrails::ToolGuard;
use crate::upstream::Transport;
use crate::upstream::bridge::{
    HeaderTemplates, StaticCredential, TemplateCredential, check_bridge_header,
};

/// Longest route name.
pub const MAX_ROUTE_NAME: usize = 64;

/// One upstream MCP server and its route.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct UpstreamPlan {
    /// The route name (`/mcp/{name}`).
    pub name: String,
    /// Its MCP endpoint.
    pub url: Url,
    /// The route's resource identifier, `{public_url}/mcp/{name}`.
    pub resource: Audience,
    /// The route's RFC 9728 metadata URL.
    pub metadata_url: String,
    /// Its HTTP client setting.
    pub transport: Transport,
    /// How the gateway authenticates there.
    pub credential: CredentialPlan,
    /// Who may use which tools, and the scopes tools need.
    pub rules: UpstreamRules,
    /// Argument rules and approval per tool (tools without any are absent).
    pub guards: BTreeMap<String, ToolGuard>,
}

/// How the gateway authenticates to one upstream.
#[derive(Debug)]
#[non_exhaustive]
pub enum CredentialPlan {
    /// The ID-JAG flow.
    IdJag(IdJagPlan),
    /// OAuth client credentials.
    ClientCredentials(ClientCredentialsPlan),
    /// A static key.
    Static {
        /// The credential, its header set.
        credential: StaticCredential,
        /// Where the key was read from.
        origin: SecretOrigin,
    },
    /// Headers from templates.
    HeaderTemplate {
        /// The credential, its templates parsed.
        credential: TemplateCredential,
        /// Where `{secret}` was read from, when a template uses it.
        origin: Option<SecretOrigin>,
    },
    /// The caller's inbound token, as is.
    Passthrough,
}

/// What one ID-JAG upstream asks for.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct IdJagPlan {
    /// The upstream's authorization server.
    pub authorization_server: Issuer,
    /// Its token endpoint; `None`: from its metadata.
    pub token_endpoint: Option<Url>,
    /// The resource to ask for.
    pub resource: Resource,
    /// The scope to ask for.
    pub scope: ScopeSet,
    /// Whether the server redeems one ID-JAG more than once.
    pub id_jag_reuse: bool,
    /// The gateway's registration there.
    pub client: ClientPlan,
}

/// What one client-credentials upstream asks for.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ClientCredentialsPlan {
    /// The authorization server's issuer.
    pub authorization_server: Issuer,
    /// Its token endpoint.
    pub token_endpoint: Url,
    /// The scope to ask for, if any.
    pub scope: Option<ScopeSet>,
    /// An RFC 8707 resource, if any.
    pub resource: Option<Resource>,
    /// The gateway's registration there.
    pub client: ClientPlan,
}

impl CredentialPlan {
    /// The mode's name, as configured.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::IdJag(_) => "id_jag",
            Self::ClientCredentials(_) => "client_credentials",
            Self::Static { .. } => "static",
            Self::HeaderTemplate { .. } => "header_template",
            Self::Passthrough => "passthrough",
        }
    }
}

impl Serialize for CredentialPlan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("mode", self.mode())?;
        match self {
            Self::IdJag(plan) => map.serialize_entry("id_jag", plan)?,
            Self::ClientCredentials(plan) => map.serialize_entry("client_credentials", plan)?,
            Self::Static { credential, origin } => {
                map.serialize_entry("header", credential.header().as_str())?;
                map.serialize_entry("scheme", &credential.scheme())?;
                map.serialize_entry("secret", origin)?;
            }
            Self::HeaderTemplate { credential, origin } => {
                map.serialize_entry("headers", credential.templates())?;
                map.serialize_entry("secret", origin)?;
            }
            Self::Passthrough => {}
        }
        map.end()
    }
}

/// Whether `name` is a route name: `[A-Za-z0-9_-]{1,64}`.
pub fn is_route_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROUTE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What every upstream's plan needs from the rest of the configuration.
pub(crate) struct Context<'a> {
    pub(crate) public_url: &'a str,
    pub(crate) idp_issuer: &'a str,
    pub(crate) accept: &'a [InboundKind],
    pub(crate) admin: bool,
}

impl Planner<'_> {
    /// Every `[[upstream]]`, in order; names are unique.
    pub(crate) fn upstreams(
        &mut self,
        upstreams: &[UpstreamConfig],
        context: &Context<'_>,
    ) -> Result<Vec<UpstreamPlan>, ConfigError> {
        if upstreams.is_empty() {
            self.warn("upstream", "no upstream configured");
        }
        let mut names = BTreeSet::new();
        let mut plans = Vec::with_capacity(upstreams.len());
        for upstream in upstreams {
            let key = format!("upstream[{}]", upstream.name);
            if !is_route_name(&upstream.name) {
                return Err(invalid(&key, "name must match [A-Za-z0-9_-]{1,64}"));
            }
            if !names.insert(upstream.name.as_str()) {
                return Err(invalid(&key, "duplicate name"));
            }
            plans.push(self.upstream(&key, upstream, context)?);
        }
        Ok(plans)
    }

    fn upstream(
        &mut self,
        key: &str,
        upstream: &UpstreamConfig,
        context: &Context<'_>,
    ) -> Result<UpstreamPlan, ConfigError> {
        let url = check_url(&format!("{key}.url"), &upstream.url)?;
        if upstream.connect_timeout.0.is_zero() || upstream.read_timeout.0.is_zero() {
            return Err(invalid(key, "timeouts must be positive"));
        }
        let ckey = format!("{key}.credential");
        let credential = self.credential(&ckey, upstream, context)?;
        if upstream.access.is_empty() {
            self.warn(
                &format!("{key}.access"),
                "no access rule: every call is denied",
            );
        }
        let mut access = Vec::with_capacity(upstream.access.len());
        for (i, rule) in upstream.access.iter().enumerate() {
            let rkey = format!("{key}.access[{i}]");
            if !rule.everyone && rule.teams.is_empty() && rule.users.is_empty() {
                return Err(invalid(&rkey, "name teams, users or set everyone = true"));
            }
            let patterns = |list: &[String]| -> Result<Vec<ToolPattern>, ConfigError> {
                list.iter()
                    .map(|p| ToolPattern::new(p).map_err(|e| invalid(&rkey, e)))
                    .collect()
            };
            let allow = patterns(&rule.allow)?;
            let deny = patterns(&rule.deny)?;
            let subjects = Subjects {
                users: rule.users.clone(),
                teams: rule.teams.clone(),
                everyone: rule.everyone,
            };
            access.push(AccessRule::new(subjects, allow, deny));
        }
        let mut tool_scopes = BTreeMap::new();
        let mut guards = BTreeMap::new();
        for (tool, config) in &upstream.tools {
            let tkey = format!("{key}.tools.{tool}");
            let scopes = check_scopes(&tkey, &config.scopes)?;
            let guard = ToolGuard::from_config(config).map_err(|p| invalid(&tkey, p))?;
            if config.approval && !context.admin {
                self.warn(
                    &tkey,
                    "approval required but no [admin] API: calls can never be approved",
                );
            }
            if !scopes.is_empty() {
                if !context.accept.contains(&InboundKind::AccessToken) {
                    self.warn(
                        &tkey,
                        "needs scopes but inbound access tokens are not accepted: never callable",
                    );
                }
                tool_scopes.insert(tool.clone(), scopes);
            }
            if !guard.is_empty() {
                guards.insert(tool.clone(), guard);
            }
        }
        let rules = UpstreamRules::new(access, tool_scopes);
        let guards = policy_versions(key, upstream, &url, &credential, &rules, guards)?;
        let resource = Audience::new(format!("{}/mcp/{}", context.public_url, upstream.name))
            .map_err(|e| invalid(key, e.to_string()))?;
        Ok(UpstreamPlan {
            name: upstream.name.clone(),
            url,
            resource,
            metadata_url: format!(
                "{}/.well-known/oauth-protected-resource/mcp/{}",
                context.public_url, upstream.name
            ),
            transport: Transport::new(upstream.connect_timeout.0, upstream.read_timeout.0),
            credential,
            rules,
            guards,
        })
    }

    fn credential(
        &mut self,
        ckey: &str,
        upstream: &UpstreamConfig,
        context: &Context<'_>,
    ) -> Result<CredentialPlan, ConfigError> {
        Ok(match &upstream.credential {
            CredentialConfig::IdJag {
                authorization_server,
                token_endpoint,
                resource,
                scopes,
                client,
                id_jag_reuse,
            } => {
                let issuer = authorization_server_block(ckey, authorization_server)?;
                if authorization_server == context.idp_issuer {
                    return Err(invalid(ckey, "the authorization server cannot be the IdP"));
                }
                let token_endpoint = token_endpoint
                    .as_deref()
                    .map(|uri| check_url(&format!("{ckey}.token_endpoint"), uri))
                    .transpose()?;
                let resource = Resource::new(resource.as_deref().unwrap_or(&upstream.url))
                    .map_err(|e| invalid(format!("{ckey}.resource"), e.to_string()))?;
                let scope = check_scopes(&format!("{ckey}.scopes"), scopes)?;
                let client = self.client(&format!("{ckey}.client"), client)?;
                CredentialPlan::IdJag(IdJagPlan {
                    authorization_server: issuer,
                    token_endpoint,
                    resource,
                    scope,
                    id_jag_reuse: *id_jag_reuse,
                    client,
                })
            }
            CredentialConfig::ClientCredentials {
                authorization_server,
                token_endpoint,
                scopes,
                resource,
                client,
            } => {
                let issuer = authorization_server_block(ckey, authorization_server)?;
                let token_endpoint = check_url(&format!("{ckey}.token_endpoint"), token_endpoint)?;
                let scope = check_scopes(&format!("{ckey}.scopes"), scopes)?;
                let resource = resource
                    .as_deref()
                    .map(|r| {
                        Resource::new(r)
                            .map_err(|e| invalid(format!("{ckey}.resource"), e.to_string()))
                    })
                    .transpose()?;
                let client = self.client(&format!("{ckey}.client"), client)?;
                CredentialPlan::ClientCredentials(ClientCredentialsPlan {
                    authorization_server: issuer,
                    token_endpoint,
                    scope: (!scope.is_empty()).then_some(scope),
                    resource,
                    client,
                })
            }
            CredentialConfig::Static {
                header,
                scheme,
                secret_env,
                secret_file,
            } => {
                let source = SecretSource::secret(secret_env.as_ref(), secret_file.as_ref());
                source.check(ckey, true)?;
                let header = check_bridge_header(header)
                    .map_err(|p| invalid(format!("{ckey}.header"), p))?;
                if let Some(scheme) = scheme
                    && (scheme.is_empty()
                        || !scheme
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
                {
                    return Err(invalid(format!("{ckey}.scheme"), "not an auth scheme"));
                }
                let secret = source
                    .read(ckey, self.environment)?
                    .ok_or_else(|| invalid(ckey, "set secret_env or secret_file"))?;
                let credential = StaticCredential::new(header, scheme.as_deref(), secret.value())
                    .map_err(|p| invalid(ckey, p))?;
                CredentialPlan::Static {
                    credential,
                    origin: secret.origin().clone(),
                }
            }
            CredentialConfig::HeaderTemplate {
                headers,
                secret_env,
                secret_file,
            } => {
                let source = SecretSource::secret(secret_env.as_ref(), secret_file.as_ref());
                let templates = HeaderTemplates::parse(headers)
                    .map_err(|p| invalid(format!("{ckey}.headers"), p))?;
                let uses_secret = templates.uses_secret();
                source.check(ckey, uses_secret)?;
                if source.is_set() && !uses_secret {
                    return Err(invalid(
                        ckey,
                        "a secret is configured but no template uses {secret}",
                    ));
                }
                let secret = source.read(ckey, self.environment)?;
                let origin = secret.as_ref().map(|s| s.origin().clone());
                let credential =
                    TemplateCredential::new(templates, secret.map(|s| s.value().clone()));
                CredentialPlan::HeaderTemplate { credential, origin }
            }
            CredentialConfig::Passthrough {} => {
                self.warn(
                    ckey,
                    "passthrough: the caller's IdP token is sent to this upstream as is",
                );
                CredentialPlan::Passthrough
            }
        })
    }
}

/// Binds the approvals of each tool needing one to its planned policy: the SHA-256 of the
/// RFC 8785 form of the route (name, URL, credential mode), its access rules and tool scopes,
/// and the tool's guard. Any change to them holds the tool's calls anew.
fn policy_versions(
    key: &str,
    upstream: &UpstreamConfig,
    url: &Url,
    credential: &CredentialPlan,
    rules: &UpstreamRules,
    guards: BTreeMap<String, ToolGuard>,
) -> Result<BTreeMap<String, ToolGuard>, ConfigError> {
    let rules = serde_json::to_value(rules).map_err(|e| invalid(key, e.to_string()))?;
    guards
        .into_iter()
        .map(|(tool, guard)| {
            if !guard.needs_approval() {
                return Ok((tool, guard));
            }
            let policy = serde_json::json!({
                "upstream": upstream.name,
                "url": url.as_str(),
                "credential": credential.mode(),
                "rules": rules,
                "tool": tool,
                "guard": guard,
            });
            let version = PolicyVersion::of(&policy)
                .map_err(|e| invalid(format!("{key}.tools.{tool}"), e.to_string()))?;
            Ok((tool, guard.with_policy_version(version)))
        })
        .collect()
}

/// An upstream credential's `authorization_server`: a URL and an issuer identifier.
fn authorization_server_block(ckey: &str, value: &str) -> Result<Issuer, ConfigError> {
    check_url(&format!("{ckey}.authorization_server"), value)?;
    Issuer::new(value).map_err(|e| invalid(ckey, e.to_string()))
}

/// A list of scopes (empty: the empty set).
fn check_scopes(key: &str, scopes: &[String]) -> Result<ScopeSet, ConfigError> {
    ScopeSet::parse(&scopes.join(" ")).map_err(|e| invalid(key, e.to_string()))
}
