//! A minimal stateless MCP server: `initialize`, `ping`, `tools/list` (one tool, `echo`) and
//! `tools/call` answered with JSON. Used by the benchmark and the tests as the upstream whose
//! cost is as small as it gets, so the gateway's own cost shows.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The axum handler of the echo server's MCP endpoint (POST only).
pub async fn echo(Json(message): Json<Value>) -> Response {
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match message.get("method").and_then(Value::as_str) {
        Some("initialize") => json!({
            "protocolVersion": "2025-11-25",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "echo", "version": "1.0.0" }
        }),
        Some("ping") => json!({}),
        Some("tools/list") => json!({ "tools": [{
            "name": "echo",
            "description": "Echoes its text argument.",
            "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } }
        }]}),
        Some("tools/call") => {
            let text = message
                .pointer("/params/arguments/text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({ "content": [{ "type": "text", "text": text }], "isError": false })
        }
        _ => {
            return Json(json!({
                "jsonrpc": "2.0", "id": id,
                "error": { "code": -32601, "message": "Method not found" }
            }))
            .into_response();
        }
    };
    Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
}

/// `echo`'s arguments.
#[derive(Debug, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct EchoArgs {
    /// The text to echo.
    pub(crate) text: String,
}

/// The same echo server on rmcp: one tool, `echo`, served statelessly with JSON answers
/// (`legacy_session_mode = false`, `json_response = true`), so each call is one exchange.
#[derive(Debug, Clone)]
pub struct EchoServer {
    tool_router: rmcp::handler::server::router::tool::ToolRouter<Self>,
}

impl Default for EchoServer {
    fn default() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

#[rmcp::tool_router]
impl EchoServer {
    #[rmcp::tool(description = "Echoes its text argument.")]
    async fn echo(
        &self,
        rmcp::handler::server::wrapper::Parameters(EchoArgs { text }): rmcp::handler::server::wrapper::Parameters<EchoArgs>,
    ) -> Result<rmcp::model::CallToolResult, rmcp::ErrorData> {
        Ok(rmcp::model::CallToolResult::success(vec![
            rmcp::model::ContentBlock::text(text),
        ]))
    }
}

#[rmcp::tool_handler(router = self.tool_router)]
impl rmcp::ServerHandler for EchoServer {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new("echo", "1.0.0"))
    }
}
