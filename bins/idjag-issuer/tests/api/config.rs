//! `check-config` refuses each kind of bad file with a message naming the key (exit status 2,
//! nothing on stdout), never echoing a secret; it accepts the valid file and the shipped
//! example's syntax, prints the effective configuration with environment overrides and
//! secrets redacted, tries the store, and `serve` refuses what `check-config` refuses.

use idjag_core::Algorithm;
use idjag_test_support::process::{RedisServer, TestDir, free_port, pem_key, run};

use crate::support::binary;

const BASE: &str = include_str!("../configs/minimal.toml");
const POLICY: &str = include_str!("../configs/policy.toml");
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
    dir.write("key-0.pem", pem);
    let (_, pem) = pem_key(Algorithm::Es256);
    dir.write("key-1.pem", pem);
    dir.write("filed.secret", format!("{SECRET_VALUE}\n"));
    dir.write("policy.toml", POLICY);
    dir.write("bad-policy.toml", "[[allow]]\nname = 1\n");
    dir.write(
        "sec1.pem",
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n",
    );
    dir
}

fn check_with(
    dir: &TestDir,
    text: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let config = dir.write("issuer.toml", text);
    let config = config.display().to_string();
    let mut args = vec!["check-config", "--config", config.as_str()];
    args.extend_from_slice(flags);
    let mut env = env.to_vec();
    env.push(("CHECK_AGENT_SECRET", SECRET_VALUE));
    run(std::path::Path::new(binary()), &args, &env)
}

fn check(dir: &TestDir, text: &str, offline: bool) -> (i32, String, String) {
    check_with(dir, text, if offline { &["--offline"] } else { &[] }, &[])
}

#[test]
fn the_valid_file_passes_and_the_shipped_example_names_its_missing_files() {
    let dir = dir_with_keys();
    let (code, out, err) = check(&dir, BASE, false);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "configuration ok: issuer http://127.0.0.1:18998, 2 client(s), subject ID tokens own, \
         1 signing key(s) listed, store memory\n"
    );

    // The commented example in the crate parses; it names files this machine does not have
    // (the store's sealing key is read first).
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/issuer.toml");
    let (code, _, err) = run(
        std::path::Path::new(binary()),
        &["check-config", "--config", example, "--offline"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with(
            "idjag-issuer: configuration error: store.sealing_key_file: cannot read \
             /run/secrets/idjag-store-key"
        ),
        "{err}"
    );
}

