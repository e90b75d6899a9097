//! `check-config` refuses each kind of bad file with a message naming the key (exit status 2,
//! nothing on stdout), never echoing a secret; it accepts the valid file, tries the store, and
//! `serve` refuses what `check-config` refuses.

use idjag_core::Algorithm;
use idjag_test_support::process::{RedisServer, TestDir, free_port, pem_key, run};

use crate::support::binary;

const BASE: &str = include_str!("../configs/minimal.toml");
const SECRET_VALUE: &str = "do-not-print-this-7f3a";

struct Case {
    name: &'static str,
    from: &'static str,
    to: &'static str,
    key: &'static str,
}

fn dir_with_keys() -> TestDir {
    let dir = TestDir::new();
    let (_, pem) = pem_key(Algorithm::Es256);
    dir.write("as.pem", pem);
    dir.write("filed.secret", format!("{SECRET_VALUE}\n"));
    dir.write(
        "sec1.pem",
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n",
    );
    dir
}

fn check(dir: &TestDir, text: &str, offline: bool) -> (i32, String, String) {
    let config = dir.write("resource-server.toml", text);
    let config = config.display().to_string();
    let mut args = vec!["check-config", "--config", config.as_str()];
    if offline {
        args.push("--offline");
    }
    run(
        std::path::Path::new(binary()),
        &args,
        &[("CHECK_AGENT_SECRET", SECRET_VALUE)],
    )
}

#[test]
fn the_valid_file_passes_and_the_shipped_example_names_its_missing_files() {
    let dir = dir_with_keys();
    let (code, out, err) = check(&dir, BASE, false);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("configuration ok: issuer http://127.0.0.1:18999, 1 trusted IdP(s)"),
        "{out}"
    );
    assert!(out.contains("store memory"));

    // The commented example in the crate parses; it names files this machine does not have.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/resource-server.toml");
    let (code, _, err) = run(
        std::path::Path::new(binary()),
        &["check-config", "--config", example, "--offline"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("signing.key.file: cannot read /etc/idjag/as-2026-06.pem"),
        "{err}"
    );
}

