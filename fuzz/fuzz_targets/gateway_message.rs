//! The gateway's reading of MCP traffic (threats G27 to G29, G33): its client-message reader
//! and its `tools/list` filter of SSE events, compiled from the gateway's own
//! `protocol::jsonrpc` and `protocol::sse` modules (they depend on nothing of the gateway
//! but each other, so the fuzz build stays free of its HTTP stack).
//!
//! - A body the reader accepts is forwarded byte for byte, and serde_json (last member wins)
//!   reads the same method, tool and arguments from it.
//! - Of the events cut from the input, a filtered one holds only tools the caller may see and
//!   no member a case-insensitive client would take for the list; one forwarded unchanged
//!   holds no tool list under any spelling that serde_json can read.
#![no_main]

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/gateway/src/protocol/jsonrpc.rs"]
mod jsonrpc;
#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/gateway/src/protocol/sse.rs"]
mod sse;
/// The two modules where they are in the gateway (`sse` names `crate::protocol::jsonrpc`).
mod protocol {
    pub(crate) use super::{jsonrpc, sse};
}

use bytes::Bytes;
use idjag_core::jsonrpc::fold_member_name;
use libfuzzer_sys::fuzz_target;
use protocol::jsonrpc::CheckedBody;
use protocol::sse::{EventSplitter, FilteredEvent, filter_tool_list_event, message_data};
use serde_json::Value;

/// The caller may see tools whose name has an even length.
fn visible(name: &str) -> bool {
    name.len() % 2 == 0
}

/// The members of `result` that a case-insensitive client takes for the tool list.
fn tool_lists(value: &Value) -> Vec<(&String, &Value)> {
    value
        .get("result")
        .and_then(Value::as_object)
        .map(|result| {
            result
                .iter()
                .filter(|(name, _)| fold_member_name(name) == "tools")
                .collect()
        })
        .unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(checked) = CheckedBody::read(Bytes::copy_from_slice(data)) {
        assert_eq!(&checked.bytes()[..], data);
        let message = checked.message();
        let value: Value = serde_json::from_slice(data).expect("an accepted message is JSON");
        assert_eq!(value.get("method").and_then(Value::as_str), message.method.as_deref());
        if message.tool.is_some() {
            assert_eq!(value["params"]["name"].as_str(), message.tool.as_deref());
            assert_eq!(value["params"].get("arguments"), message.arguments.as_ref());
        }
    }

    let mut splitter = EventSplitter::new(64 * 1024);
    splitter.push(data);
    splitter.end();
    while let Ok(Some(event)) = splitter.next_event() {
        match filter_tool_list_event(&event, &visible) {
            FilteredEvent::Filtered(out) => {
                let data = message_data(&out).expect("a filtered event is a message event");
                let value: Value = serde_json::from_str(&data).expect("filtered data is JSON");
                let lists = tool_lists(&value);
                for (name, list) in lists {
                    assert_eq!(name, "tools", "a lookalike list survived the filter");
                    for tool in list.as_array().expect("the filtered list is an array") {
                        assert!(tool["name"].as_str().is_some_and(visible));
                    }
                }
            }
            FilteredEvent::Unchanged => {
                if let Some(value) =
                    message_data(&event).and_then(|d| serde_json::from_str::<Value>(&d).ok())
                {
                    assert!(tool_lists(&value).is_empty(), "an unfiltered tool list went through");
                }
            }
            FilteredEvent::Refused => {}
        }
    }
});
