//! The server side: an rmcp `StreamableHttpService` mounted in axum behind idjag-resource's
//! access-token check, with per-tool scopes and the verified caller inside tool handlers.
//!
//! - [`McpAuth`]: the whole protection for one MCP server: [`McpAuth::router`] mounts the
//!   rmcp service at the resource's path behind the bearer layer and the tool-scope layer,
//!   beside the RFC 9728 metadata route; [`McpAuth::server_config`] allows the resource's
//!   host in rmcp's `Host` check.
//! - [`ToolScopes`] and [`ToolScopeLayer`]: `403 insufficient_scope` with the scopes needed,
//!   before rmcp runs the tool (requirement MCP-05).
//! - [`Caller`]: the user, client and scopes of the verified token, as a `#[tool]` argument.
//! - [`client_declares_enterprise_managed_authorization`]: whether the client declared the
//!   extension.

mod caller;
mod tool_scopes;

use std::sync::Arc;

use axum::Router;
use idjag_core::ScopeSet;
use idjag_resource::rs::{ProtectedResource, RequireBearerLayer};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

pub use caller::{Caller, client_declares_enterprise_managed_authorization};
pub use tool_scopes::{
    DEFAULT_MAX_BODY_BYTES, MalformedMessage, ToolScope, ToolScopeLayer, ToolScopes,
};

/// The authorization of one MCP server: its protected resource (the access-token verifier and
/// the RFC 9728 metadata, from idjag-resource), the scopes every request needs, and the scopes
/// each tool needs.
///
/// Requests go through, in order:
/// 1. idjag-resource's `RequireBearerLayer`: a valid access token for this resource from a
///    trusted authorization server, else `401` with
///    `WWW-Authenticate: Bearer resource_metadata="..."` (requirements MCP-03, MCP-04, MD-10); a
///    malformed `Authorization` header is `400`. The verified
///    [`BearerPrincipal`](idjag_resource::rs::BearerPrincipal) goes into the request extensions.
/// 2. [`ToolScopeLayer`]: for a `tools/call`, the tool's scopes, else
///    `403 insufficient_scope` with those scopes in the challenge.
/// 3. rmcp, which hands the request's `http::request::Parts` (with the principal) to the
///    handler, where [`Caller`] reads it.
#[derive(Debug, Clone)]
pub struct McpAuth {
    resource: Arc<ProtectedResource>,
    required: ScopeSet,
    tools: ToolScopes,
    max_body_bytes: usize,
}

impl McpAuth {
    /// The protection of `resource`, with no scope requirement yet.
    pub fn new(resource: ProtectedResource) -> Self {
        Self {
            resource: Arc::new(resource),
            required: ScopeSet::new(),
            tools: ToolScopes::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Every request needs `scope` (a `401` names it in its challenge, requirement MD-10).
    pub fn with_required_scope(mut self, scope: ScopeSet) -> Self {
        self.required = self.required.union(&scope);
        self
    }

    /// Calling `tool` needs `scope`.
    pub fn with_tool_scope(mut self, tool: impl Into<String>, scope: ScopeSet) -> Self {
        self.tools = self.tools.with(tool, scope);
        self
    }

    /// The largest `POST` body read by the tool-scope check (default 4 MiB, rmcp's own limit).
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max.max(1);
        self
    }

    /// The protected resource.
    pub fn protected_resource(&self) -> &Arc<ProtectedResource> {
        &self.resource
    }

    /// The tool requirements.
    pub fn tool_scopes(&self) -> &ToolScopes {
        &self.tools
    }

    /// The path of the resource URL, where the MCP service is mounted.
    pub fn path(&self) -> String {
        let path = self.resource_url().map(|u| u.path().to_owned());
        match path.as_deref() {
            None | Some("") => "/".to_owned(),
            Some(path) => path.to_owned(),
        }
    }

    fn resource_url(&self) -> Option<url::Url> {
        url::Url::parse(self.resource.verifier().resource().as_str()).ok()
    }

    /// The `Host` values rmcp should accept: the resource URL's authority. rmcp accepts only
    /// loopback hosts by default (DNS-rebinding protection, RUSTSEC-2026-0189), so a server
    /// reached under its real name needs this.
    pub fn allowed_hosts(&self) -> Vec<String> {
        let Some(url) = self.resource_url() else {
            return Vec::new();
        };
        let Some(host) = url.host_str() else {
            return Vec::new();
        };
        vec![match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }]
    }

    /// rmcp's default server settings, with [`Self::allowed_hosts`] and this body limit.
    pub fn server_config(&self) -> StreamableHttpServerConfig {
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(self.allowed_hosts())
            .with_max_request_body_bytes(self.max_body_bytes)
    }

    /// idjag-resource's access-token layer for this resource.
    pub fn bearer_layer(&self) -> RequireBearerLayer {
        RequireBearerLayer::new(self.resource.clone()).with_scopes(self.required.clone())
    }

    /// The per-tool scope layer.
    pub fn tool_scope_layer(&self) -> ToolScopeLayer {
        ToolScopeLayer::new(self.resource.clone(), self.tools.clone())
            .with_max_body_bytes(self.max_body_bytes)
    }

    /// An axum router: `service` at [`Self::path`] behind [`Self::bearer_layer`] and
    /// [`Self::tool_scope_layer`], and the RFC 9728 metadata document at its well-known path
    /// (unprotected, as clients read it before they have a token).
    pub fn router<S, M>(&self, service: StreamableHttpService<S, M>) -> Router
    where
        S: ServerHandler + Send + 'static,
        M: SessionManager,
    {
        Router::new()
            .route_service(&self.path(), service)
            .route_layer(self.tool_scope_layer())
            .route_layer(self.bearer_layer())
            .merge(self.resource.metadata_router())
    }
}
