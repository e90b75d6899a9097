//! The rmcp `StreamableHttpClient` that authorizes its requests through the ID-JAG flow.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use idjag_client::{AccessRequest, AccessTokenGrant, DiscoveryError, TokenType};
use idjag_core::challenge::BearerChallenge;
use idjag_core::{Resource, ScopeSet};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse,
};
use sse_stream::Sse;

use super::authorizer::{EmaAuthorizer, UserTokenSource};
use super::error::{AuthorizationError, EmaHttpError, EmaTransportError, map_error};

/// The MCP server this client talks to, once discovered, and what to ask for there.
#[derive(Debug, Clone)]
struct Target {
    uri: Arc<str>,
    request: AccessRequest,
}

/// An rmcp [`StreamableHttpClient`] that sends each request with an access token from the
/// ID-JAG flow, for one user (the flow in `docs/flow.md`; requirement MCP-03).
///
/// - **First request**: sent without a token. The server's `401` challenge leads to its
///   protected resource metadata (the challenge's `resource_metadata`, else the well-known
///   URL), its authorization server, then a token exchange at the IdP for the user's subject
///   token and a JWT-bearer redemption. The request is sent again with the token.
///   [`Self::authorize`] does all this up front instead.
/// - **Later requests**: the cached token ([`idjag_client::TokenProvider`]), renewed before it
///   expires.
/// - **`401` with a token**: the token is dropped, a new one is obtained, and the request is
///   sent once more. A second `401` is returned as rmcp's `AuthRequired`.
/// - **`403 insufficient_scope`** naming scopes beyond those asked for: one new token exchange
///   with the union (MCP 2025-11-25 step-up; requirement MCP-05), and one more attempt. Otherwise,
///   or if the server still refuses, rmcp's `InsufficientScope`.
/// - **Failures of the flow** (an IdP policy denial, a sign-in that is needed, an
///   authorization server we are not registered with) end the request with
///   [`EmaTransportError::Authorization`]; nothing else is tried, and nothing is sent to the
///   MCP server. [`crate::client::authorization_error`] finds it in rmcp's errors.
///
/// Resending is safe: a `401` or `403` from the authorization layer means the request was
/// not processed. The transport's own `auth_header` setting is ignored: this client decides
/// which credential goes out. Clones share the discovered server and the token cache.
pub struct EmaAuthClient<C> {
    inner: C,
    authorizer: Arc<EmaAuthorizer>,
    user: Arc<dyn UserTokenSource>,
    target: Arc<tokio::sync::Mutex<Option<Target>>>,
}

impl<C: Clone> Clone for EmaAuthClient<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            authorizer: self.authorizer.clone(),
            user: self.user.clone(),
            target: self.target.clone(),
        }
    }
}

impl<C> fmt::Debug for EmaAuthClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmaAuthClient")
            .field("authorizer", &self.authorizer)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The default HTTP client for MCP traffic: rustls, no redirects (a token never follows one),
/// a connect timeout and a per-read timeout, and no total timeout, which would cut long SSE
/// streams (rmcp servers send a keep-alive every 15 s).
pub fn mcp_http_client() -> Result<reqwest::Client, EmaTransportError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| EmaTransportError::Http(Box::new(e)))
}

impl EmaAuthorizer {
    /// A client for the user whose subject token `user` gives, sending through `inner`.
    pub fn client<C>(
        self: &Arc<Self>,
        inner: C,
        user: impl UserTokenSource + 'static,
    ) -> EmaAuthClient<C> {
        EmaAuthClient {
            inner,
            authorizer: self.clone(),
            user: Arc::new(user),
            target: Arc::default(),
        }
    }

    /// A client for `user` over [`mcp_http_client`].
    pub fn reqwest_client(
        self: &Arc<Self>,
        user: impl UserTokenSource + 'static,
    ) -> Result<EmaAuthClient<reqwest::Client>, EmaTransportError> {
        Ok(self.client(mcp_http_client()?, user))
    }
}

