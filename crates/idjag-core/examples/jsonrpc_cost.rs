//! Reads one typical `tools/call` body `n` times in a named loop, with today's lenient
//! `serde_json::from_slice::<Value>`, with the duplicate-rejecting `jose::parse_object`, or with
//! the strict `jsonrpc::read_message`, so an instruction counter can compare them exactly,
//! unaffected by machine load:
//!
//! ```text
//! bash scripts/jsonrpc_instruction_ratio.sh 20000
//! ```
//!
//! which runs, for each mode:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*run_loop*' --callgrind-out-file=/dev/null \
//!   target/release/examples/jsonrpc_cost <lenient|duplicates|strict> <call|initialize> 20000
//! ```

use std::hint::black_box;

use idjag_core::Segment;
use idjag_core::jose::parse_object;
use idjag_core::jsonrpc::read_message;
use serde_json::Value;

/// A `tools/call` as an MCP client sends it (254 bytes).
const CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_issues","arguments":{"query":"label:bug is:open","repository":"acme/widgets","limit":20,"includeClosed":false,"fields":["title","url","updatedAt"]},"_meta":{"progressToken":"p-42"}}}"#;

/// An `initialize` request: more nesting and camelCase names (316 bytes).
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{},"extensions":{"io.modelcontextprotocol/enterprise-managed-authorization":{}}},"clientInfo":{"name":"chat-agent","title":"Chat agent","version":"1.4.2"}}}"#;

#[inline(never)]
fn run_loop(n: usize, mut op: impl FnMut() -> bool) -> usize {
    (0..n).filter(|_| op()).count()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: jsonrpc_cost <lenient|duplicates|strict> <call|initialize> <n>";
    let (mode, body, n) = match &args[1..] {
        [mode, body, n] => (
            mode.as_str(),
            body.as_str(),
            n.parse::<usize>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    let body = match body {
        "call" => CALL.as_bytes(),
        "initialize" => INITIALIZE.as_bytes(),
        _ => panic!("{usage}"),
    };
    let ok = match mode {
        "lenient" => run_loop(n, || {
            serde_json::from_slice::<Value>(black_box(body)).is_ok()
        }),
        "duplicates" => run_loop(n, || {
            parse_object(black_box(body), Segment::Payload).is_ok()
        }),
        "strict" => run_loop(n, || read_message(black_box(body)).is_ok()),
        _ => panic!("{usage}"),
    };
    assert_eq!(ok, n, "every read succeeds");
}
