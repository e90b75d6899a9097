//! Bridging modes (issue 8): each upstream gets exactly its own credential and nothing else
//! (never the inbound token, never another upstream's secret); a missing secret is a
//! configuration error at start-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use idjag_client::auth::basic_authorization;
use idjag_core::{ClientId, ClientSecret};
use idjag_gateway::Plan;
use idjag_gateway::config::ConfigError;
use serde_json::json;

use crate::support::*;

/// A token endpoint that accepts exactly one client with `client_secret_basic` and the
/// expected form, and counts its calls.
#[derive(Clone)]
struct TokenEndpoint {
    basic: String,
    calls: Arc<AtomicUsize>,
    token: String,
}

async fn token_endpoint(
    State(endpoint): State<TokenEndpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    endpoint.calls.fetch_add(1, Ordering::SeqCst);
    let authorized = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == endpoint.basic.as_bytes());
    let form_ok = body.as_ref() == b"grant_type=client_credentials&scope=tickets.read";
    let typed = headers
        .get("content-type")
        .is_some_and(|v| v == "application/x-www-form-urlencoded");
    if !(authorized && form_ok && typed) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    axum::Json(json!({
        "access_token": endpoint.token,
        "token_type": "Bearer",
        "expires_in": 3600
    }))
    .into_response()
}

