//! Threat C06 (requirements EMA-13, EMA-16): the authorizing client, logged at `TRACE` by every
//! crate through an allowed flow, a `401` renewal, a step-up and a policy denial, writes no
//! token, ID-JAG or secret.
//!
//! Its own binary: it reads idjag-test-support's process-wide capture whole (every event of
//! every thread, the HTTP client's included), which in the shared `api` binary would mix in the
//! events of tests running beside it.

#[allow(unreachable_pub, dead_code)]
#[path = "api/client/support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use idjag_test_support::logs;

use rmcp::transport::streamable_http_client::StreamableHttpClient;

use crate::support::*;

#[tokio::test]
async fn c06_the_authorizing_client_logs_no_token_or_secret() {
    logs::install();

    let peers = Peers::builder().deny("mallory").start().await;
    let step_up = format!(
        r#"Bearer error="insufficient_scope", scope="tools.write", resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
        peers.base
    );
    let mcp = ScriptedMcp::new(
        &peers,
        [
            Reply::Unauthorized(peers.challenge()),
            Reply::Unauthorized(peers.challenge()),
            Reply::Forbidden(step_up),
        ],
    );
    let authorizer = peers.authorizer();
    let uri: Arc<str> = Arc::from(peers.mcp_url());
    let alice = authorizer.client(mcp.clone(), user("alice"));
    alice
        .post_message(uri.clone(), ping(), None, None, HashMap::new())
        .await
        .unwrap();
    let mallory = authorizer.client(mcp.clone(), user("mallory"));
    let denied = mallory
        .post_message(uri, ping(), None, None, HashMap::new())
        .await
        .unwrap_err();
    tracing::error!(error = %denied, debug = ?denied, "the denial as an app would log it");

    let logs = logs::text();
    assert!(
        logs.contains("discovered the MCP server's authorization server"),
        "{logs}"
    );
    assert!(logs.contains("asked for more scope"), "{logs}");
    assert!(logs.contains("access_denied"), "{logs}");
    let mut secrets = vec![
        AS_SECRET.to_owned(),
        "id-token-alice".into(),
        "id-token-mallory".into(),
    ];
    secrets.extend(mcp.tokens().into_iter().flatten());
    assert!(secrets.len() >= 6, "{secrets:?}");
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    idjag_test_support::logs::assert_no_secret(&logs, &secrets);
    // No ID-JAG, whole or in part (its header starts with `eyJ`).
    assert!(!logs.contains("eyJ"), "a JWT appears in the logs");
}
