//! The demo's agent: a small MCP client over Streamable HTTP (reqwest), sending the user's
//! IdP token to the gateway with every request, reading JSON and SSE answers.

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use idjag_core::IdToken;
use serde_json::{Value, json};

use super::DemoError;
use crate::protocol::headers::{MCP_PROTOCOL_VERSION, MCP_SESSION_ID, REQUEST_ID};
use crate::protocol::sse::{EventSplitter, message_data};

/// The protocol version the agent speaks.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// One answer.
#[derive(Debug)]
#[non_exhaustive]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The JSON-RPC messages (one for JSON, any number for SSE).
    pub messages: Vec<Value>,
    /// The raw body when it was neither.
    pub body: String,
}

impl Reply {
    /// The `result` of the first response message.
    pub fn result(&self) -> Option<&Value> {
        self.messages.iter().find_map(|m| m.get("result"))
    }

    /// The `error` of the first response message.
    pub fn error(&self) -> Option<&Value> {
        self.messages.iter().find_map(|m| m.get("error"))
    }

    /// `error.data.reason` of the first error message (the gateway's refusal reason).
    pub fn error_reason(&self) -> Option<&str> {
        self.error()
            .and_then(|e| e.pointer("/data/reason"))
            .and_then(Value::as_str)
    }

    /// The gateway's request id.
    pub fn request_id(&self) -> &str {
        self.headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An MCP client session with one server.
#[derive(Debug)]
pub struct Agent {
    http: reqwest::Client,
    url: String,
    token: Option<HeaderValue>,
    session: Option<HeaderValue>,
    next_id: i64,
    /// MCP requests sent (each becomes one audit line at the gateway).
    pub sent: usize,
}

impl Agent {
    /// A client of `url` sending `token` (the user's ID token), or none.
    pub fn new(url: &str, token: Option<&IdToken>) -> Result<Self, DemoError> {
        Self::with_bearer(url, token.map(IdToken::secret))
    }

    /// A client of `url` sending `token` (any bearer token: the gateway's own access token
    /// after an OAuth sign-in), or none.
    pub fn with_bearer(url: &str, token: Option<&str>) -> Result<Self, DemoError> {
        let token = match token {
            Some(t) => {
                let mut v = HeaderValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| DemoError::Setup("token is not a header value".into()))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Self {
            http: reqwest::Client::builder()
                .build()
                .map_err(DemoError::setup)?,
            url: url.to_owned(),
            token,
            session: None,
            next_id: 0,
            sent: 0,
        })
    }

    /// The session id the server gave, if any.
    pub fn session(&self) -> Option<&HeaderValue> {
        self.session.as_ref()
    }

    /// Sends one message and reads the whole answer.
    pub async fn send(&mut self, message: &Value) -> Result<Reply, DemoError> {
        let mut request = self
            .http
            .post(&self.url)
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .header(MCP_PROTOCOL_VERSION, PROTOCOL_VERSION)
            .body(message.to_string());
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, token.clone());
        }
        if let Some(session) = &self.session {
            request = request.header(MCP_SESSION_ID, session.clone());
        }
        self.sent += 1;
        let response = request.send().await.map_err(DemoError::http)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(session) = headers.get(MCP_SESSION_ID) {
            self.session = Some(session.clone());
        }
        let is_sse = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let bytes = response.bytes().await.map_err(DemoError::http)?;
        let mut messages = Vec::new();
        if is_sse {
            let mut splitter = EventSplitter::new(bytes.len() + 1);
            splitter.push(&bytes);
            splitter.end();
            while let Ok(Some(event)) = splitter.next_event() {
                if let Some(message) =
                    message_data(&event).and_then(|d| serde_json::from_str(&d).ok())
                {
                    messages.push(message);
                }
            }
        } else if let Ok(message) = serde_json::from_slice::<Value>(&bytes) {
            messages.push(message);
        }
        Ok(Reply {
            status,
            headers,
            messages,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// A request.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Reply, DemoError> {
        self.next_id += 1;
        let message =
            json!({ "jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params });
        self.send(&message).await
    }

    /// A notification.
    pub async fn notify(&mut self, method: &str) -> Result<Reply, DemoError> {
        self.send(&json!({ "jsonrpc": "2.0", "method": method }))
            .await
    }

    /// `initialize`.
    pub async fn initialize(&mut self) -> Result<Reply, DemoError> {
        self.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "idjag-demo-agent", "version": "1.0.0" }
            }),
        )
        .await
    }

    /// `tools/call`.
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<Reply, DemoError> {
        self.request(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        )
        .await
    }
}
