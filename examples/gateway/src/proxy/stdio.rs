//! Step 11 for a stdio upstream: the message goes to the caller's process (started on
//! first use) over the MCP session the gateway holds with it, and its answer comes back as
//! an HTTP response for step 12 (session binding, `tools/list` filtering, the audit line),
//! exactly as an HTTP upstream's would.
//!
//! - `initialize` is answered with what the process answered the gateway's own
//!   `initialize`, and a new `Mcp-Session-Id` (bound to the caller in step 12): every MCP
//!   session of the caller maps onto that one session with the process.
//! - Other requests are sent with rmcp; the process's result or JSON-RPC error is returned
//!   under the client's `id`. A request the process does not answer within the upstream's
//!   `read_timeout` is a 504; a process that died mid-call a 502.
//! - Notifications and responses from the client are acknowledged (202): the gateway's
//!   session sent `notifications/initialized` itself, and it forwards no server-to-client
//!   requests, so there is nothing to answer.
//! - GET (a server-to-client stream) is 405; DELETE ends the client's session binding (the
//!   process stays for the caller's other sessions until idle).

use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, StatusCode};
use rmcp::ServiceError;
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{Value, json};

use crate::protocol::headers::MCP_SESSION_ID;
use crate::protocol::jsonrpc::{MessageKind, code};
use crate::protocol::request_id::new_request_id;
use crate::proxy::context::RequestContext;
use crate::proxy::refusal::{Refusal, jsonrpc_error};
use crate::upstream::Credential;
use crate::upstream::stdio::{StdioError, StdioUpstream, credential_value};

/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;

impl RequestContext<'_> {
    /// Step 11 for a stdio upstream: the answer of the caller's process, as an HTTP
    /// response.
    pub(crate) async fn call_stdio(
        &self,
        processes: &StdioUpstream,
        credential: &Credential,
    ) -> Result<reqwest::Response, Refusal> {
        if self.method == Method::GET {
            let mut response = empty(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            return Ok(response.into());
        }
        if self.method == Method::DELETE {
            let status = if self.session.is_some() {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::BAD_REQUEST
            };
            return Ok(empty(status).into());
        }
        let Some(message) = self.message() else {
            return Ok(empty(StatusCode::BAD_REQUEST).into());
        };
        if message.kind != MessageKind::Request {
            return Ok(empty(StatusCode::ACCEPTED).into());
        }
        let id = message.id.clone().unwrap_or(Value::Null);
        let value = credential_value(credential);
        let lease = processes
            .acquire(self.caller.identity.principal_key(), value.as_deref())
            .await
            .map_err(|e| stdio_refusal(Some(&id), &e))?;
        if message.method.as_deref() == Some("initialize") {
            let mut info = lease
                .server_info()
                .and_then(|info| serde_json::to_value(info).ok())
                .filter(Value::is_object)
                .ok_or_else(|| failed(&id, "upstream_answer_invalid"))?;
            // `serverInfo` is required in an `initialize` result.
            if info.get("serverInfo").is_none() {
                info["serverInfo"] = json!({ "name": self.upstream.name, "version": "unknown" });
            }
            let mut response = answer(&json!({ "jsonrpc": "2.0", "id": id, "result": info }));
            if self.session.is_none()
                && let Ok(session) = HeaderValue::from_str(&new_request_id())
            {
                response.headers_mut().insert(MCP_SESSION_ID, session);
            }
            return Ok(response.into());
        }
        // The body passed the strict JSON-RPC reader in step 8.
        let request = serde_json::from_slice::<ClientJsonRpcMessage>(&self.body())
            .ok()
            .and_then(ClientJsonRpcMessage::into_request);
        let Some((request, _)) = request else {
            let error = json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": { "code": METHOD_NOT_FOUND, "message": "Method not supported by this MCP server" },
            });
            return Ok(answer(&error).into());
        };
        let sent = lease.peer().send_request(request);
        let body = match tokio::time::timeout(processes.spec().call_timeout, sent).await {
            Err(_) => {
                tracing::warn!(upstream = %self.upstream.name, pid = lease.pid(), "stdio upstream did not answer in time");
                return Err(Refusal::error(
                    "upstream_timeout",
                    jsonrpc_error(
                        StatusCode::GATEWAY_TIMEOUT,
                        Some(&id),
                        code::UPSTREAM_TIMEOUT,
                        "The MCP server did not answer in time",
                        Value::Null,
                    ),
                ));
            }
            Ok(Ok(result)) => {
                let result = serde_json::to_value(&result)
                    .map_err(|_| failed(&id, "upstream_answer_invalid"))?;
                json!({ "jsonrpc": "2.0", "id": id, "result": result })
            }
            Ok(Err(ServiceError::McpError(error))) => {
                let error = serde_json::to_value(&error)
                    .map_err(|_| failed(&id, "upstream_answer_invalid"))?;
                json!({ "jsonrpc": "2.0", "id": id, "error": error })
            }
            Ok(Err(error)) => {
                tracing::warn!(upstream = %self.upstream.name, pid = lease.pid(), %error, "stdio upstream call failed");
                return Err(Refusal::error(
                    "upstream_error",
                    jsonrpc_error(
                        StatusCode::BAD_GATEWAY,
                        Some(&id),
                        code::UPSTREAM_UNAVAILABLE,
                        "The MCP server failed",
                        Value::Null,
                    ),
                ));
            }
        };
        lease.answered();
        Ok(answer(&body).into())
    }
}

fn empty(status: StatusCode) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = status;
    response
}

fn answer(body: &Value) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(serde_json::to_vec(body).unwrap_or_default());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn failed(id: &Value, reason: &'static str) -> Refusal {
    Refusal::error(
        reason,
        jsonrpc_error(
            StatusCode::BAD_GATEWAY,
            Some(id),
            code::UPSTREAM_UNAVAILABLE,
            "The MCP server's answer could not be read",
            Value::Null,
        ),
    )
}

/// No process could take the request.
fn stdio_refusal(id: Option<&Value>, error: &StdioError) -> Refusal {
    let reason = error.reason_code();
    let (status, message, retry) = match error {
        StdioError::Start => (
            StatusCode::BAD_GATEWAY,
            "The MCP server could not be started",
            None,
        ),
        StdioError::Restarting { retry_after } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The MCP server is restarting; retry shortly",
            Some(retry_after.as_secs().max(1)),
        ),
        StdioError::UpstreamLimit | StdioError::UserLimit => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many MCP server processes; retry later",
            Some(1),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The gateway is shutting down",
            None,
        ),
    };
    let mut response = jsonrpc_error(
        status,
        id,
        code::UPSTREAM_UNAVAILABLE,
        message,
        json!({ "reason": reason }),
    );
    if let Some(seconds) = retry
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    Refusal::error(reason, response)
}
