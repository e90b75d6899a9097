//! The MCP server that the public MCP conformance suite's server scenarios
//! (`@modelcontextprotocol/conformance`, pinned in `conformance/package.json`) run against,
//! once direct and once through `idjag-gateway`, from `scripts/conformance.sh`.
//!
//! It is written from the scenarios' descriptions (`conformance list`, and each scenario's
//! "Server Implementation Requirements"): the tools, resources and prompts they name, with
//! the exact answers they expect, on rmcp's Streamable HTTP server, which speaks every MCP
//! revision the suite knows (sessions before 2026-07-28, stateless requests from it).
//!
//! ```text
//! idjag-conformance-server 127.0.0.1:0    # prints `listening on http://ADDR/mcp`
//! ```
//!
//! Loopback only: it refuses any other listen address.
#![allow(clippy::print_stdout, reason = "the listening address goes to stdout")]
#![allow(
    deprecated,
    reason = "sampling, elicitation requests, roots and logging are what the scenarios of the revisions before 2026-07-28 test"
)]

mod content;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    CreateMessageRequestParams, ElicitRequestParams, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, InputRequiredResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, ProgressNotificationParam, PromptListChangedNotification,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerConfig,
    ServerNotification, SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter, Tool,
    ToolListChangedNotification, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The `_meta` member by which a MCP 2026-07-28 request asks for log notifications.
const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// One MCP session (or, from 2026-07-28, one request) of the conformance server.
#[derive(Debug, Clone)]
struct Conformance {
    /// The level `logging/setLevel` set; log notifications below it are not sent.
    level: Arc<Mutex<LoggingLevel>>,
    /// The key that seals MRTR `requestState` values (one per process).
    state_key: Arc<[u8; 32]>,
    /// Tool and prompt list changes, for every open `subscriptions/listen` stream.
    changes: broadcast::Sender<Change>,
}

/// A change `subscriptions/listen` streams are told about (MCP 2026-07-28).
#[derive(Debug, Clone, Copy)]
enum Change {
    Tools,
    Prompts,
}

