//! What the scenarios expect the server to hold: its tools, resources and prompts, as the
//! JSON each scenario's description gives.

use serde_json::{Value, json};

/// A 1x1 red pixel PNG.
pub(crate) const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A WAV file with no samples (8 kHz, 8-bit, mono).
pub(crate) const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

/// `result` marked complete, with the SEP-2549 caching hints (`ttlMs`, `cacheScope`) of the
/// results the `caching` scenario names.
pub(crate) fn cacheable(mut result: Value) -> Value {
    result["resultType"] = json!("complete");
    result["ttlMs"] = json!(0);
    result["cacheScope"] = json!("private");
    result
}

fn tool(name: &str, description: &str, input_schema: Value) -> Value {
    json!({ "name": name, "description": description, "inputSchema": input_schema })
}

fn no_arguments() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn one_string(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": { name: { "type": "string", "description": description } },
        "required": [name],
    })
}

/// The tools of `tools/list`.
pub(crate) fn tools() -> Value {
    let mut tools: Vec<Value> = [
        ("test_simple_text", "Returns simple text content"),
        ("test_image_content", "Returns image content"),
        ("test_audio_content", "Returns audio content"),
        ("test_embedded_resource", "Returns an embedded resource"),
        (
            "test_multiple_content_types",
            "Returns text, image and resource content",
        ),
        (
            "test_tool_with_logging",
            "Sends three log notifications while it runs",
        ),
        ("test_error_handling", "Always returns a tool error"),
        (
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100",
        ),
        (
            "test_elicitation_sep1034_defaults",
            "Elicits a form whose fields have defaults",
        ),
        (
            "test_elicitation_sep1330_enums",
            "Elicits a form with every enum variant",
        ),
        (
            "test_input_required_result_elicitation",
            "Needs an elicitation answer (MRTR)",
        ),
        (
            "test_input_required_result_sampling",
            "Needs a sampling answer (MRTR)",
        ),
        (
            "test_input_required_result_list_roots",
            "Needs the client's roots (MRTR)",
        ),
        (
            "test_input_required_result_request_state",
            "Round-trips a requestState (MRTR)",
        ),
        (
            "test_input_required_result_multiple_inputs",
            "Needs three answers at once (MRTR)",
        ),
        (
            "test_input_required_result_multi_round",
            "Needs two rounds of answers (MRTR)",
        ),
        (
            "test_input_required_result_tampered_state",
            "Refuses a tampered requestState (MRTR)",
        ),
        (
            "test_input_required_result_capabilities",
            "Asks only what the client can answer (MRTR)",
        ),
    ]
    .into_iter()
    .map(|(name, description)| tool(name, description, no_arguments()))
    .collect();
    tools.push(tool(
        "test_sampling",
        "Asks the client's LLM for a completion",
        one_string("prompt", "The prompt to send to the LLM"),
    ));
    tools.push(tool(
        "test_elicitation",
        "Asks the user for a username and an email address",
        one_string("message", "The message to show the user"),
    ));
    tools.push(tool(
        "test_header_param",
        "Takes a region that clients also send as the Mcp-Param-Region header",
        json!({
            "type": "object",
            "properties": { "region": { "type": "string", "x-mcp-header": "Region" } },
            "required": ["region"],
        }),
    ));
    tools.push(tool(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features",
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "$anchor": "addressDef",
                    "type": "object",
                    "properties": { "street": { "type": "string" }, "city": { "type": "string" } },
                },
            },
            "properties": {
                "name": { "type": "string" },
                "address": { "$ref": "#/$defs/address" },
                "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                "phone": { "type": "string" },
                "email": { "type": "string" },
            },
            "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
            "if": {
                "properties": { "contactMethod": { "const": "phone" } },
                "required": ["contactMethod"],
            },
            "then": { "required": ["phone"] },
            "else": { "required": ["email"] },
            "additionalProperties": false,
        }),
    ));
    Value::Array(tools)
}

/// The direct resources of `resources/list`.
pub(crate) fn resources() -> Value {
    json!([
        { "uri": "test://static-text", "name": "static-text",
          "description": "A static text resource", "mimeType": "text/plain" },
        { "uri": "test://static-binary", "name": "static-binary",
          "description": "A static binary resource (a PNG)", "mimeType": "image/png" },
        { "uri": "test://watched-resource", "name": "watched-resource",
          "description": "A resource clients may subscribe to", "mimeType": "text/plain" },
    ])
}

