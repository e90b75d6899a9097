//! Typed failures of the authorizing client, and how to find them in an rmcp error.

use std::error::Error as StdError;

use idjag_client::{ClientError, DiscoveryError, Stage};
use idjag_core::OAuthErrorCode;
use rmcp::ServiceError;
use rmcp::service::ClientInitializeError;
use rmcp::transport::DynamicTransportError;
use rmcp::transport::streamable_http_client::StreamableHttpError;

/// A boxed error of the wrapped HTTP client.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why no access token could be sent to the MCP server. No variant holds a token, a secret or
/// a raw claim, so `Display` and `Debug` are safe to log.
///
/// A policy denial ([`Self::is_policy_denial`]) ends the request: the client never falls back
/// to another credential or to an unauthenticated request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationError {
    /// The ID-JAG flow failed: discovery, the IdP (policy denial, step-up), the resource
    /// authorization server, or the transport to them. The [`ClientError`] names its stage.
    #[error("the ID-JAG flow failed: {0}")]
    Flow(#[source] ClientError),
    /// The MCP server's authorization servers are none that this client is registered with.
    #[error("no client registration for the authorization servers the MCP server names")]
    NotRegistered,
    /// No subject token for the current user: the app must sign the user in first.
    #[error("the user must sign in")]
    SignInRequired,
    /// The MCP server URL is not a usable resource identifier (absolute, no fragment).
    #[error("the MCP server URL is not a valid resource identifier")]
    InvalidResource,
    /// The access token is DPoP-bound, and the rmcp transport can only send `Bearer` tokens.
    #[error("DPoP-bound access tokens cannot be sent by this transport")]
    DpopUnsupported,
}

impl AuthorizationError {
    /// Whether the IdP refused by policy (`access_denied`, `invalid_target` or `invalid_grant`
    /// from the token exchange).
    pub fn is_policy_denial(&self) -> bool {
        matches!(self, Self::Flow(ClientError::PolicyDenied { .. }))
    }

    /// The OAuth error code a server answered with, if any.
    pub fn oauth_error(&self) -> Option<OAuthErrorCode> {
        match self {
            Self::Flow(error) => error.oauth_error().and_then(|code| code.known()),
            _ => None,
        }
    }

    /// Where the flow failed, when it did.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Self::Flow(error) => error.stage(),
            _ => None,
        }
    }

    /// The flow's error, if the flow ran.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            Self::Flow(error) => Some(error),
            _ => None,
        }
    }
}

impl From<ClientError> for AuthorizationError {
    fn from(error: ClientError) -> Self {
        Self::Flow(error)
    }
}

impl From<DiscoveryError> for AuthorizationError {
    fn from(error: DiscoveryError) -> Self {
        Self::Flow(ClientError::Discovery(error))
    }
}

/// The error type of [`crate::client::EmaAuthClient`]: the wrapped client's error, or why
/// no access token could be had. rmcp reports it as
/// [`StreamableHttpError::Client`]; [`authorization_error`] finds it in any rmcp error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmaTransportError {
    /// The wrapped HTTP client failed.
    #[error("HTTP client error: {0}")]
    Http(#[source] BoxError),
    /// Authorization failed before the request could be sent.
    #[error("authorization failed: {0}")]
    Authorization(#[source] AuthorizationError),
}

/// The transport-level error of [`crate::client::EmaAuthClient`].
pub type EmaHttpError = StreamableHttpError<EmaTransportError>;

/// Finds the [`AuthorizationError`] behind an rmcp error: a `ClientInitializeError` from
/// `serve_client`, a `ServiceError` from a request, a `StreamableHttpError` from the
/// transport, or the error itself. Walks rmcp's wrappers and the `source()` chain.
///
/// ```no_run
/// # async fn demo(transport: rmcp::transport::StreamableHttpClientTransport<idjag_mcp::client::EmaAuthClient<reqwest::Client>>) {
/// use rmcp::ServiceExt;
/// match ().serve(transport).await {
///     Ok(client) => { /* call tools */ }
///     Err(error) => match idjag_mcp::client::authorization_error(&error) {
///         Some(denied) if denied.is_policy_denial() => { /* tell the user: not allowed */ }
///         Some(other) => { /* sign-in, configuration, or an IdP/AS outage */ }
///         None => { /* a transport or protocol error */ }
///     },
/// }
/// # }
/// ```
pub fn authorization_error<'a>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a AuthorizationError> {
    if let Some(found) = error.downcast_ref::<AuthorizationError>() {
        return Some(found);
    }
    match transport_error(error)? {
        StreamableHttpError::Client(EmaTransportError::Authorization(found)) => Some(found),
        _ => None,
    }
}

