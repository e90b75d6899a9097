//! OTLP exporters (traces, logs) over HTTP/protobuf, or gRPC with `otlp-grpc`.
//!
//! The SDK's batch processors run on their own thread and drive the exporter with a plain
//! executor, where the async reqwest client (which needs the Tokio reactor) would fail. The
//! HTTP client here therefore runs each export request on the Tokio runtime that built it
//! and hands the answer back.

use std::fmt;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

use super::{OtlpConfig, OtlpProtocol, TelemetryError};

/// Largest collector answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// reqwest on the runtime that built it.
pub(crate) struct RuntimeHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for RuntimeHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHttpClient").finish_non_exhaustive()
    }
}

impl RuntimeHttpClient {
    pub(crate) fn new(timeout: std::time::Duration) -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            TelemetryError::Exporter("OTLP export must be set up inside a Tokio runtime".to_owned())
        })?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        Ok(Self { client, runtime })
    }
}

#[async_trait::async_trait]
impl HttpClient for RuntimeHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
            let mut response = client.execute(request).await?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = std::mem::take(response.headers_mut());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, HttpError>(answer.body(Bytes::from(body))?)
        });
        task.await?
    }
}

fn headers(config: &OtlpConfig) -> std::collections::HashMap<String, String> {
    config
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(crate) fn span_exporter(
    config: &OtlpConfig,
) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let built = match config.protocol {
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(RuntimeHttpClient::new(config.timeout.0)?)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(config.endpoint_for("traces"))
            .with_headers(headers(config))
            .with_timeout(config.timeout.0)
            .build(),
        #[cfg(feature = "otlp-grpc")]
        OtlpProtocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig;
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint_for("traces"))
                .with_metadata(metadata(config)?)
                .with_timeout(config.timeout.0)
                .build()
        }
        #[cfg(not(feature = "otlp-grpc"))]
        OtlpProtocol::Grpc => {
            return Err(TelemetryError::Exporter(
                "gRPC needs the `otlp-grpc` feature".to_owned(),
            ));
        }
    };
    built.map_err(|e| TelemetryError::Exporter(e.to_string()))
}

pub(crate) fn log_exporter(
    config: &OtlpConfig,
) -> Result<opentelemetry_otlp::LogExporter, TelemetryError> {
    let built = match config.protocol {
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_http_client(RuntimeHttpClient::new(config.timeout.0)?)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(config.endpoint_for("logs"))
            .with_headers(headers(config))
            .with_timeout(config.timeout.0)
            .build(),
        #[cfg(feature = "otlp-grpc")]
        OtlpProtocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig;
            opentelemetry_otlp::LogExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint_for("logs"))
                .with_metadata(metadata(config)?)
                .with_timeout(config.timeout.0)
                .build()
        }
        #[cfg(not(feature = "otlp-grpc"))]
        OtlpProtocol::Grpc => {
            return Err(TelemetryError::Exporter(
                "gRPC needs the `otlp-grpc` feature".to_owned(),
            ));
        }
    };
    built.map_err(|e| TelemetryError::Exporter(e.to_string()))
}

#[cfg(feature = "otlp-grpc")]
fn metadata(
    config: &OtlpConfig,
) -> Result<opentelemetry_otlp::tonic_types::metadata::MetadataMap, TelemetryError> {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &config.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| TelemetryError::Exporter(format!("invalid header name {name}")))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| TelemetryError::Exporter(format!("invalid value for header {name}")))?;
        headers.insert(name, value);
    }
    Ok(opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers))
}
