//! Shared test helpers: captured logs, temporary directories, certificates, a chunked stream.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Every log line of this test binary, as JSON objects.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<Captured> = OnceLock::new();

/// Installs the capturing subscriber (once) and the SIGHUP handler (so a SIGHUP sent by a
/// test never kills the process before some listener is registered).
pub fn init() {
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .init();
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut hangup =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
                SIGHUP_READY.get_or_init(|| ());
                while hangup.recv().await.is_some() {}
            });
        });
        while SIGHUP_READY.get().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        captured
    });
}

static SIGHUP_READY: OnceLock<()> = OnceLock::new();

/// The captured log lines whose fields all match `fields`.
pub fn logs_matching(fields: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let bytes = LOGS.get().expect("support::init").0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| fields.iter().all(|(k, v)| line[*k].as_str() == Some(*v)))
        .collect()
}

/// Every captured log line, as text.
pub fn all_logs() -> String {
    String::from_utf8_lossy(&LOGS.get().expect("support::init").0.lock().unwrap()).into_owned()
}

/// Sends SIGHUP to this process.
pub fn sighup() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A fresh directory under the target's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("idjag-ops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `check` every 20 ms for up to 10 s.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A self-signed certificate for `localhost`: (cert PEM, key PEM, cert DER).
pub fn certificate() -> (String, String, Vec<u8>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (
        generated.cert.pem(),
        generated.signing_key.serialize_pem(),
        generated.cert.der().to_vec(),
    )
}

/// A streaming response body fed by the returned sender (an SSE-like response held open).
pub fn stream_body() -> (mpsc::Sender<&'static str>, Body) {
    let (tx, rx) = mpsc::channel::<&'static str>(8);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| {
            (
                Ok::<_, std::convert::Infallible>(Bytes::from_static(chunk.as_bytes())),
                rx,
            )
        })
    });
    (tx, Body::from_stream(stream))
}
