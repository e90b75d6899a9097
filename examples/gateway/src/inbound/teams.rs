//! IdP groups → gateway teams (`[teams]`), and the [`Identity`] of a verified token.

use std::collections::BTreeMap;

use idjag_core::{AccessTokenClaims, IdTokenClaims, Issuer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::InboundKind;
use crate::inbound::identity::Identity;

/// Most groups a token may carry by default (`[inbound] max_groups`).
pub const DEFAULT_MAX_GROUPS: usize = 256;

/// Why a verified token's groups cannot be used: the token is refused rather than its groups
/// cut short or guessed, because a group left out could be the one a deny rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupsError {
    /// The IdP replaced the groups by an overage marker: Microsoft Entra ID's
    /// `_claim_names`/`_claim_sources` naming the groups claim (more than 200 groups in a
    /// JWT), or `hasgroups: true`.
    #[error("the groups claim is an overage marker: the IdP left the groups out")]
    Overage,
    /// More groups than `[inbound] max_groups`.
    #[error("the token carries {count} groups, more than the {max} allowed")]
    OverCap {
        /// Groups in the token.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The groups claim is neither a string nor an array of strings.
    #[error("the groups claim is not a string or an array of strings")]
    Malformed,
}

impl GroupsError {
    /// The audit reason code.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Overage => "groups_overage",
            Self::OverCap { .. } => "groups_over_cap",
            Self::Malformed => "groups_malformed",
        }
    }
}

/// IdP groups → gateway teams (`[teams]` in the configuration). Groups without an entry give
/// no team. Every group of a token is mapped; a token with more than `max_groups`, or whose
/// groups the IdP replaced by an overage marker, is refused ([`GroupsError`]).
#[derive(Debug, Clone, Serialize)]
pub struct TeamMap {
    groups: BTreeMap<String, Vec<String>>,
    claim: String,
    max_groups: usize,
}

impl Default for TeamMap {
    fn default() -> Self {
        Self::new(BTreeMap::new(), "groups")
    }
}

impl TeamMap {
    /// A map reading groups from `claim`, at most [`DEFAULT_MAX_GROUPS`] of them.
    pub fn new(groups: BTreeMap<String, Vec<String>>, claim: impl Into<String>) -> Self {
        Self {
            groups,
            claim: claim.into(),
            max_groups: DEFAULT_MAX_GROUPS,
        }
    }

    /// At most `max` groups per token.
    pub fn with_max_groups(mut self, max: usize) -> Self {
        self.max_groups = max;
        self
    }

    /// The claim holding the user's groups.
    pub fn claim(&self) -> &str {
        &self.claim
    }

    fn teams(&self, groups: &[String]) -> Vec<String> {
        let mut teams: Vec<String> = groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .flatten()
            .cloned()
            .collect();
        teams.sort();
        teams.dedup();
        teams
    }

    /// Whether the token says its groups were left out (Entra ID's overage indication).
    fn overage(&self, extra: &Map<String, Value>) -> bool {
        let named = extra
            .get("_claim_names")
            .and_then(Value::as_object)
            .is_some_and(|names| names.contains_key(&self.claim));
        let has_groups =
            self.claim == "groups" && extra.get("hasgroups") == Some(&Value::Bool(true));
        named || has_groups
    }

    fn groups_from(
        &self,
        parsed: Option<&Vec<String>>,
        extra: &Map<String, Value>,
    ) -> Result<Vec<String>, GroupsError> {
        if self.overage(extra) {
            return Err(GroupsError::Overage);
        }
        let groups = match (self.claim == "groups", parsed, extra.get(&self.claim)) {
            (true, Some(groups), _) => groups.clone(),
            (_, _, None) => Vec::new(),
            (_, _, Some(Value::String(one))) => vec![one.clone()],
            (_, _, Some(Value::Array(items))) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(GroupsError::Malformed)?,
            (_, _, Some(_)) => return Err(GroupsError::Malformed),
        };
        if groups.len() > self.max_groups {
            return Err(GroupsError::OverCap {
                count: groups.len(),
                max: self.max_groups,
            });
        }
        Ok(groups)
    }

