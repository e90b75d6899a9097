//! The binary: `demo` exits 0, `check-config` reports, `serve` answers and stops on SIGTERM.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_idjag-gateway");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml");

/// The binary, run from a fresh directory: the example has no `[store]`, so the gateway keeps
/// its state in `idjag-gateway.redb` in its working directory.
fn gateway() -> Command {
    let dir = std::env::temp_dir().join(format!(
        "idjag-gateway-cli-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(BIN);
    command.current_dir(dir);
    command
}

static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[test]
fn demo_runs_every_step_and_exits_zero() {
    let started = Instant::now();
    let output = Command::new(BIN).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("[15] the MCP server never saw a user's IdP token"),
        "{stdout}"
    );
    assert!(stdout.contains("Done in"));
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn check_config_reads_the_secrets_and_names_a_missing_one() {
    let ok = gateway()
        .args(["check-config", "--config", EXAMPLE])
        .env("IDJAG_GATEWAY_IDP_SECRET", "s1")
        .env("IDJAG_GATEWAY_NOTES_SECRET", "s2")
        .env("IDJAG_GATEWAY_WIKI_KEY", "s3")
        .env("IDJAG_GATEWAY_GITHUB_SECRET", "s5")
        .env("IDJAG_GATEWAY_ADMIN_TOKEN", "s4")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).ends_with("gateway.toml: OK\n"));

    let missing = gateway()
        .args(["check-config", "--config", EXAMPLE])
        .env_remove("IDJAG_GATEWAY_IDP_SECRET")
        .env("IDJAG_GATEWAY_NOTES_SECRET", "s2")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "error: idp.client.secret_env: environment variable IDJAG_GATEWAY_IDP_SECRET is not set\n"
    );

    // A bridged upstream's key, and the admin token, are checked the same way.
    for (unset, message) in [
        (
            "IDJAG_GATEWAY_WIKI_KEY",
            "error: upstream[wiki].credential.secret_env: environment variable IDJAG_GATEWAY_WIKI_KEY is not set\n",
        ),
        (
            "IDJAG_GATEWAY_ADMIN_TOKEN",
            "error: admin.token_env: environment variable IDJAG_GATEWAY_ADMIN_TOKEN is not set\n",
        ),
    ] {
        for command in ["check-config", "serve"] {
            let missing = gateway()
                .args([command, "--config", EXAMPLE])
                .env("IDJAG_GATEWAY_IDP_SECRET", "s1")
                .env("IDJAG_GATEWAY_NOTES_SECRET", "s2")
                .env("IDJAG_GATEWAY_WIKI_KEY", "s3")
                .env("IDJAG_GATEWAY_GITHUB_SECRET", "s5")
                .env("IDJAG_GATEWAY_ADMIN_TOKEN", "s4")
                .env_remove(unset)
                .output()
                .unwrap();
            assert_eq!(missing.status.code(), Some(1), "{command} {unset}");
            assert!(
                String::from_utf8_lossy(&missing.stderr).ends_with(message),
                "{command}: {}",
                String::from_utf8_lossy(&missing.stderr)
            );
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

#[cfg(unix)]
#[test]
fn serve_answers_health_checks_and_stops_cleanly_on_sigterm() {
    let port = free_port();
    let admin_port = free_port();
    let text = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin_port}"))
        // Closed loopback ports instead of the example's hosts: no traffic leaves the machine.
        .replace("https://idp.example.com", "http://127.0.0.1:1")
        .replace("https://auth.notes.example.com", "http://127.0.0.1:2")
        .replace("https://notes.example.com", "http://127.0.0.1:3")
        .replace("https://wiki.example.com", "http://127.0.0.1:4");
    let path = std::env::temp_dir().join(format!("idjag-gateway-cli-{port}.toml"));
    std::fs::write(&path, text).unwrap();
    let mut child = gateway()
        .args(["serve", "--config"])
        .arg(&path)
        .env("IDJAG_GATEWAY_IDP_SECRET", "cli-secret-one")
        .env("IDJAG_GATEWAY_NOTES_SECRET", "cli-secret-two")
        .env("IDJAG_GATEWAY_WIKI_KEY", "cli-secret-three")
        .env("IDJAG_GATEWAY_GITHUB_SECRET", "cli-secret-five")
        .env("IDJAG_GATEWAY_ADMIN_TOKEN", "cli-secret-four")
        .env("IDJAG_GATEWAY__TELEMETRY__LOG_FILTER", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut health = None;
    while started.elapsed() < Duration::from_secs(20) && health.is_none() {
        health = get(admin_port, "/healthz");
        std::thread::sleep(Duration::from_millis(50));
    }
    let health = health.expect("the gateway answers");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    // The IdP is unreachable: not ready.
    let ready = get(admin_port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.ends_with("not ready: gateway\n"), "{ready}");
    // The public listener serves none of the admin paths.
    for path in ["/healthz", "/readyz", "/metrics", "/admin/approvals"] {
        let answer = get(port, path).unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
    }

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("idjag-gateway serving"), "{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(!logs.contains("cli-secret-"), "{logs}");
    let _ = std::fs::remove_file(path);
}

/// The example with its hosts on closed loopback ports and `store` appended.
fn example_with_store(store: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace("https://idp.example.com", "http://127.0.0.1:1")
        .replace("https://auth.notes.example.com", "http://127.0.0.1:2")
        .replace("https://notes.example.com", "http://127.0.0.1:3")
        .replace("https://wiki.example.com", "http://127.0.0.1:4");
    let path = std::env::temp_dir().join(format!(
        "idjag-gateway-store-{}-{}.toml",
        std::process::id(),
        SCRATCH.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::write(&path, format!("{text}\n{store}")).unwrap();
    path
}

fn check(config: &std::path::Path) -> std::process::Output {
    gateway()
        .args(["check-config", "--config"])
        .arg(config)
        .env("IDJAG_GATEWAY_IDP_SECRET", "s1")
        .env("IDJAG_GATEWAY_NOTES_SECRET", "s2")
        .env("IDJAG_GATEWAY_WIKI_KEY", "s3")
        .env("IDJAG_GATEWAY_GITHUB_SECRET", "s5")
        .env("IDJAG_GATEWAY_ADMIN_TOKEN", "s4")
        .output()
        .unwrap()
}

#[test]
fn check_config_opens_the_store_and_pings_it() {
    let mut redis = idjag_test_support::redis::RedisServer::start();
    let config = example_with_store(&format!(
        "[store]\nbackend = {{ kind = \"redis\", url = \"{}\", connect_timeout_ms = 300, command_timeout_ms = 300 }}\n",
        redis.url()
    ));
    let ok = check(&config);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).ends_with(": OK\n"));
    redis.kill();
    let down = check(&config);
    assert_eq!(down.status.code(), Some(1));
    // After the warnings the store's client logged.
    assert!(
        String::from_utf8_lossy(&down.stderr)
            .ends_with("\nerror: store: the store is unavailable\n"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );

    // The embedded file of a running gateway is locked: a warning, not an error.
    let dir = std::env::temp_dir().join(format!("idjag-gateway-held-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.redb");
    let config = example_with_store(&format!(
        "[store]\nbackend = {{ kind = \"embedded\", path = \"{}\" }}\n",
        file.display()
    ));
    let fresh = check(&config);
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    let held = idjag_store::EmbeddedStore::open(&file, idjag_core::SystemClock::shared()).unwrap();
    let busy = check(&config);
    assert!(
        busy.status.success(),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    assert!(
        String::from_utf8_lossy(&busy.stdout).contains(
            "warning: store.backend.path: open in another process (a running gateway?): not checked\n"
        ),
        "{}",
        String::from_utf8_lossy(&busy.stdout)
    );
    drop(held);
    // A store setting is checked like any other: no credentials in a Redis URL.
    let config = example_with_store(
        "[store]\nbackend = { kind = \"redis\", url = \"redis://user:pw@127.0.0.1:6379/0\" }\n",
    );
    let bad = check(&config);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "error: store.backend.url: credentials go in username and password_env or password_file, not in the URL\n"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn g37_g38_check_config_refuses_a_bad_cap_naming_its_key() {
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    for (from, to, message) in [
        (
            "sessions = 16\n",
            "sessions = 0\n",
            "error: limits.user.sessions: must be positive\n",
        ),
        (
            "pending_approvals = 200\n",
            "pending_approvals = 100001\n",
            "error: limits.agent.pending_approvals: must be at most 100000\n",
        ),
    ] {
        assert!(example.contains(from), "{from}");
        let path = std::env::temp_dir().join(format!(
            "idjag-gateway-caps-{}-{}.toml",
            std::process::id(),
            SCRATCH.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::write(&path, example.replacen(from, to, 1)).unwrap();
        let refused = check(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(refused.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&refused.stderr), message);
    }
}
