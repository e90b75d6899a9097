//! The development provider's axum router (features `dev` and `axum`).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::HeaderValue;
use axum::http::{Request, Response};
use axum::routing::{any, get};
use http_body_util::{BodyExt, Limited};

use super::authorize::MAX_FORM_BYTES;
use super::error::DevAuthorizeError;
use super::provider::DevOidcProvider;
use crate::router::{METADATA_CACHE_CONTROL, json, jwks_endpoint, paths, read_token_request};

impl DevOidcProvider {
    /// An axum router with everything [`IdJagIssuer::router`](crate::IdJagIssuer::router)
    /// mounts, and the development provider's endpoints: the token endpoint also answers the
    /// `authorization_code` and `refresh_token` grants ([`Self::handle_token`]), both metadata
    /// paths serve [`Self::metadata`], and `/authorize` ([`Self::handle_authorize`]) and
    /// `/userinfo` ([`Self::handle_userinfo`]) are added. Use it **instead of** the issuer's
    /// router, never beside it, and only in tests and demos.
    pub fn router(&self) -> Router {
        let [token, jwks, oauth_metadata, openid_metadata] = paths(self.issuer());
        let router = Router::new()
            .route(&token, any(token_endpoint))
            .route(&jwks, get(jwks_of_issuer))
            .route(&oauth_metadata, get(metadata_endpoint))
            .route(
                self.authorization_endpoint().path(),
                any(authorize_endpoint),
            )
            .route(
                self.userinfo_endpoint().path(),
                get(userinfo_endpoint).post(userinfo_endpoint),
            );
        let router = if openid_metadata == oauth_metadata {
            router
        } else {
            router.route(&openid_metadata, get(metadata_endpoint))
        };
        router.with_state(self.clone())
    }
}

async fn token_endpoint(
    State(dev): State<DevOidcProvider>,
    request: Request<Body>,
) -> Response<Body> {
    match read_token_request(dev.issuer(), request).await {
        Ok(request) => dev.handle_token(request).await.map(Body::from),
        Err(refusal) => refusal,
    }
}

async fn jwks_of_issuer(State(dev): State<DevOidcProvider>) -> Response<Body> {
    jwks_endpoint(State(dev.issuer().clone())).await
}

async fn metadata_endpoint(State(dev): State<DevOidcProvider>) -> Response<Body> {
    let metadata = serde_json::to_value(dev.metadata()).unwrap_or_default();
    json(
        &metadata,
        idjag_core::wire::MEDIA_TYPE_JSON,
        HeaderValue::from_static(METADATA_CACHE_CONTROL),
    )
}

async fn authorize_endpoint(
    State(dev): State<DevOidcProvider>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    // One byte over the limit is enough to refuse the form as too large.
    let body = match Limited::new(body, MAX_FORM_BYTES + 1).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return dev
                .refusal_page(DevAuthorizeError::Malformed)
                .map(Body::from);
        }
    };
    dev.handle_authorize(&Request::from_parts(parts, body))
        .map(Body::from)
}

async fn userinfo_endpoint(
    State(dev): State<DevOidcProvider>,
    request: Request<Body>,
) -> Response<Body> {
    // The token is read from the header only; the body is never looked at.
    let (parts, _) = request.into_parts();
    dev.handle_userinfo(&Request::from_parts(parts, Bytes::new()))
        .map(Body::from)
}
