//! Per-tool scope requirements, enforced over HTTP before rmcp sees the request (requirement
//! MCP-05; threat G16).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use idjag_core::jose::parse_object;
use idjag_core::{ScopeSet, Segment};
use idjag_resource::rs::{BearerPrincipal, ProtectedResource};
use serde_json::Value;
use tower::{Layer, Service};

/// rmcp's own limit on a POST body (4 MiB): the default here too.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The scopes each tool needs.
///
/// ```
/// use idjag_core::ScopeSet;
/// use idjag_mcp::server::ToolScopes;
/// let scopes = ToolScopes::new()
///     .with("delete_repo", ScopeSet::parse("repo.admin")?)
///     .with("read_file", ScopeSet::parse("repo.read")?);
/// let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_repo"}}"#;
/// assert_eq!(scopes.required_for(call)?.to_string(), "repo.admin");
/// assert!(scopes.required_for(br#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ToolScopes(HashMap<String, ScopeSet>);

impl ToolScopes {
    /// No requirement yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `tool` needs every scope of `scope` (added to what it needed already).
    pub fn with(mut self, tool: impl Into<String>, scope: ScopeSet) -> Self {
        let entry = self.0.entry(tool.into()).or_default();
        *entry = entry.union(&scope);
        self
    }

    /// What `tool` needs (empty: nothing beyond a valid token).
    pub fn for_tool(&self, tool: &str) -> Option<&ScopeSet> {
        self.0.get(tool)
    }

    /// Whether no tool has a requirement.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(ScopeSet::is_empty)
    }

    /// The scopes a JSON-RPC message needs: the tool's, for a `tools/call` request, else none.
    /// Tool names compare byte for byte, as rmcp looks them up.
    ///
    /// The body must be one JSON object without a repeated member name at any depth: rmcp
    /// reads one message per POST, and a repeated `name` could make this check and rmcp see
    /// different tools. Anything else is [`MalformedMessage`].
    pub fn required_for(&self, body: &[u8]) -> Result<ScopeSet, MalformedMessage> {
        let message = parse_object(body, Segment::Payload).map_err(|_| MalformedMessage)?;
        if message.get("method").and_then(Value::as_str) != Some("tools/call") {
            return Ok(ScopeSet::new());
        }
        let name = message
            .get("params")
            .and_then(|params| params.get("name"))
            .and_then(Value::as_str);
        Ok(name
            .and_then(|name| self.0.get(name))
            .cloned()
            .unwrap_or_default())
    }
}

/// A POST body that is not one JSON object with unique member names: refused (400) before
/// rmcp sees it when tool scopes are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body is not one well-formed JSON-RPC message")]
pub struct MalformedMessage;

fn parse_error() -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32700, "message": "Parse error" },
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// A tower layer (for axum's `route_layer`) that answers `403 insufficient_scope`, with the
/// scopes needed in the challenge, to a `tools/call` whose token lacks the tool's scopes.
/// The request never reaches rmcp then.
///
/// It reads the verified [`BearerPrincipal`] that idjag-resource's `RequireBearerLayer` put in the
/// request extensions; without one it verifies the token itself, so a missing bearer layer
/// fails closed. `POST` bodies are buffered up to a limit (413 beyond it) and passed on
/// unchanged; other methods pass straight through.
#[derive(Debug, Clone)]
pub struct ToolScopeLayer {
    resource: Arc<ProtectedResource>,
    scopes: Arc<ToolScopes>,
    max_body_bytes: usize,
}

impl ToolScopeLayer {
    /// Enforces `scopes` for `resource`.
    pub fn new(resource: Arc<ProtectedResource>, scopes: ToolScopes) -> Self {
        Self {
            resource,
            scopes: Arc::new(scopes),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Sets the largest body read (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max.max(1);
        self
    }
}

impl<S> Layer<S> for ToolScopeLayer {
    type Service = ToolScope<S>;

    fn layer(&self, inner: S) -> ToolScope<S> {
        ToolScope {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`ToolScopeLayer`].
#[derive(Debug, Clone)]
pub struct ToolScope<S> {
    inner: S,
    layer: ToolScopeLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for ToolScope<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            if request.method() != Method::POST || layer.scopes.is_empty() {
                return inner.call(request).await;
            }
            let (parts, body) = request.into_parts();
            let bytes = match Limited::new(body, layer.max_body_bytes).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                    return Ok(StatusCode::PAYLOAD_TOO_LARGE.into_response());
                }
                Err(_) => return Ok(StatusCode::BAD_REQUEST.into_response()),
            };
            let Ok(required) = layer.scopes.required_for(&bytes) else {
                return Ok(parse_error());
            };
            if !required.is_empty() {
                let principal = match parts.extensions.get::<BearerPrincipal>() {
                    Some(principal) => principal.clone(),
                    None => match layer.resource.authorize(&parts.headers).await {
                        Ok(principal) => principal,
                        Err(rejection) => {
                            return Ok(rejection.with_scope_hint(&required).into_response());
                        }
                    },
                };
                if let Err(insufficient) = principal.require_scopes(&required) {
                    tracing::debug!(
                        target: "idjag_mcp",
                        client_id = %principal.client_id(),
                        required = %required,
                        "tools/call refused: insufficient_scope"
                    );
                    return Ok(insufficient.into_response());
                }
            }
            inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes() -> ToolScopes {
        ToolScopes::new()
            .with("admin", ScopeSet::parse("repo.admin").unwrap())
            .with("write", ScopeSet::parse("repo.write").unwrap())
            .with("write", ScopeSet::parse("repo.read").unwrap())
    }

    #[test]
    fn requirements_accumulate_per_tool() {
        assert_eq!(
            scopes().for_tool("write").unwrap().to_string(),
            "repo.read repo.write"
        );
        assert!(scopes().for_tool("other").is_none());
        assert!(ToolScopes::new().is_empty());
        assert!(ToolScopes::new().with("x", ScopeSet::new()).is_empty());
    }

    #[test]
    fn only_tools_call_needs_scopes() {
        let s = scopes();
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"admin"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"unlisted"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin "}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ] {
            assert_eq!(
                s.required_for(body.as_bytes()),
                Ok(ScopeSet::new()),
                "{body}"
            );
        }
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write","arguments":{}}}"#;
        assert_eq!(
            s.required_for(call).unwrap().to_string(),
            "repo.read repo.write"
        );
    }

    #[test]
    fn anything_but_one_well_formed_message_is_malformed() {
        let s = scopes();
        for body in [
            // A repeated member could name one tool here and another in rmcp.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list","name":"admin"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"admin"}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"}}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\ud800"}}"#,
            "not json",
            "",
            "{} {}",
        ] {
            assert_eq!(
                s.required_for(body.as_bytes()),
                Err(MalformedMessage),
                "{body}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = scopes().required_for(&body);
        }
    }
}
