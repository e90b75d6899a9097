//! The axum router: token endpoint, JWKS and metadata (feature `axum`).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use axum::http::{Request, Response, StatusCode};
use axum::routing::{any, get};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::audit::{self, AuditContext};
use crate::error::ExchangeError;
use crate::issuer::IdJagIssuer;
use idjag_core::server::{FormError, FormRequestError};

/// Longest `Cache-Control: max-age` of the JWKS: five minutes.
const JWKS_MAX_AGE_SECS: u64 = 300;
/// `Cache-Control` of the metadata documents.
pub(crate) const METADATA_CACHE_CONTROL: &str = "public, max-age=3600";

impl IdJagIssuer {
    /// An axum router with the token endpoint (any method: non-`POST` gets 405 with an OAuth
    /// error body), the JWKS, the RFC 8414 metadata and the OIDC discovery document, each at
    /// the path of its configured URL. Merge it into the host's router.
    pub fn router(&self) -> Router {
        let [token, jwks, oauth_metadata, openid_metadata] = paths(self);
        let router = Router::new()
            .route(&token, any(token_endpoint))
            .route(&jwks, get(jwks_endpoint))
            .route(&oauth_metadata, get(metadata_endpoint));
        let router = if openid_metadata == oauth_metadata {
            router
        } else {
            router.route(&openid_metadata, get(metadata_endpoint))
        };
        router.with_state(self.clone())
    }
}

/// The paths the router mounts: token endpoint, JWKS, RFC 8414 metadata (path inserted)
/// and OIDC discovery (path appended).
pub(crate) fn paths(idp: &IdJagIssuer) -> [String; 4] {
    use idjag_core::endpoint::{well_known_appended, well_known_inserted};
    use idjag_core::wire;
    // The issuer was checked to be a URL when the issuer was built.
    let issuer = url::Url::parse(idp.issuer().as_str()).expect("the issuer is a URL");
    [
        idp.token_endpoint().path().to_owned(),
        idp.jwks_uri().path().to_owned(),
        well_known_inserted(&issuer, wire::WELL_KNOWN_OAUTH_AUTHORIZATION_SERVER)
            .path()
            .to_owned(),
        well_known_appended(&issuer, wire::WELL_KNOWN_OPENID_CONFIGURATION)
            .path()
            .to_owned(),
    ]
}

async fn token_endpoint(State(idp): State<IdJagIssuer>, request: Request<Body>) -> Response<Body> {
    match read_token_request(&idp, request).await {
        Ok(request) => idp.handle(request).await.map(Body::from),
        Err(refusal) => refusal,
    }
}

/// Reads a token-endpoint request's body within the issuer's limit; a body over it, or one
/// that breaks off, is refused (and audited) here as the token endpoint refuses it.
pub(crate) async fn read_token_request(
    idp: &IdJagIssuer,
    request: Request<Body>,
) -> Result<Request<Bytes>, Response<Body>> {
    let (parts, body) = request.into_parts();
    let limit = idp.max_body_bytes();
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(Request::from_parts(parts, collected.to_bytes())),
        Err(error) => {
            let refusal = if error.downcast_ref::<LengthLimitError>().is_some() {
                ExchangeError::Envelope(FormRequestError::BodyTooLarge { max: limit })
            } else {
                // The client went away or sent a broken body: answer as for a malformed form.
                ExchangeError::Envelope(FormRequestError::Form(FormError::Encoding))
            };
            audit::record(idp.audit_subject(), &AuditContext::default(), Err(&refusal));
            Err(idp.error_response(&refusal).map(Body::from))
        }
    }
}

pub(crate) fn json(
    body: &serde_json::Value,
    content_type: &'static str,
    cache: HeaderValue,
) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, cache);
    response
}

/// The JWKS may be cached for half the key lead time (at most five minutes), so caches that
/// honour `max-age` hold a staged key before it signs (threat X19).
pub(crate) async fn jwks_endpoint(State(idp): State<IdJagIssuer>) -> Response<Body> {
    let max_age = (idp.rotation_timing().lead_time().as_secs() / 2).min(JWKS_MAX_AGE_SECS);
    let cache = HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or(HeaderValue::from_static("no-cache"));
    json(&idp.jwks(), idjag_core::wire::MEDIA_TYPE_JWK_SET, cache)
}

async fn metadata_endpoint(State(idp): State<IdJagIssuer>) -> Response<Body> {
    let metadata = serde_json::to_value(idp.metadata()).unwrap_or_default();
    json(
        &metadata,
        idjag_core::wire::MEDIA_TYPE_JSON,
        HeaderValue::from_static(METADATA_CACHE_CONTROL),
    )
}
