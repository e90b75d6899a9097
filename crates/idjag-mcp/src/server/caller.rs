//! The verified caller inside rmcp handlers.
//!
//! rmcp's `StreamableHttpService` copies each HTTP request's `http::request::Parts` into the
//! MCP request's extensions; the bearer layer put the verified [`BearerPrincipal`] in those parts.

use std::ops::Deref;

use idjag_resource::rs::BearerPrincipal;
use rmcp::ErrorData;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::model::Extensions;
use rmcp::service::{RequestContext, RoleServer};

use crate::capability::EnterpriseManagedAuthorization;

/// The verified caller of an MCP request: the user (`sub`), the client (`client_id`) and the
/// scopes of their access token, as the resource authorization server issued it.
///
/// Take it as an argument of an rmcp `#[tool]` function, or read it from the request
/// context with [`Caller::from_context`]. A request that reached rmcp without passing the
/// bearer layer has no caller: the extractor then fails the request (fail closed).
///
/// ```
/// use idjag_mcp::server::Caller;
/// use rmcp::model::{CallToolResult, ContentBlock};
///
/// // Inside an rmcp `#[tool_router]` impl: `#[tool(description = "Who am I?")]`
/// async fn whoami(caller: Caller) -> Result<CallToolResult, rmcp::ErrorData> {
///     Ok(CallToolResult::success(vec![ContentBlock::text(format!(
///         "{} via {} with {}",
///         caller.subject(),
///         caller.client_id(),
///         caller.scope()
///     ))]))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Caller(pub BearerPrincipal);

impl Deref for Caller {
    type Target = BearerPrincipal;

    fn deref(&self) -> &BearerPrincipal {
        &self.0
    }
}

impl Caller {
    /// The caller of the request whose extensions these are.
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        extensions
            .get::<http::request::Parts>()?
            .extensions
            .get::<BearerPrincipal>()
            .cloned()
            .map(Self)
    }

    /// The caller of the request of `context`.
    pub fn from_context(context: &RequestContext<RoleServer>) -> Option<Self> {
        Self::from_extensions(&context.extensions)
    }

    /// The verified access-token claims.
    pub fn principal(&self) -> &BearerPrincipal {
        &self.0
    }
}

impl<C: AsRequestContext> FromContextPart<C> for Caller {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        Self::from_context(context.as_request_context()).ok_or_else(|| {
            ErrorData::internal_error("the request carries no verified caller", None)
        })
    }
}

/// Whether the client of this request declared the extension: in the request's `_meta`
/// (MCP 2026-07-28) or, failing that, in its `initialize` capabilities.
pub fn client_declares_enterprise_managed_authorization(
    context: &RequestContext<RoleServer>,
) -> bool {
    if let Some(capabilities) = context.meta.client_capabilities() {
        return capabilities.supports_enterprise_managed_authorization();
    }
    context.peer.peer_info().is_some_and(|info| {
        info.capabilities
            .supports_enterprise_managed_authorization()
    })
}