/// Finds the transport error of an [`crate::client::EmaAuthClient`] behind an rmcp error, to
/// tell a `403 insufficient_scope` (`StreamableHttpError::InsufficientScope`, with the
/// challenge) or a second `401` (`AuthRequired`) from other failures.
///
/// ```no_run
/// # async fn demo(client: rmcp::service::RunningService<rmcp::RoleClient, ()>) {
/// use rmcp::model::CallToolRequestParams;
/// use rmcp::transport::streamable_http_client::StreamableHttpError;
/// if let Err(error) = client.call_tool(CallToolRequestParams::new("delete_repo")).await {
///     if let Some(StreamableHttpError::InsufficientScope(refusal)) =
///         idjag_mcp::client::transport_error(&error)
///     {
///         eprintln!("the server wants: {:?}", refusal.get_required_scope());
///     }
/// }
/// # }
/// ```
pub fn transport_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a EmaHttpError> {
    if let Some(found) = error.downcast_ref::<EmaHttpError>() {
        return Some(found);
    }
    // rmcp's wrappers hold the transport error without naming it as their `source`.
    let held: Option<&(dyn StdError + 'static)> =
        if let Some(transport) = error.downcast_ref::<DynamicTransportError>() {
            Some(&*transport.error)
        } else if let Some(ServiceError::TransportSend(transport)) =
            error.downcast_ref::<ServiceError>()
        {
            Some(&*transport.error)
        } else if let Some(init) = error.downcast_ref::<ClientInitializeError>() {
            match init {
                ClientInitializeError::TransportError { error, .. } => Some(&*error.error),
                ClientInitializeError::LegacyFallbackFailed { discover, fallback } => {
                    return transport_error(&**discover).or_else(|| transport_error(&**fallback));
                }
                _ => None,
            }
        } else {
            None
        };
    held.or_else(|| error.source()).and_then(transport_error)
}

/// Maps the wrapped client's error into ours, variant by variant, so that rmcp's own
/// handling (session expiry, missing SSE support, `401`/`403` challenges) still applies.
pub(crate) fn map_error<E>(error: StreamableHttpError<E>) -> EmaHttpError
where
    E: StdError + Send + Sync + 'static,
{
    use StreamableHttpError as S;
    match error {
        S::Client(e) => S::Client(EmaTransportError::Http(Box::new(e))),
        S::Sse(e) => S::Sse(e),
        S::Io(e) => S::Io(e),
        S::HttpStatus(e) => S::HttpStatus(e),
        S::UnexpectedEndOfStream => S::UnexpectedEndOfStream,
        S::UnexpectedServerResponse(m) => S::UnexpectedServerResponse(m),
        S::ResponseBodyTooLarge { max_size } => S::ResponseBodyTooLarge { max_size },
        S::UnexpectedContentType(t) => S::UnexpectedContentType(t),
        S::ServerDoesNotSupportSse => S::ServerDoesNotSupportSse,
        S::ServerDoesNotSupportDeleteSession => S::ServerDoesNotSupportDeleteSession,
        S::TokioJoinError(e) => S::TokioJoinError(e),
        S::Deserialize(e) => S::Deserialize(e),
        S::TransportChannelClosed => S::TransportChannelClosed,
        S::MissingSessionIdInResponse => S::MissingSessionIdInResponse,
        S::Auth(e) => S::Auth(e),
        S::AuthRequired(e) => S::AuthRequired(e),
        S::InsufficientScope(e) => S::InsufficientScope(e),
        S::ReservedHeaderConflict(h) => S::ReservedHeaderConflict(h),
        S::SessionExpired => S::SessionExpired,
        S::SessionRecoveryTimeout => S::SessionRecoveryTimeout,
        S::ReinitializationFailed(e) => S::ReinitializationFailed(e),
        S::ControlRequestTimeout => S::ControlRequestTimeout,
        // A variant added by a later rmcp: keep its text.
        other => S::UnexpectedServerResponse(other.to_string().into()),
    }
}

#[cfg(test)]
mod tests {
    use idjag_core::OAuthErrorResponse;
    use rmcp::transport::streamable_http_client::AuthRequiredError;

    use super::*;

    fn denial() -> AuthorizationError {
        AuthorizationError::Flow(ClientError::PolicyDenied {
            stage: Stage::IdentityProvider,
            status: 400,
            code: OAuthErrorCode::AccessDenied,
            error: Box::new(OAuthErrorResponse::new(OAuthErrorCode::AccessDenied)),
        })
    }

    #[test]
    fn a_policy_denial_is_recognised_with_its_stage_and_code() {
        let error = denial();
        assert!(error.is_policy_denial());
        assert_eq!(error.stage(), Some(Stage::IdentityProvider));
        assert_eq!(error.oauth_error(), Some(OAuthErrorCode::AccessDenied));
        assert!(!AuthorizationError::SignInRequired.is_policy_denial());
        assert!(!AuthorizationError::from(DiscoveryError::NotFound).is_policy_denial());
    }

    #[test]
    fn authorization_errors_are_found_through_rmcp_wrappers() {
        let wrapped: EmaHttpError =
            StreamableHttpError::Client(EmaTransportError::Authorization(denial()));
        assert!(authorization_error(&wrapped).unwrap().is_policy_denial());

        // As rmcp boxes it inside a DynamicTransportError (its `source`).
        let dynamic = rmcp::transport::DynamicTransportError::from_parts(
            "test",
            std::any::TypeId::of::<()>(),
            Box::new(wrapped),
        );
        assert!(authorization_error(&dynamic).unwrap().is_policy_denial());

        let other: EmaHttpError = StreamableHttpError::SessionExpired;
        assert!(authorization_error(&other).is_none());
        let http: EmaHttpError = StreamableHttpError::Client(EmaTransportError::Http(
            std::io::Error::other("refused").into(),
        ));
        assert!(authorization_error(&http).is_none());
    }

    #[test]
    fn mapping_keeps_the_variants_rmcp_acts_on() {
        let mapped = map_error::<std::io::Error>(StreamableHttpError::AuthRequired(
            AuthRequiredError::new("Bearer".into()),
        ));
        assert!(matches!(mapped, StreamableHttpError::AuthRequired(_)));
        let mapped = map_error::<std::io::Error>(StreamableHttpError::SessionExpired);
        assert!(matches!(mapped, StreamableHttpError::SessionExpired));
        let mapped = map_error(StreamableHttpError::Client(std::io::Error::other("x")));
        let StreamableHttpError::Client(EmaTransportError::Http(inner)) = mapped else {
            panic!("client errors stay client errors");
        };
        assert!(inner.downcast_ref::<std::io::Error>().is_some());
    }
}
