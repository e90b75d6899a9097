//! The one-command demo, run in process.

use idjag_gateway::demo::{DemoOptions, run};
use serde_json::Value;

const FIELDS: [&str; 20] = [
    "time",
    "request_id",
    "http_method",
    "client_address",
    "trace_id",
    "path",
    "upstream",
    "user",
    "issuer",
    "teams",
    "agent",
    "method",
    "tool",
    "arguments",
    "decision",
    "reason",
    "status",
    "upstream_status",
    "latency_ms",
    "approval_id",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_demo_run_succeeds_and_its_audit_log_has_one_line_per_mcp_request_with_every_field_and_no_secret()
 {
    let dir = std::env::temp_dir().join(format!("idjag-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let mut out = Vec::new();
    let mut options = DemoOptions::default();
    options.audit_log = Some(path.clone());
    let summary = run(options, &mut out).await.expect("the demo succeeds");
    let printed = String::from_utf8(out).unwrap();

    // Each step of the flow is shown.
    for needle in [
        "token exchange (RFC 8693) -> HTTP 200: ID-JAG",
        "JWT-bearer grant (RFC 7523) -> HTTP 200: access token",
        "MCP server   received -> HTTP 200",
        "audit        {",
        "tool_denied",
        "tool_not_allowed",
        "access_denied",
        "WWW-Authenticate: Bearer resource_metadata=",
        "the gateway sends its API key",
        "no-credential-hunting",
        "approval_held",
        "/approve -> HTTP 200",
        "Done in",
    ] {
        assert!(
            printed.contains(needle),
            "missing {needle:?} in:\n{printed}"
        );
    }
    assert!(summary.elapsed.as_secs() < 30);
    // alice and bob were exchanged once each, carol was refused by the IdP; alice again
    // after her OAuth sign-in at the gateway (her sign-in's ID token, not the agent's).
    assert_eq!((summary.token_exchanges, summary.redemptions), (4, 3));

    let text = std::fs::read_to_string(&path).unwrap();
    // The gateway's authorization server writes its own lines (oauth/...).
    let (oauth, lines): (Vec<&str>, Vec<&str>) = text
        .lines()
        .partition(|l| l.contains("\"method\":\"oauth/"));
    let oauth: Vec<(String, String)> = oauth
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        oauth,
        OAUTH_LINES.map(|(m, r)| (m.to_owned(), r.to_owned()))
    );
    for line in text.lines() {
        assert!(!line.contains("eyJ"), "{line}");
        assert!(!line.contains("demo-secret-"), "{line}");
    }
    // One line per MCP request, and one for the administrator's approval.
    assert_eq!(lines.len(), summary.mcp_requests + 1);
    assert_eq!(lines.len(), 19);
    for line in &lines {
        let record: Value = serde_json::from_str(line).unwrap();
        let object = record.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        for field in FIELDS {
            assert!(keys.contains(&field), "{field} missing in {line}");
        }
        assert_eq!(object.len(), FIELDS.len(), "{line}");
        assert!(["notes", "wiki"].contains(&record["upstream"].as_str().unwrap()));
        assert_eq!(record["client_address"], "127.0.0.1", "{line}");
        assert!(["allow", "deny", "error"].contains(&record["decision"].as_str().unwrap()));
        // No token (JWTs start with eyJ), no client secret.
        assert!(!line.contains("eyJ"), "{line}");
        assert!(!line.contains("demo-secret-"), "{line}");
        assert!(!line.to_ascii_lowercase().contains("bearer "), "{line}");
    }
    let decisions: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| {
            (
                leak(r["decision"].as_str().unwrap()),
                leak(r["reason"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("allow", "forwarded"),
            ("allow", "forwarded"),
            ("allow", "forwarded"),
            ("allow", "forwarded"),
            ("allow", "forwarded"),
            ("deny", "tool_denied"),
            ("allow", "forwarded"),
            ("deny", "tool_not_allowed"),
            ("deny", "idp_policy_denied"),
            ("deny", "no_token"),
            ("allow", "forwarded"),
            ("deny", "argument_blocked"),
            ("deny", "approval_held"),
            ("allow", "approval_granted"),
            ("allow", "forwarded"),
            ("deny", "approval_held"),
            // The OAuth MCP client: initialize and a tool call through the ID-JAG upstream.
            ("allow", "forwarded"),
            ("allow", "forwarded"),
            // The EMA client on the bridged wiki.
            ("allow", "forwarded"),
        ]
    );
    assert!(!printed.contains("demo-secret-"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The authorization server's lines: the OAuth client's registration and sign-in, then the
/// EMA client's ID-JAG redemption.
const OAUTH_LINES: [(&str, &str); 5] = [
    ("oauth/register", "client_registered"),
    ("oauth/authorize", "login_started"),
    ("oauth/callback", "code_issued"),
    ("oauth/token", "tokens_issued"),
    ("oauth/token", "id_jag_redeemed"),
];

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}
