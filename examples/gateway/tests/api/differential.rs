//! The differential property test through the gateway (threats G27 to G29): for generated
//! JSON-RPC bodies, with repeated and fold-colliding member names at every level, the gateway
//! either refuses the body (400, nothing reaches the upstream) or forwards bytes that a
//! first-member-wins, a last-member-wins, a case-insensitive (Go's `encoding/json`) and a
//! NUL-truncating parser all read as the method, tool and arguments the gateway decided on
//! and audited. The reference parsers and the body generator are idjag-core's
//! (`idjag_test_support::json_reference`).

use std::sync::atomic::{AtomicUsize, Ordering};

use idjag_gateway::observe::audit::Outcome;
use idjag_test_support::json_reference::{Decided, POLICIES, body};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

use crate::support::*;

/// Threats G27 to G29 through the gateway: refused, or forwarded as what every reference
/// parser reads the same way, which is what the gateway decided on.
#[test]
fn g27_the_gateway_refuses_or_forwards_what_every_reference_parser_reads_alike() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let recorder = Recorder::default();
    let (t, audit) = runtime.block_on(start(recording_echo(recorder.clone())));
    let alice = t.id_token("alice").unwrap().secret().to_owned();
    let http = client();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let (refused, forwarded) = (AtomicUsize::new(0), AtomicUsize::new(0));
    runner
        .run(&body(), |body| {
            let before = recorder.count();
            let status = runtime.block_on(async {
                http.post(&t.route_url)
                    .header("authorization", format!("Bearer {alice}"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
            let record = audit.records().pop().unwrap();
            let received = recorder.all();
            if status == 400 {
                refused.fetch_add(1, Ordering::Relaxed);
                prop_assert_eq!(received.len(), before, "refused, yet forwarded: {}", body);
                prop_assert_eq!(record.decision, Outcome::Deny);
                prop_assert!(record.reason.starts_with("jsonrpc_"), "{}", record.reason);
                return Ok(());
            }
            let decided = Decided {
                method: record.method.clone(),
                tool: record.tool.clone(),
                arguments: None,
            };
            if received.len() == before {
                // Refused by policy (delete_repo): nothing went upstream.
                prop_assert_eq!(record.decision, Outcome::Deny, "{}", body);
                return Ok(());
            }
            forwarded.fetch_add(1, Ordering::Relaxed);
            prop_assert_eq!(received.len(), before + 1);
            let sent = &received[before].body;
            prop_assert_eq!(&sent[..], body.as_bytes(), "forwarded bytes differ");
            let text = std::str::from_utf8(sent).unwrap();
            let gateway = idjag_gateway::protocol::jsonrpc::read_message(sent).unwrap();
            prop_assert_eq!(&gateway.method, &decided.method);
            prop_assert_eq!(&gateway.tool, &decided.tool);
            for policy in POLICIES {
                let reading = policy.read(text).unwrap();
                prop_assert_eq!(&reading.method, &decided.method, "{:?} on {}", policy, text);
                prop_assert_eq!(&reading.tool, &decided.tool, "{:?} on {}", policy, text);
                prop_assert_eq!(
                    &reading.arguments,
                    &gateway.arguments,
                    "{:?} on {}",
                    policy,
                    text
                );
            }
            Ok(())
        })
        .unwrap();
    // The generator reaches both sides.
    let (refused, forwarded) = (refused.into_inner(), forwarded.into_inner());
    assert!(
        refused > 0 && forwarded > 0,
        "{refused} refused, {forwarded} forwarded"
    );
}
