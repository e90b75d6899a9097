//! RFC 8414 metadata (also served where MCP clients probe: the path-insertion form and
//! `/.well-known/openid-configuration`) and the JWKS of the gateway's access tokens. Both
//! are public and answered with `Access-Control-Allow-Origin: *` (browser-based clients such
//! as the MCP Inspector read them).

use axum::extract::State;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use idjag_core::wire;
use serde_json::{Value, json};

use crate::authorization_server::AuthorizationServer;
use crate::authorization_server::pages;
use crate::config::RegistrationMode;

/// The RFC 8414 document.
pub fn document(server: &AuthorizationServer) -> Value {
    let inner = &server.inner;
    let base = inner.issuer.as_str();
    let mut grants = vec![
        wire::GRANT_TYPE_AUTHORIZATION_CODE,
        wire::GRANT_TYPE_REFRESH_TOKEN,
    ];
    if inner.plan.id_jag {
        grants.push(wire::GRANT_TYPE_JWT_BEARER);
    }
    let auth_methods = [
        wire::auth_method::NONE,
        wire::auth_method::CLIENT_SECRET_BASIC,
        wire::auth_method::CLIENT_SECRET_POST,
        wire::auth_method::PRIVATE_KEY_JWT,
    ];
    let mut doc = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/oauth/jwks"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": inner.plan.metadata_documents.enabled,
    });
    if inner.plan.registration != RegistrationMode::Off {
        doc["registration_endpoint"] = json!(format!("{base}/oauth/register"));
    }
    if inner.plan.id_jag {
        doc["authorization_grant_profiles_supported"] = json!([wire::GRANT_PROFILE_ID_JAG]);
    }
    doc
}

fn public_json(body: &Value) -> Response {
    let mut response = pages::json(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.remove(http::header::PRAGMA);
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// `GET /.well-known/oauth-authorization-server[/...]`.
pub(crate) async fn metadata(State(server): State<AuthorizationServer>) -> Response {
    public_json(&document(&server))
}

/// `GET /.well-known/openid-configuration[/...]`: the same document with the members an
/// OpenID discovery parser requires (the gateway issues no ID tokens).
pub(crate) async fn openid(State(server): State<AuthorizationServer>) -> Response {
    let mut doc = document(&server);
    doc["subject_types_supported"] = json!(["public"]);
    doc["id_token_signing_alg_values_supported"] = json!([server.inner.plan.signing_alg.as_str()]);
    public_json(&doc)
}

/// `GET /oauth/jwks`.
pub(crate) async fn jwks(State(server): State<AuthorizationServer>) -> Response {
    let mut response = public_json(&server.inner.keys.jwks());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(wire::MEDIA_TYPE_JWK_SET),
    );
    response
}

/// CORS preflight of the token, revocation and registration endpoints (browser clients
/// use them without cookies).
pub(crate) async fn preflight() -> Response {
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, mcp-protocol-version"),
    );
    headers.insert(
        http::header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}