#[test]
fn print_shows_the_environment_overrides_and_never_a_secret() {
    let dir = dir_with_keys();
    let (code, out, err) = check_with(
        &dir,
        BASE,
        &["--offline", "--print"],
        &[
            ("IDJAG_ISSUER__TOKEN_EXCHANGE__ID_JAG_LIFETIME_SECS", "120"),
            ("IDJAG_ISSUER__CLIENTS__1__CLIENT_ID", "renamed"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let printed: toml::Table = toml::from_str(
        out.lines()
            .filter(|l| !l.starts_with("configuration ok"))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    )
    .unwrap();
    assert_eq!(
        printed["token_exchange"]["issuer"].as_str(),
        Some("http://127.0.0.1:18998")
    );
    assert_eq!(
        printed["token_exchange"]["id_jag_lifetime_secs"].as_integer(),
        Some(120)
    );
    assert_eq!(
        printed["clients"][0]["secret_env"].as_str(),
        Some("CHECK_AGENT_SECRET")
    );
    assert!(out.contains("client_id = \"renamed\""), "{out}");
    assert!(out.ends_with(
        "configuration ok: issuer http://127.0.0.1:18998, 2 client(s), subject ID tokens own, \
         1 signing key(s) listed, store memory\n"
    ));
    assert!(!out.contains(SECRET_VALUE) && !err.contains(SECRET_VALUE));

    // An override is checked like the file: a bad value names the key.
    let (code, out, err) = check_with(
        &dir,
        BASE,
        &["--offline"],
        &[("IDJAG_ISSUER__TOKEN_EXCHANGE__ID_JAG_LIFETIME_SECS", "0")],
    );
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.starts_with(
            "idjag-issuer: configuration error: token_exchange.id_jag_lifetime_secs: must be at least 1"
        ),
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
            key: "clients[0].secret (line 20)",
        },
        Case {
            name: "missing section",
            from: "[token_exchange]\nissuer = \"http://127.0.0.1:18998\"\n",
            to: "",
            key: "(top level) (line 1): missing field `token_exchange`",
        },
        Case {
            name: "missing key",
            from: "issuer = \"http://127.0.0.1:18998\"",
            to: "",
            key: "token_exchange (line 9): missing field `issuer`",
        },
        Case {
            name: "wrong type",
            from: "listen = \"127.0.0.1:18998\"",
            to: "listen = 18998",
            key: "server.listen (line 5)",
        },
        Case {
            name: "bad listen address",
            from: "listen = \"127.0.0.1:18998\"",
            to: "listen = \"localhost\"",
            key: "server.listen (line 5): invalid socket address syntax",
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
            name: "plain http issuer off loopback",
            from: "issuer = \"http://127.0.0.1:18998\"",
            to: "issuer = \"http://idp.example\"",
            key: "token_exchange.issuer: \"http://idp.example\" is not usable",
        },
        Case {
            name: "zero lifetime",
            from: "issuer = \"http://127.0.0.1:18998\"",
            to: "issuer = \"http://127.0.0.1:18998\"\nid_jag_lifetime_secs = 0",
            key: "token_exchange.id_jag_lifetime_secs: must be at least 1",
        },
        Case {
            name: "lifetime above the maximum",
            from: "issuer = \"http://127.0.0.1:18998\"",
            to: "issuer = \"http://127.0.0.1:18998\"\nid_jag_lifetime_secs = 86400",
            key: "token_exchange.id_jag_lifetime_secs: ",
        },
        Case {
            name: "body limit too small",
            from: "issuer = \"http://127.0.0.1:18998\"",
            to: "issuer = \"http://127.0.0.1:18998\"\nmax_body_bytes = 10",
            key: "token_exchange.max_body_bytes: must be at least 1024",
        },
        Case {
            name: "unknown audit subject mode",
            from: "issuer = \"http://127.0.0.1:18998\"",
            to: "issuer = \"http://127.0.0.1:18998\"\naudit_subjects = \"encrypted\"",
            key: "token_exchange.audit_subjects: \"encrypted\" is not \"hashed\", \"plain\" or \"omit\"",
        },
        Case {
            name: "missing policy file",
            from: "file = \"policy.toml\"",
            to: "file = \"nowhere.toml\"",
            key: "policy.file: ",
        },
        Case {
            name: "bad policy file",
            from: "file = \"policy.toml\"",
            to: "file = \"bad-policy.toml\"",
            key: "policy.file: ",
        },
        Case {
            name: "no signing key",
            from: "keys = [{ file = \"key-0.pem\", alg = \"ES256\" }]",
            to: "keys = []",
            key: "signing.keys: list at least one key",
        },
        Case {
            name: "missing key file",
            from: "file = \"key-0.pem\"",
            to: "file = \"missing.pem\"",
            key: "signing.keys[0].file: cannot read",
        },
        Case {
            name: "not a PKCS#8 key",
            from: "file = \"key-0.pem\"",
            to: "file = \"sec1.pem\"",
            key: "signing.keys[0].file: ",
        },
        Case {
            name: "unknown algorithm",
            from: "alg = \"ES256\"",
            to: "alg = \"HS256\"",
            key: "signing.keys[0].alg: unknown algorithm \"HS256\"",
        },
        Case {
            name: "key of another algorithm",
            from: "alg = \"ES256\"",
            to: "alg = \"ES384\"",
            key: "signing.keys[0].file: ",
        },
        Case {
            name: "the same key listed twice",
            from: "keys = [{ file = \"key-0.pem\", alg = \"ES256\" }]",
            to: "keys = [{ file = \"key-0.pem\", alg = \"ES256\" }, { file = \"key-1.pem\", alg = \"ES256\", kid = \"k\" }, { file = \"key-0.pem\", alg = \"ES256\", kid = \"k\" }]",
            key: "signing.keys[2].kid: another listed key has this kid",
        },
        Case {
            name: "zero lead time",
            from: "keys = [{ file = \"key-0.pem\", alg = \"ES256\" }]",
            to: "keys = [{ file = \"key-0.pem\", alg = \"ES256\" }]\nlead_time_secs = 0",
            key: "signing.lead_time_secs: must be at least 1",
        },
        Case {
            name: "unknown subject token kind",
            from: "[signing]",
            to: "[subject_tokens]\nid_tokens = \"saml\"\n[signing]",
            key: "subject_tokens.id_tokens: \"saml\" is not \"own\" or \"upstream\"",
        },
        Case {
            name: "upstream ID tokens without [upstream]",
            from: "[signing]",
            to: "[subject_tokens]\nid_tokens = \"upstream\"\n[signing]",
            key: "subject_tokens.id_tokens: \"upstream\" needs an [upstream] section",
        },
        Case {
            name: "upstream refresh tokens without [upstream]",
            from: "[signing]",
            to: "[subject_tokens]\nrefresh_tokens = \"upstream\"\n[signing]",
            key: "subject_tokens.refresh_tokens: \"upstream\" needs an [upstream] section",
        },
        Case {
            name: "unknown subject token error",
            from: "[signing]",
            to: "[subject_tokens]\nerror = \"access_denied\"\n[signing]",
            key: "subject_tokens.error: \"access_denied\" is not \"invalid_grant\" or \"invalid_request\"",
        },
        Case {
            name: "upstream is this issuer",
            from: "[signing]",
            to: "[upstream]\nissuer = \"http://127.0.0.1:18998\"\n[signing]",
            key: "upstream.issuer: the upstream IdP cannot be this issuer",
        },
        Case {
            name: "upstream refresh without upstream secrets",
            from: "[signing]",
            to: "[subject_tokens]\nrefresh_tokens = \"upstream\"\n[upstream]\nissuer = \"https://login.example\"\n[signing]",
            key: "subject_tokens.refresh_tokens: no client has upstream_secret_env or upstream_secret_file",
        },
        Case {
            name: "empty subject claim",
            from: "[signing]",
            to: "[upstream]\nissuer = \"https://login.example\"\nsubject_claim = \"\"\n[signing]",
            key: "upstream.subject_claim: must name a claim",
        },
        Case {
            name: "unknown upstream algorithm",
            from: "[signing]",
            to: "[upstream]\nissuer = \"https://login.example\"\nalgorithms = [\"HS256\"]\n[signing]",
            key: "upstream.algorithms[0]: unknown algorithm \"HS256\"",
        },
        Case {
            name: "upstream leeway too large",
            from: "[signing]",
            to: "[upstream]\nissuer = \"https://login.example\"\nleeway_secs = 3600\n[signing]",
            key: "upstream.leeway_secs: must be at most 300",
        },
        Case {
            name: "upstream client id without [upstream]",
            from: "client_id = \"filed\"",
            to: "client_id = \"filed\"\nupstream_client_id = \"x\"",
            key: "clients: upstream_client_id and upstream secrets need an [upstream] section",
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
            name: "no client",
            from: "[[clients]]\nclient_id = \"agent\"\nsecret_env = \"CHECK_AGENT_SECRET\"\n\n[[clients]]\nclient_id = \"filed\"\nsecret_file = \"filed.secret\"\n",
            to: "",
            key: "clients: register at least one client ([[clients]])",
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
            key: "telemetry.log_format (line 16)",
        },
        Case {
            name: "unknown audit sink",
            from: "[signing]",
            to: "[[audit.sinks]]\nkind = \"printer\"\n[signing]",
            key: "audit.sinks[0].kind (line 16): unknown variant `printer`",
        },
        Case {
            name: "bad trusted proxy",
            from: "[server]",
            to: "trusted_proxies = [\"10.0.0.0/33\"]\n[server]",
            key: "trusted_proxies: ",
        },
        Case {
            name: "admin listener without TLS setting",
            from: "[signing]",
            to: "[admin]\nlisten = \"127.0.0.1:9465\"\n[signing]",
            key: "admin (line 15): missing field `tls`",
        },
        Case {
            name: "unknown store backend",
            from: "[signing]",
            to: "[store.backend]\nkind = \"postgres\"\n[signing]",
            key: "store.backend.kind (line 16): unknown variant `postgres`",
        },
        Case {
            name: "a durable store without a sealing key",
            from: "[signing]",
            to: "[store.backend]\nkind = \"embedded\"\npath = \"issuer.redb\"\n[signing]",
            key: "store.sealing_key_file: the issuer keeps its signing keys in the store, sealed",
        },
        Case {
            name: "Redis password in the URL",
            from: "[signing]",
            to: "[store.backend]\nkind = \"redis\"\nurl = \"redis://user:pw@127.0.0.1:6379/0\"\n[signing]",
            key: "store.backend: ",
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
        let expected = format!("idjag-issuer: configuration error: {}", case.key);
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
    dir.write("sealing.key", format!("{}\n", "ab".repeat(32)));
    // A Redis port where nothing listens.
    let port = free_port();
    let store = |url: &str| {
        format!(
            "{BASE}\n[store]\nsealing_key_file = \"sealing.key\"\n[store.backend]\nkind = \"redis\"\nurl = \"{url}\"\nconnect_timeout_ms = 300\n"
        )
    };
    let text = store(&format!("redis://127.0.0.1:{port}/0"));
    let (code, _, err) = check(&dir, &text, false);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("idjag-issuer: configuration error: store"),
        "{err}"
    );
    // Offline, the same file passes (the store's settings are still checked).
    let (code, _, err) = check(&dir, &text, true);
    assert_eq!(code, 0, "{err}");

    // A reachable Redis passes, and check-config writes nothing there (no key schedule).
    let redis = RedisServer::start();
    let (code, out, err) = check(&dir, &store(&redis.url()), false);
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
        err.contains("configuration error: signing.keys[0].alg: unknown algorithm \"none\""),
        "{err}"
    );
}

#[test]
fn the_recipes_configurations_pass_check_config() {
    for name in ["entra-id.md", "google-workspace.md", "keycloak.md"] {
        let recipe = idjag_test_support::process::recipe(name);
        let config = recipe.config.display().to_string();
        let env: Vec<(&str, &str)> = recipe
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (code, out, err) = run(
            std::path::Path::new(binary()),
            &["check-config", "--config", &config, "--offline"],
            &env,
        );
        assert_eq!(code, 0, "docs/recipes/{name}: {err}");
        assert!(
            out.starts_with(
                "configuration ok: issuer https://idjag.acme.example, 1 client(s), subject ID tokens upstream"
            ),
            "docs/recipes/{name}: {out}"
        );
    }
}
