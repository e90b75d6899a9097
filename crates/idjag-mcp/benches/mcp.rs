//! What idjag-mcp adds to each MCP request, as ratios against a baseline measured in the same
//! run (the machine is shared and noisy; see BENCHMARKS.md):
//!
//! - `tool_scope_check`: the server's per-tool scope check on a `tools/call` body
//!   (`required_for`: strict parse, duplicate-member rejection, lookup) against the parse rmcp
//!   does of every body anyway (`raw_rmcp_parse`).
//! - `client_request`: a request through `EmaAuthClient` with a cached access token
//!   (`authorized_cached`) against the same request through the wrapped client alone
//!   (`raw_inner`); the wrapped client answers at once, so only the authorization work shows.
//!
//! `cargo bench -p idjag-mcp --bench mcp` then `python3 scripts/bench_ratios.py`.

#[allow(unreachable_pub, dead_code)]
#[path = "../tests/api/client/support.rs"]
mod support;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use idjag_core::ScopeSet;
use idjag_mcp::server::ToolScopes;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};

use crate::support::{Peers, ping, user};

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"delete_repo","arguments":{"owner":"acme","repository":"payments-service","branch":"main","confirm":true,"reason":"decommissioned after the migration to the new ledger"},"_meta":{"progressToken":"p-42"}}}"#;

fn tool_scope_check(c: &mut Criterion) {
    let scopes = ToolScopes::new()
        .with("delete_repo", ScopeSet::parse("repo.admin").unwrap())
        .with("read_file", ScopeSet::parse("repo.read").unwrap());
    let mut group = c.benchmark_group("tool_scope_check");
    group.bench_function("raw_rmcp_parse", |b| {
        b.iter(|| serde_json::from_slice::<ClientJsonRpcMessage>(black_box(CALL)).unwrap())
    });
    group.bench_function("required_for", |b| {
        b.iter(|| scopes.required_for(black_box(CALL)).unwrap())
    });
    group.finish();
}

/// A wrapped client that accepts everything at once.
#[derive(Clone)]
struct Accepting;

impl StreamableHttpClient for Accepting {
    type Error = std::io::Error;

    async fn post_message(
        &self,
        _uri: Arc<str>,
        message: ClientJsonRpcMessage,
        _session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        black_box((message, auth_header));
        Ok(StreamableHttpPostResponse::Accepted)
    }

    async fn delete_session(
        &self,
        _uri: Arc<str>,
        _session_id: Arc<str>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        Ok(())
    }

    async fn get_stream(
        &self,
        _uri: Arc<str>,
        _session_id: Option<Arc<str>>,
        _last_event_id: Option<String>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        Err(StreamableHttpError::ServerDoesNotSupportSse)
    }
}

fn client_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (peers, client) = runtime.block_on(async {
        let peers = Peers::builder().start().await;
        let client = peers.authorizer().client(Accepting, user("alice"));
        client.authorize(&peers.mcp_url()).await.unwrap();
        (peers, client)
    });
    let uri: Arc<str> = Arc::from(peers.mcp_url());
    let message = ping();
    let mut group = c.benchmark_group("client_request");
    group.bench_function("raw_inner", |b| {
        b.iter(|| {
            runtime
                .block_on(Accepting.post_message(
                    uri.clone(),
                    message.clone(),
                    None,
                    Some("token".into()),
                    HashMap::new(),
                ))
                .unwrap()
        })
    });
    group.bench_function("authorized_cached", |b| {
        b.iter(|| {
            runtime
                .block_on(client.post_message(
                    uri.clone(),
                    message.clone(),
                    None,
                    None,
                    HashMap::new(),
                ))
                .unwrap()
        })
    });
    group.finish();
    assert_eq!(
        peers.exchanges().len(),
        1,
        "every request used the cached token"
    );
}

criterion_group!(benches, tool_scope_check, client_request);
criterion_main!(benches);
