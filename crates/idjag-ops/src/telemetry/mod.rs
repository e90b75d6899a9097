//! Structured logs, OpenTelemetry traces with OTLP export, and W3C trace context.
//!
//! ```toml
//! [telemetry]
//! log_format = "json"          # or "text"
//! log_filter = "info,idjag=debug"
//! [telemetry.resource_attributes]
//! "deployment.environment.name" = "production"
//! [telemetry.traces]
//! exporter = "otlp"            # default "none"
//! protocol = "http/protobuf"   # or "grpc" (feature `otlp-grpc`)
//! endpoint = "http://127.0.0.1:4318"
//! sample_ratio = 0.1
//! ```
//!
//! [`Telemetry::init`] installs the process's `tracing` subscriber: a JSON (or text) log
//! layer filtered by `log_filter`, and the OpenTelemetry layer that turns spans into
//! OpenTelemetry spans. Spans are sampled parent-first: a request whose inbound `traceparent`
//! is sampled is traced, others are sampled at `sample_ratio`. Without an exporter the
//! spans still get trace ids (for audit lines and outbound `traceparent`) and go nowhere;
//! `BENCHMARKS.md` measures what each setting costs per request.
//!
//! Request spans come from [`HttpTraceLayer`]: one server span per request, continuing the
//! caller's trace (`traceparent`, `tracestate`), with the HTTP semantic-convention attributes
//! (method, route, path without the query, status, scheme, protocol version, peer address,
//! user agent) — never a header value that carries a credential, a query string or a body.
//! [`inject_context`] puts the current span's context on an outbound request;
//! [`current_trace_id`] gives its trace id for log and audit lines.
//!
//! With the `otlp` feature, OTLP export runs on the SDK's batch thread and sends through
//! the Tokio runtime that called [`Telemetry::init`]; call [`Telemetry::shutdown`] before the
//! runtime ends so the last spans are sent.

mod http;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;

use std::collections::BTreeMap;
use std::fmt;

use ::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{ConfigDuration, ConfigError, join};

pub use self::http::{HttpTrace, HttpTraceLayer};

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// `"json"` (default: one JSON object per line) or `"text"`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// `"stderr"` (default) or `"stdout"`.
    #[serde(default)]
    pub log_output: LogOutput,
    /// `tracing-subscriber` filter directives. Default `"info"`.
    #[serde(default = "default_filter")]
    pub log_filter: String,
    /// `service.name`; default: the server's name.
    #[serde(default)]
    pub service_name: Option<String>,
    /// More resource attributes (`deployment.environment.name`, `service.namespace`, …).
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
    /// `[telemetry.traces]`.
    #[serde(default)]
    pub traces: TracesConfig,
}

fn default_filter() -> String {
    "info".to_owned()
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::default(),
            log_output: LogOutput::default(),
            log_filter: default_filter(),
            service_name: None,
            resource_attributes: BTreeMap::new(),
            traces: TracesConfig::default(),
        }
    }
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable text.
    Text,
}

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogOutput {
    /// Standard error.
    #[default]
    Stderr,
    /// Standard output.
    Stdout,
}

/// Where spans go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TraceExporter {
    /// Nowhere (trace ids and propagation still work).
    #[default]
    None,
    /// OTLP (feature `otlp`).
    Otlp,
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// Protobuf over HTTP (`/v1/traces`, `/v1/logs`), port 4318.
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// gRPC, port 4317 (feature `otlp-grpc`).
    #[serde(rename = "grpc")]
    Grpc,
}

