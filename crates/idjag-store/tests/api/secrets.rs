//! Nothing secret reaches the store in clear: the raw embedded file and the raw Redis data
//! (every value and the append-only file) hold no token, code, jti, session id or key bytes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use idjag_core::crypto::AeadAlgorithm;
use idjag_core::jose::base64url;
use idjag_core::server::ReplayKey;
use idjag_core::{Algorithm, SecretBytes, TestClock};
use idjag_store::*;
use serde_json::json;

use crate::support::{RedisServer, clock_ms, real_time_clock, redis_store};

/// Writes one of everything through the facades; returns the secrets used.
async fn write_everything(store: Arc<dyn Store>, clock: &TestClock) -> Vec<Vec<u8>> {
    let now = clock_ms(clock) / 1000;
    let sealer = Sealer::new(AeadAlgorithm::Aes256Gcm, &[0x11; 32]).unwrap();
    let jti = "JTI-SECRET-0f1e2d3c4b5a";
    let code = "CODE-SECRET-a1b2c3d4e5f6";
    let refresh = "REFRESH-SECRET-99887766";
    let next_refresh = "REFRESH-SECRET-NEXT-5544";
    let session = "SESSION-SECRET-7a7a7a7a";
    let idp_token = "IDP-TOKEN-SECRET-eyJhbGciOi";
    let handle = "HANDLE-SECRET-31337";
    let private_key = SigningKeyBytes::generate();

    SingleUseMarkers::new(store.clone(), MarkerKind::IdJag, 10)
        .record(
            ReplayKey::new("https://idp.example", jti),
            "client-1",
            now + 300,
        )
        .await
        .unwrap();
    AuthCodes::new(store.clone())
        .issue(code, &json!({"client_id": "grant-client"}), now + 60)
        .await
        .unwrap();
    let families = RefreshFamilies::new(store.clone());
    families
        .start(refresh, &json!({"sub": "alice"}), now + 3600)
        .await
        .unwrap();
    families
        .rotate::<serde_json::Value>(refresh, next_refresh)
        .await
        .unwrap();
    SessionBindings::new(store.clone(), Duration::from_secs(600), clock.shared())
        .bind("notes", session.as_bytes(), [1; 32])
        .await
        .unwrap();
    SealedTokens::new(store.clone(), sealer.clone())
        .put(handle, idp_token.as_bytes(), Some(now + 600))
        .await
        .unwrap();
    KeyScheduleStore::new(store.clone(), sealer)
        .save(
            None,
            &[ScheduledKey::new(
                "kid-1",
                Algorithm::Es256,
                SecretBytes::new(private_key.0.clone()),
                now,
                now,
            )],
        )
        .await
        .unwrap();
    let mut secrets: Vec<Vec<u8>> = [jti, code, refresh, next_refresh, session, idp_token, handle]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    // The private key: raw, its base64url, and its last 16 bytes (the scalar's tail).
    secrets.push(private_key.0.clone());
    secrets.push(base64url::encode(&private_key.0).into_bytes());
    secrets.push(private_key.0[private_key.0.len() - 16..].to_vec());
    secrets.push(b"client-1".to_vec()); // holders are stored as digests
    secrets
}

struct SigningKeyBytes(Vec<u8>);

impl SigningKeyBytes {
    fn generate() -> Self {
        match idjag_core::crypto::default_backend()
            .generate(Algorithm::Es256)
            .unwrap()
        {
            idjag_core::crypto::PrivateKeyMaterial::Pkcs8(der) => Self(der.secret().to_vec()),
            other => panic!("{other:?}"),
        }
    }
}

fn assert_absent(haystack: &[u8], secrets: &[Vec<u8>], what: &str) {
    assert!(haystack.len() > 100, "{what} is suspiciously small");
    for secret in secrets {
        assert!(
            !haystack
                .windows(secret.len())
                .any(|w| w == secret.as_slice()),
            "{what} holds {:?} in clear",
            String::from_utf8_lossy(&secret[..secret.len().min(12)])
        );
    }
}

fn read_tree(dir: &Path, out: &mut Vec<u8>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(&path, out);
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_file_holds_no_secret_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let clock = TestClock::at_unix(1_700_000_000);
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path, clock.shared()).unwrap());
    let secrets = write_everything(store.clone(), &clock).await;
    drop(store);
    let raw = std::fs::read(&path).unwrap();
    // The file does hold the data: the readable grant is there.
    assert!(raw.windows(5).any(|w| w == b"alice"));
    assert_absent(&raw, &secrets, "the redb file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_no_secret_in_clear() {
    let server = RedisServer::start();
    let clock = real_time_clock();
    let store: Arc<dyn Store> = Arc::new(redis_store(&server, &clock));
    let secrets = write_everything(store, &clock).await;
    // Every key and value, read raw.
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(keys.len() >= 8, "{}", keys.len());
    let mut dump = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        dump.extend_from_slice(&key);
        if kind == "string" {
            let v: Vec<u8> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap();
            dump.extend(v);
        } else {
            let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut con)
                .await
                .unwrap();
            dump.extend(members.concat());
        }
    }
    assert_absent(&dump, &secrets, "the Redis keys and values");
    // And the append-only file, which also holds every command sent.
    let mut aof = Vec::new();
    read_tree(server.dir(), &mut aof);
    assert_absent(&aof, &secrets, "the append-only file");
}
