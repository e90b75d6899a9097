//! The tools of the examples' MCP server (`protected_server`, `mcp_server`): `whoami` and
//! `delete_repo`, answering with the verified caller.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

use idjag_mcp::EnterpriseManagedAuthorization;
use idjag_mcp::server::Caller;

#[derive(Clone)]
pub(crate) struct Repo {
    #[allow(dead_code, reason = "read by the code #[tool_handler] generates")]
    tool_router: ToolRouter<Self>,
}

impl Repo {
    pub(crate) fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl Repo {
    #[tool(description = "Who is calling, through which client, with which scopes.")]
    async fn whoami(&self, caller: Caller) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "{} via {} with [{}]",
            caller.subject(),
            caller.client_id(),
            caller.scope()
        ))]))
    }

    #[tool(description = "Deletes the repository (needs repo.admin).")]
    async fn delete_repo(&self, caller: Caller) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "repository deleted by {}",
            caller.subject()
        ))]))
    }
}

#[tool_handler]
impl ServerHandler for Repo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .build()
                .enable_enterprise_managed_authorization(),
        )
    }
}