/// An OTLP destination: the collector's endpoint, transport, headers and timeout.
#[derive(Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// `"http/protobuf"` (default) or `"grpc"`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// The collector. For HTTP, a base URL gets the signal's path (`/v1/traces`,
    /// `/v1/logs`); a URL with a path is used as is. Default `http://127.0.0.1:4318`
    /// (HTTP) or `http://127.0.0.1:4317` (gRPC).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Headers sent with every export (e.g. an API key). Secret: never logged; redacted by
    /// `check-config --print` through the `authorization`/`key`/`token` name rule or a
    /// named path.
    #[serde(default)]
    #[serde(serialize_with = "crate::config::serialize_redacted")]
    pub headers: BTreeMap<String, String>,
    /// Export timeout. Default `"10s"`.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration::secs(10)
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            protocol: OtlpProtocol::default(),
            endpoint: None,
            headers: BTreeMap::new(),
            timeout: default_timeout(),
        }
    }
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("protocol", &self.protocol)
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OtlpConfig {
    /// HTTP/protobuf to `endpoint`.
    pub fn http(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: Some(endpoint.into()),
            ..Self::default()
        }
    }

    /// Checks the endpoint, the headers and the feature the protocol needs.
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if let Some(endpoint) = &self.endpoint {
            let ok = endpoint.parse::<::http::Uri>().ok().is_some_and(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
            });
            if !ok {
                return Err(ConfigError::new(
                    join(at, "endpoint"),
                    "expected an http:// or https:// URL",
                ));
            }
        }
        for (name, value) in &self.headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
            {
                return Err(ConfigError::new(
                    format!("{}.{name}", join(at, "headers")),
                    "not a valid HTTP header",
                ));
            }
        }
        if self.protocol == OtlpProtocol::Grpc && !cfg!(feature = "otlp-grpc") {
            return Err(ConfigError::new(
                join(at, "protocol"),
                "\"grpc\" needs idjag-ops built with the `otlp-grpc` feature",
            ));
        }
        if !cfg!(feature = "otlp") {
            return Err(ConfigError::new(
                at.to_owned(),
                "OTLP export needs idjag-ops built with the `otlp` feature",
            ));
        }
        Ok(())
    }

    /// The URL of `signal` (`traces`, `logs`).
    pub fn endpoint_for(&self, signal: &str) -> String {
        let default = match self.protocol {
            OtlpProtocol::HttpProtobuf => "http://127.0.0.1:4318",
            OtlpProtocol::Grpc => "http://127.0.0.1:4317",
        };
        let base = self.endpoint.as_deref().unwrap_or(default);
        if self.protocol == OtlpProtocol::Grpc {
            return base.to_owned();
        }
        let has_path = base
            .parse::<::http::Uri>()
            .ok()
            .is_some_and(|uri| !matches!(uri.path(), "" | "/"));
        if has_path {
            base.to_owned()
        } else {
            format!("{}/v1/{signal}", base.trim_end_matches('/'))
        }
    }
}

/// `[telemetry.traces]`.
#[derive(Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TracesConfig {
    /// `"none"` (default) or `"otlp"`.
    #[serde(default)]
    pub exporter: TraceExporter,
    /// Share of new traces (no sampled parent) recorded, 0.0–1.0. Default 1.0.
    #[serde(default = "default_ratio")]
    pub sample_ratio: f64,
    /// `"http/protobuf"` (default) or `"grpc"`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// See [`OtlpConfig::endpoint`].
    #[serde(default)]
    pub endpoint: Option<String>,
    /// See [`OtlpConfig::headers`].
    #[serde(default)]
    #[serde(serialize_with = "crate::config::serialize_redacted")]
    pub headers: BTreeMap<String, String>,
    /// Export timeout. Default `"10s"`.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
}

fn default_ratio() -> f64 {
    1.0
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            exporter: TraceExporter::None,
            sample_ratio: 1.0,
            protocol: OtlpProtocol::default(),
            endpoint: None,
            headers: BTreeMap::new(),
            timeout: default_timeout(),
        }
    }
}

impl fmt::Debug for TracesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracesConfig")
            .field("exporter", &self.exporter)
            .field("sample_ratio", &self.sample_ratio)
            .field("otlp", &self.otlp_config())
            .finish()
    }
}

impl TracesConfig {
    /// OTLP export to `otlp`, sampling `sample_ratio` of new traces.
    pub fn otlp(otlp: OtlpConfig, sample_ratio: f64) -> Self {
        Self {
            exporter: TraceExporter::Otlp,
            sample_ratio,
            protocol: otlp.protocol,
            endpoint: otlp.endpoint,
            headers: otlp.headers,
            timeout: otlp.timeout,
        }
    }

    /// The OTLP destination.
    pub fn otlp_config(&self) -> OtlpConfig {
        OtlpConfig {
            protocol: self.protocol,
            endpoint: self.endpoint.clone(),
            headers: self.headers.clone(),
            timeout: self.timeout,
        }
    }
}

impl TelemetryConfig {
    /// Checks what serde cannot; `at` is the key of this table (`telemetry`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if let Err(error) = EnvFilter::try_new(&self.log_filter) {
            return Err(ConfigError::new(join(at, "log_filter"), error.to_string()));
        }
        let traces = join(at, "traces");
        let ratio = self.traces.sample_ratio;
        if !(ratio.is_finite() && (0.0..=1.0).contains(&ratio)) {
            return Err(ConfigError::new(
                join(&traces, "sample_ratio"),
                "must be between 0.0 and 1.0",
            ));
        }
        if self.traces.exporter == TraceExporter::Otlp {
            self.traces.otlp_config().validate(&traces)?;
        }
        Ok(())
    }
}

