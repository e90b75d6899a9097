//! Authorization down to the tool (threat G16).
//!
//! Per upstream, rules name who they apply to (users, teams, or everyone) and which tools
//! they allow and deny, by name or `*` pattern. For a caller:
//!
//! 1. the rules that apply are those naming the user, one of their teams, or everyone;
//! 2. no rule applies: the caller may not use this upstream at all (every method refused);
//! 3. a tool denied by any applying rule is refused (**deny wins**);
//! 4. otherwise a tool allowed by any applying rule is allowed; anything else is refused;
//! 5. an allowed tool that requires scopes (`[upstream.tools.<name>]`) needs every one of
//!    them in the inbound token's `scope`, else 403 `insufficient_scope`.
//!
//! Methods other than `tools/call` pass once step 2 does; `tools/list` answers are filtered
//! with [`Authorizer::tool_visible`]. The [`Authorizer`] trait receives the whole request
//! (arguments included) and returns a [`Decision`], so argument rules and approvals can be
//! added without changing the proxy.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use idjag_core::ScopeSet;
use serde::Serialize;
use serde_json::Value;

use crate::inbound::Identity;

/// A tool name or a pattern with `*` (any run of characters).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ToolPattern(String);

impl fmt::Debug for ToolPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl ToolPattern {
    /// A pattern: non-empty, at most 128 bytes, no control characters.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() || pattern.len() > 128 || pattern.chars().any(char::is_control) {
            return Err(format!("invalid tool pattern {pattern:?}"));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `tool` matches.
    pub fn matches(&self, tool: &str) -> bool {
        glob(self.0.as_bytes(), tool.as_bytes())
    }
}

/// `*` matches any run of bytes; everything else matches itself. Linear-time backtracking
/// over the last `*` only, so hostile names cannot blow up.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Who a rule applies to.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Subjects {
    /// Users (`sub`).
    pub users: Vec<String>,
    /// Teams.
    pub teams: Vec<String>,
    /// Everyone authenticated.
    pub everyone: bool,
}

impl Subjects {
    fn include(&self, identity: &Identity) -> bool {
        self.everyone
            || self.users.iter().any(|u| u == identity.user.as_str())
            || self.teams.iter().any(|t| identity.in_team(t))
    }
}

/// One access rule.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AccessRule {
    /// Who.
    pub subjects: Subjects,
    /// Tools allowed.
    pub allow: Vec<ToolPattern>,
    /// Tools denied.
    pub deny: Vec<ToolPattern>,
}

impl AccessRule {
    /// A rule for `subjects`.
    pub fn new(subjects: Subjects, allow: Vec<ToolPattern>, deny: Vec<ToolPattern>) -> Self {
        Self {
            subjects,
            allow,
            deny,
        }
    }
}

/// What is being asked: the request as the authorizer sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthzRequest<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The upstream's name.
    pub upstream: &'a str,
    /// The JSON-RPC method (`None` for a GET stream, a DELETE or a client response).
    pub method: Option<&'a str>,
    /// The tool of a `tools/call`.
    pub tool: Option<&'a str>,
    /// The tool's arguments.
    pub arguments: Option<&'a Value>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// No rule of this upstream applies to the caller.
    NoAccess,
    /// A rule that applies denies the tool.
    ToolDenied,
    /// No rule that applies allows the tool.
    ToolNotAllowed,
    /// The tool needs scopes the inbound token lacks; they are listed.
    InsufficientScope(ScopeSet),
}

impl DenyReason {
    /// A stable code for the audit log and the JSON-RPC error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoAccess => "no_access_to_upstream",
            Self::ToolDenied => "tool_denied",
            Self::ToolNotAllowed => "tool_not_allowed",
            Self::InsufficientScope(_) => "insufficient_scope",
        }
    }
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Forward the request.
    Allow,
    /// Refuse it.
    Deny(DenyReason),
}

/// Decides requests. See the [module docs](self).
pub trait Authorizer: fmt::Debug + Send + Sync {
    /// The decision for one request.
    fn decide(&self, request: &AuthzRequest<'_>) -> Decision;
    /// Whether `tool` appears in `tools/list` answers for `identity`.
    fn tool_visible(&self, identity: &Identity, upstream: &str, tool: &str) -> bool;
}

/// The rules of one upstream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpstreamRules {
    rules: Vec<AccessRule>,
    tool_scopes: BTreeMap<String, ScopeSet>,
}

