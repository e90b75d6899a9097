//! MCP-level behaviour: G03, G14, G16, G17, G18, G26, tool-level RBAC and `tools/list`
//! filtering.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use http::{Method, StatusCode};
use idjag_core::{Resource, SystemClock};
use idjag_gateway::config::{ConfigDuration, CredentialConfig, ToolConfig};
use idjag_resource::rs::AccessTokenVerifier;
use serde_json::{Value, json};

use crate::support::*;

fn token(t: &Topology, user: &str) -> String {
    t.id_token(user).unwrap().secret().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g03_the_upstream_receives_a_gateway_obtained_access_token_never_the_inbound_one() {
    let recorder = Recorder::default();
    let (t, _) = start(recording_echo(recorder.clone())).await;
    let inbound = token(&t, "alice");
    assert_eq!(
        send(&t.route_url, Some(&inbound), &initialize())
            .await
            .status(),
        200
    );
    let reply = send(
        &t.route_url,
        Some(&inbound),
        &tools_call(2, "echo", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(
        messages(reply).await[0]["result"]["content"][0]["text"],
        "hi"
    );

    let verifier = AccessTokenVerifier::new(
        Resource::new(t.mcp_url.as_str()).unwrap(),
        t.resource_as.clone(),
        Arc::new(t.resource_server.verification_keys()),
        SystemClock::shared(),
    );
    let requests = recorder.all();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        for (name, value) in &request.headers {
            assert!(
                !value
                    .as_bytes()
                    .windows(inbound.len())
                    .any(|w| w == inbound.as_bytes()),
                "{name}"
            );
        }
        assert!(!String::from_utf8_lossy(&request.body).contains(&inbound));
        let authorization = request.headers["authorization"].to_str().unwrap();
        let access_token = authorization.strip_prefix("Bearer ").unwrap();
        let verified = verifier
            .verify(access_token)
            .await
            .expect("an access token of the resource AS");
        let claims = verified.claims();
        assert_eq!(claims.sub.as_str(), "alice");
        assert_eq!(
            claims.client_id.as_str(),
            idjag_gateway::demo::GATEWAY_AT_AS
        );
        assert_eq!(
            claims.scope.as_ref().unwrap().to_string(),
            "notes.read notes.write"
        );
    }
    // One exchange, one redemption, and the cached token for the second call.
    assert_eq!(
        (t.gateway.exchange_count(), t.gateway.redemption_count()),
        (1, 1)
    );
    assert_eq!(
        requests[0].headers["authorization"],
        requests[1].headers["authorization"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g14_a_session_answers_only_the_user_who_created_it() {
    let (t, audit) = start(UpstreamKind::Notes).await;
    let (alice, bob) = (token(&t, "alice"), token(&t, "bob"));
    let created = send(&t.route_url, Some(&alice), &initialize()).await;
    assert_eq!(created.status(), 200);
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let in_session = |token: &str, session: &str, body: Value| {
        post(&t.route_url, Some(token), &body).header("mcp-session-id", session)
    };
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(
        in_session(&alice, &session, initialized)
            .send()
            .await
            .unwrap()
            .status(),
        202
    );

    let stolen = in_session(&bob, &session, tools_list(2))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 404);
    let unknown = in_session(&alice, "not-a-session", tools_list(2))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(audit.records().pop().unwrap().reason, "unknown_session");
    let own = in_session(&alice, &session, tools_list(3))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);

    // After alice ends it, it is gone for her too.
    let ended = client()
        .delete(&t.route_url)
        .header("authorization", format!("Bearer {alice}"))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", PROTOCOL)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    assert_eq!(
        in_session(&alice, &session, tools_list(4))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g16_a_tool_needing_a_scope_the_token_lacks_gets_403_insufficient_scope_and_no_upstream_call()
 {
    let recorder = Recorder::default();
    let (t, audit) = start_with(recording_echo(recorder.clone()), |c| {
        c.upstreams[0]
            .tools
            .insert("echo".into(), ToolConfig::with_scopes(&["notes.admin"]));
    })
    .await;
    let token = idp_access_token(&t, &t.route_url, Some("notes.read"), &["eng"]);
    let response = send(
        &t.route_url,
        Some(&token),
        &tools_call(1, "echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"notes.admin\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp/notes\"",
            t.gateway_url
        )
        .as_str()
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(recorder.count(), 0);
    assert_eq!(audit.records()[0].reason, "insufficient_scope");

    // With the scope, the tool is authorized (the ID-JAG upstream then asks for an ID token).
    let admin = idp_access_token(&t, &t.route_url, Some("notes.read notes.admin"), &["eng"]);
    let response = send(
        &t.route_url,
        Some(&admin),
        &tools_call(1, "echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(audit.records()[1].reason, "id_token_required");
}

fn counting_upstream(
    calls: Arc<AtomicUsize>,
    answer: fn(usize) -> Option<StatusCode>,
    delay: Duration,
) -> UpstreamKind {
    UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(move |request: Request| {
            let calls = calls.clone();
            async move {
                let (_, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let message: Value = serde_json::from_slice(&body).unwrap_or_default();
                if message["method"] == "tools/call" {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    if let Some(status) = answer(n) {
                        return status.into_response();
                    }
                }
                idjag_gateway::demo::echo(axum::Json(message))
                    .await
                    .into_response()
            }
        }),
    ))
}

async fn call_status_and_error(t: &Topology, user: &str) -> (u16, Value) {
    let response = send(
        &t.route_url,
        Some(&token(t, user)),
        &tools_call(9, "echo", json!({"text": "x"})),
    )
    .await;
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g17_upstream_failures_become_json_rpc_errors_and_a_tool_call_never_runs_twice() {
    // Refused connection.
    let (t, audit) = start_with(UpstreamKind::Echo, |c| {
        let real = c.upstreams[0].url.clone();
        c.upstreams[0].url = Some("http://127.0.0.1:1/mcp".into());
        if let CredentialConfig::IdJag { resource, .. } = &mut c.upstreams[0].credential {
            *resource = real;
        }
    })
    .await;
    let (status, body) = call_status_and_error(&t, "alice").await;
    assert_eq!(
        (status, body["id"].clone(), body["error"]["code"].clone()),
        (502, json!(9), json!(-32031))
    );
    assert_eq!(audit.records()[0].reason, "upstream_unreachable");

    // 5xx, once.
    let calls = Arc::new(AtomicUsize::new(0));
    let (t, audit) = start(counting_upstream(
        calls.clone(),
        |_| Some(StatusCode::INTERNAL_SERVER_ERROR),
        Duration::ZERO,
    ))
    .await;
    let (status, body) = call_status_and_error(&t, "alice").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (502, json!(-32031))
    );
    assert_eq!(body["error"]["data"]["upstream_status"], 500);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not retried");
    assert_eq!(audit.records()[0].reason, "upstream_error");

    // Silence beyond the read timeout, once.
    let calls = Arc::new(AtomicUsize::new(0));
    let (t, audit) = start_with(
        counting_upstream(calls.clone(), |_| None, Duration::from_secs(3)),
        |c| {
            c.upstreams[0].read_timeout = ConfigDuration(Duration::from_millis(300));
        },
    )
    .await;
    let (status, body) = call_status_and_error(&t, "alice").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (504, json!(-32032))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not retried");
    assert_eq!(audit.records()[0].reason, "upstream_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g18_an_upstream_401_refreshes_the_credential_and_retries_exactly_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (t, _) = start(counting_upstream(
        calls.clone(),
        |n| (n == 0).then_some(StatusCode::UNAUTHORIZED),
        Duration::ZERO,
    ))
    .await;
    let (status, body) = call_status_and_error(&t, "alice").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "x");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The refused token was dropped: a second exchange and redemption.
    assert_eq!(
        (t.gateway.exchange_count(), t.gateway.redemption_count()),
        (2, 2)
    );

    let calls = Arc::new(AtomicUsize::new(0));
    let (t, audit) = start(counting_upstream(
        calls.clone(),
        |_| Some(StatusCode::UNAUTHORIZED),
        Duration::ZERO,
    ))
    .await;
    let (status, body) = call_status_and_error(&t, "alice").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (502, json!(-32033))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one retry, no more");
    assert_eq!(audit.records()[0].reason, "upstream_unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_allows_by_team_denies_by_rule_and_a_denied_call_never_reaches_the_upstream() {
    let recorder = Recorder::default();
    let (t, audit) = start(recording_echo(recorder.clone())).await;
    // Demo policy: engineering may use every tool but delete_*, sales only list_notes.
    let (alice, bob, carol_token) = (token(&t, "alice"), token(&t, "bob"), token(&t, "carol"));
    let ok = send(
        &t.route_url,
        Some(&alice),
        &tools_call(1, "echo", json!({"text": "a"})),
    )
    .await;
    assert_eq!(messages(ok).await[0]["result"]["content"][0]["text"], "a");
    let denied_delete = send(
        &t.route_url,
        Some(&alice),
        &tools_call(2, "delete_everything", json!({})),
    )
    .await;
    assert_eq!(denied_delete.status(), 200);
    let body: Value = denied_delete.json().await.unwrap();
    assert_eq!(
        body,
        json!({"jsonrpc":"2.0","id":2,"error":{"code":-32030,"message":"Blocked by the gateway's policy","data":{"reason":"tool_denied"}}})
    );
    let denied_echo = send(
        &t.route_url,
        Some(&bob),
        &tools_call(3, "echo", json!({"text": "b"})),
    )
    .await;
    let body: Value = denied_echo.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "tool_not_allowed");
    // A notification that is refused gets 403 (it has no id to answer).
    let mallory = idp_access_token(&t, &t.route_url, None, &["unmapped"]);
    let refused = send(
        &t.route_url,
        Some(&mallory),
        &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let _ = carol_token;
    let calls: Vec<String> = recorder
        .all()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["params"]["name"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(calls, ["echo"], "only the allowed call went upstream");
    let reasons: Vec<String> = audit.records().into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            "forwarded",
            "tool_denied",
            "tool_not_allowed",
            "no_access_to_upstream"
        ]
    );
}

fn tool_names(message: &Value) -> Vec<String> {
    message["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_answers_are_filtered_per_user_in_sse_from_rmcp() {
    let (t, _) = start(UpstreamKind::Notes).await;
    for (user, expected) in [
        ("alice", vec!["add_note", "list_notes"]),
        ("bob", vec!["list_notes"]),
    ] {
        let token = token(&t, user);
        let created = send(&t.route_url, Some(&token), &initialize()).await;
        assert_eq!(created.headers()["content-type"], "text/event-stream");
        let session = created.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let listed = post(&t.route_url, Some(&token), &tools_list(2))
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.headers()["content-type"], "text/event-stream");
        let mut names = tool_names(&messages(listed).await[0]);
        names.sort();
        assert_eq!(names, expected, "{user}");
    }
}

const THREE_TOOLS: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"list_notes"},{"name":"add_note"},{"name":"delete_all_notes"}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_answers_are_filtered_in_json_and_in_get_streams() {
    let upstream = UpstreamKind::Custom(Router::new().route(
        "/mcp",
        any(|request: Request| async move {
            if request.method() == Method::GET {
                let event = format!("id: 7\ndata: {THREE_TOOLS}\n\n");
                let mut response = Response::new(axum::body::Body::from(event));
                response
                    .headers_mut()
                    .insert("content-type", "text/event-stream".parse().unwrap());
                return response;
            }
            let mut response = Response::new(axum::body::Body::from(Bytes::from_static(
                THREE_TOOLS.as_bytes(),
            )));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            response
                .headers_mut()
                .insert("content-length", THREE_TOOLS.len().into());
            response
        }),
    ));
    let (t, _) = start(upstream).await;
    let alice = token(&t, "alice");
    let listed = send(&t.route_url, Some(&alice), &tools_list(2)).await;
    let length: usize = listed.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let message = messages(listed).await.remove(0);
    assert_eq!(tool_names(&message), ["list_notes", "add_note"]);
    assert_eq!(
        length,
        message.to_string().len(),
        "the length of the filtered body"
    );

    let bob = token(&t, "bob");
    let stream = client()
        .get(&t.route_url)
        .header("authorization", format!("Bearer {bob}"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let text = stream.text().await.unwrap();
    assert!(text.starts_with("id: 7\ndata: "), "{text}");
    let data: Value =
        serde_json::from_str(text.trim_start_matches("id: 7\ndata: ").trim()).unwrap();
    assert_eq!(tool_names(&data), ["list_notes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g26_the_request_id_goes_upstream_and_logs_hold_no_token_secret_or_session_id() {
    logs();
    // Access tokens: seen by a recording upstream.
    let recorder = Recorder::default();
    let (t, audit) = start(recording_echo(recorder.clone())).await;
    let inbound = token(&t, "alice");
    let reply = send(
        &t.route_url,
        Some(&inbound),
        &tools_call(1, "echo", json!({"text": "x", "password": "hunter2"})),
    )
    .await;
    let request_id = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(request_id.len(), 32);
    let upstream = recorder.all().pop().unwrap();
    assert_eq!(upstream.headers["x-request-id"], request_id.as_str());
    let record = audit.records().pop().unwrap();
    assert_eq!(record.request_id, request_id);
    // The demo configuration records arguments with `redact`.
    assert_eq!(
        record.arguments,
        Some(json!({"text": "x", "password": "[redacted]"}))
    );
    let access_token = upstream.headers["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let secrets: Vec<String> = t.secrets().iter().map(|s| s.secret().to_owned()).collect();

    // Session ids: from the rmcp server.
    let (notes, _) = start(UpstreamKind::Notes).await;
    let notes_token = token(&notes, "bob");
    let created = send(&notes.route_url, Some(&notes_token), &initialize()).await;
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let listed = post(&notes.route_url, Some(&notes_token), &tools_list(2))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    // And a refused one, whose failure is logged.
    let refused = send(
        &notes.route_url,
        Some(&token(&notes, "carol")),
        &initialize(),
    )
    .await;
    assert_eq!(refused.status(), 200);

    let logs = captured_logs();
    assert!(logs.contains("idjag_client"), "the flow was logged");
    assert!(
        logs.contains("no upstream credential"),
        "the refusal was logged"
    );
    let mut forbidden = vec![
        inbound,
        access_token,
        notes_token,
        session,
        "hunter2".to_owned(),
    ];
    forbidden.extend(secrets);
    forbidden.extend(notes.secrets().iter().map(|s| s.secret().to_owned()));
    for value in &forbidden {
        assert!(
            !logs.contains(value.as_str()),
            "a secret value is in the logs"
        );
    }
    assert!(!logs.contains("eyJ"), "a JWT is in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmcp_client_sees_its_tools_calls_one_and_is_refused_another_through_the_gateway() {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let (t, audit) = start(UpstreamKind::Notes).await;
    let mut config = StreamableHttpClientTransportConfig::with_uri(t.route_url.as_str());
    config.auth_header = Some(token(&t, "alice"));
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    let mcp = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("agent", "1"),
    )
    .serve(transport)
    .await
    .expect("initialize through the gateway");
    let mut names: Vec<String> = mcp
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["add_note", "list_notes"]);
    let added = mcp
        .call_tool(
            CallToolRequestParams::new("add_note")
                .with_arguments(json!({"text": "from rmcp"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        added.content[0].as_text().unwrap().text,
        "Note 1 added by alice."
    );
    let refused = mcp
        .call_tool(CallToolRequestParams::new("delete_all_notes"))
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("Blocked by the gateway's policy"),
        "{refused}"
    );
    mcp.cancel().await.unwrap();
    assert_eq!(t.notes.lock().unwrap().len(), 1);
    let tools: Vec<Option<String>> = audit.records().into_iter().map(|r| r.tool).collect();
    assert!(tools.contains(&Some("delete_all_notes".to_owned())));
}