/// The service's name and version, for the OpenTelemetry resource.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// `service.name` unless the configuration sets one.
    pub name: String,
    /// `service.version`.
    pub version: String,
}

impl ServiceInfo {
    /// `name` at `version` (e.g. `env!("CARGO_PKG_VERSION")`).
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed in this process")]
    SubscriberTaken,
}

/// The running telemetry: keeps the tracer provider; [`Telemetry::shutdown`] sends what is
/// left.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

fn resource(config: &TelemetryConfig, service: &ServiceInfo) -> opentelemetry_sdk::Resource {
    let name = config
        .service_name
        .clone()
        .unwrap_or_else(|| service.name.clone());
    opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(name)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            service.version.clone(),
        ))
        .with_attributes(
            config
                .resource_attributes
                .iter()
                .map(|(k, v)| opentelemetry::KeyValue::new(k.clone(), v.clone())),
        )
        .build()
}

impl Telemetry {
    /// Validates `config`, builds the subscriber and installs it as the global default.
    /// Needs a Tokio runtime when exporting.
    pub fn init(config: &TelemetryConfig, service: &ServiceInfo) -> Result<Self, TelemetryError> {
        let (telemetry, dispatch) = Self::build_with_layer(config, service, None)?;
        tracing::dispatcher::set_global_default(dispatch)
            .map_err(|_| TelemetryError::SubscriberTaken)?;
        Ok(telemetry)
    }

    /// Like [`Telemetry::init`], with one more layer on the subscriber, beneath the trace and
    /// log layers: for a server that turns events of its own (its libraries' audit events on a
    /// dedicated target, for instance) into something else. The log filter still applies to
    /// the log layer only.
    pub fn init_with_layer(
        config: &TelemetryConfig,
        service: &ServiceInfo,
        layer: Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>,
    ) -> Result<Self, TelemetryError> {
        let (telemetry, dispatch) = Self::build_with_layer(config, service, Some(layer))?;
        tracing::dispatcher::set_global_default(dispatch)
            .map_err(|_| TelemetryError::SubscriberTaken)?;
        Ok(telemetry)
    }

    /// Like [`Telemetry::init`] without installing: the caller installs the returned
    /// dispatcher (tests use `tracing::dispatcher::set_default`).
    pub fn build(
        config: &TelemetryConfig,
        service: &ServiceInfo,
    ) -> Result<(Self, tracing::Dispatch), TelemetryError> {
        Self::build_with_layer(config, service, None)
    }

    fn build_with_layer(
        config: &TelemetryConfig,
        service: &ServiceInfo,
        extra: Option<Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>>,
    ) -> Result<(Self, tracing::Dispatch), TelemetryError> {
        config.validate("telemetry")?;
        let filter = EnvFilter::try_new(&config.log_filter)
            .map_err(|e| ConfigError::new("telemetry.log_filter", e.to_string()))?;
        let builder = SdkTracerProvider::builder()
            .with_resource(resource(config, service))
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.traces.sample_ratio,
            ))));
        // Without the `otlp` feature, validation has refused `exporter = "otlp"`.
        #[cfg(feature = "otlp")]
        let builder = if config.traces.exporter == TraceExporter::Otlp {
            builder.with_batch_exporter(otlp::span_exporter(&config.traces.otlp_config())?)
        } else {
            builder
        };
        let provider = builder.build();
        let tracer = provider.tracer("idjag-ops");
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        let logs = log_layer(config).with_filter(filter);
        let subscriber = tracing_subscriber::registry()
            .with(extra)
            .with(otel)
            .with(TraceIdLayer)
            .with(logs);
        Ok((Self { provider }, tracing::Dispatch::new(subscriber)))
    }

    /// Sends the spans recorded so far (blocks until the exporter answers; call it from a
    /// blocking context or a multi-threaded runtime).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// Sends what is left and stops the exporter. Runs on a blocking thread so the export
    /// can use the runtime meanwhile.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

fn log_layer<S>(config: &TelemetryConfig) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let json = || {
        tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
    };
    let json_layer = || {
        tracing_subscriber::fmt::layer()
            .fmt_fields(NoSpanFields)
            .event_format(WithTraceId {
                inner: json(),
                json: true,
            })
    };
    let text_layer = || {
        tracing_subscriber::fmt::layer().event_format(WithTraceId {
            inner: tracing_subscriber::fmt::format(),
            json: false,
        })
    };
    match (config.log_format, config.log_output) {
        (LogFormat::Json, LogOutput::Stderr) => Box::new(json_layer().with_writer(std::io::stderr)),
        (LogFormat::Json, LogOutput::Stdout) => Box::new(json_layer().with_writer(std::io::stdout)),
        (LogFormat::Text, LogOutput::Stderr) => Box::new(text_layer().with_writer(std::io::stderr)),
        (LogFormat::Text, LogOutput::Stdout) => Box::new(text_layer().with_writer(std::io::stdout)),
    }
}

