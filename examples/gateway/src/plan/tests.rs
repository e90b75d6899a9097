//! The planning pass on its own: defaults, every error naming its key, warnings, secrets
//! read once from the environment and never printed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::config::LoadError;
use crate::config::tests::MINIMAL;

/// An environment where every variable and every file holds a recognisable secret, and
/// which counts what is read.
#[derive(Default)]
struct Everything {
    reads: RefCell<BTreeMap<String, usize>>,
}

impl Everything {
    fn count(&self, what: String) {
        *self.reads.borrow_mut().entry(what).or_default() += 1;
    }
}

impl Environment for Everything {
    fn var(&self, name: &str) -> Option<String> {
        self.count(format!("env {name}"));
        Some(format!("planned-secret-{name}"))
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        self.count(format!("file {}", path.display()));
        Ok("planned-file-secret\n".to_owned())
    }
}

/// An environment with nothing set and no file.
struct Nothing;

impl Environment for Nothing {
    fn var(&self, _: &str) -> Option<String> {
        None
    }

    fn read_file(&self, _: &Path) -> std::io::Result<String> {
        Err(std::io::ErrorKind::NotFound.into())
    }
}

fn plan(text: &str) -> Result<Plan, LoadError> {
    Ok(Plan::with_environment(
        &Config::from_toml_str(text)?,
        &Everything::default(),
    )?)
}

fn key_of(result: Result<Plan, LoadError>) -> String {
    match result {
        Err(LoadError::Invalid(error)) => error.key,
        other => panic!("{other:?}"),
    }
}

/// An admin listener on loopback, then `rest`.
const ADMIN: &str =
    "[admin]\nlisten = \"127.0.0.1:9090\"\ntls = \"off\"\nplain_http_reason = \"tests\"";

#[test]
fn the_commented_example_plans_without_a_warning_and_reads_each_secret_once() {
    let config = Config::from_toml_str(include_str!("../../gateway.toml")).unwrap();
    let environment = Everything::default();
    let plan = Plan::with_environment(&config, &environment).unwrap();
    assert_eq!(plan.warnings(), []);
    assert_eq!(
        *environment.reads.borrow(),
        BTreeMap::from([
            ("env IDJAG_GATEWAY_ADMIN_TOKEN".to_owned(), 1),
            ("env IDJAG_GATEWAY_GITHUB_SECRET".to_owned(), 1),
            ("env IDJAG_GATEWAY_IDP_SECRET".to_owned(), 1),
            ("env IDJAG_GATEWAY_NOTES_SECRET".to_owned(), 1),
            ("env IDJAG_GATEWAY_WIKI_KEY".to_owned(), 1),
            // The stdio upstream's allow-listed variables, for its child.
            ("env LANG".to_owned(), 1),
            ("env PATH".to_owned(), 1),
        ])
    );
    assert_eq!(plan.upstreams.len(), 3);
    assert_eq!(
        plan.upstreams[0].resource.as_str(),
        "http://127.0.0.1:8080/mcp/notes"
    );
    assert_eq!(plan.inbound.route_resources.len(), 3);
}

