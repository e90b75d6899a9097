//! One message, one meaning (G27 to G31): what the gateway checks is what the upstream
//! receives. Smuggled JSON-RPC bodies, repeated single-valued headers, tool lists under any
//! spelling or encoding, and passthrough tokens for other audiences, each against a
//! recording upstream.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use http::Method;
use idjag_gateway::observe::audit::Outcome;
use serde_json::{Value, json};

use crate::support::*;

fn token(t: &Topology, user: &str) -> String {
    t.id_token(user).unwrap().secret().to_owned()
}

/// A POST of raw bytes with the MCP headers.
async fn post_raw(url: &str, token: &str, body: impl Into<Vec<u8>>) -> reqwest::Response {
    client()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", PROTOCOL)
        .header("authorization", format!("Bearer {token}"))
        .body(body.into())
        .send()
        .await
        .unwrap()
}

/// Smuggling variants, by class: the body, the JSON-RPC code and the audit reason.
const SMUGGLED: [(&str, &str, i64, &str); 14] = [
    (
        "duplicate key at depth",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a","text":"b"}}}"#,
        -32700,
        "jsonrpc_duplicate_member",
    ),
    (
        "duplicate method",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"delete_everything"}}"#,
        -32700,
        "jsonrpc_duplicate_member",
    ),
    (
        "duplicate tool name",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_everything"}}"#,
        -32700,
        "jsonrpc_duplicate_member",
    ),
    (
        "ASCII case fold of name",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"delete_everything"}}"#,
        -32700,
        "jsonrpc_colliding_members",
    ),
    (
        "lone Method",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}"#,
        -32700,
        "jsonrpc_colliding_members",
    ),
    (
        "lone lookalike of method",
        r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"delete_everything"}}"#,
        -32600,
        "jsonrpc_lookalike_member",
    ),
    (
        "long s in arguments",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"argument\u{17f}\":{\"text\":\"x\"}}}",
        -32600,
        "jsonrpc_lookalike_member",
    ),
    (
        "Kelvin sign in an argument name",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"key\":\"a\",\"\u{212a}ey\":\"b\"}}}",
        -32700,
        "jsonrpc_colliding_members",
    ),
    (
        "NUL in a tool name",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo\u0000delete_everything"}}"#,
        -32602,
        "jsonrpc_invalid_tool_name",
    ),
    (
        "NUL in a member name",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name\u0000":"delete_everything"}}"#,
        -32700,
        "jsonrpc_nul_in_member_name",
    ),
    (
        "control character in a method",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call\u0007","params":{"name":"echo"}}"#,
        -32600,
        "jsonrpc_invalid_method",
    ),
    (
        "request and response at once",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"result":{}}"#,
        -32600,
        "jsonrpc_mixed_kind",
    ),
    (
        "notification with a null id",
        r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"echo"}}"#,
        -32600,
        "jsonrpc_invalid_id",
    ),
    (
        "batch",
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_everything"}}]"#,
        -32600,
        "jsonrpc_batch",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g27_g28_g29_smuggled_messages_get_the_readers_error_and_the_upstream_receives_nothing() {
    let recorder = Recorder::default();
    let (t, audit) = start(recording_echo(recorder.clone())).await;
    let alice = token(&t, "alice");
    for (i, (class, body, code, reason)) in SMUGGLED.iter().enumerate() {
        let reply = post_raw(&t.route_url, &alice, *body).await;
        assert_eq!(reply.status(), 400, "{class}");
        let message = match code {
            -32700 => "Parse error",
            -32602 => "Invalid params",
            _ => "Invalid Request",
        };
        assert_eq!(
            reply.json::<Value>().await.unwrap(),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":code,"message":message}}),
            "{class}"
        );
        let record = &audit.records()[i];
        assert_eq!(
            (
                record.decision,
                record.reason.as_str(),
                record.status,
                record.upstream.as_deref(),
                record.user.as_deref(),
                record.method.as_deref(),
                record.tool.as_deref(),
                record.upstream_status,
            ),
            (
                Outcome::Deny,
                *reason,
                400,
                Some("notes"),
                Some("alice"),
                None,
                None,
                None
            ),
            "{class}"
        );
    }
    assert_eq!(recorder.count(), 0, "nothing smuggled reached the upstream");

    // The authorized message goes upstream byte for byte.
    let exact = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","note":"\u00e9"}},"x-extension":{"a":1}}"#;
    let reply = post_raw(&t.route_url, &alice, exact).await;
    assert_eq!(reply.status(), 200);
    let received = recorder.all();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, Bytes::from_static(exact.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g32_repeated_session_or_last_event_id_headers_get_400_and_reach_nothing() {
    let recorder = Recorder::default();
    let (t, audit) = start(recording_echo(recorder.clone())).await;
    let alice = token(&t, "alice");
    let repeated = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"A single-valued MCP header was sent more than once"}}"#;
    for (method, header) in [
        (Method::POST, "mcp-session-id"),
        (Method::GET, "mcp-session-id"),
        (Method::DELETE, "mcp-session-id"),
        (Method::GET, "last-event-id"),
        (Method::POST, "mcp-method"),
        (Method::POST, "mcp-name"),
    ] {
        let reply = client()
            .request(method.clone(), &t.route_url)
            .header("authorization", format!("Bearer {alice}"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header(header, "one")
            .header(header, "two")
            .body(tools_list(1).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 400, "{method} {header}");
        assert_eq!(reply.text().await.unwrap(), repeated, "{method} {header}");
    }
    assert_eq!(recorder.count(), 0);
    let records = audit.records();
    assert_eq!(records.len(), 6);
    for record in &records {
        assert_eq!(
            (record.decision, record.reason.as_str(), record.status),
            (Outcome::Deny, "repeated_header", 400)
        );
    }
}

/// What [`answering`] answers: content type, content coding, body.
type Answer = Arc<Mutex<(&'static str, Option<&'static str>, Vec<u8>)>>;

/// An upstream answering every request with the current [`Answer`].
fn answering(answer: Answer) -> UpstreamKind {
    UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(move |_: Request| {
            let (content_type, coding, body) = answer.lock().unwrap().clone();
            async move {
                let mut response = Response::new(axum::body::Body::from(body));
                response
                    .headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
                if let Some(coding) = coding {
                    response
                        .headers_mut()
                        .insert("content-encoding", coding.parse().unwrap());
                }
                response
            }
        }),
    ))
}

/// One `tools/list` case: name, content type, content coding, upstream body, status, the
/// body the client gets, the audit reason.
type ListCase = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    String,
    &'static str,
);

