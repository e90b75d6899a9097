//! The declarative policy, loaded from TOML. `examples/policy.toml` is a commented example.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use idjag_core::{Audience, BoxFuture, ClientId, Issuer, Resource, Scope, ScopeSet, Subject};
use serde::Deserialize;

use super::{Grant, Policy, PolicyDenial, PolicyRequest};
use crate::subject::SubjectPrincipal;

/// Why a policy file was refused. Policy files are configuration, not secrets, so messages
/// name the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyConfigError {
    /// The file could not be read.
    #[error("cannot read the policy file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not valid TOML for this schema (unknown keys are errors too).
    #[error("policy is not valid: {0}")]
    Toml(#[from] ::toml::de::Error),
    /// A rule names an audience no `[[audience]]` configures.
    #[error("{section}[{index}]: audience {audience} is not configured")]
    UnknownAudience {
        /// `allow`, `deny` or `step_up`.
        section: &'static str,
        /// The rule's position.
        index: usize,
        /// The audience named.
        audience: String,
    },
    /// Two audiences share an issuer or an alias.
    #[error("audience[{index}]: {name} is already used by another audience")]
    DuplicateAudience {
        /// The audience's position.
        index: usize,
        /// The repeated issuer or alias.
        name: String,
    },
    /// A rule names a resource its audience does not register.
    #[error("{section}[{index}]: resource {resource} is not registered for its audience")]
    UnregisteredResource {
        /// `allow` or `deny`.
        section: &'static str,
        /// The rule's position.
        index: usize,
        /// The resource named.
        resource: String,
    },
    /// A scope is not an RFC 6749 §3.3 scope token.
    #[error("{section}[{index}]: {value:?} is not a valid scope")]
    InvalidScope {
        /// The section.
        section: &'static str,
        /// The position.
        index: usize,
        /// The value.
        value: String,
    },
    /// An audience issuer is not an `https` URL (or `http` on loopback) without query or
    /// fragment (RFC 8414 §2).
    #[error("audience[{index}]: issuer {issuer} is not an https URL without query or fragment")]
    InvalidIssuer {
        /// The audience's position.
        index: usize,
        /// The issuer.
        issuer: String,
    },
    /// An allow rule names no client.
    #[error("allow[{index}]: clients must name at least one client (or \"*\")")]
    NoClients {
        /// The rule's position.
        index: usize,
    },
    /// A step-up rule requires nothing.
    #[error("step_up[{index}]: set acr_values, max_age or both")]
    EmptyStepUp {
        /// The rule's position.
        index: usize,
    },
    /// An audience refuses requests without `scope` yet names `default_scopes` for them.
    #[error("audience[{index}]: default_scopes are never used with absent_scope = \"refuse\"")]
    UnusedDefaultScopes {
        /// The audience's position.
        index: usize,
    },
}

