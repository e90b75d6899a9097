//! `idjag-gateway demo --serve` as a process: the info file once the stack is ready, the
//! gateway's metadata, an ID token of the file traded at the IdP, a route's RFC 9728
//! challenge, a gateway ID token of the file accepted by a route, their audit lines, then
//! SIGTERM and a clean exit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_idjag-gateway");

struct Served {
    child: Child,
    dir: PathBuf,
}

impl Served {
    fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let stdout = std::fs::File::create(dir.join("stdout.txt")).unwrap();
        let child = Command::new(BIN)
            .args(["demo", "--serve", "--port", "0", "--info"])
            .arg(dir.join("info.json"))
            .arg("--audit-log")
            .arg(dir.join("audit.jsonl"))
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self {
            child,
            dir: dir.to_owned(),
        }
    }

    /// The info document, once written (the stack is ready then).
    fn info(&mut self) -> Value {
        let path = self.dir.join("info.json");
        let started = Instant::now();
        while !path.exists() {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the stack exited: {}",
                self.stdout()
            );
            assert!(started.elapsed() < Duration::from_secs(60), "no info file");
            std::thread::sleep(Duration::from_millis(50));
        }
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout.txt")).unwrap_or_default()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {value}"))
        .to_owned()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_stack_writes_its_facts_answers_over_http_and_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("idjag-demo-serve-{}", std::process::id()));
    let mut served = Served::start(&dir);
    let info = served.info();
    let http = reqwest::Client::new();

    assert_eq!(info["version"], 1);
    let gateway = text(&info, "/gateway/url");
    assert!(gateway.starts_with("http://127.0.0.1:"), "{gateway}");
    let users: Vec<String> = info["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| text(u, "/name"))
        .collect();
    assert_eq!(users, ["alice", "bob", "carol"]);
    let routes: Vec<(String, String, String)> = info["gateway"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (text(r, "/name"), text(r, "/kind"), text(r, "/url")))
        .collect();
    assert_eq!(
        routes,
        [
            (
                "notes".into(),
                "id_jag".into(),
                format!("{gateway}/mcp/notes")
            ),
            (
                "wiki".into(),
                "bridged".into(),
                format!("{gateway}/mcp/wiki")
            ),
        ]
    );
    let gw_as = &info["gateway"]["authorization_server"];
    assert_eq!(gw_as["dynamic_registration"], true);
    assert_eq!(gw_as["client_id_metadata_documents"], true);
    assert_eq!(gw_as["metadata_documents_from_loopback"], true);

    // The gateway's RFC 8414 metadata, where the file says.
    let metadata: Value = http
        .get(text(gw_as, "/metadata_url"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], gateway.as_str());
    assert_eq!(metadata["token_endpoint"], text(gw_as, "/token_endpoint"));
    assert_eq!(
        metadata["registration_endpoint"],
        text(gw_as, "/registration_endpoint")
    );
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    // alice's ID token from the file trades at the IdP for an ID-JAG for the gateway.
    let wiki = format!("{gateway}/mcp/wiki");
    let id_token = text(&info, "/users/0/id_token");
    let exchanged = http
        .post(text(&info, "/idp/token_endpoint"))
        .basic_auth(
            text(&info, "/ema_client/client_id"),
            Some(text(&info, "/ema_client/client_secret")),
        )
        .form(&[
            ("grant_type", idjag_core::wire::GRANT_TYPE_TOKEN_EXCHANGE),
            ("requested_token_type", idjag_core::wire::TOKEN_TYPE_ID_JAG),
            ("audience", gateway.as_str()),
            ("resource", wiki.as_str()),
            ("subject_token", id_token.as_str()),
            ("subject_token_type", idjag_core::wire::TOKEN_TYPE_ID_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(exchanged.status(), 200);
    let exchanged: Value = exchanged.json().await.unwrap();
    assert_eq!(
        exchanged["issued_token_type"],
        idjag_core::wire::TOKEN_TYPE_ID_JAG
    );
    assert_eq!(exchanged["token_type"], "N_A");
    let claims =
        idjag_gateway::demo::claims_for_display(&text(&exchanged, "/access_token")).expect("a JWT");
    assert_eq!(claims["aud"], gateway.as_str());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "ema-agent");
    assert_eq!(claims["resource"], wiki.as_str());

    // A route without a token: 401 naming the route's RFC 9728 metadata, which names the
    // gateway as its authorization server.
    let refused = http
        .post(&wiki)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    let resource_metadata = text(&info, "/gateway/routes/1/resource_metadata");
    assert_eq!(
        resource_metadata,
        format!("{gateway}/.well-known/oauth-protected-resource/mcp/wiki")
    );
    assert!(
        challenge.starts_with(&format!("Bearer resource_metadata=\"{resource_metadata}\"")),
        "{challenge}"
    );
    let prm: Value = http
        .get(&resource_metadata)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], wiki.as_str());
    assert_eq!(prm["authorization_servers"], serde_json::json!([gateway]));

    // bob's ID token for the gateway, sent to the bridged route as is: the wiki answers.
    let answer = http
        .post(&wiki)
        .bearer_auth(text(&info, "/users/1/gateway_id_token"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"query":"gateway"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "2 pages match \"gateway\""
    );

    let status = served.terminate();
    assert!(status.success(), "{status}");
    let stdout = served.stdout();
    for needle in [
        "allow_loopback",
        "pre-registered client   ema-agent",
        "pre-registered client   demo-mcp-client  public",
        "ID-JAG upstream",
        "bridged upstream, credential static",
        "Ready.",
        "Stopped.",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing in:\n{stdout}");
    }
    assert!(!dir.join("info.json").exists(), "the info file is removed");
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The metadata reads and the refused call, each once: (path or upstream, reason).
    let reasons: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            let place = l["path"].as_str().or(l["upstream"].as_str());
            (
                place.unwrap_or_default(),
                l["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("/.well-known/oauth-authorization-server", "served"),
            ("wiki", "no_token"),
            ("/.well-known/oauth-protected-resource/mcp/wiki", "served"),
            ("wiki", "forwarded"),
        ]
    );
    for line in audit.lines() {
        assert!(
            !line.contains("eyJ") && !line.contains("demo-secret-"),
            "{line}"
        );
    }
}