impl UpstreamRules {
    /// Rules and per-tool scope requirements.
    pub fn new(rules: Vec<AccessRule>, tool_scopes: BTreeMap<String, ScopeSet>) -> Self {
        Self { rules, tool_scopes }
    }

    fn applying<'a>(&'a self, identity: &'a Identity) -> impl Iterator<Item = &'a AccessRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.subjects.include(identity))
    }

    fn tool_decision(&self, identity: &Identity, tool: &str) -> Decision {
        let mut any = false;
        let mut allowed = false;
        for rule in self.applying(identity) {
            any = true;
            if rule.deny.iter().any(|p| p.matches(tool)) {
                return Decision::Deny(DenyReason::ToolDenied);
            }
            allowed |= rule.allow.iter().any(|p| p.matches(tool));
        }
        match (any, allowed) {
            (false, _) => Decision::Deny(DenyReason::NoAccess),
            (true, false) => Decision::Deny(DenyReason::ToolNotAllowed),
            (true, true) => Decision::Allow,
        }
    }
}

/// The configured rules of every upstream.
#[derive(Debug, Clone, Default)]
pub struct RuleAuthorizer {
    upstreams: HashMap<String, UpstreamRules>,
}

impl RuleAuthorizer {
    /// No upstream yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an upstream's rules.
    pub fn with_upstream(mut self, name: impl Into<String>, rules: UpstreamRules) -> Self {
        self.upstreams.insert(name.into(), rules);
        self
    }
}

impl Authorizer for RuleAuthorizer {
    fn decide(&self, request: &AuthzRequest<'_>) -> Decision {
        let Some(rules) = self.upstreams.get(request.upstream) else {
            return Decision::Deny(DenyReason::NoAccess);
        };
        if rules.applying(request.identity).next().is_none() {
            return Decision::Deny(DenyReason::NoAccess);
        }
        let Some(tool) = request.tool else {
            return Decision::Allow;
        };
        match rules.tool_decision(request.identity, tool) {
            Decision::Allow => {}
            denied => return denied,
        }
        if let Some(required) = rules.tool_scopes.get(tool) {
            let held = request.identity.scope.clone().unwrap_or_default();
            if !required.is_subset(&held) {
                return Decision::Deny(DenyReason::InsufficientScope(required.clone()));
            }
        }
        Decision::Allow
    }