    /// The groups of a verified ID token (the gateway's authorization server copies them into
    /// its own tokens).
    pub fn groups_of_id_token(&self, claims: &IdTokenClaims) -> Result<Vec<String>, GroupsError> {
        self.groups_from(claims.groups.as_ref(), &claims.extra)
    }

    /// The identity of a verified ID token.
    pub fn from_id_token(&self, claims: &IdTokenClaims) -> Result<Identity, GroupsError> {
        let groups = self.groups_from(claims.groups.as_ref(), &claims.extra)?;
        Ok(Identity {
            issuer: claims.iss.clone(),
            user: claims.sub.clone(),
            teams: self.teams(&groups),
            agent: Some(
                claims
                    .azp
                    .as_ref()
                    .map_or_else(|| claims.aud.as_str().to_owned(), |a| a.as_str().to_owned()),
            ),
            kind: InboundKind::IdToken,
            audience: claims.aud.as_str().to_owned(),
            scope: None,
            expires_at: claims.exp.unix(),
            session: None,
        })
    }

    /// The identity of a verified access token.
    pub fn from_access_token(&self, claims: &AccessTokenClaims) -> Result<Identity, GroupsError> {
        let groups = self.groups_from(None, &claims.extra)?;
        Ok(Identity {
            issuer: claims.iss.clone(),
            user: claims.sub.clone(),
            teams: self.teams(&groups),
            agent: Some(claims.client_id.as_str().to_owned()),
            kind: InboundKind::AccessToken,
            audience: claims.aud.as_str().to_owned(),
            scope: claims.scope.clone(),
            expires_at: claims.exp.unix(),
            session: None,
        })
    }

