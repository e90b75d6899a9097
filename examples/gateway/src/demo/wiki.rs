//! The demo's "wiki": an MCP server that knows nothing of ID-JAG and takes a static API key
//! in `x-api-key` (the gateway's `static` bridging mode). Tools: `search` and `publish`.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use idjag_core::ClientSecret;
use serde_json::{Value, json};

/// What the wiki received: per request, whether the key matched and whether an
/// `Authorization` header came along.
#[derive(Debug, Clone, Default)]
pub struct WikiLog(Arc<Mutex<Vec<(bool, bool)>>>);

impl WikiLog {
    /// Every request so far: (key matched, carried `Authorization`).
    pub fn requests(&self) -> Vec<(bool, bool)> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[derive(Clone)]
pub(crate) struct Wiki {
    pub(crate) key: ClientSecret,
    pub(crate) log: WikiLog,
}

impl std::fmt::Debug for Wiki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wiki").finish_non_exhaustive()
    }
}

/// `POST /mcp`: 401 without the key; else a stateless JSON MCP server.
pub(crate) async fn wiki(
    State(wiki): State<Wiki>,
    headers: HeaderMap,
    Json(message): Json<Value>,
) -> Response {
    let key_ok = headers
        .get("x-api-key")
        .is_some_and(|v| ClientSecret::new(String::from_utf8_lossy(v.as_bytes())).ct_eq(&wiki.key));
    if let Ok(mut log) = wiki.log.0.lock() {
        log.push((key_ok, headers.contains_key("authorization")));
    }
    if !key_ok {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let argument = |name: &str| {
        message
            .pointer(&format!("/params/arguments/{name}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let result = match message.get("method").and_then(Value::as_str) {
        Some("initialize") => json!({
            "protocolVersion": super::PROTOCOL_VERSION,
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "wiki", "version": "1.0.0" }
        }),
        Some("tools/list") => tools(),
        Some("tools/call") => {
            let text = match message.pointer("/params/name").and_then(Value::as_str) {
                Some("search") => format!("2 pages match {:?}", argument("query")),
                Some("publish") => format!("Page {:?} published", argument("page")),
                _ => "unknown tool".to_owned(),
            };
            json!({ "content": [{ "type": "text", "text": text }], "isError": false })
        }
        Some(_) if message.get("id").is_none() => return StatusCode::ACCEPTED.into_response(),
        _ => json!({}),
    };
    Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
}

/// The `tools/list` result: both tools with their input schemas (clients such as the Python
/// SDK list the tools to check a call's result against its tool).
fn tools() -> Value {
    let text = |description: &str| json!({ "type": "string", "description": description });
    json!({ "tools": [
        {
            "name": "search",
            "description": "Search the wiki's pages.",
            "inputSchema": {
                "type": "object",
                "properties": { "query": text("What to look for.") },
                "required": ["query"]
            }
        },
        {
            "name": "publish",
            "description": "Publish a page (held for an administrator's approval).",
            "inputSchema": {
                "type": "object",
                "properties": { "page": text("The page's title."), "text": text("Its text.") },
                "required": ["page"]
            }
        }
    ] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tools_list_names_both_tools_with_their_schemas() {
        let key = ClientSecret::new("k");
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "k".parse().unwrap());
        let wiki_state = Wiki {
            key,
            log: WikiLog::default(),
        };
        let request = json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/list" });
        let response = wiki(State(wiki_state), headers, Json(request)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["id"], 7);
        let names: Vec<&str> = answer["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["search", "publish"]);
        assert_eq!(
            answer["result"]["tools"][0]["inputSchema"]["required"],
            json!(["query"])
        );
    }
}
