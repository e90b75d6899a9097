//! The strict JSON-RPC reader against reference parsers (threats G27 to G30).
//!
//! The reference parsers (`idjag_test_support::json_reference`) differ where real JSON parsers
//! differ: which of two same-named members counts, whether names match case-insensitively
//! (Go's `encoding/json` v1 binding a struct field), and whether a NUL ends a string (C
//! parsers). For every generated body, [`read_message`] either refuses it, or every reference
//! parser reads the method, the tool and the arguments that the reader returned.

use idjag_core::jsonrpc::{MessageError, read_message};
use idjag_test_support::json_reference::{Decided, POLICIES, body, strict};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Threat G27: what the strict reader accepts, first-wins, last-wins, case-insensitive and
    /// NUL-truncating parsers all read as the same method, tool and arguments, which are the
    /// ones the reader returns.
    #[test]
    fn g27_reference_parsers_agree_on_every_accepted_message(body in body()) {
        if let Ok(decided) = strict(&body) {
            for policy in POLICIES {
                let reading = policy.read(&body);
                prop_assert_eq!(reading.as_ref(), Some(&decided), "{:?} on {}", policy, body);
            }
        }
    }

    /// The reader never panics, whatever the bytes.
    #[test]
    fn g30_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_message(&bytes);
    }
}

/// The reference parsers do disagree on the attacks the reader refuses: the property above is
/// not vacuous.
#[test]
fn g27_reference_parsers_disagree_on_every_attack_the_reader_refuses() {
    let call = |params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#)
    };
    let attacks = [
        (call(r#"{"name":"read_file","name":"delete_repo"}"#), MessageError::DuplicateMember),
        (call(r#"{"name":"read_file","Name":"delete_repo"}"#), MessageError::CollidingMembers),
        (call(r#"{"name":"read_file","NAME":"delete_repo"}"#), MessageError::CollidingMembers),
        (call(r#"{"name":"read_file","arguments":{},"ARGUMENTS":{"all":true}}"#), MessageError::CollidingMembers),
        (call("{\"name\":\"read_file\",\"argument\u{17f}\":{\"all\":true}}"), MessageError::LookalikeMember { imitates: "arguments" }),
        (call(r#"{"name\u0000":"delete_repo","name":"read_file"}"#), MessageError::NulInMemberName),
        (call(r#"{"name":"read_file\u0000delete_repo"}"#), MessageError::InvalidToolName),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"delete_repo"}}"#.to_owned(),
            MessageError::CollidingMembers,
        ),
        (call(r#"{"name":"read_file","arguments":{"path":"/tmp","path":"/etc"}}"#), MessageError::DuplicateMember),
    ];
    for (body, refusal) in attacks {
        assert_eq!(strict(&body), Err(refusal), "{body}");
        let readings: Vec<Option<Decided>> = POLICIES.iter().map(|p| p.read(&body)).collect();
        assert!(
            readings.iter().any(|r| r != &readings[0]),
            "the reference parsers agree on {body}: {readings:?}"
        );
    }
}

/// The generator explores both sides: bodies the reader accepts (where the property above has
/// something to compare) and bodies on which the reference parsers disagree (all refused).
#[test]
fn g27_generated_bodies_cover_accepted_messages_and_real_disagreements() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut accepted, mut disagreements) = (0, 0);
    for _ in 0..2000 {
        let body = body().new_tree(&mut runner).unwrap().current();
        let readings: Vec<Option<Decided>> = POLICIES.iter().map(|p| p.read(&body)).collect();
        match strict(&body) {
            Ok(_) => accepted += 1,
            Err(_) if readings.iter().any(|r| r != &readings[0]) => disagreements += 1,
            Err(_) => {}
        }
    }
    assert!(
        accepted >= 200,
        "only {accepted} of 2000 generated bodies accepted"
    );
    assert!(
        disagreements >= 200,
        "only {disagreements} of 2000 with a disagreement"
    );
}
