//! The axum adapters (feature `axum`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::rs::{BearerRejection, InsufficientScope, ProtectedResource};
use crate::server::ResourceAuthorizationServer;

fn into_axum(response: http::Response<Vec<u8>>) -> Response {
    response.map(Body::from)
}

enum ReadError {
    TooLarge,
    Aborted,
}

async fn read_body(body: Body, max: usize) -> Result<Vec<u8>, ReadError> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ReadError::TooLarge),
        Err(_) => Err(ReadError::Aborted),
    }
}

async fn token(State(server): State<ResourceAuthorizationServer>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match read_body(body, server.max_body_bytes()).await {
        Ok(bytes) => into_axum(server.token(&parts.method, &parts.headers, &bytes).await),
        Err(ReadError::TooLarge) => into_axum(server.token_body_too_large()),
        // The client went away before its request was complete: no decision to take.
        Err(ReadError::Aborted) => http::StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn introspect(
    State(server): State<ResourceAuthorizationServer>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    match read_body(body, server.max_body_bytes()).await {
        Ok(bytes) => into_axum(
            server
                .introspect(&parts.method, &parts.headers, &bytes)
                .await,
        ),
        Err(ReadError::TooLarge) => http::StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(ReadError::Aborted) => http::StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn metadata(State(server): State<ResourceAuthorizationServer>) -> Response {
    into_axum(server.metadata())
}

async fn jwks(State(server): State<ResourceAuthorizationServer>) -> Response {
    into_axum(server.jwks())
}

async fn authorize(State(server): State<ResourceAuthorizationServer>) -> Response {
    into_axum(server.authorize())
}

impl ResourceAuthorizationServer {
    /// An axum router with the token endpoint, the introspection endpoint, the RFC 8414
    /// metadata document and the JWKS, each at the path its URL in the metadata names, and
    /// the refusing authorization endpoint when configured
    /// ([`crate::AuthorizationEndpoint::Refusing`]). The token and introspection routes take
    /// every method and answer 405 to all but `POST`.
    pub fn router(&self) -> Router {
        let e = &self.inner.endpoints;
        let mut router = Router::new()
            .route(&e.token_path, any(token))
            .route(&e.introspection_path, any(introspect))
            .route(&e.metadata_path, get(metadata))
            .route(&e.jwks_path, get(jwks));
        if let Some(path) = self.authorize_path() {
            router = router.route(path, any(authorize));
        }
        router.with_state(self.clone())
    }
}

impl ProtectedResource {
    /// An axum router serving the RFC 9728 metadata document at [`Self::metadata_path`].
    pub fn metadata_router(&self) -> Router {
        let resource = self.clone();
        Router::new().route(
            self.metadata_path(),
            get(move || {
                let response = resource.metadata_response();
                async move { into_axum(response) }
            }),
        )
    }
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        into_axum(self.to_response())
    }
}

impl IntoResponse for InsufficientScope {
    fn into_response(self) -> Response {
        into_axum(self.to_response())
    }
}
