//! The HTTP layer: G06, G07, G08, G09 (body, head), G10, G11, G12, G13, G15, G25.

use std::time::{Duration, Instant};

use bytes::Bytes;
use idjag_gateway::config::ConfigDuration;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn raw_post(t: &Topology, token: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /mcp/notes HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         {extra_headers}Content-Length: {}\r\n\r\n{body}",
        authority(&t.gateway_url),
        body.len()
    )
    .into_bytes()
}

/// alice's `initialize` with `extra_headers`, sent raw: the answer, what the upstream got and
/// alice's token.
async fn initialize_with(extra_headers: &str) -> (String, Recorded, String) {
    let recorder = Recorder::default();
    let (t, _) = start(recording_echo(recorder.clone())).await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let request = raw_post(&t, &token, extra_headers, &initialize().to_string());
    let answer = raw(&authority(&t.gateway_url), &request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    (answer, recorder.all().pop().unwrap(), token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g06_identity_headers_are_stripped_and_connection_cannot_remove_the_gateways_own() {
    let (answer, upstream, token) = initialize_with(
        "X-Forwarded-User: admin\r\nX-Authenticated-Sub: admin\r\nX-Auth-Request-Email: root@example.com\r\n\
         X-Request-Id: forged id\r\nConnection: close, X-Authenticated-Sub, Authorization, X-Request-Id\r\n",
    )
    .await;
    let request_id = answer
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap()
        .trim()
        .to_owned();
    let h = &upstream.headers;
    for owned in [
        "x-forwarded-user",
        "x-authenticated-sub",
        "x-auth-request-email",
    ] {
        assert!(!h.contains_key(owned), "{owned} reached the upstream");
    }
    assert_eq!(h["x-request-id"], request_id.as_str());
    // Not an acceptable id (a space): replaced by the gateway's own.
    assert_ne!(request_id, "forged id");
    assert_eq!(request_id.len(), 32);
    let authorization = h["authorization"].to_str().unwrap();
    assert!(authorization.starts_with("Bearer "));
    assert!(!authorization.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g07_hop_by_hop_headers_are_not_forwarded() {
    let (_, upstream, _) = initialize_with(
        "Connection: close, X-Custom-Hop\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-Checksum\r\n\
         Proxy-Authorization: Basic dXNlcjpwdw==\r\nProxy-Connection: keep-alive\r\nX-Custom-Hop: 1\r\n",
    )
    .await;
    for name in [
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "x-custom-hop",
        "upgrade",
    ] {
        assert!(
            !upstream.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
    assert_eq!(upstream.headers["content-type"], "application/json");
    assert_eq!(
        upstream.headers["accept"],
        "application/json, text/event-stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g08_two_lengths_and_line_breaks_in_headers_get_400_and_length_with_chunked_smuggles_nothing()
 {
    let recorder = Recorder::default();
    let (t, _) = start(recording_echo(recorder.clone())).await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let host = authority(&t.gateway_url);
    let body = initialize().to_string();
    let head = format!(
        "POST /mcp/notes HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    );
    let two_lengths = format!(
        "{head}Content-Length: {}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len(),
        body.len() + 1
    );
    let bare_cr = format!(
        "{head}X-Note: a\rb\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for request in [two_lengths, bare_cr] {
        let answer = raw(&host, request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{request:?} -> {answer}"
        );
    }
    assert_eq!(recorder.count(), 0);

    // Content-Length and chunked together, with a second request hidden after the chunked
    // body (inside the declared length). hyper follows the chunked framing (RFC 9112 §6.3),
    // drops the length and closes the connection after one answer: the hidden request is
    // never read. (The gateway never sees both headers, so it cannot answer 400 instead.)
    let hidden = format!(
        "POST /mcp/notes HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let both = format!(
        "{head}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}{hidden}",
        chunked.len() + hidden.len()
    );
    let answer = raw(&host, both.as_bytes()).await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert_eq!(
        recorder.count(),
        1,
        "only the chunked-framed request reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g09_a_body_over_the_limit_gets_413_and_a_head_over_the_limit_gets_431() {
    let recorder = Recorder::default();
    let (t, audit) = start_with(recording_echo(recorder.clone()), |c| {
        c.server.proxy.max_body_bytes = 1024
    })
    .await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let big = tools_call(1, "echo", json!({ "text": "x".repeat(2048) }));
    let declared = send(&t.route_url, Some(&token), &big).await;
    assert_eq!(declared.status(), 413);
    // Chunked, without a declared length.
    let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(big.to_string()))]);
    let streamed = post(&t.route_url, Some(&token), &json!(null))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
    let reasons: Vec<String> = audit.records().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons, ["body_too_large", "body_too_large"]);

    let huge = format!(
        "POST /mcp/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "a".repeat(64 * 1024)
    );
    let answer = raw(&authority(&t.gateway_url), huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(recorder.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g10_a_slowloris_connection_is_closed_after_the_header_read_timeout() {
    let (t, _) = start_with(UpstreamKind::Echo, |c| {
        c.server.listener.header_read_timeout = ConfigDuration(Duration::from_millis(500));
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(authority(&t.gateway_url))
        .await
        .unwrap();
    stream
        .write_all(b"POST /mcp/notes HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        .await
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection is still open after 5 s");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g11_a_slow_body_gets_408_and_no_upstream_call() {
    let recorder = Recorder::default();
    let (t, audit) = start_with(recording_echo(recorder.clone()), |c| {
        c.server.proxy.body_timeout = ConfigDuration(Duration::from_millis(500));
    })
    .await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let stream = tokio::net::TcpStream::connect(authority(&t.gateway_url))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /mcp/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let drip = tokio::spawn(async move {
        for _ in 0..30 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut out = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut out))
        .await
        .expect("an answer before the body ends")
        .unwrap();
    let answer = String::from_utf8_lossy(&out[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    drip.abort();
    assert_eq!(recorder.count(), 0);
    assert_eq!(audit.records()[0].reason, "body_timeout");
}

async fn open_stream(url: &str, token: &str) -> reqwest::Response {
    let mut response = client()
        .get(url)
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert_eq!(first, "data: {}\n\n");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g12_requests_over_the_concurrency_limit_get_503_and_open_streams_count_against_it() {
    // Scaled down from 10 000 streams (see the binary's docs): the limit, not memory, bounds
    // open streams, whatever their number.
    let recorder = Recorder::default();
    let (t, audit) = start_with(recording_echo(recorder.clone()), |c| {
        c.server.proxy.max_in_flight = 8
    })
    .await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(open_stream(&t.route_url, &token).await);
    }
    assert_eq!(t.gateway.in_flight(), 8);
    assert_eq!(t.gateway.live_streams(), 8);
    let upstream_before = recorder.count();
    let shed = send(
        &t.route_url,
        Some(&token),
        &tools_call(1, "echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32034);
    assert_eq!(recorder.count(), upstream_before);
    assert_eq!(audit.records().pop().unwrap().reason, "overloaded");

    drop(streams);
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.gateway.in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((t.gateway.in_flight(), t.gateway.live_streams()), (0, 0));
    let ok = send(
        &t.route_url,
        Some(&token),
        &tools_call(2, "echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g13_an_origin_that_is_not_allowed_gets_403() {
    let recorder = Recorder::default();
    let (t, audit) = start_with(recording_echo(recorder.clone()), |c| {
        c.server.proxy.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let with_origin = |origin: &'static str| {
        post(&t.route_url, Some(&token), &initialize())
            .header("origin", origin)
            .send()
    };
    assert_eq!(
        with_origin("https://evil.example").await.unwrap().status(),
        403
    );
    assert_eq!(
        with_origin("https://app.example.evil.example")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(with_origin("null").await.unwrap().status(), 403);
    assert_eq!(recorder.count(), 0);
    assert_eq!(audit.records()[0].reason, "origin_not_allowed");
    assert_eq!(
        with_origin("https://app.example").await.unwrap().status(),
        200
    );
    assert_eq!(
        send(&t.route_url, Some(&token), &initialize())
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g15_an_unsupported_protocol_version_gets_400() {
    let recorder = Recorder::default();
    let (t, _) = start(recording_echo(recorder.clone())).await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let with_version = |versions: &[&str]| {
        let mut request = client()
            .post(&t.route_url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(initialize().to_string());
        for v in versions {
            request = request.header("mcp-protocol-version", *v);
        }
        request.send()
    };
    // The answer the MCP SDKs' servers give, under the request's id.
    let refused = with_version(&["1999-01-01"]).await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.text().await.unwrap(),
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Bad Request: Unsupported protocol version (supported versions: 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28)"}}"#
    );
    // Sent twice, it is refused before anything else (the upstream might read the other).
    let twice = with_version(&["2025-06-18", "2025-11-25"]).await.unwrap();
    assert_eq!(twice.status(), 400);
    assert_eq!(
        twice.text().await.unwrap(),
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"A single-valued MCP header was sent more than once"}}"#
    );
    assert_eq!(recorder.count(), 0);
    assert_eq!(with_version(&["2025-06-18"]).await.unwrap().status(), 200);
    assert_eq!(with_version(&[]).await.unwrap().status(), 200);
    let seen: Vec<Option<String>> = recorder
        .all()
        .iter()
        .map(|r| {
            r.headers
                .get("mcp-protocol-version")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        seen,
        [Some("2025-06-18".to_owned()), None],
        "passed through as sent"
    );
}

/// A MCP 2026-07-28 `server/discover` declaring `version` in its own `_meta`, sent with
/// `MCP-Protocol-Version: header`.
fn discover_2026(
    t: &Topology,
    token: &str,
    id: i64,
    version: &str,
    header: &str,
) -> reqwest::RequestBuilder {
    let body = json!({"jsonrpc":"2.0","id":id,"method":"server/discover","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    client()
        .post(&t.route_url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", header)
        .body(body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g15_a_request_declaring_its_version_in_meta_gets_the_2026_07_28_unsupported_version_error()
{
    let recorder = Recorder::default();
    let (t, audit) = start(recording_echo(recorder.clone())).await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let refused = discover_2026(&t, &token, 301, "v999.0.0", "v999.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // MCP 2026-07-28's UnsupportedProtocolVersionError (SEP-2575), under the request's id:
    // the versions the gateway serves and the one asked for.
    assert_eq!(
        refused.text().await.unwrap(),
        r#"{"jsonrpc":"2.0","id":301,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2024-11-05","2025-03-26","2025-06-18","2025-11-25","2026-07-28"],"requested":"v999.0.0"}}}"#
    );
    assert_eq!(recorder.count(), 0);
    assert_eq!(
        audit.records().last().unwrap().reason,
        "unsupported_protocol_version"
    );
    // A supported header goes upstream, whatever `_meta` says: the server judges its own
    // metadata (a header and `_meta` that disagree are its HeaderMismatch to answer).
    let passed = discover_2026(&t, &token, 302, "v999.0.0", "2026-07-28")
        .send()
        .await
        .unwrap();
    assert_eq!(passed.status(), 200);
    assert_eq!(recorder.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_method_or_name_header_the_body_contradicts_gets_400_header_mismatch_under_the_request_id()
 {
    let recorder = Recorder::default();
    let (t, audit) = start(recording_echo(recorder.clone())).await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let with_headers = |headers: &[(&'static str, &'static str)]| {
        let mut request = post(
            &t.route_url,
            Some(&token),
            &tools_call(7, "echo", json!({"text": "hi"})),
        );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    // MCP 2026-07-28's HeaderMismatch (-32020, SEP-2243), under the request's id; method
    // values are case-sensitive.
    let expected = r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32020,"message":"Mcp-Method or Mcp-Name does not match the body"}}"#;
    for headers in [
        &[("mcp-method", "tools/list")][..],
        &[("mcp-method", "TOOLS/CALL")],
        &[("mcp-method", "tools/call"), ("mcp-name", "other_tool")],
    ] {
        let refused = with_headers(headers).await.unwrap();
        assert_eq!(refused.status(), 400, "{headers:?}");
        assert_eq!(refused.text().await.unwrap(), expected, "{headers:?}");
    }
    assert_eq!(recorder.count(), 0);
    assert!(
        audit
            .records()
            .iter()
            .all(|r| r.reason == "header_body_mismatch")
    );
    let agreeing = with_headers(&[("mcp-method", "tools/call"), ("mcp-name", "echo")])
        .await
        .unwrap();
    assert_eq!(agreeing.status(), 200);
    assert_eq!(recorder.count(), 1);
}

/// The `Mcp-Param-Region` header the upstream got with a `tools/call` that sent one, through
/// a gateway whose `[server] forward_headers` is `forward`.
async fn mcp_param_header_upstream(forward: &'static [&'static str]) -> Option<String> {
    let recorder = Recorder::default();
    let (t, _) = start_with(recording_echo(recorder.clone()), move |config| {
        config.server.proxy.forward_headers = forward.iter().map(|h| (*h).to_owned()).collect();
    })
    .await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    let answer = post(
        &t.route_url,
        Some(&token),
        &tools_call(3, "echo", json!({"text": "eu-west"})),
    )
    .header("mcp-method", "tools/call")
    .header("mcp-name", "echo")
    .header("mcp-param-region", "eu-west")
    .send()
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    let upstream = recorder.all().pop().unwrap();
    assert_eq!(upstream.headers["mcp-method"], "tools/call");
    assert_eq!(upstream.headers["mcp-name"], "echo");
    upstream
        .headers
        .get("mcp-param-region")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// MCP 2026-07-28 custom headers (`x-mcp-header`, SEP-2243) carry copies of argument values.
/// The gateway checks the body's arguments and cannot tie a `Mcp-Param-*` header to one
/// without the tool's schema, so it forwards none unless the operator lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_param_headers_are_not_forwarded_unless_the_operator_lists_them() {
    assert_eq!(mcp_param_header_upstream(&[]).await, None);
    assert_eq!(
        mcp_param_header_upstream(&["mcp-param-region"]).await,
        Some("eu-west".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g25_graceful_shutdown_finishes_requests_closes_streams_with_a_final_event_and_refuses_new_connections()
 {
    let recorder = Recorder::default();
    let (mut t, _) = start(recording_upstream(
        recorder.clone(),
        Duration::from_millis(500),
    ))
    .await;
    let token = t.id_token("alice").unwrap().secret().to_owned();
    // Warm the token cache so the slow request is in the upstream when shutdown starts.
    assert_eq!(
        send(
            &t.route_url,
            Some(&token),
            &tools_call(1, "echo", json!({"text": "warm"}))
        )
        .await
        .status(),
        200
    );
    let slow = tokio::spawn(
        post(
            &t.route_url,
            Some(&token),
            &tools_call(2, "echo", json!({"text": "in flight"})),
        )
        .send(),
    );
    let mut stream = open_stream(&t.route_url, &token).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let gateway = authority(&t.gateway_url);
    let calls_before = recorder.count();

    let (stopped, (rest, refused)) = tokio::join!(t.shutdown(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = tokio::net::TcpStream::connect(&gateway).await.is_err();
        let mut rest = Vec::new();
        while let Some(chunk) = stream.chunk().await.unwrap() {
            rest.extend_from_slice(&chunk);
        }
        (rest, refused)
    });
    stopped.unwrap();
    assert_eq!(
        String::from_utf8(rest).unwrap(),
        "event: close\ndata: {\"reason\":\"shutdown\"}\n\n"
    );
    assert!(refused, "a new connection was accepted during shutdown");
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200);
    let body: Value = slow.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "in flight");
    assert_eq!(recorder.count(), calls_before, "nothing new was accepted");
}
