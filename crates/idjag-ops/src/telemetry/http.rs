//! One server span per request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::http::{Method, Request, Response, Version, header};
use axum::extract::MatchedPath;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::listener::ConnectionInfo;

/// A tower layer that opens a server span per request (see the [module docs](super)) and
/// records `idjag_http_server_request_duration_seconds{method, status}`.
///
/// Put it on the router (`Router::layer`) so the span carries the matched route.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct HttpTraceLayer;

impl HttpTraceLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> tower::Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace { inner }
    }
}

/// See [`HttpTraceLayer`].
#[derive(Clone)]
pub struct HttpTrace<S> {
    inner: S,
}

impl<S> fmt::Debug for HttpTrace<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTrace").finish_non_exhaustive()
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

fn version_label(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "_OTHER",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl<S, B, R> tower::Service<Request<B>> for HttpTrace<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = method_label(request.method());
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned());
        let connection = request.extensions().get::<ConnectionInfo>();
        let span = tracing::info_span!(
            target: "idjag::http",
            "HTTP request",
            otel.name = %match &route { Some(route) => format!("{method} {route}"), None => method.to_owned() },
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = route.as_deref(),
            url.path = request.uri().path(),
            url.scheme = connection.map(|c| if c.tls { "https" } else { "http" }),
            network.protocol.version = version_label(request.version()),
            network.peer.address = connection.map(|c| tracing::field::display(c.remote.ip())),
            server.port = connection.map(|c| c.local.port()),
            user_agent.original = request
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| &ua[..ua.len().min(256)]),
            http.response.status_code = Empty,
            trace_id = Empty,
        );
        if !span.is_disabled() {
            let parent = super::extract_context(request.headers());
            if opentelemetry::trace::TraceContextExt::span(&parent)
                .span_context()
                .is_valid()
            {
                let _ = span.set_parent(parent);
            }
            // Log lines inside the request carry it (see the log layer).
            let context = span.context();
            let span_context = opentelemetry::trace::TraceContextExt::span(&context)
                .span_context()
                .clone();
            if span_context.is_valid() {
                span.record("trace_id", span_context.trace_id().to_string().as_str());
            }
        }
        let started = Instant::now();
        let future = self.inner.call(request).instrument(span.clone());
        Box::pin(async move {
            let result = future.await;
            if let Ok(response) = &result {
                let status = response.status().as_u16();
                span.record("http.response.status_code", status);
                if status >= 500 {
                    span.record("otel.status_code", "ERROR");
                }
                metrics::histogram!(
                    "idjag_http_server_request_duration_seconds",
                    "method" => method,
                    "status" => status_class(status)
                )
                .record(started.elapsed().as_secs_f64());
            }
            result
        })
    }
}