/// A string argument of a tool call or a prompt request; empty when absent or not a string.
fn string_argument(arguments: Option<&serde_json::Map<String, Value>>, name: &str) -> String {
    arguments
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A value built from JSON the server wrote itself: a mismatch is a bug in this file.
fn from_json<T: DeserializeOwned>(value: Value) -> T {
    match serde_json::from_value(value) {
        Ok(v) => v,
        Err(e) => panic!("the conformance server's own JSON does not fit its type: {e}"),
    }
}

fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// `result` marked complete (`resultType`, required from MCP 2026-07-28 on; rmcp drops it
/// for peers of older revisions).
fn complete(mut result: Value) -> Value {
    result["resultType"] = json!("complete");
    result
}

fn text_result(text: impl Into<String>) -> CallToolResponse {
    tool_result(json!({ "content": [{ "type": "text", "text": text.into() }] }))
}

fn tool_result(result: Value) -> CallToolResponse {
    from_json::<CallToolResult>(complete(result)).into()
}

fn input_required(value: Value) -> InputRequiredResult {
    from_json(value)
}

impl Conformance {
    fn new(state_key: Arc<[u8; 32]>, changes: broadcast::Sender<Change>) -> Self {
        Self {
            level: Arc::new(Mutex::new(LoggingLevel::Debug)),
            state_key,
            changes,
        }
    }

    /// The tools of the `server-stateless` scenario (MCP 2026-07-28, SEP-2575).
    async fn stateless_tool(
        &self,
        context: &RequestContext<RoleServer>,
        name: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        match name {
            "test_missing_capability" => {
                if context
                    .client_capabilities()
                    .is_none_or(|c| c.sampling.is_none())
                {
                    return Err(ErrorData::missing_required_client_capability(from_json(
                        json!({ "sampling": {} }),
                    )));
                }
                Ok(input_required(json!({
                    "resultType": "input_required",
                    "inputRequests": { "answer": content::sampling("Say hello", 20) },
                }))
                .into())
            }
            "test_streaming_elicitation" => {
                Ok(input_required(content::ask_name("user_name", "What is your name?")).into())
            }
            "test_logging_tool" => {
                let meta = serde_json::to_value(&context.meta).unwrap_or_default();
                if meta.get(LOG_LEVEL).is_some() {
                    self.log(context, LoggingLevel::Info, "test_logging_tool ran")
                        .await;
                }
                Ok(text_result("Logging tool executed"))
            }
            "test_trigger_tool_change" => {
                let _ = self.changes.send(Change::Tools);
                Ok(text_result("Tool list change announced"))
            }
            "test_trigger_prompt_change" => {
                let _ = self.changes.send(Change::Prompts);
                Ok(text_result("Prompt list change announced"))
            }
            other => Err(ErrorData::invalid_params(
                format!("Unknown tool: {other}"),
                None,
            )),
        }
    }

    fn level(&self) -> LoggingLevel {
        *self.level.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, text: &str) {
        if severity(level) < severity(self.level()) {
            return;
        }
        let params: LoggingMessageNotificationParam = from_json(json!({
            "level": level,
            "logger": "conformance",
            "data": text,
        }));
        let _ = context.peer.notify_logging_message(params).await;
    }

    async fn progress(&self, context: &RequestContext<RoleServer>) -> CallToolResponse {
        let token = context.meta.get_progress_token();
        for step in [0, 50, 100] {
            if let Some(token) = &token {
                let params: ProgressNotificationParam = from_json(json!({
                    "progressToken": token,
                    "progress": step,
                    "total": 100,
                }));
                let _ = context.peer.notify_progress(params).await;
            }
            if step < 100 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        text_result("Progress reported: 0, 50, 100 of 100")
    }

    async fn sample(
        &self,
        context: &RequestContext<RoleServer>,
        prompt: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        if context
            .client_capabilities()
            .is_none_or(|c| c.sampling.is_none())
        {
            return Err(ErrorData::invalid_request(
                "The client does not support sampling",
                None,
            ));
        }
        let params: CreateMessageRequestParams = from_json(json!({
            "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
            "maxTokens": 100,
        }));
        let answer = context
            .peer
            .create_message(params)
            .await
            .map_err(|e| ErrorData::internal_error(format!("sampling failed: {e}"), None))?;
        let answer = serde_json::to_value(&answer.message.content).unwrap_or_default();
        let text = answer
            .get("text")
            .and_then(Value::as_str)
            .map_or_else(|| answer.to_string(), str::to_owned);
        Ok(text_result(format!("LLM response: {text}")))
    }

    async fn elicit(
        &self,
        context: &RequestContext<RoleServer>,
        params: Value,
        prefix: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        if context
            .client_capabilities()
            .is_none_or(|c| c.elicitation.is_none())
        {
            return Err(ErrorData::invalid_request(
                "The client does not support elicitation",
                None,
            ));
        }
        let params: ElicitRequestParams = from_json(params);
        let answer = context
            .peer
            .create_elicitation(params)
            .await
            .map_err(|e| ErrorData::internal_error(format!("elicitation failed: {e}"), None))?;
        let answer = serde_json::to_value(&answer).unwrap_or_default();
        let action = answer.get("action").cloned().unwrap_or(Value::Null);
        let content = answer.get("content").cloned().unwrap_or(json!({}));
        let action = action.as_str().unwrap_or("unknown");
        Ok(text_result(format!(
            "{prefix}action={action}, content={content}"
        )))
    }

    /// `requestState` sealed with this process's key: the payload, `.`, the hex SHA-256 of
    /// key and payload.
    fn seal(&self, payload: &str) -> String {
        format!("{payload}.{}", self.mac(payload))
    }

    fn mac(&self, payload: &str) -> String {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(self.state_key.as_slice());
        hash.update(payload.as_bytes());
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The payload of a `requestState` this process sealed, or `None`.
    fn open<'a>(&self, state: &'a str) -> Option<&'a str> {
        let (payload, mac) = state.rsplit_once('.')?;
        (self.mac(payload) == mac).then_some(payload)
    }

    /// The tools of the `input-required-result-*` scenarios (MCP 2026-07-28, SEP-2322).
    fn input_required_tool(
        &self,
        context: &RequestContext<RoleServer>,
        request: &CallToolRequestParams,
    ) -> Result<CallToolResponse, ErrorData> {
        let responses = request.input_responses.clone().unwrap_or_default();
        let state = request.request_state.as_deref();
        let answered = |key: &str| responses.get(key).filter(|v| v.is_object());
        match request.name.as_ref() {
            "test_input_required_result_elicitation" => match answered("user_name") {
                Some(answer) => {
                    let name = answer
                        .pointer("/content/name")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown");
                    Ok(text_result(format!("Hello, {name}!")))
                }
                None => Ok(input_required(content::ask_name("user_name", "What is your name?")).into()),
            },
            "test_input_required_result_sampling" => match answered("capital_question") {
                Some(answer) => {
                    let text = answer
                        .pointer("/content/text")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    Ok(text_result(format!("Sampling response: {text}")))
                }
                None => Ok(input_required(json!({
                    "resultType": "input_required",
                    "inputRequests": { "capital_question": content::sampling("What is the capital of France?", 100) },
                }))
                .into()),
            },
            "test_input_required_result_list_roots" => match answered("client_roots") {
                Some(answer) => {
                    let roots = answer.get("roots").cloned().unwrap_or(json!([]));
                    Ok(text_result(format!("Client roots: {roots}")))
                }
                None => Ok(input_required(json!({
                    "resultType": "input_required",
                    "inputRequests": { "client_roots": { "method": "roots/list", "params": {} } },
                }))
                .into()),
            },
            "test_input_required_result_request_state" => {
                match (answered("confirm"), state.and_then(|s| self.open(s))) {
                    (Some(_), Some("confirm")) => Ok(text_result("Confirmed: state-ok")),
                    _ => Ok(input_required(json!({
                        "resultType": "input_required",
                        "inputRequests": { "confirm": {
                            "method": "elicitation/create",
                            "params": {
                                "message": "Please confirm",
                                "requestedSchema": {
                                    "type": "object",
                                    "properties": { "ok": { "type": "boolean" } },
                                    "required": ["ok"],
                                },
                            },
                        } },
                        "requestState": self.seal("confirm"),
                    }))
                    .into()),
                }
            }
            "test_input_required_result_multiple_inputs" => {
                let all = ["user_name", "greeting", "client_roots"]
                    .iter()
                    .all(|k| answered(k).is_some());
                if all && state.and_then(|s| self.open(s)) == Some("multiple") {
                    return Ok(text_result("All inputs received: user_name, greeting, client_roots"));
                }
                let mut ask = content::ask_name("user_name", "What is your name?");
                ask["inputRequests"]["greeting"] = content::sampling("Generate a greeting", 50);
                ask["inputRequests"]["client_roots"] = json!({ "method": "roots/list", "params": {} });
                ask["requestState"] = json!(self.seal("multiple"));
                Ok(input_required(ask).into())
            }
            "test_input_required_result_multi_round" => {
                match (state.and_then(|s| self.open(s)), answered("step1"), answered("step2")) {
                    (Some("round-2"), _, Some(answer)) => {
                        let color = answer
                            .pointer("/content/color")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown");
                        Ok(text_result(format!("Done after two rounds: favorite color {color}")))
                    }
                    (Some("round-1"), Some(_), _) => Ok(input_required(json!({
                        "resultType": "input_required",
                        "inputRequests": { "step2": content::elicit_string(
                            "Step 2: What is your favorite color?", "color") },
                        "requestState": self.seal("round-2"),
                    }))
                    .into()),
                    _ => Ok(input_required(json!({
                        "resultType": "input_required",
                        "inputRequests": { "step1": content::elicit_string(
                            "Step 1: What is your name?", "name") },
                        "requestState": self.seal("round-1"),
                    }))
                    .into()),
                }
            }
            "test_input_required_result_tampered_state" => match state {
                Some(state) if self.open(state) == Some("untampered") => {
                    Ok(text_result("requestState verified"))
                }
                Some(_) => Err(ErrorData::invalid_params(
                    "requestState failed its integrity check",
                    None,
                )),
                None => Ok(input_required(json!({
                    "resultType": "input_required",
                    "inputRequests": { "confirm": content::elicit_string("Please confirm", "ok") },
                    "requestState": self.seal("untampered"),
                }))
                .into()),
            },
            "test_input_required_result_capabilities" => {
                let capabilities = context.client_capabilities();
                let mut requests = serde_json::Map::new();
                if capabilities.as_ref().is_some_and(|c| c.sampling.is_some()) {
                    requests.insert(
                        "capital_question".into(),
                        content::sampling("What is the capital of France?", 100),
                    );
                }
                if capabilities.as_ref().is_some_and(|c| c.elicitation.is_some()) {
                    requests.insert(
                        "user_name".into(),
                        content::elicit_string("What is your name?", "name"),
                    );
                }
                if requests.is_empty() || !responses.is_empty() {
                    return Ok(text_result("Completed with the declared capabilities"));
                }
                Ok(input_required(json!({
                    "resultType": "input_required",
                    "inputRequests": requests,
                }))
                .into())
            }
            other => Err(ErrorData::invalid_params(
                format!("Unknown tool: {other}"),
                None,
            )),
        }
    }
}

impl ServerHandler for Conformance {
    fn get_info(&self) -> ServerConfig {
        from_json(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {
                "tools": { "listChanged": true },
                "resources": { "subscribe": true, "listChanged": true },
                "prompts": { "listChanged": true },
                "logging": {},
                "completions": {},
            },
            "serverInfo": { "name": "idjag-conformance-server", "version": env!("CARGO_PKG_VERSION") },
        }))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(from_json(content::cacheable(
            json!({ "tools": content::tools() }),
        )))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let tools = content::tools();
        let tool = tools.as_array()?.iter().find(|t| t["name"] == name)?;
        Some(from_json(tool.clone()))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.changes.subscribe();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = changes.recv() => {
                    let notification = match change {
                        Ok(Change::Tools) => ServerNotification::ToolListChangedNotification(
                            ToolListChangedNotification::default(),
                        ),
                        Ok(Change::Prompts) => ServerNotification::PromptListChangedNotification(
                            PromptListChangedNotification::default(),
                        ),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    };
                    // A change this subscription did not ask for is not sent (SEP-2575).
                    let _ = context.sink().send(notification).await;
                }
            }
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let argument = |name: &str| string_argument(request.arguments.as_ref(), name);
        match request.name.as_ref() {
            "test_simple_text" => Ok(text_result("This is a simple text response for testing.")),
            "test_image_content" => Ok(tool_result(json!({
                "content": [{ "type": "image", "data": content::PNG, "mimeType": "image/png" }],
            }))),
            "test_audio_content" => Ok(tool_result(json!({
                "content": [{ "type": "audio", "data": content::WAV, "mimeType": "audio/wav" }],
            }))),
            "test_embedded_resource" => Ok(tool_result(json!({
                "content": [{ "type": "resource", "resource": {
                    "uri": "test://embedded-resource",
                    "mimeType": "text/plain",
                    "text": "This is an embedded resource content.",
                } }],
            }))),
            "test_multiple_content_types" => Ok(tool_result(json!({
                "content": [
                    { "type": "text", "text": "Multiple content types test:" },
                    { "type": "image", "data": content::PNG, "mimeType": "image/png" },
                    { "type": "resource", "resource": {
                        "uri": "test://mixed-content-resource",
                        "mimeType": "application/json",
                        "text": "{\"test\":\"data\",\"value\":123}",
                    } },
                ],
            }))),
            "test_tool_with_logging" => {
                self.log(&context, LoggingLevel::Info, "Tool execution started")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.log(&context, LoggingLevel::Info, "Tool processing data")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.log(&context, LoggingLevel::Info, "Tool execution completed")
                    .await;
                Ok(text_result("Tool with logging executed"))
            }
            "test_error_handling" => Ok(tool_result(json!({
                "isError": true,
                "content": [{ "type": "text", "text": "This tool intentionally returns an error for testing" }],
            }))),
            "test_tool_with_progress" => Ok(self.progress(&context).await),
            "test_sampling" => self.sample(&context, &argument("prompt")).await,
            "test_elicitation" => {
                let params = content::elicitation_user(&argument("message"));
                self.elicit(&context, params, "User response: ").await
            }
            "test_elicitation_sep1034_defaults" => {
                self.elicit(
                    &context,
                    content::elicitation_defaults(),
                    "Elicitation completed: ",
                )
                .await
            }
            "test_elicitation_sep1330_enums" => {
                self.elicit(
                    &context,
                    content::elicitation_enums(),
                    "Elicitation completed: ",
                )
                .await
            }
            "json_schema_2020_12_tool" => Ok(text_result("JSON Schema 2020-12 tool called")),
            name if name.starts_with("test_input_required_result_") => {
                self.input_required_tool(&context, &request)
            }
            "test_header_param" => Ok(text_result(format!("Region: {}", argument("region")))),
            name @ ("test_missing_capability"
            | "test_streaming_elicitation"
            | "test_logging_tool"
            | "test_trigger_tool_change"
            | "test_trigger_prompt_change") => self.stateless_tool(&context, name).await,
            other => Err(ErrorData::invalid_params(
                format!("Unknown tool: {other}"),
                None,
            )),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(from_json(content::cacheable(
            json!({ "resources": content::resources() }),
        )))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(from_json(content::cacheable(json!({
            "resourceTemplates": [{
                "uriTemplate": "test://template/{id}/data",
                "name": "template",
                "description": "A resource template: {id} is substituted",
                "mimeType": "application/json",
            }],
        }))))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let contents = match content::read(uri) {
            Some(contents) => contents,
            None => {
                return Err(ErrorData::invalid_params(
                    "Resource not found",
                    Some(json!({ "uri": uri })),
                ));
            }
        };
        Ok(
            from_json::<ReadResourceResult>(content::cacheable(json!({ "contents": [contents] })))
                .into(),
        )
    }

    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(from_json(content::cacheable(
            json!({ "prompts": content::prompts() }),
        )))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let argument = |name: &str| string_argument(request.arguments.as_ref(), name);
        let messages = match request.name.as_str() {
            "test_simple_prompt" => {
                json!([content::user_text("This is a simple prompt for testing.")])
            }
            "test_prompt_with_arguments" => json!([content::user_text(&format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                argument("arg1"),
                argument("arg2")
            ))]),
            "test_prompt_with_embedded_resource" => json!([
                { "role": "user", "content": { "type": "resource", "resource": {
                    "uri": argument("resourceUri"),
                    "mimeType": "text/plain",
                    "text": "Embedded resource content for testing.",
                } } },
                content::user_text("Please process the embedded resource above."),
            ]),
            "test_prompt_with_image" => json!([
                { "role": "user", "content": { "type": "image", "data": content::PNG, "mimeType": "image/png" } },
                content::user_text("Please analyze the image above."),
            ]),
            "test_input_required_result_prompt" => {
                let answer = request
                    .input_responses
                    .as_ref()
                    .and_then(|r| r.get("user_context"));
                match answer {
                    Some(answer) => {
                        let context = answer
                            .pointer("/content/context")
                            .and_then(Value::as_str)
                            .unwrap_or("none");
                        json!([content::user_text(&format!(
                            "Prompt with context: {context}"
                        ))])
                    }
                    None => {
                        return Ok(input_required(json!({
                            "resultType": "input_required",
                            "inputRequests": { "user_context": content::elicit_string(
                                "What context should the prompt use?", "context") },
                        }))
                        .into());
                    }
                }
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("Unknown prompt: {other}"),
                    None,
                ));
            }
        };
        Ok(from_json::<GetPromptResult>(complete(json!({ "messages": messages }))).into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let prefix = request.argument.value.clone();
        let values: Vec<&str> = ["paris", "park", "party"]
            .into_iter()
            .filter(|v| v.starts_with(prefix.as_str()))
            .collect();
        Ok(from_json(complete(json!({
            "completion": { "values": values, "total": values.len(), "hasMore": false },
        }))))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.level.lock().unwrap_or_else(|p| p.into_inner()) = request.level;
        Ok(())
    }
}

/// This process's key for its `requestState` seals, from its start time and process id: it
/// only has to differ from what a client could forge without it in a test run on loopback
/// (the `input-required-result-tampered-state` scenario); it is not a production secret.
fn state_key() -> [u8; 32] {
    use sha2::Digest;
    let seed = format!("{:?}{}", std::time::Instant::now(), std::process::id());
    sha2::Sha256::digest(seed.as_bytes()).into()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()?;
    if !listen.ip().is_loopback() {
        return Err(format!("{listen} is not a loopback address").into());
    }
    let key = Arc::new(state_key());
    let (changes, _) = broadcast::channel(16);
    let config =
        StreamableHttpServerConfig::default().with_stateless_protocol_metadata_required(true);
    let service = StreamableHttpService::new(
        move || Ok(Conformance::new(key.clone(), changes.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
