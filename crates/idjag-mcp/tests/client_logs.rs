//! Threat C06 (requirements EMA-13, EMA-16): the authorizing client, logged at `TRACE` by every
//! crate through an allowed flow, a `401` renewal, a step-up and a policy denial, writes no
//! token, ID-JAG or secret. Its own binary, because it installs a global subscriber.

#[allow(unreachable_pub, dead_code)]
#[path = "client/support.rs"]
mod support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use rmcp::transport::streamable_http_client::StreamableHttpClient;

use crate::support::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn c06_the_authorizing_client_logs_no_token_or_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

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

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
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
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret} appears in the logs"
        );
    }
    // No ID-JAG, whole or in part (its header starts with `eyJ`).
    assert!(!logs.contains("eyJ"), "a JWT appears in the logs");
}
