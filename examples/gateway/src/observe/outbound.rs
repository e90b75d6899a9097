//! The gateway's token requests (token exchange at the IdP, redemption and client
//! credentials at authorization servers) through one [`HttpClient`] that adds a client span
//! per request, sends the trace on (`traceparent`), and counts each by outcome.

use std::fmt;
use std::time::Instant;

use idjag_client::http::{HttpClient, HttpError, HttpRequest, HttpResponse, SharedHttpClient};
use idjag_core::BoxFuture;
use tracing::Instrument;

use crate::observe::metrics::outcome_of;

/// What a token request is, from its `grant_type`.
fn kind_of(request: &HttpRequest) -> &'static str {
    let body = request.body();
    let has = |value: &str| {
        url::form_urlencoded::parse(body).any(|(k, v)| k == "grant_type" && v == value)
    };
    if body.is_empty() {
        "discovery"
    } else if has("urn:ietf:params:oauth:grant-type:token-exchange") {
        "token_exchange"
    } else if has("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        "redemption"
    } else if has("client_credentials") {
        "client_credentials"
    } else {
        "other"
    }
}

/// Token requests with spans and outcome counters. See the [module docs](self).
pub struct MeteredHttp {
    inner: SharedHttpClient,
    upstream: Option<String>,
}

impl fmt::Debug for MeteredHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredHttp")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl MeteredHttp {
    /// Requests through `inner`; `upstream` labels client-credentials fetches.
    pub fn new(inner: SharedHttpClient, upstream: Option<String>) -> Self {
        Self { inner, upstream }
    }

    fn count(&self, kind: &'static str, outcome: &'static str) {
        match kind {
            "token_exchange" => {
                metrics::counter!("idjag_gateway_token_exchanges_total", "outcome" => outcome)
                    .increment(1);
            }
            "redemption" => {
                metrics::counter!("idjag_gateway_redemptions_total", "outcome" => outcome)
                    .increment(1);
            }
            "client_credentials" => {
                metrics::counter!(
                    "idjag_gateway_client_credentials_fetches_total",
                    "upstream" => self.upstream.clone().unwrap_or_else(|| "unknown".to_owned()),
                    "outcome" => outcome
                )
                .increment(1);
            }
            _ => {}
        }
    }
}

impl HttpClient for MeteredHttp {
    fn execute(&self, mut request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        let kind = kind_of(&request);
        let span = tracing::info_span!(
            target: "idjag::gateway",
            "token request",
            otel.name = kind,
            otel.kind = "client",
            http.request.method = %request.method(),
            server.address = request.uri().host().unwrap_or_default(),
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        Box::pin(
            async move {
                idjag_ops::telemetry::inject_context(request.headers_mut());
                let result = self.inner.execute(request).await;
                let status = result.as_ref().ok().map(|r| r.status().as_u16());
                let current = tracing::Span::current();
                if let Some(status) = status {
                    current.record("http.response.status_code", status);
                }
                let outcome = outcome_of(status);
                if outcome == "failure" {
                    current.record("otel.status_code", "ERROR");
                }
                self.count(kind, outcome);
                tracing::debug!(
                    kind,
                    outcome,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "token request"
                );
                result
            }
            .instrument(span),
        )
    }
}