/// The contents of `uri`, or `None` for a resource the server does not have.
pub(crate) fn read(uri: &str) -> Option<Value> {
    match uri {
        "test://static-text" => Some(json!({
            "uri": uri, "mimeType": "text/plain",
            "text": "This is the content of the static text resource.",
        })),
        "test://static-binary" => Some(json!({ "uri": uri, "mimeType": "image/png", "blob": PNG })),
        "test://watched-resource" => Some(json!({
            "uri": uri, "mimeType": "text/plain", "text": "Watched resource content.",
        })),
        _ => {
            let id = uri
                .strip_prefix("test://template/")?
                .strip_suffix("/data")
                .filter(|id| !id.is_empty() && !id.contains('/'))?;
            let text =
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
            Some(json!({ "uri": uri, "mimeType": "application/json", "text": text.to_string() }))
        }
    }
}

/// The prompts of `prompts/list`.
pub(crate) fn prompts() -> Value {
    let argument = |name: &str, description: &str| json!({ "name": name, "description": description, "required": true });
    json!([
        { "name": "test_simple_prompt", "description": "A prompt without arguments" },
        { "name": "test_prompt_with_arguments", "description": "A prompt with two arguments",
          "arguments": [argument("arg1", "First test argument"), argument("arg2", "Second test argument")] },
        { "name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource",
          "arguments": [argument("resourceUri", "URI of the resource to embed")] },
        { "name": "test_prompt_with_image", "description": "A prompt with an image" },
        { "name": "test_input_required_result_prompt", "description": "A prompt that needs an elicitation answer (MRTR)" },
    ])
}

/// A prompt message from the user with `text`.
pub(crate) fn user_text(text: &str) -> Value {
    json!({ "role": "user", "content": { "type": "text", "text": text } })
}

/// `elicitation/create` params asking `message` for a username and an email address.
pub(crate) fn elicitation_user(message: &str) -> Value {
    json!({
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {
                "username": { "type": "string", "description": "User's response" },
                "email": { "type": "string", "description": "User's email address" },
            },
            "required": ["username", "email"],
        },
    })
}

/// `elicitation/create` params with a default for every primitive type (SEP-1034).
pub(crate) fn elicitation_defaults() -> Value {
    json!({
        "message": "Please review and update the form fields with defaults",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "name": { "type": "string", "description": "User name", "default": "John Doe" },
                "age": { "type": "integer", "description": "User age", "default": 30 },
                "score": { "type": "number", "description": "User score", "default": 95.5 },
                "status": { "type": "string", "description": "User status",
                            "enum": ["active", "inactive", "pending"], "default": "active" },
                "verified": { "type": "boolean", "description": "Verification status", "default": true },
            },
        },
    })
}

/// `elicitation/create` params with the five enum variants of SEP-1330.
pub(crate) fn elicitation_enums() -> Value {
    json!({
        "message": "Please select options from the enum fields",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "untitledSingle": { "type": "string", "description": "Untitled single-select",
                                    "enum": ["option1", "option2", "option3"] },
                "titledSingle": { "type": "string", "description": "Titled single-select", "oneOf": [
                    { "const": "value1", "title": "First Option" },
                    { "const": "value2", "title": "Second Option" },
                    { "const": "value3", "title": "Third Option" },
                ] },
                "legacyEnum": { "type": "string", "description": "Legacy titled enum",
                                "enum": ["opt1", "opt2", "opt3"],
                                "enumNames": ["Option One", "Option Two", "Option Three"] },
                "untitledMulti": { "type": "array", "description": "Untitled multi-select",
                                   "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
                "titledMulti": { "type": "array", "description": "Titled multi-select", "items": { "anyOf": [
                    { "const": "value1", "title": "First Choice" },
                    { "const": "value2", "title": "Second Choice" },
                    { "const": "value3", "title": "Third Choice" },
                ] } },
            },
        },
    })
}

/// An MRTR `elicitation/create` input request for one string `field`.
pub(crate) fn elicit_string(message: &str, field: &str) -> Value {
    json!({
        "method": "elicitation/create",
        "params": {
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": { field: { "type": "string" } },
                "required": [field],
            },
        },
    })
}

/// An `InputRequiredResult` asking, under `key`, for a name.
pub(crate) fn ask_name(key: &str, message: &str) -> Value {
    json!({
        "resultType": "input_required",
        "inputRequests": { key: elicit_string(message, "name") },
    })
}

/// An MRTR `sampling/createMessage` input request.
pub(crate) fn sampling(text: &str, max_tokens: u32) -> Value {
    json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
            "maxTokens": max_tokens,
        },
    })
}