#[test]
fn a_minimal_file_takes_the_documented_defaults() {
    let plan = plan(MINIMAL).unwrap();
    assert_eq!(plan.server.proxy.max_body_bytes, 1024 * 1024);
    assert_eq!(
        plan.server.listener.header_read_timeout.0,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(plan.server.listener.max_connections_per_ip, 256);
    assert_eq!(
        plan.inbound.accept,
        vec![
            crate::config::InboundKind::IdToken,
            crate::config::InboundKind::AccessToken,
            crate::config::InboundKind::GatewayToken
        ]
    );
    assert!(plan.authorization_server.is_none());
    assert_eq!(plan.inbound.gateway_issuer, None);
    let keys: Vec<_> = plan.warnings().iter().map(|w| w.key.as_str()).collect();
    assert_eq!(
        keys,
        ["server.allowed_origins", "idp.client.secret", "admin"]
    );
}

#[test]
fn invalid_values_name_their_key() {
    let cases = [
        (
            "public_url = \"http://127.0.0.1:8080\"",
            "public_url = \"http://gw.example\"",
            "server.public_url",
        ),
        ("name = \"notes\"", "name = \"no/tes\"", "upstream[no/tes]"),
        (
            "everyone = true",
            "everyone = false",
            "upstream[notes].access[0]",
        ),
        (
            "allow = [\"*\"]",
            "allow = [\"\"]",
            "upstream[notes].access[0]",
        ),
        (
            "client = { id = \"gw\", secret = \"s\" }",
            "client = { id = \"gw\" }",
            "idp.client",
        ),
        (
            "authorization_server = \"https://as.example\"",
            "authorization_server = \"https://idp.example\"",
            "upstream[notes].credential",
        ),
    ];
    for (from, to, key) in cases {
        assert_eq!(key_of(plan(&MINIMAL.replace(from, to))), key, "{to}");
    }
}

fn with_upstream(block: &str) -> Result<Plan, LoadError> {
    plan(&format!(
        "{MINIMAL}\n[[upstream]]\nname = \"b\"\nurl = \"https://b.example/mcp\"\n{block}\n\
         [[upstream.access]]\neveryone = true\nallow = [\"*\"]\n"
    ))
}

#[test]
fn bridging_modes_are_checked_and_their_secrets_read() {
    assert_eq!(
        key_of(with_upstream(
            "credential = { mode = \"static\", secret_env = \"A\", secret_file = \"f\" }"
        )),
        "upstream[b].credential"
    );
    assert_eq!(
        key_of(with_upstream("credential = { mode = \"static\" }")),
        "upstream[b].credential"
    );
    assert_eq!(
        key_of(with_upstream(
            "credential = { mode = \"static\", header = \"host\", secret_env = \"A\" }"
        )),
        "upstream[b].credential.header"
    );
    assert_eq!(
        key_of(with_upstream(
            "credential = { mode = \"header_template\", headers = { \"x-u\" = \"{env}\" } }"
        )),
        "upstream[b].credential.headers"
    );
    assert_eq!(
        key_of(with_upstream(
            "credential = { mode = \"header_template\", headers = { \"x-u\" = \"{user}\" }, secret_env = \"A\" }"
        )),
        "upstream[b].credential"
    );
    assert_eq!(
        key_of(with_upstream(
            "credential = { mode = \"header_template\", headers = { \"x-k\" = \"{secret}\" } }"
        )),
        "upstream[b].credential"
    );
    assert_eq!(
        key_of(with_upstream(
            "credential = { mode = \"client_credentials\", authorization_server = \"https://as.b\", token_endpoint = \"http://as.b/token\", client = { id = \"g\", secret_env = \"A\" } }"
        )),
        "upstream[b].credential.token_endpoint"
    );
    // The secret itself is not a key of the bridging modes.
    assert!(matches!(
        Config::from_toml_str(&format!(
            "{MINIMAL}\n[[upstream]]\nname = \"b\"\nurl = \"https://b.example/mcp\"\n\
             credential = {{ mode = \"static\", secret = \"x\" }}\n"
        )),
        Err(LoadError::Invalid(_))
    ));
    let warnings = with_upstream("credential = { mode = \"passthrough\" }")
        .unwrap()
        .warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.key == "upstream[b].credential" && w.message.starts_with("passthrough")),
        "{warnings:?}"
    );
    let plan = with_upstream(
        "credential = { mode = \"header_template\", headers = { \"x-user\" = \"{user}\", \"authorization\" = \"Token {secret}\" }, secret_file = \"/run/k\" }",
    )
    .unwrap();
    assert!(matches!(
        &plan.upstreams[1].credential,
        CredentialPlan::HeaderTemplate { origin: Some(SecretOrigin::File(path)), .. }
            if path == Path::new("/run/k")
    ));
}

#[test]
fn the_admin_block_is_a_listener_with_at_most_one_token_source() {
    for (admin, key) in [
        ("token_env = \"T\"", None),
        ("", None),
        ("token_env = \"T\"\ntoken_file = \"f\"", Some("admin")),
        ("token_env = \"T\"\napproval_ttl = 0", Some("admin")),
        (
            "\n[metrics]\nrequire_admin_token = true",
            Some("metrics.require_admin_token"),
        ),
    ] {
        let result = plan(&format!("{MINIMAL}\n{ADMIN}\n{admin}\n"));
        match key {
            None => assert!(result.is_ok(), "{admin}: {result:?}"),
            Some(key) => assert_eq!(key_of(result), key, "{admin}"),
        }
    }
    // The listener's keys are required and checked by idjag-ops.
    assert_eq!(
        key_of(plan(&format!("{MINIMAL}\n[admin]\ntoken_env = \"T\"\n"))),
        "admin"
    );
    let no_reason = format!("{MINIMAL}\n[admin]\nlisten = \"127.0.0.1:9090\"\ntls = \"off\"\n");
    assert_eq!(key_of(plan(&no_reason)), "admin.plain_http_reason");
    // Without a token the admin listener serves metrics and health, not the API.
    let plan = plan(&format!("{MINIMAL}\n{ADMIN}\n")).unwrap();
    assert!(plan.admin_listener.is_some() && plan.admin.is_none());
}