/// What an audience does with a token-exchange request that has no `scope` (`absent_scope` in
/// `[[audience]]`). Either way the ID-JAG never goes out without a `scope` claim, which a
/// resource AS could fill with its own defaults (threat X23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AbsentScope {
    /// Grant the audience's `default_scopes` that the rules allow or, when there are none,
    /// every scope the covering rules allow, explicitly in the `scope` claim; `invalid_scope`
    /// when the rules allow no scope at all. The default.
    #[default]
    Allowed,
    /// Refuse the request (`invalid_scope`): clients must say what they want.
    Refuse,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default, rename = "audience")]
    audiences: Vec<AudienceFile>,
    #[serde(default)]
    allow: Vec<AllowFile>,
    #[serde(default)]
    deny: Vec<DenyFile>,
    #[serde(default)]
    step_up: Vec<StepUpFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AudienceFile {
    issuer: Issuer,
    #[serde(default)]
    aliases: Vec<Audience>,
    #[serde(default)]
    resources: Vec<Resource>,
    #[serde(default)]
    default_scopes: Option<Vec<String>>,
    #[serde(default)]
    absent_scope: AbsentScope,
    #[serde(default)]
    include_email: bool,
    #[serde(default)]
    client_ids: BTreeMap<ClientId, ClientId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    name: Option<String>,
    clients: Vec<String>,
    audience: Issuer,
    #[serde(default)]
    resources: Option<Vec<Resource>>,
    #[serde(default)]
    users: Option<Vec<Subject>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    authorization_detail_types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    clients: Option<Vec<ClientId>>,
    #[serde(default)]
    audience: Option<Issuer>,
    #[serde(default)]
    resources: Option<Vec<Resource>>,
    #[serde(default)]
    users: Option<Vec<Subject>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUpFile {
    #[serde(default)]
    audience: Option<Issuer>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    acr_values: Vec<String>,
    #[serde(default)]
    max_age: Option<u64>,
}

#[derive(Debug)]
struct AudienceRule {
    issuer: Issuer,
    resources: Vec<Resource>,
    default_scopes: Option<ScopeSet>,
    absent_scope: AbsentScope,
    include_email: bool,
    client_ids: HashMap<ClientId, ClientId>,
}

/// Which users a rule covers: everyone, or the listed subjects and group members.
#[derive(Debug)]
struct Users {
    subjects: Vec<Subject>,
    groups: Vec<String>,
    everyone: bool,
}

impl Users {
    fn new(users: Option<Vec<Subject>>, groups: Option<Vec<String>>) -> Self {
        Self {
            everyone: users.is_none() && groups.is_none(),
            subjects: users.unwrap_or_default(),
            groups: groups.unwrap_or_default(),
        }
    }

    fn cover(&self, principal: &SubjectPrincipal) -> bool {
        self.everyone
            || self.subjects.contains(&principal.subject)
            || principal.groups.iter().any(|g| self.groups.contains(g))
    }
}

#[derive(Debug)]
struct AllowRule {
    name: Option<String>,
    any_client: bool,
    clients: Vec<String>,
    audience: Issuer,
    resources: Option<Vec<Resource>>,
    users: Users,
    scopes: ScopeSet,
    detail_types: Vec<String>,
}

#[derive(Debug)]
struct DenyRule {
    name: Option<String>,
    clients: Option<Vec<ClientId>>,
    audience: Option<Issuer>,
    resources: Option<Vec<Resource>>,
    users: Users,
    scopes: Option<ScopeSet>,
}

#[derive(Debug)]
struct StepUpRule {
    audience: Option<Issuer>,
    scopes: Option<ScopeSet>,
    acr_values: Vec<String>,
    max_age: Option<u64>,
}

/// A declarative issuance policy (see `examples/policy.toml` in the crate for every option).
///
/// Evaluation, in order:
/// 1. `audience` resolves to one `[[audience]]` by its `issuer` or one of its `aliases`; the
///    ID-JAG `aud` is always the `issuer` (threat X10). The client needs an entry in
///    that audience's `client_ids`, which also gives its id there (ID-JAG -04 §5). Otherwise:
///    `invalid_target`.
/// 2. Every requested `resource` must be one of the audience's `resources`: the registered
///    (audience, resource) pairs of EMA §7.6.1 (`invalid_target`).
/// 3. Deny rules win: a matching `[[deny]]` without `scopes` refuses the request
///    (`access_denied`); with `scopes`, those scopes can never be granted.
/// 4. `[[allow]]` rules for this audience, client and user: none gives `access_denied`; none
///    that covers every requested resource gives `invalid_target`.
/// 5. The scope is narrowed to what the covering rules allow (and deny rules leave). Nothing
///    left gives `invalid_scope`. A request without `scope` gets, explicitly in the `scope`
///    claim, the audience's `default_scopes` narrowed the same way or, when none of those is
///    allowed (or the audience has none), every scope the rules allow; with nothing allowed,
///    or with `absent_scope = "refuse"`, it gets `invalid_scope` ([`AbsentScope`]). An
///    ID-JAG never leaves the scope to the resource AS's defaults (threat X23).
/// 6. Each authorization detail's `type` must be allowed by a covering rule
///    (`invalid_authorization_details`).
/// 7. `[[step_up]]` rules that apply to the audience and to a granted scope (or to a grant
///    without a scope claim, which leaves the scope to the resource AS) require a recent
///    (`max_age`) or strong (`acr_values`) login (`insufficient_user_authentication`).
///
/// ```
/// use idjag_idp::TomlPolicy;
/// let policy = TomlPolicy::from_toml_str(r#"
///     [[audience]]
///     issuer = "https://auth.chat.example"
///     resources = ["https://mcp.chat.example/mcp"]
///     client_ids = { "chat-agent" = "f53f191f9311af35" }
///
///     [[allow]]
///     clients = ["chat-agent"]
///     audience = "https://auth.chat.example"
///     scopes = ["chat.read"]
/// "#)?;
/// # Ok::<(), idjag_idp::PolicyConfigError>(())
/// ```
#[derive(Debug)]
pub struct TomlPolicy {
    audiences: Vec<AudienceRule>,
    names: HashMap<String, usize>,
    allow: Vec<AllowRule>,
    deny: Vec<DenyRule>,
    step_up: Vec<StepUpRule>,
}

fn scopes(
    values: Vec<String>,
    section: &'static str,
    index: usize,
) -> Result<ScopeSet, PolicyConfigError> {
    values
        .into_iter()
        .map(|value| {
            Scope::new(value.clone()).map_err(|_| PolicyConfigError::InvalidScope {
                section,
                index,
                value,
            })
        })
        .collect()
}

impl TomlPolicy {
    /// Reads a policy file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, PolicyConfigError> {
        Self::from_toml_str(&std::fs::read_to_string(path)?)
    }

    /// Parses and checks a policy.
    pub fn from_toml_str(toml: &str) -> Result<Self, PolicyConfigError> {
        let file: PolicyFile = ::toml::from_str(toml)?;
        let mut names = HashMap::new();
        let mut audiences = Vec::new();
        for (index, a) in file.audiences.into_iter().enumerate() {
            let url_ok = idjag_core::endpoint::check_endpoint(a.issuer.as_str())
                .is_ok_and(|url| url.query().is_none());
            if !url_ok {
                return Err(PolicyConfigError::InvalidIssuer {
                    index,
                    issuer: a.issuer.into_string(),
                });
            }
            let all_names = std::iter::once(a.issuer.as_str().to_owned())
                .chain(a.aliases.iter().map(|alias| alias.as_str().to_owned()));
            for name in all_names {
                if names.insert(name.clone(), index).is_some() {
                    return Err(PolicyConfigError::DuplicateAudience { index, name });
                }
            }
            if a.absent_scope == AbsentScope::Refuse && a.default_scopes.is_some() {
                return Err(PolicyConfigError::UnusedDefaultScopes { index });
            }
            audiences.push(AudienceRule {
                default_scopes: a
                    .default_scopes
                    .map(|s| scopes(s, "audience", index))
                    .transpose()?,
                absent_scope: a.absent_scope,
                issuer: a.issuer,
                resources: a.resources,
                include_email: a.include_email,
                client_ids: a.client_ids.into_iter().collect(),
            });
        }
        let mut policy = Self {
            audiences,
            names,
            allow: Vec::new(),
            deny: Vec::new(),
            step_up: Vec::new(),
        };
        for (index, a) in file.allow.into_iter().enumerate() {
            if a.clients.is_empty() {
                return Err(PolicyConfigError::NoClients { index });
            }
            policy.check_target("allow", index, &a.audience, a.resources.as_deref())?;
            policy.allow.push(AllowRule {
                name: a.name,
                any_client: a.clients.iter().any(|c| c == "*"),
                clients: a.clients,
                audience: a.audience,
                resources: a.resources,
                users: Users::new(a.users, a.groups),
                scopes: scopes(a.scopes, "allow", index)?,
                detail_types: a.authorization_detail_types,
            });
        }
        for (index, d) in file.deny.into_iter().enumerate() {
            if let Some(audience) = &d.audience {
                policy.check_target("deny", index, audience, d.resources.as_deref())?;
            }
            policy.deny.push(DenyRule {
                name: d.name,
                clients: d.clients,
                audience: d.audience,
                resources: d.resources,
                users: Users::new(d.users, d.groups),
                scopes: d.scopes.map(|s| scopes(s, "deny", index)).transpose()?,
            });
        }
        for (index, s) in file.step_up.into_iter().enumerate() {
            if s.acr_values.is_empty() && s.max_age.is_none() {
                return Err(PolicyConfigError::EmptyStepUp { index });
            }
            if let Some(audience) = &s.audience {
                policy.check_target("step_up", index, audience, None)?;
            }
            policy.step_up.push(StepUpRule {
                audience: s.audience,
                scopes: s.scopes.map(|v| scopes(v, "step_up", index)).transpose()?,
                acr_values: s.acr_values,
                max_age: s.max_age,
            });
        }
        Ok(policy)
    }

    /// Checks that a rule's audience is a configured issuer and its resources are registered.
    fn check_target(
        &self,
        section: &'static str,
        index: usize,
        audience: &Issuer,
        resources: Option<&[Resource]>,
    ) -> Result<(), PolicyConfigError> {
        let Some(configured) = self.audiences.iter().find(|a| &a.issuer == audience) else {
            return Err(PolicyConfigError::UnknownAudience {
                section,
                index,
                audience: audience.to_string(),
            });
        };
        match resources
            .unwrap_or_default()
            .iter()
            .find(|r| !configured.resources.contains(r))
        {
            Some(resource) => Err(PolicyConfigError::UnregisteredResource {
                section,
                index,
                resource: resource.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The rule names, for operators (rules without a name are left out).
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.allow
            .iter()
            .filter_map(|r| r.name.as_deref())
            .chain(self.deny.iter().filter_map(|r| r.name.as_deref()))
    }

    /// The decision, synchronously (the [`Policy`] implementation calls this).
    pub fn decide(&self, request: &PolicyRequest<'_>) -> Result<Grant, PolicyDenial> {
        let audience = self
            .names
            .get(request.audience.as_str())
            .map(|i| &self.audiences[*i])
            .ok_or(PolicyDenial::UnknownAudience)?;
        let client_id = audience
            .client_ids
            .get(request.client_id)
            .ok_or(PolicyDenial::UnknownAudience)?;
        if request
            .resources
            .iter()
            .any(|r| !audience.resources.contains(r))
        {
            return Err(PolicyDenial::ResourceNotRegistered);
        }

        let mut denied_scopes = ScopeSet::new();
        for rule in self
            .deny
            .iter()
            .filter(|d| d.matches(request, &audience.issuer))
        {
            match &rule.scopes {
                None => return Err(PolicyDenial::Denied),
                Some(scopes) => denied_scopes = denied_scopes.union(scopes),
            }
        }

        let candidates: Vec<&AllowRule> = self
            .allow
            .iter()
            .filter(|a| a.audience == audience.issuer && a.covers_caller(request))
            .collect();
        if candidates.is_empty() {
            return Err(PolicyDenial::NotAllowed);
        }
        let covering: Vec<&AllowRule> = candidates
            .into_iter()
            .filter(|a| a.covers_resources(request.resources))
            .collect();
        if covering.is_empty() {
            return Err(PolicyDenial::ResourceNotAllowed);
        }

        let allowed = covering
            .iter()
            .fold(ScopeSet::new(), |acc, a| acc.union(&a.scopes))
            .difference(&denied_scopes);
        let scope = match request.scope {
            Some(requested) => {
                let granted = requested.intersection(&allowed);
                if granted.is_empty() {
                    return Err(PolicyDenial::ScopeNotAllowed);
                }
                Some(granted)
            }
            // Never a scope-less grant: the resource AS would fill it with its defaults.
            None if audience.absent_scope == AbsentScope::Refuse => {
                return Err(PolicyDenial::ScopeNotAllowed);
            }
            None => {
                let defaults = audience
                    .default_scopes
                    .as_ref()
                    .map(|d| d.intersection(&allowed))
                    .filter(|s| !s.is_empty());
                let granted = defaults.unwrap_or_else(|| allowed.clone());
                if granted.is_empty() {
                    return Err(PolicyDenial::ScopeNotAllowed);
                }
                Some(granted)
            }
        };

        if let Some(details) = request.authorization_details
            && !details.iter().all(|d| {
                covering
                    .iter()
                    .any(|a| a.detail_types.iter().any(|t| t == d.kind()))
            })
        {
            return Err(PolicyDenial::AuthorizationDetailsNotAllowed);
        }

        for rule in &self.step_up {
            rule.check(request, &audience.issuer, scope.as_ref())?;
        }

        let mut grant = Grant::new(audience.issuer.clone(), client_id.clone())
            .with_resources(request.resources.to_vec());
        grant.scope = scope;
        grant.authorization_details = request.authorization_details.map(<[_]>::to_vec);
        grant.include_email = audience.include_email;
        Ok(grant)
    }
}

impl AllowRule {
    fn covers_caller(&self, request: &PolicyRequest<'_>) -> bool {
        (self.any_client || self.clients.iter().any(|c| c == request.client_id.as_str()))
            && self.users.cover(request.principal)
    }

    /// A rule restricted to some resources covers only requests naming some of them, all
    /// within the list; an unrestricted rule covers every request.
    fn covers_resources(&self, requested: &[Resource]) -> bool {
        match &self.resources {
            None => true,
            Some(allowed) => !requested.is_empty() && requested.iter().all(|r| allowed.contains(r)),
        }
    }
}

impl DenyRule {
    /// Every selector that is set must match. A request naming no resource matches a
    /// resource-restricted rule: the resource AS could bind it to any of its resources.
    fn matches(&self, request: &PolicyRequest<'_>, audience: &Issuer) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|c| c.contains(request.client_id))
            && self.audience.as_ref().is_none_or(|a| a == audience)
            && self.resources.as_ref().is_none_or(|listed| {
                request.resources.is_empty() || request.resources.iter().any(|r| listed.contains(r))
            })
            && self.users.cover(request.principal)
    }
}

impl StepUpRule {
    fn check(
        &self,
        request: &PolicyRequest<'_>,
        audience: &Issuer,
        granted: Option<&ScopeSet>,
    ) -> Result<(), PolicyDenial> {
        // A grant without a scope claim (from another `Policy`; TomlPolicy always names the
        // scope) would leave the scope to the resource AS, which could grant any of the rule's
        // scopes: the rule applies to it too.
        let applies = self.audience.as_ref().is_none_or(|a| a == audience)
            && self
                .scopes
                .as_ref()
                .is_none_or(|s| granted.is_none_or(|g| !g.intersection(s).is_empty()));
        if !applies {
            return Ok(());
        }
        let principal = request.principal;
        let acr_ok = self.acr_values.is_empty()
            || principal
                .acr
                .as_ref()
                .is_some_and(|acr| self.acr_values.contains(acr));
        let age_ok = self.max_age.is_none_or(|max_age| {
            principal.auth_time.is_some_and(|at| {
                let age = request.now.unix().saturating_sub(at.unix());
                age <= i64::try_from(max_age).unwrap_or(i64::MAX)
            })
        });
        if acr_ok && age_ok {
            Ok(())
        } else {
            Err(PolicyDenial::StepUp {
                max_age: self.max_age,
                acr_values: self.acr_values.clone(),
            })
        }
    }
}

impl Policy for TomlPolicy {
    fn evaluate<'a>(
        &'a self,
        request: &'a PolicyRequest<'a>,
    ) -> BoxFuture<'a, Result<Grant, PolicyDenial>> {
        Box::pin(std::future::ready(self.decide(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/policy.toml");
    const NOW: i64 = 1_700_000_000;

    struct Ask {
        client: ClientId,
        principal: SubjectPrincipal,
        audience: Audience,
        resources: Vec<Resource>,
        scope: Option<ScopeSet>,
    }

    fn ask(client: &str, user: &str, groups: &[&str], audience: &str) -> Ask {
        Ask {
            client: ClientId::new(client).unwrap(),
            principal: SubjectPrincipal::new(Subject::new(user).unwrap())
                .with_groups(groups.to_vec()),
            audience: Audience::new(audience).unwrap(),
            resources: Vec::new(),
            scope: None,
        }
    }

    impl Ask {
        fn resource(mut self, r: &str) -> Self {
            self.resources.push(Resource::new(r).unwrap());
            self
        }
        fn scope(mut self, s: &str) -> Self {
            self.scope = Some(ScopeSet::parse(s).unwrap());
            self
        }
        fn decide(&self, policy: &TomlPolicy) -> Result<Grant, PolicyDenial> {
            policy.decide(&PolicyRequest {
                client_id: &self.client,
                principal: &self.principal,
                audience: &self.audience,
                resources: &self.resources,
                scope: self.scope.as_ref(),
                authorization_details: None,
                now: idjag_core::NumericDate::from_unix(NOW).unwrap(),
            })
        }
    }

    const CHAT: &str = "https://auth.chat.example";
    const CHAT_MCP: &str = "https://mcp.chat.example/mcp";
    const CHAT_ADMIN: &str = "https://mcp.chat.example/admin";
    const MAIL: &str = "https://auth.mail.example";

    #[test]
    fn the_example_policy_parses_and_narrows_scopes() {
        let policy = TomlPolicy::from_toml_str(EXAMPLE).unwrap();
        assert_eq!(
            policy.rule_names().collect::<Vec<_>>(),
            [
                "chat-read",
                "chat-admin",
                "mail",
                "offboarded",
                "contractors-no-send"
            ]
        );
        let grant = ask("chat-agent", "alice", &["staff"], "urn:example:chat")
            .resource(CHAT_MCP)
            .scope("chat.read chat.admin")
            .decide(&policy)
            .unwrap();
        assert_eq!(grant.audience.as_str(), CHAT);
        assert_eq!(grant.client_id.as_str(), "f53f191f9311af35");
        assert_eq!(grant.resources, [Resource::new(CHAT_MCP).unwrap()]);
        assert_eq!(grant.scope.unwrap().to_string(), "chat.read");
        assert!(!grant.include_email);
    }

    #[test]
    fn deny_rules_win_over_allow_rules() {
        let policy = TomlPolicy::from_toml_str(EXAMPLE).unwrap();
        assert_eq!(
            ask("chat-agent", "mallory@example.com", &["staff"], CHAT)
                .resource(CHAT_MCP)
                .decide(&policy),
            Err(PolicyDenial::Denied)
        );
        let grant = ask("chat-agent", "bob", &["staff", "contractors"], MAIL)
            .scope("mail.read mail.send")
            .decide(&policy)
            .unwrap();
        assert_eq!(grant.scope.unwrap().to_string(), "mail.read");
        assert_eq!(
            ask("chat-agent", "bob", &["staff", "contractors"], MAIL)
                .scope("mail.send")
                .decide(&policy),
            Err(PolicyDenial::ScopeNotAllowed)
        );
    }

    #[test]
    fn audiences_clients_and_resources_must_be_configured() {
        let policy = TomlPolicy::from_toml_str(EXAMPLE).unwrap();
        let cases = [
            (
                ask(
                    "chat-agent",
                    "alice",
                    &["staff"],
                    "https://auth.chat.example/",
                ),
                PolicyDenial::UnknownAudience,
            ),
            (
                ask("unknown-client", "alice", &["staff"], CHAT),
                PolicyDenial::UnknownAudience,
            ),
            (
                ask("ops-console", "alice", &["staff"], MAIL),
                PolicyDenial::UnknownAudience,
            ),
            (
                ask("chat-agent", "alice", &["staff"], CHAT)
                    .resource("https://mcp.mail.example/mcp"),
                PolicyDenial::ResourceNotRegistered,
            ),
            (
                ask("chat-agent", "alice", &["staff"], CHAT).resource(CHAT_ADMIN),
                PolicyDenial::ResourceNotAllowed,
            ),
            // The chat-read rule is restricted to resources, so it does not cover a request
            // without one.
            (
                ask("chat-agent", "alice", &["staff"], CHAT),
                PolicyDenial::ResourceNotAllowed,
            ),
            (
                ask("chat-agent", "eve", &["visitors"], CHAT).resource(CHAT_MCP),
                PolicyDenial::NotAllowed,
            ),
        ];
        for (ask, expected) in cases {
            assert_eq!(ask.decide(&policy), Err(expected.clone()), "{expected:?}");
        }
    }

    #[test]
    fn default_scopes_apply_when_none_is_requested() {
        let policy = TomlPolicy::from_toml_str(EXAMPLE).unwrap();
        let grant = ask("chat-agent", "alice", &["staff"], CHAT)
            .resource(CHAT_MCP)
            .decide(&policy)
            .unwrap();
        assert_eq!(grant.scope.unwrap().to_string(), "chat.read");
        // Threat X23: the mail audience names no default scopes, so the grant carries every
        // scope the rules allow, explicitly (never a scope-less grant).
        let grant = ask("chat-agent", "alice", &["staff"], MAIL)
            .decide(&policy)
            .unwrap();
        assert_eq!(grant.scope.unwrap().to_string(), "mail.read mail.send");
    }

    #[test]
    fn x23_a_request_without_scope_gets_the_allowed_scopes_explicitly_or_is_refused() {
        let policy = |absent: &str, defaults: &str, allowed: &str| {
            TomlPolicy::from_toml_str(&format!(
                r#"
                [[audience]]
                issuer = "{CHAT}"
                resources = ["{CHAT_MCP}"]
                client_ids = {{ "chat-agent" = "f53f191f9311af35" }}
                {absent}
                {defaults}
                [[allow]]
                clients = ["chat-agent"]
                audience = "{CHAT}"
                scopes = [{allowed}]
                [[deny]]
                groups = ["contractors"]
                scopes = ["chat.history"]
                "#
            ))
            .unwrap()
        };
        let unscoped =
            |groups: &[&str]| ask("chat-agent", "alice", groups, CHAT).resource(CHAT_MCP);
        let scope = |p: &TomlPolicy, groups: &[&str]| {
            unscoped(groups)
                .decide(p)
                .map(|g| g.scope.map(|s| s.to_string()))
        };
        let both = r#""chat.read", "chat.history""#;
        // No defaults: every allowed scope, minus what deny rules take away.
        let p = policy("", "", both);
        assert_eq!(scope(&p, &[]), Ok(Some("chat.history chat.read".into())));
        assert_eq!(scope(&p, &["contractors"]), Ok(Some("chat.read".into())));
        // Defaults, narrowed to what is allowed; none of them allowed: every allowed scope.
        let p = policy(
            "",
            r#"default_scopes = ["chat.history", "chat.admin"]"#,
            both,
        );
        assert_eq!(scope(&p, &[]), Ok(Some("chat.history".into())));
        assert_eq!(scope(&p, &["contractors"]), Ok(Some("chat.read".into())));
        // Rules that allow no scope: refused, never a scope-less grant.
        let p = policy("", "", "");
        assert_eq!(scope(&p, &[]), Err(PolicyDenial::ScopeNotAllowed));
        let p = policy(r#"absent_scope = "allowed""#, "", r#""chat.history""#);
        assert_eq!(
            scope(&p, &["contractors"]),
            Err(PolicyDenial::ScopeNotAllowed)
        );
        // absent_scope = "refuse": clients must ask; asking still works.
        let p = policy(r#"absent_scope = "refuse""#, "", both);
        assert_eq!(scope(&p, &[]), Err(PolicyDenial::ScopeNotAllowed));
        assert_eq!(
            unscoped(&[])
                .scope("chat.read")
                .decide(&p)
                .map(|g| g.scope.map(|s| s.to_string())),
            Ok(Some("chat.read".into()))
        );
        // Defaults that could never be used are a configuration error.
        let error = TomlPolicy::from_toml_str(&format!(
            "[[audience]]\nissuer = \"{CHAT}\"\nabsent_scope = \"refuse\"\ndefault_scopes = [\"a\"]"
        ))
        .unwrap_err();
        assert!(
            matches!(error, PolicyConfigError::UnusedDefaultScopes { index: 0 }),
            "{error}"
        );
        assert!(
            TomlPolicy::from_toml_str(&format!(
                "[[audience]]\nissuer = \"{CHAT}\"\nabsent_scope = \"sometimes\""
            ))
            .is_err()
        );
    }

    #[test]
    fn step_up_rules_check_acr_and_age() {
        let policy = TomlPolicy::from_toml_str(EXAMPLE).unwrap();
        let admin = || {
            ask("ops-console", "admin@example.com", &[], CHAT)
                .resource(CHAT_ADMIN)
                .scope("chat.admin")
        };
        let step_up = Err(PolicyDenial::StepUp {
            max_age: Some(300),
            acr_values: vec!["urn:example:acr:mfa".into()],
        });
        assert_eq!(admin().decide(&policy), step_up);
        let mut fresh_mfa = admin();
        fresh_mfa.principal = fresh_mfa.principal.with_authentication(
            idjag_core::NumericDate::from_unix(NOW - 300),
            Some("urn:example:acr:mfa".into()),
            None,
        );
        assert_eq!(
            fresh_mfa
                .decide(&policy)
                .unwrap()
                .scope
                .unwrap()
                .to_string(),
            "chat.admin"
        );
        let mut stale = admin();
        stale.principal = stale.principal.with_authentication(
            idjag_core::NumericDate::from_unix(NOW - 301),
            Some("urn:example:acr:mfa".into()),
            None,
        );
        assert_eq!(stale.decide(&policy), step_up);
        // Without a scope claim the resource AS could grant chat.admin: the rule applies.
        let mut unscoped = fresh_mfa;
        unscoped.scope = None;
        unscoped.principal.acr = None;
        assert_eq!(unscoped.decide(&policy), step_up);
    }

    #[test]
    fn invalid_policies_are_refused_with_the_reason() {
        let audience = r#"
            [[audience]]
            issuer = "https://as.example"
            resources = ["https://rs.example"]
        "#;
        let cases: [(&str, &str); 10] = [
            (
                "[[audience]]\nissuer = \"https://as.example\"\ncolour = \"red\"",
                "unknown field",
            ),
            (
                "[[allow]]\nclients = [\"c\"]\naudience = \"https://other.example\"",
                "is not configured",
            ),
            (
                "[[allow]]\nclients = []\naudience = \"https://as.example\"",
                "at least one client",
            ),
            (
                "[[allow]]\nclients = [\"c\"]\naudience = \"https://as.example\"\nresources = [\"https://x.example\"]",
                "is not registered",
            ),
            (
                "[[allow]]\nclients = [\"c\"]\naudience = \"https://as.example\"\nscopes = [\"a b\"]",
                "not a valid scope",
            ),
            (
                "[[step_up]]\naudience = \"https://as.example\"",
                "acr_values, max_age",
            ),
            (
                "[[audience]]\nissuer = \"https://b.example\"\naliases = [\"https://as.example\"]",
                "already used",
            ),
            (
                "[[audience]]\nissuer = \"https://as.example/#frag\"",
                "is not an https URL",
            ),
            (
                "[[audience]]\nissuer = \"http://as.example\"",
                "is not an https URL",
            ),
            (
                "[[audience]]\nissuer = \"https://as.example/?q=1\"",
                "is not an https URL",
            ),
        ];
        for (extra, message) in cases {
            let error = TomlPolicy::from_toml_str(&format!("{audience}\n{extra}")).unwrap_err();
            assert!(error.to_string().contains(message), "{extra}: {error}");
        }
        assert!(TomlPolicy::from_toml_str(&format!(
            "{audience}\n[[audience]]\nissuer = \"https://b.example\"\nresources = [\"not a uri\"]"
        ))
        .is_err());
    }
}
