//! One upstream MCP server as the proxy sees it: where it is (a URL or a command), the route's resource
//! identifier, how the gateway authenticates there, its HTTP client and its tool guards.

use std::collections::BTreeMap;
use std::sync::Arc;

use idjag_core::Audience;
use url::Url;

use crate::policy::guardrails::ToolGuard;
use crate::upstream::credential::UpstreamCredential;
use crate::upstream::pool::SharedClient;
use crate::upstream::stdio::StdioUpstream;

/// One upstream route, `/mcp/{name}`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Upstream {
    /// The route name.
    pub name: String,
    /// Its MCP endpoint: a URL, or a command run over stdio.
    pub endpoint: Endpoint,
    /// The gateway route's resource identifier (`{public_url}/mcp/{name}`).
    pub resource: Audience,
    /// The route's RFC 9728 metadata URL.
    pub metadata_url: String,
    /// How the gateway authenticates there.
    pub credential: Arc<dyn UpstreamCredential>,
    /// The HTTP client of its transport setting (shared with routes of the same setting).
    pub http: SharedClient,
    /// Argument rules and approval, per tool (tools without any are absent).
    pub guards: BTreeMap<String, ToolGuard>,
}

/// Where an upstream's MCP server is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Endpoint {
    /// A Streamable HTTP endpoint.
    Http(Url),
    /// A command run as child processes, spoken to over MCP's stdio transport.
    Stdio(Arc<StdioUpstream>),
}