const FOUR_TOOLS: &str = r#"[{"name":"list_notes"},{"name":"add_note"},{"name":"delete_all_notes"},{"title":"nameless"}]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g33_tools_list_answers_are_filtered_under_any_media_type_and_spelling_or_refused() {
    let list = |members: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":2,"result":{{{members}}}}}"#).into_bytes()
    };
    let filtered = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"list_notes"},{"name":"add_note"}]}}"#;
    let unreadable = r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32031,"message":"The MCP server's answer could not be read"}}"#;
    let sse = |data: &[u8]| {
        let mut event = b"id: 1\ndata: ".to_vec();
        event.extend_from_slice(data);
        event.extend_from_slice(b"\n\n");
        event
    };
    let cases: Vec<ListCase> = vec![
        (
            "JSON under another media type",
            "text/plain",
            None,
            list(&format!(r#""tools":{FOUR_TOOLS}"#)),
            200,
            filtered.to_owned(),
            "forwarded",
        ),
        (
            "JSON with a parameterised vendor type",
            "application/vnd.example+json; charset=utf-8",
            None,
            list(&format!(r#""tools":{FOUR_TOOLS}"#)),
            200,
            filtered.to_owned(),
            "forwarded",
        ),
        (
            "escaped key",
            "application/json",
            None,
            list(&format!(r#""\u0074ools":{FOUR_TOOLS}"#)),
            200,
            filtered.to_owned(),
            "forwarded",
        ),
        (
            "a lookalike a case-insensitive client reads",
            "application/json",
            None,
            list(&format!(r#""Tools":{FOUR_TOOLS}"#)),
            200,
            r#"{"jsonrpc":"2.0","id":2,"result":{}}"#.to_owned(),
            "forwarded",
        ),
        (
            "two lists",
            "application/json",
            None,
            list(&format!(r#""tools":[],"tools":{FOUR_TOOLS}"#)),
            502,
            unreadable.to_owned(),
            "upstream_answer_invalid",
        ),
        (
            "gzip",
            "application/json",
            Some("gzip"),
            list(&format!(r#""tools":{FOUR_TOOLS}"#)),
            502,
            unreadable.to_owned(),
            "upstream_answer_encoded",
        ),
        (
            "SSE with an escaped key",
            "text/event-stream",
            None,
            sse(&list(&format!(r#""\u0074ools":{FOUR_TOOLS}"#))),
            200,
            format!("id: 1\ndata: {filtered}\n\n"),
            "forwarded",
        ),
        (
            "SSE with the long s",
            "text/event-stream",
            None,
            sse(&list(&format!("\"tool\u{17f}\":{FOUR_TOOLS}"))),
            200,
            r#"id: 1
data: {"jsonrpc":"2.0","id":2,"result":{}}

"#
            .to_owned(),
            "forwarded",
        ),
        (
            "SSE with two lists: the event is dropped",
            "text/event-stream",
            None,
            sse(&list(&format!(r#""tools":[],"tools":{FOUR_TOOLS}"#))),
            200,
            String::new(),
            "forwarded",
        ),
        (
            "SSE under gzip",
            "text/event-stream",
            Some("gzip"),
            sse(&list(&format!(r#""tools":{FOUR_TOOLS}"#))),
            502,
            unreadable.to_owned(),
            "upstream_answer_encoded",
        ),
    ];
    let answer: Answer = Arc::new(Mutex::new(("application/json", None, Vec::new())));
    let (t, audit) = start(answering(answer.clone())).await;
    let alice = token(&t, "alice");
    for (i, (case, content_type, coding, body, status, expected, reason)) in
        cases.into_iter().enumerate()
    {
        *answer.lock().unwrap() = (content_type, coding, body);
        let reply = send(&t.route_url, Some(&alice), &tools_list(2)).await;
        assert_eq!(reply.status(), status, "{case}");
        assert_eq!(reply.text().await.unwrap(), expected, "{case}");
        let record = &audit.records()[i];
        assert_eq!(record.reason, reason, "{case}");
        assert_eq!(record.method.as_deref(), Some("tools/list"), "{case}");
    }
}
