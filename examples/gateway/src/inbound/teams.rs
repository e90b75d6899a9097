//! IdP groups → gateway teams (`[teams]`), and the [`Identity`] of a verified token.

use std::collections::BTreeMap;

use idjag_core::{AccessTokenClaims, IdTokenClaims, Issuer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::InboundKind;
use crate::inbound::identity::Identity;

/// Most groups read from a token; the rest are ignored.
pub const MAX_GROUPS: usize = 256;

/// IdP groups → gateway teams (`[teams]` in the configuration). Groups without an entry give
/// no team.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TeamMap {
    groups: BTreeMap<String, Vec<String>>,
    claim: String,
}

impl TeamMap {
    /// A map reading groups from `claim`.
    pub fn new(groups: BTreeMap<String, Vec<String>>, claim: impl Into<String>) -> Self {
        Self {
            groups,
            claim: claim.into(),
        }
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

    fn groups_from(&self, parsed: Option<&Vec<String>>, extra: &Map<String, Value>) -> Vec<String> {
        if self.claim == "groups"
            && let Some(groups) = parsed
        {
            return groups.iter().take(MAX_GROUPS).cloned().collect();
        }
        match extra.get(&self.claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .take(MAX_GROUPS)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        }
    }

    /// The identity of a verified ID token.
    pub fn from_id_token(&self, claims: &IdTokenClaims) -> Identity {
        let groups = self.groups_from(claims.groups.as_ref(), &claims.extra);
        Identity {
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
        }
    }

    /// The identity of a verified access token.
    pub fn from_access_token(&self, claims: &AccessTokenClaims) -> Identity {
        let groups = self.groups_from(None, &claims.extra);
        Identity {
            issuer: claims.iss.clone(),
            user: claims.sub.clone(),
            teams: self.teams(&groups),
            agent: Some(claims.client_id.as_str().to_owned()),
            kind: InboundKind::AccessToken,
            audience: claims.aud.as_str().to_owned(),
            scope: claims.scope.clone(),
            expires_at: claims.exp.unix(),
            session: None,
        }
    }

    /// The identity of a verified gateway access token: the user (`sub`) at `idp` with the
    /// teams of the IdP groups copied into the token (`groups`, from the user's stored IdP
    /// claims at sign-in and at each refresh), the MCP client as the agent, and the sign-in
    /// (`sid`) whose IdP tokens serve ID-JAG upstreams.
    pub fn from_gateway_token(&self, claims: &AccessTokenClaims, idp: &Issuer) -> Identity {
        let groups: Vec<String> = match claims.extra.get("groups") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .take(MAX_GROUPS)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        Identity {
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
        }
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
        let identity = map().from_id_token(&claims);
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
            map().from_id_token(&claims).agent.as_deref(),
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
        let identity = map().from_access_token(&access);
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
            teams.from_id_token(&claims).teams,
            ["engineering", "oncall"]
        );
        claims
            .extra
            .insert("roles".into(), serde_json::json!(["eng-all", 7]));
        assert_eq!(teams.from_id_token(&claims).teams, ["engineering"]);
    }

    #[test]
    fn the_principal_key_separates_issuer_and_subject() {
        let a = map().from_id_token(&id_token());
        let mut other = id_token();
        other.iss = Issuer::new("https://idp.examplea").unwrap();
        other.sub = Subject::new("lice").unwrap();
        assert_ne!(
            a.principal_key(),
            map().from_id_token(&other).principal_key()
        );
    }
}
