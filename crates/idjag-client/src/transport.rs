//! Sending requests through the [`HttpClient`] seam: URL checks, the size cap, the POST of a
//! token request with its client authentication, and the DPoP nonce retry.

use idjag_core::endpoint::check_endpoint_url;
use idjag_core::{Issuer, OAuthErrorCode, wire};
use serde_json::{Map, Value};
use url::Url;

use crate::auth::ClientCredentials;
use crate::dpop::DpopKey;
use crate::error::{ClientError, InputError, ResponseProblem, Stage};
use crate::form::Form;
use crate::http::{HttpClient, HttpRequest, HttpResponse};
use crate::response::{error_for_status, json_object, oauth_error};

/// Sends `request`, mapping transport failures to `stage` and enforcing `max_bytes` on
/// whatever the [`HttpClient`] returned.
pub(crate) async fn send(
    http: &dyn HttpClient,
    stage: Stage,
    request: HttpRequest,
    max_bytes: usize,
) -> Result<HttpResponse, ClientError> {
    let response = http
        .execute(request)
        .await
        .map_err(|error| ClientError::Transport { stage, error })?;
    if response.body().len() > max_bytes {
        return Err(ClientError::malformed(
            stage,
            ResponseProblem::TooLarge { max: max_bytes },
        ));
    }
    Ok(response)
}

/// A GET for a JSON document (metadata).
pub(crate) fn get_json_request(url: &Url) -> Result<HttpRequest, ClientError> {
    check_endpoint_url(url).map_err(|error| InputError::Endpoint {
        what: "metadata URL",
        error,
    })?;
    http::Request::get(url.as_str())
        .header(http::header::ACCEPT, wire::MEDIA_TYPE_JSON)
        .body(Vec::new())
        .map_err(|_| {
            ClientError::Discovery(crate::error::DiscoveryError::Endpoint(
                idjag_core::endpoint::EndpointError::NotAUrl,
            ))
        })
}

/// One token endpoint call: where, as whom, with which grant parameters.
pub(crate) struct TokenCall<'a> {
    pub(crate) stage: Stage,
    pub(crate) grant: &'static str,
    pub(crate) endpoint: &'a Url,
    /// The server's issuer: the `aud` of a client assertion.
    pub(crate) issuer: &'a Issuer,
    pub(crate) credentials: &'a ClientCredentials,
    /// The grant parameters, without client authentication.
    pub(crate) form: Form,
    pub(crate) dpop: Option<&'a DpopKey>,
}

/// POSTs a token request and returns the JSON object of a 200 answer. With DPoP, a
/// `use_dpop_nonce` answer is retried once with the server's nonce (RFC 9449 §8).
pub(crate) async fn post_token(
    http: &dyn HttpClient,
    max_bytes: usize,
    call: TokenCall<'_>,
) -> Result<Map<String, Value>, ClientError> {
    let stage = call.stage;
    let mut nonce: Option<String> = None;
    loop {
        let request = build(&call, nonce.as_deref()).await?;
        tracing::debug!(
            target: "idjag_client",
            stage = %stage,
            grant = call.grant,
            endpoint = %call.endpoint,
            client_id = %call.credentials.client_id(),
            auth = call.credentials.auth().method(),
            dpop = call.dpop.is_some(),
            "token request"
        );
        let response = send(http, stage, request, max_bytes).await?;
        let status = response.status().as_u16();
        if status == 200 {
            return json_object(response.body()).map_err(|p| ClientError::malformed(stage, p));
        }
        if nonce.is_none()
            && call.dpop.is_some()
            && let Some(server_nonce) = dpop_nonce(&response)
        {
            nonce = Some(server_nonce);
            continue;
        }
        let error = error_for_status(stage, status, response.body());
        tracing::debug!(
            target: "idjag_client",
            stage = %stage,
            status,
            error = error.oauth_error().map(|c| c.as_str()),
            "token request refused"
        );
        return Err(error);
    }
}

/// The `DPoP-Nonce` of a `use_dpop_nonce` answer.
fn dpop_nonce(response: &HttpResponse) -> Option<String> {
    if !matches!(response.status().as_u16(), 400 | 401) {
        return None;
    }
    let asks = match oauth_error(response.body()) {
        Some(Ok(error)) => error.error.as_str() == "use_dpop_nonce",
        _ => false,
    };
    let nonce = response.headers().get("dpop-nonce")?.to_str().ok()?;
    let valid =
        !nonce.is_empty() && nonce.len() <= 512 && nonce.bytes().all(|b| b.is_ascii_graphic());
    (asks && valid).then(|| nonce.to_owned())
}

async fn build(call: &TokenCall<'_>, nonce: Option<&str>) -> Result<HttpRequest, ClientError> {
    check_endpoint_url(call.endpoint).map_err(|error| InputError::Endpoint {
        what: "token endpoint",
        error,
    })?;
    let mut form = call.form.clone();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(wire::MEDIA_TYPE_FORM),
    );
    headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static(wire::MEDIA_TYPE_JSON),
    );
    call.credentials
        .apply(call.issuer, call.stage, &mut form, &mut headers)
        .await?;
    if let Some(key) = call.dpop {
        let proof = key
            .proof(&http::Method::POST, call.endpoint, None, nonce)
            .map_err(|_| ClientError::Signing {
                stage: call.stage,
                what: "DPoP proof",
            })?;
        let mut value =
            http::HeaderValue::try_from(proof.secret()).map_err(|_| ClientError::Signing {
                stage: call.stage,
                what: "DPoP proof",
            })?;
        value.set_sensitive(true);
        headers.insert("dpop", value);
    }
    let mut request = http::Request::post(call.endpoint.as_str())
        .body(form.encode())
        .map_err(|_| InputError::Endpoint {
            what: "token endpoint",
            error: idjag_core::endpoint::EndpointError::NotAUrl,
        })?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Whether an OAuth code means the grant itself was refused (used to decide whether a reused
/// ID-JAG should be replaced by a new exchange).
pub(crate) fn is_invalid_grant(error: &ClientError) -> bool {
    error
        .oauth_error()
        .is_some_and(|code| *code == OAuthErrorCode::InvalidGrant)
}
