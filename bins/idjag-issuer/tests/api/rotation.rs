//! The signing keys' schedule persisted in the store: the first listed key signs, an appended
//! key is published at once and signs `lead_time_secs` later, and a restart (even `kill -9`)
//! keeps every key and time; a key removed from the list stays published until its retention
//! ends.

use serde_json::{Value, json};

use crate::support::*;

/// The ID-JAG's `kid` for a fresh exchange (each with its own `jti` in the ID token, so no
/// two requests are the same).
async fn signing_kid(i: &Server) -> String {
    let jti = format!("rotation-{}", unique());
    let reply = i
        .exchange(&i.id_token(0, "alice", CLIENT, json!({ "jti": jti })), &[])
        .await;
    let (header, _) = i.issued(&reply).await;
    header["kid"].as_str().unwrap().to_owned()
}

fn entry<'a>(schedule: &'a Value, kid: &str) -> &'a Value {
    schedule
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("{kid} in {schedule}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_schedule_rotates_and_survives_kill_9_and_a_shortened_list() {
    let dir = idjag_test_support::process::TestDir::new();
    let (keys, files) = write_keys(&dir, 2, 0);
    let (k0, k1) = (
        keys[0].kid().unwrap().as_str().to_owned(),
        keys[1].kid().unwrap().as_str().to_owned(),
    );
    let setup = Setup {
        keys: 2,
        lead_time_secs: 2,
        store: embedded_store(dir.path()),
        ..Setup::default()
    };
    let (port, admin_port) = (
        idjag_test_support::process::free_port(),
        idjag_test_support::process::free_port(),
    );
    let config = write_config(&dir, port, admin_port, &files, &setup);
    let mut i = Server::launch(dir, config, port, admin_port, keys).await;

    // Start: the first key signs, the second is published and waits lead_time_secs.
    let first = i.schedules().pop().unwrap();
    let (e0, e1) = (entry(&first, &k0).clone(), entry(&first, &k1).clone());
    assert_eq!(
        e1["signs_from"].as_i64().unwrap() - e1["published_at"].as_i64().unwrap(),
        2
    );
    assert!(e0["signs_from"].as_i64().unwrap() <= e1["published_at"].as_i64().unwrap());
    let mut kids = i.jwks_kids().await;
    kids.sort();
    let mut both = vec![k0.clone(), k1.clone()];
    both.sort();
    assert_eq!(kids, both);
    assert_eq!(signing_kid(&i).await, k0);

    // Once lead_time_secs have passed, the second key signs; the first stays published.
    tokio::time::sleep(std::time::Duration::from_millis(3_200)).await;
    assert_eq!(signing_kid(&i).await, k1);
    let mut kids = i.jwks_kids().await;
    kids.sort();
    assert_eq!(kids, both);

    // kill -9 and start again: the same keys with the same times, from the store.
    let process = &mut i.process;
    tokio::task::block_in_place(|| process.restart());
    i.sync_audit();
    let again = i.schedules().pop().unwrap();
    for kid in [&k0, &k1] {
        for field in ["published_at", "signs_from"] {
            assert_eq!(
                entry(&again, kid)[field],
                entry(&first, kid)[field],
                "{kid} {field}"
            );
        }
    }
    assert_eq!(signing_kid(&i).await, k1);

    // The first key's file leaves the list: it stays published (its retention has not
    // ended) and the second key keeps signing.
    let text = std::fs::read_to_string(&i.config).unwrap();
    let shortened = text.replacen("{ file = \"key-0.pem\", alg = \"ES256\" }, ", "", 1);
    assert_ne!(text, shortened);
    std::fs::write(&i.config, shortened).unwrap();
    std::fs::remove_file(i.dir.path().join("key-0.pem")).unwrap();
    let process = &mut i.process;
    tokio::task::block_in_place(|| process.restart());
    i.sync_audit();
    let mut kids = i.jwks_kids().await;
    kids.sort();
    assert_eq!(kids, both);
    assert_eq!(signing_kid(&i).await, k1);
}
