//! A `tower` layer that admits only requests with a valid bearer access token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use idjag_core::ScopeSet;
use tower::{Layer, Service};

use super::ProtectedResource;

/// Guards a service with a [`ProtectedResource`]: requests without a valid token get the
/// 401, 400 or 403 of their [`BearerRejection`](super::BearerRejection); the others reach the
/// inner service with the [`BearerPrincipal`](super::BearerPrincipal) in their extensions.
///
/// ```
/// # #[cfg(feature = "axum")] {
/// # use std::sync::Arc;
/// # use idjag_core::*;
/// # use idjag_resource::rs::*;
/// use axum::{Extension, Router, routing::get};
///
/// # fn demo(protected: Arc<ProtectedResource>) -> Result<(), Box<dyn std::error::Error>> {
/// async fn whoami(Extension(principal): Extension<BearerPrincipal>) -> String {
///     principal.subject().to_string()
/// }
/// let app: Router = Router::new()
///     .route("/mcp", get(whoami))
///     .route_layer(
///         RequireBearerLayer::new(protected.clone())
///             .with_scopes(ScopeSet::parse("chat.read")?),
///     );
/// # Ok(()) }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RequireBearerLayer {
    resource: Arc<ProtectedResource>,
    required: Arc<ScopeSet>,
}

impl RequireBearerLayer {
    /// Requires a valid token for `resource`, with no particular scope.
    pub fn new(resource: Arc<ProtectedResource>) -> Self {
        Self {
            resource,
            required: Arc::new(ScopeSet::new()),
        }
    }

    /// Also requires every scope of `required` (403 `insufficient_scope` otherwise).
    pub fn with_scopes(mut self, required: ScopeSet) -> Self {
        self.required = Arc::new(required);
        self
    }
}

impl<S> Layer<S> for RequireBearerLayer {
    type Service = RequireBearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireBearer {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RequireBearerLayer`].
#[derive(Debug, Clone)]
pub struct RequireBearer<S> {
    inner: S,
    layer: RequireBearerLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireBearer<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Vec<u8>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone is not ready yet; the polled one goes into the future (tower's
        // documented pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let verdict = layer
                .resource
                .authorize_scopes(request.headers(), &layer.required)
                .await;
            match verdict {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(rejection) => Ok(rejection.to_response().map(ResBody::from)),
            }
        })
    }
}
