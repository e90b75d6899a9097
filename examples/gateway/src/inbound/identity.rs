//! Who is calling: the user, their teams and the agent, as resolved from a verified IdP
//! token ([`crate::inbound::teams`]).

use std::fmt;

use idjag_core::{Issuer, ScopeSet, Subject};
use sha2::{Digest, Sha256};

use crate::config::InboundKind;

/// A verified caller. Built only from verified claims; holds no token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The IdP (`iss`).
    pub issuer: Issuer,
    /// The user (`sub`).
    pub user: Subject,
    /// The gateway teams of the user's IdP groups, sorted.
    pub teams: Vec<String>,
    /// The agent: `azp` (ID token: the OIDC client the user signed in through, else its
    /// `aud`) or `client_id` (access tokens, the gateway's own: the MCP client's id).
    pub agent: Option<String>,
    /// The kind of token that proved it.
    pub kind: InboundKind,
    /// The token's audience.
    pub audience: String,
    /// The token's `scope` (access tokens only).
    pub scope: Option<ScopeSet>,
    /// The token's `exp` (Unix seconds).
    pub expires_at: i64,
    /// Gateway tokens from a browser sign-in: the id of that sign-in (`sid`), under which
    /// the gateway keeps the user's IdP tokens. Never a token.
    pub session: Option<String>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("issuer", &self.issuer.as_str())
            .field("user", &self.user.as_str())
            .field("teams", &self.teams)
            .field("agent", &self.agent)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A stable key for "this user at this IdP" (sessions are bound to it).
    pub fn principal_key(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.issuer.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(self.user.as_str().as_bytes());
        hasher.finalize().into()
    }

    /// Whether the user is in `team`.
    pub fn in_team(&self, team: &str) -> bool {
        self.teams
            .binary_search_by(|t| t.as_str().cmp(team))
            .is_ok()
    }
}

#[cfg(test)]
impl Identity {
    /// `user` of `https://idp.example` by an ID token for `gw`, through `agent` (unit tests).
    pub(crate) fn for_test(user: &str, agent: Option<&str>) -> Self {
        Self {
            issuer: Issuer::new("https://idp.example").unwrap(),
            user: Subject::new(user).unwrap(),
            teams: Vec::new(),
            agent: agent.map(str::to_owned),
            kind: InboundKind::IdToken,
            audience: "gw".to_owned(),
            scope: None,
            expires_at: 0,
            session: None,
        }
    }
}