    /// The identity of a verified gateway access token: the user (`sub`) at `idp` with the
    /// teams of the IdP groups copied into the token (`groups`, from the user's stored IdP
    /// claims at sign-in and at each refresh), the MCP client as the agent, and the sign-in
    /// (`sid`) whose IdP tokens serve ID-JAG upstreams. The gateway wrote `groups` itself;
    /// they are held to the same rules as an IdP's ([`GroupsError`]).
    pub fn from_gateway_token(
        &self,
        claims: &AccessTokenClaims,
        idp: &Issuer,
    ) -> Result<Identity, GroupsError> {
        let groups: Vec<String> = match claims.extra.get("groups") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(GroupsError::Malformed)?,
            Some(_) => return Err(GroupsError::Malformed),
        };
        if groups.len() > self.max_groups {
            return Err(GroupsError::OverCap {
                count: groups.len(),
                max: self.max_groups,
            });
        }
        Ok(Identity {
            issuer: idp.clone(),
            user: claims.sub.clone(),
            teams: self.teams(&groups),
            agent: Some(claims.client_id.as_str().to_owned()),
            kind: InboundKind::GatewayToken,
            audience: claims.aud.as_str().to_owned(),
            scope: claims.scope.clone(),
            expires_at: claims.exp.unix(),
            session: claims
                .extra
                .get("sid")
                .and_then(Value::as_str)
                .filter(|sid| !sid.is_empty() && sid.len() <= 128)
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::{Audience, ClientId, Issuer, NumericDate, Subject};

    use super::*;

    fn map() -> TeamMap {
        TeamMap::new(
            BTreeMap::from([
                ("eng-all".to_owned(), vec!["engineering".to_owned()]),
                (
                    "sre".to_owned(),
                    vec!["engineering".to_owned(), "oncall".to_owned()],
                ),
            ]),
            "groups",
        )
    }

    fn id_token() -> IdTokenClaims {
        IdTokenClaims::new(
            Issuer::new("https://idp.example").unwrap(),
            Subject::new("alice").unwrap(),
            Audience::new("gateway").unwrap(),
            NumericDate::from_unix(1).unwrap(),
            NumericDate::from_unix(100).unwrap(),
        )
    }

    #[test]
    fn teams_come_from_mapped_groups_sorted_and_deduplicated() {
        let mut claims = id_token();
        claims.groups = Some(vec!["sre".into(), "eng-all".into(), "unmapped".into()]);
        let identity = map().from_id_token(&claims).unwrap();
        assert_eq!(identity.teams, ["engineering", "oncall"]);
        assert!(identity.in_team("oncall"));
        assert!(!identity.in_team("unmapped"));
        assert_eq!(identity.agent.as_deref(), Some("gateway"));
        assert_eq!(identity.expires_at, 100);
    }

    #[test]
    fn the_agent_is_azp_then_client_id() {
        let mut claims = id_token();
        claims.azp = Some(ClientId::new("gateway").unwrap());
        assert_eq!(
            map().from_id_token(&claims).unwrap().agent.as_deref(),
            Some("gateway")
        );
        let access = AccessTokenClaims::new(
            Issuer::new("https://idp.example").unwrap(),
            Subject::new("alice").unwrap(),
            Audience::new("https://gw.example/mcp/notes").unwrap(),
            ClientId::new("chat-agent").unwrap(),
            idjag_core::Jti::new("j").unwrap(),
            NumericDate::from_unix(1).unwrap(),
            NumericDate::from_unix(100).unwrap(),
        );
        let identity = map().from_access_token(&access).unwrap();
        assert_eq!(identity.agent.as_deref(), Some("chat-agent"));
        assert_eq!(identity.kind, InboundKind::AccessToken);
    }

    #[test]
    fn a_custom_groups_claim_is_read_as_an_array_or_a_string() {
        let teams = TeamMap::new(map().groups, "roles");
        let mut claims = id_token();
        claims.groups = Some(vec!["eng-all".into()]);
        claims.extra.insert("roles".into(), Value::from("sre"));
        assert_eq!(
            teams.from_id_token(&claims).unwrap().teams,
            ["engineering", "oncall"]
        );
        claims
            .extra
            .insert("roles".into(), serde_json::json!(["eng-all", "sre"]));
        assert_eq!(
            teams.from_id_token(&claims).unwrap().teams,
            ["engineering", "oncall"]
        );
        // A group that is not a string is not skipped: the token is refused.
        claims
            .extra
            .insert("roles".into(), serde_json::json!(["eng-all", 7]));
        assert_eq!(teams.from_id_token(&claims), Err(GroupsError::Malformed));
    }

    #[test]
    fn the_principal_key_separates_issuer_and_subject() {
        let a = map().from_id_token(&id_token()).unwrap();
        let mut other = id_token();
        other.iss = Issuer::new("https://idp.examplea").unwrap();
        other.sub = Subject::new("lice").unwrap();
        assert_ne!(
            a.principal_key(),
            map().from_id_token(&other).unwrap().principal_key()
        );
    }

    #[test]
    fn every_group_is_mapped_and_a_token_over_the_cap_is_refused_not_cut() {
        // The mapped group comes last: it is not dropped by a cap applied before mapping.
        let mut claims = id_token();
        let mut groups: Vec<String> = (0..255).map(|i| format!("g{i}")).collect();
        groups.push("sre".into());
        claims.groups = Some(groups.clone());
        assert_eq!(
            map().from_id_token(&claims).unwrap().teams,
            ["engineering", "oncall"]
        );
        groups.push("one-too-many".into());
        claims.groups = Some(groups);
        assert_eq!(
            map().from_id_token(&claims),
            Err(GroupsError::OverCap {
                count: 257,
                max: 256
            })
        );
        assert_eq!(
            map()
                .with_max_groups(300)
                .from_id_token(&claims)
                .unwrap()
                .teams,
            ["engineering", "oncall"]
        );
    }

    #[test]
    fn entra_overage_markers_are_refused() {
        let mut claims = id_token();
        claims
            .extra
            .insert("_claim_names".into(), serde_json::json!({"groups": "src1"}));
        claims.extra.insert(
            "_claim_sources".into(),
            serde_json::json!({"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}),
        );
        let refused = map().from_id_token(&claims).unwrap_err();
        assert_eq!(refused, GroupsError::Overage);
        assert_eq!(refused.reason_code(), "groups_overage");
        let mut claims = id_token();
        claims.extra.insert("hasgroups".into(), Value::Bool(true));
        assert_eq!(map().from_id_token(&claims), Err(GroupsError::Overage));
        // Another claim's overage says nothing about the groups.
        let mut claims = id_token();
        claims
            .extra
            .insert("_claim_names".into(), serde_json::json!({"roles": "src1"}));
        assert!(map().from_id_token(&claims).is_ok());
    }
}