/// The span fields of the JSON log layer: none. Its lines hold the event's own fields and the
/// trace id, never a span's (`with_current_span(false)`, `with_span_list(false)`), so the
/// fields of every span would be formatted for nothing.
struct NoSpanFields;

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: tracing_subscriber::fmt::format::Writer<'writer>,
        _fields: R,
    ) -> fmt::Result {
        Ok(())
    }

    fn add_fields(
        &self,
        _current: &'writer mut tracing_subscriber::fmt::FormattedFields<Self>,
        _fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        Ok(())
    }
}

/// The trace id a request span recorded (its `trace_id` field), kept in the span's extensions
/// so that every log line inside the request can carry it.
#[derive(Debug, Clone)]
struct SpanTraceId(String);

/// Keeps the `trace_id` field of spans (see [`HttpTraceLayer`]) in their extensions.
struct TraceIdLayer;

struct TraceIdVisitor(Option<String>);

impl tracing::field::Visit for TraceIdVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "trace_id" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "trace_id" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

impl<S> Layer<S> for TraceIdLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = TraceIdVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(trace_id), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().replace(SpanTraceId(trace_id));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = TraceIdVisitor(None);
        values.record(&mut visitor);
        if let (Some(trace_id), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().replace(SpanTraceId(trace_id));
        }
    }
}

/// A log line with the `trace_id` of the request it belongs to (the nearest span that
/// recorded one), as a JSON member or a ` trace_id=…` suffix.
struct WithTraceId<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithTraceId<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let trace_id = ctx.event_scope().and_then(|mut scope| {
            scope.find_map(|span| span.extensions().get::<SpanTraceId>().map(|t| t.0.clone()))
        });
        let Some(trace_id) = trace_id else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        let body = line.trim_end_matches('\n');
        if self.json && body.ends_with('}') {
            let open = &body[..body.len() - 1];
            let separator = if open.ends_with('{') { "" } else { "," };
            writeln!(writer, "{open}{separator}\"trace_id\":\"{trace_id}\"}}")
        } else {
            writeln!(writer, "{body} trace_id={trace_id}")
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The W3C trace context (`traceparent`, `tracestate`) of inbound `headers`; an empty
/// context when there is none or it is malformed.
pub fn extract_context(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Sets `traceparent` (and `tracestate`) on outbound `headers` from the current span, so the
/// next hop continues this trace. Nothing is set outside a traced span.
pub fn inject_context(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// The current span's trace id as 32 lower-case hex digits, for log and audit lines; `None`
/// outside a traced span (or without [`Telemetry`]).
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_signal_path_unless_they_have_one() {
        let config = OtlpConfig::http("http://collector:4318");
        assert_eq!(
            config.endpoint_for("traces"),
            "http://collector:4318/v1/traces"
        );
        let config = OtlpConfig::http("http://collector:4318/");
        assert_eq!(config.endpoint_for("logs"), "http://collector:4318/v1/logs");
        let config = OtlpConfig::http("https://otlp.example/custom/traces");
        assert_eq!(
            config.endpoint_for("traces"),
            "https://otlp.example/custom/traces"
        );
        assert_eq!(
            OtlpConfig::default().endpoint_for("traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = TelemetryConfig::default();
        config.traces.sample_ratio = 1.5;
        let error = config.validate("telemetry").unwrap_err();
        assert_eq!(error.key, "telemetry.traces.sample_ratio");
        let mut config = TelemetryConfig::default();
        config.traces.exporter = TraceExporter::Otlp;
        config.traces.endpoint = Some("ftp://x".to_owned());
        let error = config.validate("telemetry").unwrap_err();
        assert_eq!(error.key, "telemetry.traces.endpoint");
        let config = TelemetryConfig {
            log_filter: "info,[".to_owned(),
            ..TelemetryConfig::default()
        };
        assert_eq!(
            config.validate("telemetry").unwrap_err().key,
            "telemetry.log_filter"
        );
    }

    #[test]
    fn otlp_headers_are_not_in_debug_output() {
        let mut config = OtlpConfig::http("http://c:4318");
        config
            .headers
            .insert("authorization".to_owned(), "Bearer s3cr3t".to_owned());
        let text = format!("{config:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("authorization"));
    }
}