    fn tool_visible(&self, identity: &Identity, upstream: &str, tool: &str) -> bool {
        self.upstreams
            .get(upstream)
            .is_some_and(|rules| rules.tool_decision(identity, tool) == Decision::Allow)
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::{Audience, IdTokenClaims, Issuer, NumericDate, Subject};

    use super::*;
    use crate::inbound::TeamMap;

    fn patterns(list: &[&str]) -> Vec<ToolPattern> {
        list.iter().map(|p| ToolPattern::new(p).unwrap()).collect()
    }

    fn identity(user: &str, groups: &[&str]) -> Identity {
        let mut claims = IdTokenClaims::new(
            Issuer::new("https://idp.example").unwrap(),
            Subject::new(user).unwrap(),
            Audience::new("gw").unwrap(),
            NumericDate::from_unix(1).unwrap(),
            NumericDate::from_unix(2).unwrap(),
        );
        claims.groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
        TeamMap::new(
            [("eng", "engineering"), ("sales", "sales")]
                .iter()
                .map(|(g, t)| ((*g).to_owned(), vec![(*t).to_owned()]))
                .collect(),
            "groups",
        )
        .from_id_token(&claims)
        .unwrap()
    }

    fn authorizer() -> RuleAuthorizer {
        let rules = vec![
            AccessRule::new(
                Subjects {
                    teams: vec!["engineering".into()],
                    ..Subjects::default()
                },
                patterns(&["*"]),
                patterns(&["delete_*"]),
            ),
            AccessRule::new(
                Subjects {
                    teams: vec!["sales".into()],
                    ..Subjects::default()
                },
                patterns(&["list_notes", "search_*"]),
                vec![],
            ),
            AccessRule::new(
                Subjects {
                    users: vec!["alice".into()],
                    ..Subjects::default()
                },
                patterns(&["delete_note"]),
                vec![],
            ),
        ];
        let scopes = BTreeMap::from([(
            "admin_reset".to_owned(),
            ScopeSet::parse("notes.admin").unwrap(),
        )]);
        RuleAuthorizer::new().with_upstream("notes", UpstreamRules::new(rules, scopes))
    }

    fn call<'a>(identity: &'a Identity, tool: &'a str) -> AuthzRequest<'a> {
        AuthzRequest {
            identity,
            upstream: "notes",
            method: Some("tools/call"),
            tool: Some(tool),
            arguments: None,
        }
    }

    #[test]
    fn glob_patterns_match_names() {
        let p = |s| ToolPattern::new(s).unwrap();
        assert!(p("*").matches("anything"));
        assert!(p("delete_*").matches("delete_note"));
        assert!(!p("delete_*").matches("undelete_note"));
        assert!(p("*_note").matches("add_note"));
        assert!(p("a*b*c").matches("aXXbYYc"));
        assert!(!p("a*b*c").matches("aXXbYY"));
        assert!(p("list_notes").matches("list_notes"));
        assert!(!p("list_notes").matches("list_notes2"));
        assert!(!p(&"*a".repeat(30)).matches(&"a".repeat(5000).replace('a', "b")));
        assert_eq!(
            ToolPattern::new("").unwrap_err(),
            r#"invalid tool pattern """#
        );
        assert_eq!(
            ToolPattern::new("a\nb").unwrap_err(),
            r#"invalid tool pattern "a\nb""#
        );
    }

    #[test]
    fn a_team_rule_allows_its_tools() {
        let bob = identity("bob", &["sales"]);
        assert_eq!(
            authorizer().decide(&call(&bob, "list_notes")),
            Decision::Allow
        );
        assert_eq!(
            authorizer().decide(&call(&bob, "search_all")),
            Decision::Allow
        );
    }

    #[test]
    fn a_tool_no_rule_allows_is_refused() {
        let bob = identity("bob", &["sales"]);
        assert_eq!(
            authorizer().decide(&call(&bob, "add_note")),
            Decision::Deny(DenyReason::ToolNotAllowed)
        );
    }

    #[test]
    fn deny_wins_over_an_allow_of_another_rule() {
        // alice is in engineering (delete_* denied) and has a user rule allowing delete_note.
        let alice = identity("alice", &["eng"]);
        assert_eq!(
            authorizer().decide(&call(&alice, "delete_note")),
            Decision::Deny(DenyReason::ToolDenied)
        );
        assert_eq!(
            authorizer().decide(&call(&alice, "add_note")),
            Decision::Allow
        );
    }

    #[test]
    fn a_caller_no_rule_applies_to_gets_nothing_not_even_initialize() {
        let mallory = identity("mallory", &["unmapped"]);
        let initialize = AuthzRequest {
            identity: &mallory,
            upstream: "notes",
            method: Some("initialize"),
            tool: None,
            arguments: None,
        };
        assert_eq!(
            authorizer().decide(&initialize),
            Decision::Deny(DenyReason::NoAccess)
        );
        let other_upstream = AuthzRequest {
            upstream: "other",
            ..call(&mallory, "x")
        };
        assert_eq!(
            authorizer().decide(&other_upstream),
            Decision::Deny(DenyReason::NoAccess)
        );
    }

    #[test]
    fn tools_list_visibility_follows_the_same_rules() {
        let bob = identity("bob", &["sales"]);
        let a = authorizer();
        assert!(a.tool_visible(&bob, "notes", "list_notes"));
        assert!(!a.tool_visible(&bob, "notes", "add_note"));
        let alice = identity("alice", &["eng"]);
        assert!(!a.tool_visible(&alice, "notes", "delete_note"));
        assert!(!a.tool_visible(&alice, "other", "list_notes"));
    }

    #[test]
    fn g16_a_tool_needing_a_scope_the_token_lacks_is_refused_with_the_scope() {
        let mut alice = identity("alice", &["eng"]);
        assert_eq!(
            authorizer().decide(&call(&alice, "admin_reset")),
            Decision::Deny(DenyReason::InsufficientScope(
                ScopeSet::parse("notes.admin").unwrap()
            ))
        );
        alice.scope = Some(ScopeSet::parse("notes.read notes.admin").unwrap());
        assert_eq!(
            authorizer().decide(&call(&alice, "admin_reset")),
            Decision::Allow
        );
    }
}