#[test]
fn the_public_listener_needs_tls_or_a_stated_reason() {
    let no_tls = MINIMAL
        .replace("tls = \"off\"", "")
        .replace("plain_http_reason = \"tests on loopback\"", "");
    assert_eq!(key_of(plan(&no_tls)), "server");
    let no_reason = MINIMAL.replace("plain_http_reason = \"tests on loopback\"", "");
    assert_eq!(key_of(plan(&no_reason)), "server.plain_http_reason");
    let beyond_loopback = MINIMAL
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"0.0.0.0:8080\"")
        .replace(
            "public_url = \"http://127.0.0.1:8080\"",
            "public_url = \"https://gw.example\"",
        );
    let warnings = plan(&beyond_loopback).unwrap().warnings;
    assert!(
        warnings.iter().any(|w| w.key == "server.tls"),
        "{warnings:?}"
    );
}

#[test]
fn forwarding_a_credential_or_hop_by_hop_header_is_refused() {
    for header in [
        "authorization",
        "Connection",
        "x-forwarded-user",
        "cookie",
        "host",
    ] {
        let text = MINIMAL.replace(
            "public_url = \"http://127.0.0.1:8080\"",
            &format!("public_url = \"http://127.0.0.1:8080\"\nforward_headers = [\"{header}\"]"),
        );
        assert_eq!(key_of(plan(&text)), "server.forward_headers", "{header}");
    }
}

#[test]
fn secrets_come_from_the_environment_and_never_print() {
    let text = MINIMAL.replace(
        "client = { id = \"gw\", secret = \"s\" }",
        "client = { id = \"gw\", secret_env = \"IDJAG_GATEWAY_TEST_UNSET_VARIABLE\" }",
    );
    let config = Config::from_toml_str(&text).unwrap();
    assert_eq!(
        Plan::with_environment(&config, &Nothing).unwrap_err(),
        ConfigError::new(
            "idp.client.secret_env",
            "environment variable IDJAG_GATEWAY_TEST_UNSET_VARIABLE is not set"
        )
    );
    let plan = Plan::with_environment(&config, &Everything::default()).unwrap();
    let shown = [format!("{plan:?}"), plan.render()];
    for text in &shown {
        assert!(!text.contains("planned-secret-"), "{text}");
        assert!(text.contains("[redacted] from env IDJAG_GATEWAY_TEST_UNSET_VARIABLE"));
    }
}

#[test]
fn a_missing_or_empty_secret_file_names_its_key() {
    let text = format!("{MINIMAL}\n{ADMIN}\ntoken_file = \"/run/secrets/admin-token\"\n");
    let config = Config::from_toml_str(&text).unwrap();
    assert_eq!(
        Plan::with_environment(&config, &Nothing).unwrap_err(),
        ConfigError::new(
            "admin.token_file",
            "cannot read /run/secrets/admin-token: entity not found"
        )
    );
    struct Empty;
    impl Environment for Empty {
        fn var(&self, _: &str) -> Option<String> {
            Some("s".to_owned())
        }
        fn read_file(&self, _: &Path) -> std::io::Result<String> {
            Ok("\r\n".to_owned())
        }
    }
    assert_eq!(
        Plan::with_environment(&config, &Empty).unwrap_err(),
        ConfigError::new("admin.token_file", "the file is empty")
    );
}

#[test]
fn header_secrets_of_sinks_and_exporters_never_print() {
    let text = format!(
        "{MINIMAL}\n[audit]\n[[audit.sinks]]\nkind = \"webhook\"\nurl = \"https://siem.example/in\"\n\
         headers = {{ authorization = \"Bearer hook-secret-value\", x-tenant = \"tenant-secret-value\" }}\n\
         [telemetry.traces]\nexporter = \"otlp\"\nendpoint = \"https://otlp.example\"\n\
         headers = {{ x-api-key = \"otlp-secret-value\" }}\n"
    );
    let config = Config::from_toml_str(&text).unwrap();
    let plan = Plan::with_environment(&config, &Everything::default()).unwrap();
    for shown in [format!("{config:?}"), format!("{plan:?}"), plan.render()] {
        for secret in [
            "hook-secret-value",
            "tenant-secret-value",
            "otlp-secret-value",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
    assert!(plan.render().contains("\"x-tenant\": \"[redacted]\""));
}