impl<C> EmaAuthClient<C>
where
    C: StreamableHttpClient + Send + Sync,
{
    /// An rmcp transport to the MCP server at `uri` through this client.
    pub fn into_transport(self, uri: impl Into<Arc<str>>) -> StreamableHttpClientTransport<Self> {
        StreamableHttpClientTransport::with_client(
            self,
            StreamableHttpClientTransportConfig::with_uri(uri),
        )
    }

    /// Discovers the MCP server at `uri` from its well-known metadata and gets an access token,
    /// before any request is sent to it. A policy denial or a missing registration shows here,
    /// and the server never sees a request.
    pub async fn authorize(&self, uri: &str) -> Result<(), AuthorizationError> {
        let uri: Arc<str> = Arc::from(uri);
        let request = self.discovered(&uri, None).await?;
        self.token(&request).await.map(drop)
    }

    /// What this client asks for at its MCP server, once discovered.
    pub async fn access_request(&self) -> Option<AccessRequest> {
        self.target.lock().await.as_ref().map(|t| t.request.clone())
    }

    async fn known(&self, uri: &Arc<str>) -> Option<AccessRequest> {
        let target = self.target.lock().await;
        target
            .as_ref()
            .filter(|t| t.uri == *uri)
            .map(|t| t.request.clone())
    }

    /// The access request for `uri`: the one already discovered, or a new discovery (one at a
    /// time; concurrent callers wait for it).
    async fn discovered(
        &self,
        uri: &Arc<str>,
        challenge: Option<&BearerChallenge>,
    ) -> Result<AccessRequest, AuthorizationError> {
        let mut target = self.target.lock().await;
        if let Some(known) = target.as_ref().filter(|t| t.uri == *uri) {
            return Ok(known.request.clone());
        }
        let resource =
            Resource::new(uri.as_ref()).map_err(|_| AuthorizationError::InvalidResource)?;
        let request = self.authorizer.discover(&resource, challenge).await?;
        *target = Some(Target {
            uri: uri.clone(),
            request: request.clone(),
        });
        Ok(request)
    }

    async fn token(&self, request: &AccessRequest) -> Result<AccessTokenGrant, AuthorizationError> {
        let user = self
            .user
            .user_token()
            .await
            .ok_or(AuthorizationError::SignInRequired)?;
        let grant = self
            .authorizer
            .provider()
            .access_token(&user, request)
            .await?;
        usable(grant)
    }

    async fn refreshed(
        &self,
        request: &AccessRequest,
        rejected: &AccessTokenGrant,
    ) -> Result<AccessTokenGrant, AuthorizationError> {
        let user = self
            .user
            .user_token()
            .await
            .ok_or(AuthorizationError::SignInRequired)?;
        let grant = self
            .authorizer
            .provider()
            .refresh_after_unauthorized(&user, request, rejected.access_token())
            .await?;
        usable(grant)
    }

    /// Widens the stored request with `required` (a step-up), unless it already holds it.
    async fn stepped_up(
        &self,
        uri: &Arc<str>,
        request: &AccessRequest,
        required: &ScopeSet,
    ) -> Option<AccessRequest> {
        if required.is_subset(request.scope()) {
            return None;
        }
        let wider = request.clone().with_scope(request.scope().union(required));
        tracing::debug!(
            target: "idjag_mcp",
            scope = %wider.scope(),
            "the MCP server asked for more scope; exchanging again"
        );
        let mut target = self.target.lock().await;
        *target = Some(Target {
            uri: uri.clone(),
            request: wider.clone(),
        });
        Some(wider)
    }

    /// Sends with the right token and recovers from `401` and `403` as documented on the type:
    /// at most one discovery, one refresh and one step-up per request.
    async fn send_authorized<T, F, Fut>(&self, uri: &Arc<str>, send: F) -> Result<T, EmaHttpError>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, StreamableHttpError<C::Error>>>,
    {
        let denied = |e: AuthorizationError| {
            StreamableHttpError::Client(EmaTransportError::Authorization(e))
        };
        let mut request = self.known(uri).await;
        let mut grant = match &request {
            Some(request) => Some(self.token(request).await.map_err(denied)?),
            None => None,
        };
        let (mut refreshed, mut stepped_up) = (false, false);
        loop {
            let token = grant.as_ref().map(|g| g.access_token().secret().to_owned());
            match (send(token).await, &request, &grant) {
                (Err(StreamableHttpError::AuthRequired(challenge)), None, _) => {
                    let parsed = BearerChallenge::from_header_values([challenge
                        .www_authenticate_header
                        .as_str()])
                    .map_err(|e| denied(DiscoveryError::from(e).into()))?;
                    let discovered = self
                        .discovered(uri, parsed.as_ref())
                        .await
                        .map_err(denied)?;
                    grant = Some(self.token(&discovered).await.map_err(denied)?);
                    request = Some(discovered);
                }
                (Err(StreamableHttpError::AuthRequired(_)), Some(current), Some(sent))
                    if !refreshed =>
                {
                    refreshed = true;
                    tracing::debug!(target: "idjag_mcp", "the MCP server refused the token; renewing once");
                    grant = Some(self.refreshed(current, sent).await.map_err(denied)?);
                }
                (Err(StreamableHttpError::InsufficientScope(refusal)), Some(current), Some(_))
                    if !stepped_up =>
                {
                    stepped_up = true;
                    let required = BearerChallenge::from_header_values([refusal
                        .www_authenticate_header
                        .as_str()])
                    .ok()
                    .flatten()
                    .and_then(|c| c.scope().cloned());
                    let wider = match &required {
                        Some(required) => self.stepped_up(uri, current, required).await,
                        None => None,
                    };
                    let Some(wider) = wider else {
                        return Err(StreamableHttpError::InsufficientScope(refusal));
                    };
                    grant = Some(self.token(&wider).await.map_err(denied)?);
                    request = Some(wider);
                }
                (result, _, _) => return result.map_err(map_error),
            }
        }
    }
}

/// Only `Bearer` tokens can go through rmcp's transports.
fn usable(grant: AccessTokenGrant) -> Result<AccessTokenGrant, AuthorizationError> {
    match grant.token_type() {
        TokenType::Bearer => Ok(grant),
        _ => Err(AuthorizationError::DpopUnsupported),
    }
}

type SseStream = BoxStream<'static, Result<Sse, SseError>>;

impl<C> StreamableHttpClient for EmaAuthClient<C>
where
    C: StreamableHttpClient + Send + Sync,
{
    type Error = EmaTransportError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, EmaHttpError> {
        self.send_authorized(&uri, |token| {
            self.inner.post_message(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                token,
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, EmaHttpError> {
        self.send_authorized(&uri, |token| {
            self.inner.post_message_with_max_sse_event_size(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                token,
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), EmaHttpError> {
        self.send_authorized(&uri, |token| {
            self.inner.delete_session(
                uri.clone(),
                session_id.clone(),
                token,
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<SseStream, EmaHttpError> {
        self.send_authorized(&uri, |token| {
            self.inner.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<SseStream, EmaHttpError> {
        self.send_authorized(&uri, |token| {
            self.inner.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }
}
