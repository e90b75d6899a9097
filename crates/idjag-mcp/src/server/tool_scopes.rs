//! Per-tool scope requirements, enforced over HTTP before rmcp sees the request (requirement
//! MCP-05; threat G16). The body is read with idjag-core's strict JSON-RPC reader
//! ([`idjag_core::jsonrpc`], the one the gateway uses too), so the tool checked here is the tool
//! rmcp, or any other parser, runs (threats G27 to G30).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use idjag_core::ScopeSet;
use idjag_core::jsonrpc::{Message, MessageError, read_message};
use idjag_resource::rs::{BearerPrincipal, ProtectedResource};
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

    /// The scopes a JSON-RPC message needs: the tool's, for a `tools/call`, else none. Tool
    /// names compare byte for byte, as rmcp looks them up.
    ///
    /// The body must be one message that idjag-core's strict reader
    /// ([`idjag_core::jsonrpc::read_message`]) accepts: no repeated member name, no names that
    /// collide after case folding or control-character removal, no lookalike of an envelope
    /// member, no NUL or control character in the method or the tool name, exactly one kind of
    /// message. Any of those could make this check and rmcp (or a parser behind it) see
    /// different tools. Anything else is [`MalformedMessage`]; [`Self::read`] says why.
    pub fn required_for(&self, body: &[u8]) -> Result<ScopeSet, MalformedMessage> {
        self.read(body)
            .map(|(_, required)| required)
            .map_err(MalformedMessage::from)
    }

    /// Reads `body` strictly and returns the message with the scopes it needs, or why the
    /// reader refused it (with the JSON-RPC error code to answer).
    pub fn read(&self, body: &[u8]) -> Result<(Message, ScopeSet), MessageError> {
        let message = read_message(body)?;
        let required = self.required_for_message(&message);
        Ok((message, required))
    }

    /// The scopes an already read message needs: the tool's, for a `tools/call`, else none.
    pub fn required_for_message(&self, message: &Message) -> ScopeSet {
        message
            .tool()
            .and_then(|tool| self.0.get(tool))
            .cloned()
            .unwrap_or_default()
    }
}

/// A POST body that is not one unambiguous JSON-RPC message: refused (400, with the JSON-RPC
/// error code of the reader's [`MessageError`]) before rmcp sees it when tool scopes are
/// configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body is not one well-formed JSON-RPC message")]
pub struct MalformedMessage;

impl From<MessageError> for MalformedMessage {
    fn from(_: MessageError) -> Self {
        Self
    }
}

fn refused(error: MessageError) -> Response {
    tracing::debug!(
        target: "idjag_mcp",
        reason = error.reason_code(),
        "request body refused by the strict JSON-RPC reader"
    );
    (StatusCode::BAD_REQUEST, axum::Json(error.response_body())).into_response()
}

/// A tower layer (for axum's `route_layer`) that answers `403 insufficient_scope`, with the
/// scopes needed in the challenge, to a `tools/call` whose token lacks the tool's scopes.
/// The request never reaches rmcp then.
///
/// It reads the verified [`BearerPrincipal`] that idjag-resource's `RequireBearerLayer` put in the
/// request extensions; without one it verifies the token itself, so a missing bearer layer
/// fails closed. `POST` bodies are buffered up to a limit (413 beyond it), read strictly (400
/// with a JSON-RPC error when refused, see [`ToolScopes::required_for`]) and passed on
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
            let required = match layer.scopes.read(&bytes) {
                Ok((_, required)) => required,
                Err(error) => return Ok(refused(error)),
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
            // Not a tool name: rmcp would refuse it too, so it is refused here.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
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

    #[test]
    fn g27_g28_folded_lookalike_and_nul_names_are_refused_with_the_readers_reason() {
        let s = scopes();
        let cases = [
            // Go's encoding/json binds `Name` to the tool name: `admin` would run unchecked.
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"admin"}}"#,
                MessageError::LookalikeMember { imitates: "name" },
            ),
            (
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"write\",\"NAME\":\"admin\"}}",
                MessageError::CollidingMembers,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write","argument\u017f":{"all":true}}}"#,
                MessageError::LookalikeMember {
                    imitates: "arguments",
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write\u0000admin"}}"#,
                MessageError::InvalidToolName,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"admin"}}"#,
                MessageError::CollidingMembers,
            ),
        ];
        for (body, reason) in cases {
            assert_eq!(
                s.read(body.as_bytes()).map(|(_, r)| r),
                Err(reason),
                "{body}"
            );
            assert_eq!(s.required_for(body.as_bytes()), Err(MalformedMessage));
        }
        let (message, required) = s
            .read(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"}}"#)
            .unwrap();
        assert_eq!(message.tool(), Some("admin"));
        assert_eq!(required, s.required_for_message(&message));
        assert_eq!(required.to_string(), "repo.admin");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = scopes().required_for(&body);
        }
    }
}