#[test]
fn each_kind_of_bad_file_is_refused_with_a_message_naming_the_key() {
    let cases = [
        Case {
            name: "not TOML",
            from: "[server]",
            to: "[server",
            key: "(file) (line 4)",
        },
        Case {
            name: "unknown key",
            from: "secret_env = \"CHECK_AGENT_SECRET\"",
            to: "secret = \"inline\"",
            key: "clients[0].secret (line 25)",
        },
        Case {
            name: "missing key",
            from: "issuer = \"http://127.0.0.1:18999\"",
            to: "",
            key: "authorization_server (line 9): missing field `issuer`",
        },
        Case {
            name: "wrong type",
            from: "listen = \"127.0.0.1:18999\"",
            to: "listen = 18999",
            key: "server.listen (line 5)",
        },
        Case {
            name: "bad listen address",
            from: "listen = \"127.0.0.1:18999\"",
            to: "listen = \"localhost\"",
            key: "server.listen (line 5): invalid socket address syntax",
        },
        Case {
            name: "plain http off loopback",
            from: "issuer = \"http://127.0.0.1:18999\"",
            to: "issuer = \"http://as.example\"",
            key: "authorization_server.issuer: \"http://as.example\" is not usable",
        },
        Case {
            name: "missing key file",
            from: "file = \"as.pem\"",
            to: "file = \"missing.pem\"",
            key: "signing.key.file: cannot read",
        },
        Case {
            name: "not a PKCS#8 key",
            from: "file = \"as.pem\"",
            to: "file = \"sec1.pem\"",
            key: "signing.key.file: ",
        },
        Case {
            name: "unknown algorithm",
            from: "alg = \"ES256\"",
            to: "alg = \"HS256\"",
            key: "signing.key.alg: unknown algorithm \"HS256\"",
        },
        Case {
            name: "key of another algorithm",
            from: "alg = \"ES256\"",
            to: "alg = \"ES384\"",
            key: "signing.key.file: ",
        },
        Case {
            name: "unset secret variable",
            from: "CHECK_AGENT_SECRET",
            to: "UNSET_VARIABLE_1234",
            key: "clients[0].secret_env: environment variable UNSET_VARIABLE_1234 is not set",
        },
        Case {
            name: "missing secret file",
            from: "filed.secret",
            to: "nowhere.secret",
            key: "clients[1].secret_file: cannot read",
        },
        Case {
            name: "secret and JWKS",
            from: "secret_file = \"filed.secret\"",
            to: "secret_file = \"filed.secret\"\njwks_uri = \"https://agent.example/jwks\"",
            key: "clients[1].jwks_uri: a client has a secret or a jwks_uri, not both",
        },
        Case {
            name: "no credential",
            from: "secret_file = \"filed.secret\"",
            to: "",
            key: "clients[1]: needs secret_env or secret_file",
        },
        Case {
            name: "unknown auth method",
            from: "secret_file = \"filed.secret\"",
            to: "secret_file = \"filed.secret\"\nauth_methods = [\"tls_client_auth\"]",
            key: "clients[1].auth_methods: \"tls_client_auth\" is not",
        },
        Case {
            name: "duplicate client",
            from: "client_id = \"filed\"",
            to: "client_id = \"agent\"",
            key: "clients[1].client_id: agent is registered twice",
        },
        Case {
            name: "IdP vouching for an unknown client",
            from: "clients = [\"agent\"]",
            to: "clients = [\"nobody\"]",
            key: "trusted_idps[0].clients[0]: nobody is not a configured client",
        },
        Case {
            name: "IdP vouching for an unknown resource",
            from: "clients = [\"agent\"]",
            to: "resources = [\"https://other.example/mcp\"]",
            key: "trusted_idps[0].resources[0]: https://other.example/mcp is not a configured resource",
        },
        Case {
            name: "trusting itself",
            from: "issuer = \"https://idp.example\"",
            to: "issuer = \"http://127.0.0.1:18999\"",
            key: "trusted_idps[0].issuer: this server's own issuer cannot be trusted",
        },
        Case {
            name: "no trusted IdP",
            from: "[[trusted_idps]]\nissuer = \"https://idp.example\"\nclients = [\"agent\"]",
            to: "",
            key: "trusted_idps: trust at least one IdP",
        },
        Case {
            name: "relative resource",
            from: "resource = \"https://mcp.example/mcp\"",
            to: "resource = \"mcp.example/mcp\"",
            key: "resources[0].resource: \"mcp.example/mcp\" is not an absolute URI",
        },
        Case {
            name: "bad scope",
            from: "scopes = [\"read\"]",
            to: "scopes = [\"re ad\"]",
            key: "resources[0].scopes[0]: \"re ad\" is not an RFC 6749 scope token",
        },
        Case {
            name: "leeway too large",
            from: "[signing]",
            to: "[tokens]\nleeway_secs = 3600\n[signing]",
            key: "tokens.leeway_secs: must be at most 300",
        },
        Case {
            name: "unknown replay policy",
            from: "[signing]",
            to: "[tokens]\nreplay = \"twice\"\n[signing]",
            key: "tokens.replay: \"twice\" is not",
        },
        Case {
            name: "default resource not configured",
            from: "[signing]",
            to: "[tokens]\ndefault_resource = \"https://x.example/mcp\"\n[signing]",
            key: "tokens.default_resource: https://x.example/mcp is not a configured resource",
        },
        Case {
            name: "zero lifetime",
            from: "[signing]",
            to: "[tokens]\naccess_token_lifetime_secs = 0\n[signing]",
            key: "tokens.access_token_lifetime_secs: must be at least 1",
        },
        Case {
            name: "bad unmapped rule",
            from: "clients = [\"agent\"]",
            to: "clients = [\"agent\"]\nsubject = { unmapped = \"allow\" }",
            key: "trusted_idps[0].subject.unmapped: \"allow\" is not",
        },
        Case {
            name: "bad log filter",
            from: "[signing]",
            to: "[telemetry]\nlog_filter = \"info,=[\"\n[signing]",
            key: "telemetry.log_filter: ",
        },
        Case {
            name: "unknown log format",
            from: "[signing]",
            to: "[telemetry]\nlog_format = \"xml\"\n[signing]",
            key: "telemetry.log_format (line 13)",
        },
        Case {
            name: "no TLS setting",
            from: "tls = \"off\"\n",
            to: "",
            key: "server (line 4): missing field `tls`",
        },
        Case {
            name: "plain HTTP without a reason",
            from: "plain_http_reason = \"a test\"\n",
            to: "",
            key: "server.plain_http_reason: required with tls = \"off\"",
        },
        Case {
            name: "unknown audit sink",
            from: "[signing]",
            to: "[[audit.sinks]]\nkind = \"printer\"\n[signing]",
            key: "audit.sinks[0].kind (line 13): unknown variant `printer`",
        },
        Case {
            name: "bad trusted proxy",
            from: "[server]",
            to: "trusted_proxies = [\"10.0.0.0/33\"]\n[server]",
            key: "trusted_proxies: ",
        },
        Case {
            name: "unknown store backend",
            from: "[signing]",
            to: "[store.backend]\nkind = \"postgres\"\n[signing]",
            key: "store.backend.kind (line 13): unknown variant `postgres`",
        },
        Case {
            name: "Redis password in the URL",
            from: "[signing]",
            to: "[store.backend]\nkind = \"redis\"\nurl = \"redis://user:pw@127.0.0.1:6379/0\"\n[signing]",
            key: "store.backend: ",
        },
        Case {
            name: "zero quota",
            from: "[signing]",
            to: "[store]\nquotas = { id_jag_per_client = 0 }\n[store.backend]\nkind = \"memory\"\n[signing]",
            key: "store.quotas.id_jag_per_client: must be at least 1",
        },
    ];
    let dir = dir_with_keys();
    let mut wrong = Vec::new();
    for case in cases {
        assert!(
            BASE.contains(case.from),
            "{}: the base file has no {:?}",
            case.name,
            case.from
        );
        let text = BASE.replacen(case.from, case.to, 1);
        let (code, out, err) = check(&dir, &text, true);
        let expected = format!("idjag-resource-server: configuration error: {}", case.key);
        if code != 2 || !out.is_empty() || !err.starts_with(&expected) {
            wrong.push(format!(
                "{}: expected {expected:?}, got {code} {err:?}",
                case.name
            ));
        }
        assert!(
            !err.contains(SECRET_VALUE) && !err.contains("inline") && !err.contains(":pw@"),
            "{}: {err}",
            case.name
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn check_config_tries_the_store_and_serve_refuses_a_bad_file_too() {
    let dir = dir_with_keys();
    // A Redis port where nothing listens.
    let port = free_port();
    let text = format!(
        "{BASE}\n[store.backend]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{port}/0\"\nconnect_timeout_ms = 300\n"
    );
    let (code, _, err) = check(&dir, &text, false);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(
            "idjag-resource-server: configuration error: store: the store does not answer"
        ),
        "{err}"
    );
    // Offline, the same file passes (the store's settings are still checked).
    assert_eq!(check(&dir, &text, true).0, 0);

    // A reachable Redis passes.
    let redis = RedisServer::start();
    let text = format!(
        "{BASE}\n[store.backend]\nkind = \"redis\"\nurl = \"{}\"\n",
        redis.url()
    );
    let (code, out, err) = check(&dir, &text, false);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("store redis"), "{out}");

    // `serve` refuses a bad file the same way, before listening.
    let bad = dir.write(
        "bad.toml",
        BASE.replacen("alg = \"ES256\"", "alg = \"none\"", 1),
    );
    let bad = bad.display().to_string();
    let (code, _, err) = run(
        std::path::Path::new(binary()),
        &["serve", "--config", &bad],
        &[("CHECK_AGENT_SECRET", SECRET_VALUE)],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("configuration error: signing.key.alg: unknown algorithm \"none\""),
        "{err}"
    );
}

#[test]
fn the_okta_recipe_passes_check_config() {
    let recipe = idjag_test_support::process::recipe("okta.md");
    let config = recipe.config.display().to_string();
    let (code, out, err) = run(
        std::path::Path::new(binary()),
        &["check-config", "--config", &config, "--offline"],
        &[],
    );
    assert_eq!(code, 0, "docs/recipes/okta.md: {err}");
    assert!(
        out.starts_with("configuration ok: issuer https://auth.mcp.acme.example, 1 trusted IdP(s)"),
        "{out}"
    );
}
