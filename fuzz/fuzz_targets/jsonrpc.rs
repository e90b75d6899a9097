//! The strict JSON-RPC reader (threats G27 to G30): never panics, and whatever it accepts,
//! serde_json (last member wins) reads as the same method, tool and arguments, and the rebuilt
//! message reads back the same.
#![no_main]

use idjag_core::jsonrpc::read_message;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = read_message(data) else {
        return;
    };
    let value: Value = serde_json::from_slice(data).expect("an accepted message is JSON");
    assert_eq!(value.get("method").and_then(Value::as_str), message.method());
    if message.is_tool_call() {
        assert_eq!(value["params"]["name"].as_str(), message.tool());
        assert_eq!(
            value["params"].get("arguments").and_then(Value::as_object),
            message.arguments()
        );
    }
    let rebuilt = serde_json::to_vec(&message.clone().into_value()).expect("serializable");
    assert_eq!(read_message(&rebuilt).as_ref(), Ok(&message));
});
