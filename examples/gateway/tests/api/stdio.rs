//! Stdio upstreams with real MCP servers from npm (`tests/stdio/package.json`, installed by
//! `npm ci` in `scripts/test.sh`): `@modelcontextprotocol/server-everything` and
//! `@modelcontextprotocol/server-filesystem`, run by the gateway as child processes behind
//! the same authentication, policy, filtering and audit as an HTTP upstream.
//!
//! Without the packages the tests fail under CI (`CI` set) and are skipped with a printed
//! reason elsewhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use idjag_gateway::observe::audit::Outcome;
use idjag_gateway::{Config, Plan};
use serde_json::{Value, json};

use crate::support::*;

/// Where `npm ci` puts the servers.
fn packages() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/stdio/node_modules/@modelcontextprotocol")
}

/// The entry point of `package`, or `None` (skip) when the packages are not installed and
/// this is not CI.
fn server(package: &str) -> Option<PathBuf> {
    let entry = packages().join(package).join("dist/index.js");
    if entry.is_file() {
        return Some(entry);
    }
    let reason = format!(
        "{} is missing: run `npm ci` in examples/gateway/tests/stdio (scripts/test.sh does)",
        entry.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    eprintln!("skipped: {reason}");
    None
}

/// A POST in `session` (when given).
async fn call(route: &str, token: &str, session: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = post(route, Some(token), body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = messages(response)
        .await
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    (status, body)
}

/// `initialize`: the session id the gateway handed out.
async fn open_session(route: &str, token: &str) -> String {
    let response = send(route, Some(token), &initialize()).await;
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = messages(response).await.remove(0);
    assert_eq!(body["id"], 1);
    assert!(body["result"]["serverInfo"]["name"].is_string(), "{body}");
    let (status, _) = call(
        route,
        token,
        Some(&session),
        &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);
    session
}

fn tool_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {body}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn text(body: &Value) -> String {
    body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text: {body}"))
        .to_owned()
}

/// The children of this test process whose command line holds `marker`.
fn children(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // state, ppid: a zombie has exited.
        if fields.get(1) != Some(&me.to_string().as_str()) || fields.first() == Some(&"Z") {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            pids.push(pid);
        }
    }
    pids.sort();
    pids
}

/// The environment of process `pid`, name → value.
fn environment(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let v = String::from_utf8_lossy(v);
            let (name, value) = v.split_once('=').unwrap_or((&v, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The value of the sample `name{labels}` in the gateway's metrics (0 when absent).
async fn metric(t: &Topology, name: &str, labels: &str) -> f64 {
    let body = client()
        .get(format!("{}/metrics", t.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name}{{{labels}}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Waits (at most 30 s) until `check` holds.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn everything_block(entry: &Path, marker: &str, extra: &str) -> String {
    format!(
        r#"
[[upstream]]
name = "everything"
credential = {{ mode = "header_template", headers = {{ "x-user" = "{{user}}" }} }}
[upstream.stdio]
program = "node"
args = ["{entry}", "stdio", "{marker}"]
env_allow = ["PATH"]
env = {{ MCP_MODE = "test" }}
credential_env = "MCP_USER"
{extra}
[[upstream.access]]
users = ["alice", "bob"]
allow = ["echo", "get-env", "get-sum"]
"#,
        entry = entry.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_processes_run_behind_policy_with_only_their_own_environment() {
    logs();
    let Some(entry) = server("server-everything") else {
        return;
    };
    let marker = random("stdio-everything");
    let extra = config_blocks(&everything_block(&entry, &marker, ""));
    let (mut t, audit) = start_with(UpstreamKind::Echo, move |c| {
        c.upstreams.extend(extra.upstreams.clone());
    })
    .await;
    let route = format!("{}/mcp/everything", t.gateway_url);
    let alice = t.id_token("alice").unwrap().secret().to_owned();
    let bob = t.id_token("bob").unwrap().secret().to_owned();
    let carol = t.id_token("carol").unwrap().secret().to_owned();

    // Nobody's process runs before a call; carol has no rule: not even initialize.
    assert!(children(&marker).is_empty());
    let (status, body) = call(&route, &carol, None, &initialize()).await;
    assert_eq!(
        (status, &body["error"]["data"]["reason"]),
        (200, &json!("no_access_to_upstream")),
        "{body}"
    );
    assert!(children(&marker).is_empty());

    let session = open_session(&route, &alice).await;
    let (status, body) = call(&route, &alice, Some(&session), &tools_list(2)).await;
    assert_eq!(status, 200);
    assert_eq!(tool_names(&body), ["echo", "get-env", "get-sum"]);
    let (status, body) = call(
        &route,
        &alice,
        Some(&session),
        &tools_call(3, "echo", json!({"message": "hi"})),
    )
    .await;
    assert_eq!((status, text(&body)), (200, "Echo: hi".to_owned()));
    assert_eq!(body["id"], 3);
    let (status, body) = call(
        &route,
        &alice,
        Some(&session),
        &tools_call(4, "get-tiny-image", json!({})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["error"]["data"]["reason"], "tool_not_allowed",
        "{body}"
    );
    // Another user's session id is not found.
    let (status, _) = call(&route, &bob, Some(&session), &tools_list(5)).await;
    assert_eq!(status, 404);

    let bob_session = open_session(&route, &bob).await;
    let env_of = |body: &Value| -> Value { serde_json::from_str(&text(body)).unwrap() };
    let (_, alice_env) = call(
        &route,
        &alice,
        Some(&session),
        &tools_call(6, "get-env", json!({})),
    )
    .await;
    let (_, bob_env) = call(
        &route,
        &bob,
        Some(&bob_session),
        &tools_call(7, "get-env", json!({})),
    )
    .await;
    assert_eq!(env_of(&alice_env)["MCP_USER"], "alice");
    assert_eq!(env_of(&bob_env)["MCP_USER"], "bob");

    // Two users, two processes, each with exactly its allowed environment.
    let pids = children(&marker);
    assert_eq!(pids.len(), 2, "{pids:?}");
    let mut users = BTreeSet::new();
    for pid in &pids {
        let env = environment(*pid);
        let names: BTreeSet<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["MCP_MODE", "MCP_USER", "PATH"]),
            "pid {pid}"
        );
        let all = format!("{env:?}");
        for secret in t.secrets() {
            assert!(
                !all.contains(secret.secret()),
                "a gateway secret reached pid {pid}"
            );
        }
        assert!(!all.contains(&alice) && !all.contains(&bob));
        users.insert(env.iter().find(|(n, _)| n == "MCP_USER").unwrap().1.clone());
    }
    assert_eq!(
        users,
        BTreeSet::from(["alice".to_owned(), "bob".to_owned()])
    );
    let live = "upstream=\"everything\"";
    assert_eq!(metric(&t, "idjag_gateway_stdio_processes", live).await, 2.0);
    assert_eq!(
        metric(&t, "idjag_gateway_stdio_starts_total", live).await,
        2.0
    );

    // The child's stderr is in the gateway's log, attributed to its upstream.
    let logs = captured_logs();
    assert!(
        logs.lines().any(|l| l.contains("stdio upstream stderr")
            && l.contains("upstream=\"everything\"")
            && l.contains("Starting default (STDIO) server")),
        "stderr not logged"
    );
    // Audited like any upstream: the allowed call and the refused one.
    let records = audit.records();
    let calls: Vec<_> = records
        .iter()
        .filter(|r| r.upstream.as_deref() == Some("everything") && r.tool.is_some())
        .map(|r| (r.tool.clone().unwrap(), r.decision, r.reason.clone()))
        .collect();
    assert_eq!(
        calls[0],
        ("echo".to_owned(), Outcome::Allow, "forwarded".to_owned())
    );
    assert_eq!(
        calls[1],
        (
            "get-tiny-image".to_owned(),
            Outcome::Deny,
            "tool_not_allowed".to_owned()
        )
    );

    // Shutdown ends every process.
    t.shutdown().await.unwrap();
    assert!(
        children(&marker).is_empty(),
        "processes outlived the gateway"
    );
    assert_eq!(
        t.gateway
            .stdio_stats("everything")
            .unwrap()
            .exits(idjag_gateway::upstream::stdio::ExitReason::Shutdown),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_never_reaches_the_filesystem_server_and_an_allowed_one_does() {
    logs();
    let Some(entry) = server("server-filesystem") else {
        return;
    };
    let dir = std::env::temp_dir().join(random("idjag-stdio-fs"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from the test\n").unwrap();
    let dir = dir.canonicalize().unwrap();
    let blocks = format!(
        r#"
[[upstream]]
name = "files"
credential = {{ mode = "none" }}
[upstream.stdio]
program = "node"
args = ["{entry}", "{dir}"]
env_allow = ["PATH"]
isolation = "shared"
[[upstream.access]]
everyone = true
allow = ["read_text_file", "list_directory"]
[[upstream.access]]
users = ["bob"]
allow = ["write_file"]
"#,
        entry = entry.display(),
        dir = dir.display(),
    );
    let extra = config_blocks(&blocks);
    let (t, _audit) = start_with(UpstreamKind::Echo, move |c| {
        c.upstreams.extend(extra.upstreams.clone());
    })
    .await;
    let route = format!("{}/mcp/files", t.gateway_url);
    let alice = t.id_token("alice").unwrap().secret().to_owned();
    let bob = t.id_token("bob").unwrap().secret().to_owned();
    let marker = dir.display().to_string();

    let session = open_session(&route, &alice).await;
    let (_, body) = call(&route, &alice, Some(&session), &tools_list(2)).await;
    assert_eq!(tool_names(&body), ["list_directory", "read_text_file"]);
    let path = dir.join("hello.txt").display().to_string();
    let (status, body) = call(
        &route,
        &alice,
        Some(&session),
        &tools_call(3, "read_text_file", json!({"path": path})),
    )
    .await;
    assert_eq!(
        (status, text(&body)),
        (200, "hello from the test\n".to_owned())
    );

    let target = dir.join("written.txt");
    let write = |id| {
        tools_call(
            id,
            "write_file",
            json!({"path": target.display().to_string(), "content": "x"}),
        )
    };
    let (status, body) = call(&route, &alice, Some(&session), &write(4)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["error"]["data"]["reason"], "tool_not_allowed",
        "{body}"
    );
    assert!(!target.exists(), "the refused write reached the server");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "the directory changed"
    );

    // One shared process: bob's session maps onto it, and his allowed write lands.
    let bob_session = open_session(&route, &bob).await;
    let (status, body) = call(&route, &bob, Some(&bob_session), &write(5)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Successfully wrote"),
        "{body}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
    assert_eq!(children(&marker).len(), 1);
    assert_eq!(t.gateway.stdio_stats("files").unwrap().started, 1);
    t.gateway.end_processes().await;
    assert!(children(&marker).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_processes_end_and_crashed_ones_restart_after_a_backoff_counted_in_metrics() {
    logs();
    let Some(entry) = server("server-everything") else {
        return;
    };
    // Two upstreams of the same server: one ends idle processes quickly, the other keeps
    // them (so a killed process is a crash, not an idle one).
    let marker = random("stdio-idle");
    let crash_marker = random("stdio-crash");
    let idle = everything_block(&entry, &marker, "idle_timeout = \"300ms\"")
        .replace("name = \"everything\"", "name = \"idler\"");
    let crashy = everything_block(
        &entry,
        &crash_marker,
        "restart_backoff = \"200ms\"\nmax_restart_backoff = \"1s\"",
    )
    .replace("name = \"everything\"", "name = \"crashy\"");
    let extra = config_blocks(&format!("{idle}{crashy}"));
    let (t, _audit) = start_with(UpstreamKind::Echo, move |c| {
        c.upstreams.extend(extra.upstreams.clone());
    })
    .await;
    let route = format!("{}/mcp/idler", t.gateway_url);
    let alice = t.id_token("alice").unwrap().secret().to_owned();
    let echo = |id| tools_call(id, "echo", json!({"message": "again"}));
    let label = "upstream=\"idler\"";

    let (status, body) = call(&route, &alice, None, &echo(1)).await;
    assert_eq!((status, text(&body)), (200, "Echo: again".to_owned()));
    assert_eq!(children(&marker).len(), 1);
    eventually("the idle process ends", || async {
        metric(
            &t,
            "idjag_gateway_stdio_exits_total",
            &format!("{label},reason=\"idle\""),
        )
        .await
            == 1.0
    })
    .await;
    assert_eq!(
        metric(&t, "idjag_gateway_stdio_processes", label).await,
        0.0
    );
    eventually("the idle process is gone", || async {
        children(&marker).is_empty()
    })
    .await;

    // Started again on the next call.
    let (status, _) = call(&route, &alice, None, &echo(2)).await;
    assert_eq!(status, 200);
    assert_eq!(children(&marker).len(), 1);
    assert_eq!(
        metric(&t, "idjag_gateway_stdio_starts_total", label).await,
        2.0
    );

    let route = format!("{}/mcp/crashy", t.gateway_url);
    let label = "upstream=\"crashy\"";
    let (status, _) = call(&route, &alice, None, &echo(2)).await;
    assert_eq!(status, 200);
    let pids = children(&crash_marker);
    assert_eq!(pids.len(), 1);
    // Killed from outside: a crash, counted; the next calls wait out the backoff (503
    // with Retry-After), then a new process answers.
    let killed = std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually("the crash is noticed", || async {
        metric(
            &t,
            "idjag_gateway_stdio_exits_total",
            &format!("{label},reason=\"crash\""),
        )
        .await
            == 1.0
    })
    .await;
    let mut id = 3;
    loop {
        let response = post(&route, Some(&alice), &echo(id)).send().await.unwrap();
        id += 1;
        if response.status() == 200 {
            assert_eq!(text(&messages(response).await[0]), "Echo: again");
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        let body = messages(response).await.remove(0);
        assert_eq!(
            body["error"]["data"]["reason"], "stdio_restarting",
            "{body}"
        );
        assert!(id < 1000, "never restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metric(&t, "idjag_gateway_stdio_restarts_total", label).await,
        1.0
    );
    assert_eq!(
        metric(&t, "idjag_gateway_stdio_starts_total", label).await,
        2.0
    );
    assert_eq!(
        metric(
            &t,
            "idjag_gateway_stdio_exits_total",
            &format!("{label},reason=\"idle\"")
        )
        .await,
        0.0
    );
    let now = children(&crash_marker);
    assert_eq!(now.len(), 1);
    assert_ne!(now, pids);
    t.gateway.end_processes().await;
    assert!(children(&crash_marker).is_empty() && children(&marker).is_empty());
}

/// Plans `blocks` (one stdio upstream) after a minimal configuration.
fn plan(blocks: &str) -> Result<Plan, idjag_gateway::ConfigError> {
    let config = Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"\nplain_http_reason = \"tests\"\npublic_url = \"http://127.0.0.1:1\"\n\
         [idp]\nissuer = \"http://127.0.0.1:1\"\nclient = {{ id = \"x\", secret_env = \"IDP_SECRET\" }}\n{blocks}"
    ))
    .expect("valid TOML");
    Plan::with_environment(&config, &Vars)
}

struct Vars;

impl idjag_gateway::plan::Environment for Vars {
    fn var(&self, name: &str) -> Option<String> {
        Some(format!("value-of-{name}"))
    }

    fn read_file(&self, _: &std::path::Path) -> std::io::Result<String> {
        Ok("file-secret".to_owned())
    }
}

#[test]
fn stdio_configuration_errors_name_their_key() {
    let upstream = |credential: &str, stdio: &str| {
        format!(
            "[[upstream]]\nname = \"s\"\ncredential = {credential}\n[upstream.stdio]\n{stdio}\n"
        )
    };
    let none = "{ mode = \"none\" }";
    let cases = [
        (
            "[[upstream]]\nname = \"s\"\nurl = \"https://x.example/mcp\"\ncredential = { mode = \"none\" }\n[upstream.stdio]\nprogram = \"/bin/true\"\n".to_owned(),
            "upstream[s]: set url or [upstream.stdio], not both",
        ),
        (
            "[[upstream]]\nname = \"s\"\ncredential = { mode = \"none\" }\n".to_owned(),
            "upstream[s]: set url or [upstream.stdio]",
        ),
        (
            "[[upstream]]\nname = \"s\"\nurl = \"https://x.example/mcp\"\ncredential = { mode = \"none\" }\n".to_owned(),
            "upstream[s].credential.mode: none is only for [upstream.stdio] upstreams",
        ),
        (
            upstream(none, "program = \"node\""),
            "upstream[s].stdio.program: a bare name is looked up in the child's PATH: give an absolute path, or allow PATH (env_allow) or set it (env)",
        ),
        (
            upstream(none, "program = \"/bin/true\"\nenv_allow = [\"IDP_SECRET\"]"),
            "upstream[s].stdio.env_allow: IDP_SECRET holds a secret of the gateway's configuration",
        ),
        (
            upstream("{ mode = \"static\", secret_env = \"KEY\" }", "program = \"/bin/true\""),
            "upstream[s].stdio.credential_env: required: where the child gets the credential of mode static",
        ),
        (
            upstream(
                "{ mode = \"passthrough\" }",
                "program = \"/bin/true\"\ncredential_env = \"TOKEN\"\nisolation = \"shared\"",
            ),
            "upstream[s].stdio.isolation: shared: one process cannot hold the per-user credentials of mode passthrough",
        ),
        (
            upstream(none, "program = \"/bin/true\"\nenv = { \"A=B\" = \"1\" }"),
            "upstream[s].stdio.env: \"A=B\" is not a variable name",
        ),
        (
            upstream(none, "program = \"/bin/true\"\nmax_processes = 0"),
            "upstream[s].stdio.max_processes: must be positive",
        ),
    ];
    for (blocks, expected) in cases {
        let error = plan(&blocks).expect_err(expected);
        assert_eq!(error.to_string(), expected);
    }
    let ok = plan(&upstream(
        "{ mode = \"static\", secret_env = \"KEY\" }",
        "program = \"node\"\nenv_allow = [\"PATH\"]\ncredential_env = \"API_KEY\"\nisolation = \"shared\"",
    ))
    .unwrap();
    let rendered = ok.render();
    assert!(
        !rendered.contains("value-of-"),
        "an environment value reached the plan"
    );
}
