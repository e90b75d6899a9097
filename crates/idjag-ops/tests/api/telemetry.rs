//! OpenTelemetry: the server span of a request continues the inbound trace and reaches an
//! OTLP/HTTP collector; outbound requests carry it on.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::routing::{get, post};
use idjag_ops::telemetry::{
    self, HttpTraceLayer, OtlpConfig, ServiceInfo, Telemetry, TelemetryConfig, TracesConfig,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tower::ServiceExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

type Resource = Vec<(String, String)>;
/// What the handler saw: its trace id and the headers it would send upstream.
type Seen = (Option<String>, http::HeaderMap);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[cfg(feature = "otlp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_span_continues_the_inbound_trace_and_is_exported() {
    let spans: Arc<Mutex<Vec<(Span, Resource)>>> = Arc::default();
    let collected = spans.clone();
    let collector = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let collected = collected.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                for resource in request.resource_spans {
                    let attributes: Resource = resource
                        .resource
                        .map(|r| r.attributes)
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|a| match a.value?.value? {
                            Value::StringValue(s) => Some((a.key, s)),
                            _ => None,
                        })
                        .collect();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            collected.lock().unwrap().push((span, attributes.clone()));
                        }
                    }
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });

    let mut config = TelemetryConfig::default();
    config.traces = TracesConfig::otlp(OtlpConfig::http(format!("http://{collector_addr}")), 0.0);
    config
        .resource_attributes
        .insert("deployment.environment.name".to_owned(), "test".to_owned());
    let (telemetry, dispatch) =
        Telemetry::build(&config, &ServiceInfo::new("idjag-test", "9.9.9")).unwrap();
    let _guard = tracing::dispatcher::set_default(&dispatch);

    let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new()
        .route(
            "/mcp/{name}",
            get(move || {
                // What a handler does: its trace id for the audit line, the context for the
                // upstream request.
                let mut outbound = http::HeaderMap::new();
                telemetry::inject_context(&mut outbound);
                *record.lock().unwrap() = Some((telemetry::current_trace_id(), outbound));
                async { "ok" }
            }),
        )
        .layer(HttpTraceLayer::new());
    let request = http::Request::get("/mcp/notes?access_token=query-secret")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .header("authorization", "Bearer header-secret")
        .header("user-agent", "test-agent/1.0")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);

    let (trace_id, outbound) = seen.lock().unwrap().take().unwrap();
    assert_eq!(trace_id.as_deref(), Some(TRACE_ID));
    let traceparent = outbound["traceparent"].to_str().unwrap().to_owned();
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "{traceparent}"
    );
    assert!(
        traceparent.ends_with("-01"),
        "sampled because the parent was: {traceparent}"
    );
    assert!(
        !traceparent.contains(PARENT_SPAN_ID),
        "the next hop's parent is our span"
    );

    telemetry.shutdown().await;
    let spans = spans.lock().unwrap();
    assert_eq!(spans.len(), 1, "one server span");
    let (span, resource) = &spans[0];
    assert_eq!(hex(&span.trace_id), TRACE_ID);
    assert_eq!(hex(&span.parent_span_id), PARENT_SPAN_ID);
    assert_eq!(span.name, "GET /mcp/{name}");
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        traceparent,
        format!("00-{TRACE_ID}-{}-01", hex(&span.span_id))
    );
    assert_eq!(
        attribute(span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attribute(span, "http.route").as_deref(),
        Some("/mcp/{name}")
    );
    assert_eq!(attribute(span, "url.path").as_deref(), Some("/mcp/notes"));
    assert_eq!(
        attribute(span, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(span, "user_agent.original").as_deref(),
        Some("test-agent/1.0")
    );
    let everything = format!("{span:?}");
    assert!(!everything.contains("query-secret") && !everything.contains("header-secret"));
    assert!(
        resource.contains(&("service.name".to_owned(), "idjag-test".to_owned())),
        "{resource:?}"
    );
    assert!(resource.contains(&("service.version".to_owned(), "9.9.9".to_owned())));
    assert!(resource.contains(&("deployment.environment.name".to_owned(), "test".to_owned())));
}

#[tokio::test]
async fn without_a_traced_span_there_is_no_trace_id_and_nothing_is_injected() {
    assert_eq!(telemetry::current_trace_id(), None);
    let mut headers = http::HeaderMap::new();
    telemetry::inject_context(&mut headers);
    assert!(headers.is_empty());
    // A malformed traceparent is ignored.
    let mut inbound = http::HeaderMap::new();
    inbound.insert("traceparent", "00-zz-00f067aa0ba902b7-01".parse().unwrap());
    let context = telemetry::extract_context(&inbound);
    use opentelemetry::trace::TraceContextExt;
    assert!(!context.span().span_context().is_valid());
}