fn everyone() -> &'static str {
    "[[upstream.access]]\neveryone = true\nallow = [\"*\"]\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bridging_mode_sends_exactly_its_own_credential_and_nothing_else() {
    logs();
    let api_key = random("sk-static");
    let template_secret = random("tpl-secret");
    let cc_secret = random("cc-secret");
    let cc_token = random("cc-token");
    let secrets = [&api_key, &template_secret, &cc_secret, &cc_token];

    let endpoint = TokenEndpoint {
        basic: basic_authorization(
            &ClientId::new("gw-tickets").unwrap(),
            &ClientSecret::new(cc_secret.as_str()),
        )
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned(),
        calls: Arc::new(AtomicUsize::new(0)),
        token: cc_token.clone(),
    };
    let calls = endpoint.calls.clone();
    let as_url = spawn_router(
        Router::new()
            .route("/token", post(token_endpoint))
            .with_state(endpoint),
    )
    .await;

    let recorders: Vec<Recorder> = (0..4).map(|_| Recorder::default()).collect();
    let mut urls = Vec::new();
    for recorder in &recorders {
        urls.push(spawn_router(recording_router(recorder.clone())).await);
    }
    let blocks = format!(
        r#"
[[upstream]]
name = "keyed"
url = "{u0}/mcp"
credential = {{ mode = "static", header = "x-api-key", secret_file = "{f0}" }}
{everyone}
[[upstream]]
name = "templated"
url = "{u1}/mcp"
[upstream.credential]
mode = "header_template"
secret_file = "{f1}"
headers = {{ "authorization" = "Token {{secret}}", "x-user" = "{{user}}", "x-teams" = "{{teams}}", "x-agent" = "{{agent}}" }}
{everyone}
[[upstream]]
name = "tickets"
url = "{u2}/mcp"
[upstream.credential]
mode = "client_credentials"
authorization_server = "{as_url}"
token_endpoint = "{as_url}/token"
scopes = ["tickets.read"]
client = {{ id = "gw-tickets", secret_file = "{f2}" }}
{everyone}
[[upstream]]
name = "legacy"
url = "{u3}/mcp"
credential = {{ mode = "passthrough" }}
{everyone}
"#,
        u0 = urls[0],
        u1 = urls[1],
        u2 = urls[2],
        u3 = urls[3],
        f0 = secret_file(&api_key).display(),
        f1 = secret_file(&template_secret).display(),
        f2 = secret_file(&cc_secret).display(),
        everyone = everyone(),
    );
    let extra = config_blocks(&blocks);
    let main = Recorder::default();
    let (t, audit) = start_with(recording_echo(main.clone()), move |c| {
        c.upstreams.extend(extra.upstreams.clone());
    })
    .await;
    let warnings: Vec<String> = t.gateway.warnings().iter().map(|w| w.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("upstream[legacy].credential: passthrough")),
        "{warnings:?}"
    );

    let inbound = t.id_token("alice").unwrap().secret().to_owned();
    // passthrough forwards only an access token issued for its own route (G31).
    let legacy_token = idp_access_token(
        &t,
        &format!("{}/mcp/legacy", t.gateway_url),
        None,
        &["engineering"],
    );
    for name in ["notes", "keyed", "templated", "tickets", "legacy"] {
        let route = format!("{}/mcp/{name}", t.gateway_url);
        let inbound = if name == "legacy" {
            &legacy_token
        } else {
            &inbound
        };
        for (i, body) in [
            initialize(),
            tools_call(2, "echo", json!({"text": "hi"})),
            tools_call(3, "echo", json!({"text": "again"})),
        ]
        .iter()
        .enumerate()
        {
            let reply = send(&route, Some(inbound), body).await;
            assert_eq!(reply.status(), 200, "{name} #{i}");
        }
    }

    let expect = |recorder: &Recorder, header: &str, value: &str| {
        let requests = recorder.all();
        assert_eq!(requests.len(), 3);
        for request in &requests {
            assert_eq!(request.headers[header].to_str().unwrap(), value, "{header}");
        }
    };
    // static: its header only, no Authorization at all.
    expect(&recorders[0], "x-api-key", &api_key);
    assert!(
        recorders[0]
            .all()
            .iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
    // header_template: rendered over the verified identity and the secret.
    expect(
        &recorders[1],
        "authorization",
        &format!("Token {template_secret}"),
    );
    expect(&recorders[1], "x-user", "alice");
    expect(&recorders[1], "x-teams", "engineering");
    expect(
        &recorders[1],
        "x-agent",
        idjag_gateway::demo::GATEWAY_CLIENT,
    );
    // client_credentials: the gateway's own token, fetched once and cached.
    expect(
        &recorders[2],
        "authorization",
        &format!("Bearer {cc_token}"),
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // passthrough: the route's own access token itself (the explicit, warned opt-in).
    expect(
        &recorders[3],
        "authorization",
        &format!("Bearer {legacy_token}"),
    );

    // Nobody sees the ID token, nobody but passthrough its access token, nobody another
    // upstream's secret.
    let own: [&[&String]; 4] = [&[&api_key], &[&template_secret], &[&cc_token], &[]];
    for (i, recorder) in recorders.iter().enumerate() {
        for request in recorder.all() {
            assert!(
                !carries(&request, &inbound),
                "upstream {i} got the ID token"
            );
            if i != 3 {
                assert!(
                    !carries(&request, &legacy_token),
                    "upstream {i} got the passthrough token"
                );
            }
            for secret in secrets {
                if !own[i].contains(&secret) {
                    assert!(
                        !carries(&request, secret),
                        "upstream {i} got another secret"
                    );
                }
            }
        }
    }
    for request in main.all() {
        for secret in secrets {
            assert!(!carries(&request, secret));
        }
        assert!(!carries(&request, &inbound));
    }
    // Every request is audited as forwarded, and no secret is in the audit log or the logs.
    let records = audit.records();
    assert_eq!(records.len(), 15);
    assert!(records.iter().all(|r| r.reason == "forwarded"));
    let audit_text = serde_json::to_string(&records).unwrap();
    let logs = captured_logs();
    for secret in secrets {
        assert!(!audit_text.contains(secret.as_str()));
        assert!(!logs.contains(secret.as_str()));
    }

    // Fail closed: without a token no bridging mode falls back to its static credential
    // (a failure users reported against another gateway: BerriAI/litellm #31516).
    for name in ["keyed", "templated", "tickets", "legacy"] {
        let route = format!("{}/mcp/{name}", t.gateway_url);
        let reply = send(&route, None, &tools_call(9, "echo", json!({}))).await;
        assert_eq!(reply.status(), 401, "{name}");
    }
    assert!(recorders.iter().all(|r| r.count() == 3));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_the_upstream_refuses_is_fetched_again_once() {
    let endpoint = TokenEndpoint {
        basic: basic_authorization(
            &ClientId::new("gw-tickets").unwrap(),
            &ClientSecret::new("cc-secret"),
        )
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned(),
        calls: Arc::new(AtomicUsize::new(0)),
        token: "cc-token".into(),
    };
    let calls = endpoint.calls.clone();
    let as_url = spawn_router(
        Router::new()
            .route("/token", post(token_endpoint))
            .with_state(endpoint),
    )
    .await;
    // The upstream refuses every token: one refresh, one retry, then a clear error.
    let seen = Recorder::default();
    let recorder = seen.clone();
    let upstream = spawn_router(Router::new().route(
        "/mcp",
        post(move |request: axum::extract::Request| {
            let recorder = recorder.clone();
            async move {
                recorder.record(request).await;
                StatusCode::UNAUTHORIZED
            }
        }),
    ))
    .await;
    let extra = config_blocks(&format!(
        r#"
[[upstream]]
name = "tickets"
url = "{upstream}/mcp"
[upstream.credential]
mode = "client_credentials"
authorization_server = "{as_url}"
token_endpoint = "{as_url}/token"
scopes = ["tickets.read"]
client = {{ id = "gw-tickets", secret_file = "{file}" }}
{everyone}"#,
        file = secret_file("cc-secret").display(),
        everyone = everyone(),
    ));
    let (t, audit) = start_with(UpstreamKind::Echo, move |c| {
        c.upstreams.extend(extra.upstreams.clone());
    })
    .await;
    let inbound = t.id_token("alice").unwrap().secret().to_owned();
    let reply = send(
        &format!("{}/mcp/tickets", t.gateway_url),
        Some(&inbound),
        &initialize(),
    )
    .await;
    assert_eq!(reply.status(), 502);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32033);
    assert_eq!(seen.count(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(audit.records()[0].reason, "upstream_unauthorized");
}

#[tokio::test]
async fn a_missing_bridging_secret_is_a_configuration_error_naming_its_key() {
    let (t, _) = start(UpstreamKind::Echo).await;
    let missing = std::env::temp_dir().join(random("idjag-missing"));
    for (block, key) in [
        (
            format!(
                "credential = {{ mode = \"static\", secret_file = \"{}\" }}",
                missing.display()
            ),
            "upstream[bridged].credential.secret_file",
        ),
        (
            "credential = { mode = \"static\", secret_env = \"IDJAG_TEST_SURELY_UNSET_VARIABLE\" }"
                .to_owned(),
            "upstream[bridged].credential.secret_env",
        ),
    ] {
        let extra = config_blocks(&format!(
            "[[upstream]]\nname = \"bridged\"\nurl = \"http://127.0.0.1:9/mcp\"\n{block}\n{}",
            everyone()
        ));
        let mut config = idjag_gateway::Config::from_toml_str(&t.config_toml).unwrap();
        config.upstreams.extend(extra.upstreams);
        match Plan::from_config(&config) {
            Err(ConfigError {
                key: k, problem, ..
            }) => {
                assert_eq!(k, key);
                let expected = if key.ends_with("secret_file") {
                    format!("cannot read {}: entity not found", missing.display())
                } else {
                    "environment variable IDJAG_TEST_SURELY_UNSET_VARIABLE is not set".to_owned()
                };
                assert_eq!(problem, expected);
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    // An inline secret is not even a key of the static mode (never in the file itself).
    let inline = idjag_gateway::Config::from_toml_str(&format!(
        "{}\n[[upstream]]\nname = \"b\"\nurl = \"http://127.0.0.1:9/mcp\"\ncredential = {{ mode = \"static\", secret = \"x\" }}\n",
        t.config_toml
    ));
    assert!(matches!(inline, Err(idjag_gateway::LoadError::Invalid(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g31_passthrough_forwards_only_an_access_token_issued_for_its_route() {
    let recorder = Recorder::default();
    let upstream = spawn_router(recording_router(recorder.clone())).await;
    let extra = config_blocks(&format!(
        "[[upstream]]\nname = \"legacy\"\nurl = \"{upstream}/mcp\"\n\
         credential = {{ mode = \"passthrough\" }}\n{}",
        everyone()
    ));
    let (t, audit) = start_with(recording_echo(Recorder::default()), move |c| {
        c.upstreams.extend(extra.upstreams.clone());
    })
    .await;
    let route = format!("{}/mcp/legacy", t.gateway_url);
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource/mcp/legacy",
        t.gateway_url
    );
    let challenge = format!(r#"Bearer error="invalid_token", resource_metadata="{metadata}""#);
    let id_token = t.id_token("alice").unwrap().secret().to_owned();
    let gateway_wide = idp_access_token(&t, &t.gateway_url, None, &["engineering"]);
    let for_notes = idp_access_token(&t, &t.route_url, None, &["engineering"]);
    let for_route = idp_access_token(&t, &route, None, &["engineering"]);
    // An ID token and a gateway-wide access token are valid at the gateway, never here.
    for refused in [&id_token, &gateway_wide] {
        let reply = send(&route, Some(refused), &tools_call(1, "echo", json!({}))).await;
        assert_eq!(reply.status(), 401);
        assert_eq!(reply.headers()["www-authenticate"], challenge.as_str());
        assert_eq!(
            reply.json::<serde_json::Value>().await.unwrap(),
            json!({"error": "invalid_token"})
        );
    }
    // A token of another route is not valid on this one at all.
    let reply = send(&route, Some(&for_notes), &tools_call(1, "echo", json!({}))).await;
    assert_eq!(reply.status(), 401);
    assert_eq!(recorder.count(), 0, "nothing went upstream");
    // The route's own access token goes through, as is.
    let reply = send(&route, Some(&for_route), &tools_call(2, "echo", json!({}))).await;
    assert_eq!(reply.status(), 200);
    let received = recorder.all();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].headers["authorization"].to_str().unwrap(),
        format!("Bearer {for_route}")
    );
    let reasons: Vec<(String, u16)> = audit
        .records()
        .into_iter()
        .map(|r| (r.reason, r.status))
        .collect();
    assert_eq!(
        reasons,
        [
            ("passthrough_token_not_for_route".to_owned(), 401),
            ("passthrough_token_not_for_route".to_owned(), 401),
            ("audience_other_resource".to_owned(), 401),
            ("forwarded".to_owned(), 200),
        ]
    );
}
