//! Environment overrides and the redacting printer, on a configuration shaped like a server's.

use idjag_ops::audit::{AuditConfig, SinkConfig, TrustedProxies};
use idjag_ops::env::{EnvError, Overrides, Redactor};
use idjag_ops::listener::{ListenerConfig, TlsSetting};
use idjag_ops::telemetry::TelemetryConfig;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    server: ListenerConfig,
    #[serde(default)]
    admin: Option<ListenerConfig>,
    #[serde(default)]
    telemetry: TelemetryConfig,
    #[serde(default)]
    audit: AuditConfig,
    #[serde(default)]
    trusted_proxies: TrustedProxies,
    idp: Idp,
    #[serde(default)]
    upstream: Vec<Upstream>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Idp {
    issuer: String,
    client_secret: String,
    #[serde(default)]
    #[allow(dead_code)]
    secret_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Upstream {
    name: String,
    url: String,
}

const FILE: &str = r#"
[server]
listen = "127.0.0.1:8080"
[server.tls]
cert = "/etc/idjag/chain.pem"
key = "/etc/idjag/key.pem"

[idp]
issuer = "https://idp.example"
client_secret = "file-secret-value"
secret_env = "IDJAG_GATEWAY_IDP_SECRET"

[[upstream]]
name = "notes"
url = "https://notes.example/mcp"

[[audit.sinks]]
kind = "webhook"
url = "https://siem.example/ingest"
headers = { authorization = "Bearer webhook-token-value" }
"#;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, EnvError> {
    let table: toml::Table = toml::from_str(FILE).unwrap();
    Overrides::from_vars("IDJAG_GATEWAY", vars(pairs))?.deserialize(table)
}

#[test]
fn nested_keys_arrays_and_types_are_overridden() {
    let config = load(&[
        ("IDJAG_GATEWAY__SERVER__LISTEN", "0.0.0.0:8443"),
        ("IDJAG_GATEWAY__SERVER__MAX_CONNECTIONS", "20000"),
        ("IDJAG_GATEWAY__SERVER__HEADER_READ_TIMEOUT", "3s"),
        ("IDJAG_GATEWAY__SERVER__TLS__CERT", "/run/tls/chain.pem"),
        (
            "IDJAG_GATEWAY__UPSTREAM__0__URL",
            "https://notes.internal/mcp",
        ),
        ("IDJAG_GATEWAY__UPSTREAM__1__NAME", "calendar"),
        (
            "IDJAG_GATEWAY__UPSTREAM__1__URL",
            "https://calendar.internal/mcp",
        ),
        (
            "IDJAG_GATEWAY__TRUSTED_PROXIES",
            "[\"10.0.0.0/8\", \"127.0.0.1\"]",
        ),
        ("IDJAG_GATEWAY__TELEMETRY__TRACES__SAMPLE_RATIO", "0.25"),
        ("IDJAG_GATEWAY__ADMIN__LISTEN", "127.0.0.1:9464"),
        ("IDJAG_GATEWAY__ADMIN__TLS", "off"),
        ("IDJAG_GATEWAY__ADMIN__PLAIN_HTTP_REASON", "loopback only"),
        // A string setting whose value parses as a number is still the string.
        ("IDJAG_GATEWAY__IDP__CLIENT_SECRET", "12345"),
        // Not overrides: a single underscore after the prefix, another prefix.
        ("IDJAG_GATEWAY_IDP_SECRET", "x"),
        ("IDJAG_RESOURCE__SERVER__LISTEN", "x"),
    ])
    .unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:8443".parse().unwrap());
    assert_eq!(config.server.max_connections, 20000);
    assert_eq!(
        config.server.header_read_timeout.0,
        std::time::Duration::from_secs(3)
    );
    let TlsSetting::On(tls) = &config.server.tls else {
        panic!("tls")
    };
    assert_eq!(tls.cert, std::path::PathBuf::from("/run/tls/chain.pem"));
    assert_eq!(tls.key, std::path::PathBuf::from("/etc/idjag/key.pem"));
    assert_eq!(config.upstream.len(), 2);
    assert_eq!(config.upstream[0].name, "notes");
    assert_eq!(config.upstream[0].url, "https://notes.internal/mcp");
    assert_eq!(config.upstream[1].name, "calendar");
    assert!(config.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
    assert_eq!(config.telemetry.traces.sample_ratio, 0.25);
    let admin = config.admin.unwrap();
    assert_eq!(admin.tls, TlsSetting::Off);
    admin.validate("admin").unwrap();
    assert_eq!(config.idp.client_secret, "12345");
    assert_eq!(config.idp.issuer, "https://idp.example");
    assert!(matches!(config.audit.sinks[0], SinkConfig::Webhook(_)));
}

#[test]
fn unknown_keys_and_bad_values_name_the_variable() {
    let error = load(&[("IDJAG_GATEWAY__SERVER__LISTN", "0.0.0.0:1")]).unwrap_err();
    assert_eq!(
        error,
        EnvError::UnknownKey {
            variable: "IDJAG_GATEWAY__SERVER__LISTN".to_owned(),
            key: "server.listn".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        "IDJAG_GATEWAY__SERVER__LISTN: unknown key server.listn"
    );
    let error = load(&[("IDJAG_GATEWAY__NOPE__DEEP", "1")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "IDJAG_GATEWAY__NOPE__DEEP: unknown key nope.deep"
    );
    let error = load(&[("IDJAG_GATEWAY__UPSTREAM__0__NAMES", "x")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "IDJAG_GATEWAY__UPSTREAM__0__NAMES: unknown key upstream[0].names"
    );
    let error = load(&[("IDJAG_GATEWAY__SERVER__MAX_CONNECTIONS", "many")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "IDJAG_GATEWAY__SERVER__MAX_CONNECTIONS: server.max_connections: invalid type: string \"many\", expected usize"
    );
    let error = load(&[("IDJAG_GATEWAY__UPSTREAM__5__NAME", "x")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "IDJAG_GATEWAY__UPSTREAM__5__NAME: upstream: index 5 is past the end (1 elements)"
    );
    let error = load(&[("IDJAG_GATEWAY__SERVER__LISTEN__PORT", "1")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "IDJAG_GATEWAY__SERVER__LISTEN__PORT: server.listen: not a table"
    );
    let error = load(&[("IDJAG_GATEWAY__SERVER____LISTEN", "1")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "IDJAG_GATEWAY__SERVER____LISTEN: empty key (keys are separated by exactly two underscores)"
    );
    // A problem no variable caused names the key.
    let table: toml::Table = toml::from_str("[server]\nlisten = \"x\"\ntls = \"off\"").unwrap();
    let error = Overrides::default()
        .deserialize::<Config>(table)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "server.listen: invalid socket address syntax"
    );
}

#[test]
fn the_printer_redacts_every_secret() {
    let table: toml::Table = toml::from_str(FILE).unwrap();
    let mut table = table;
    Overrides::from_vars(
        "IDJAG_GATEWAY",
        vars(&[
            ("IDJAG_GATEWAY__IDP__CLIENT_SECRET", "env-secret-value"),
            (
                "IDJAG_GATEWAY__TELEMETRY__TRACES__HEADERS__X_HONEYCOMB_TEAM",
                "otlp-api-value",
            ),
            (
                "IDJAG_GATEWAY__IDP__SIGNING",
                "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----",
            ),
            (
                "IDJAG_GATEWAY__IDP__ASSERTION",
                "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            ),
        ]),
    )
    .unwrap()
    .apply(&mut table)
    .unwrap();
    let printed = Redactor::new()
        .secret("telemetry.traces.headers.*")
        .print(&table);
    for secret in [
        "env-secret-value",
        "file-secret-value",
        "webhook-token-value",
        "otlp-api-value",
        "MIGHAgEAMBMG",
        "eyJhbGciOiJFUzI1NiJ9",
    ] {
        assert!(!printed.contains(secret), "{secret} in\n{printed}");
    }
    // What is not secret is shown, including where a secret comes from.
    assert!(
        printed.contains("issuer = \"https://idp.example\""),
        "{printed}"
    );
    assert!(
        printed.contains("secret_env = \"IDJAG_GATEWAY_IDP_SECRET\""),
        "{printed}"
    );
    assert!(
        printed.contains("client_secret = \"[redacted]\""),
        "{printed}"
    );
    assert!(printed.contains("listen = \"127.0.0.1:8080\""), "{printed}");
    let reparsed: toml::Table = toml::from_str(&printed).unwrap();
    assert_eq!(
        reparsed["telemetry"]["traces"]["headers"]["x_honeycomb_team"].as_str(),
        Some("[redacted]")
    );
}

#[test]
fn a_section_shown_despite_its_name_keeps_its_secrets_redacted() {
    let table: toml::Table = toml::from_str(
        "[token_exchange]\nissuer = \"https://idp.example\"\nclient_secret = \"s3cr3t\"\n\
         assertion = \"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\"\n\
         [tokens]\nlifetime = 300\n[refresh_tokens]\nlifetime = 600\n",
    )
    .unwrap();
    let printed = Redactor::new()
        .shown("token_exchange")
        .shown("tokens")
        .print(&table);
    let reparsed: toml::Table = toml::from_str(&printed).unwrap();
    let section = reparsed["token_exchange"].as_table().unwrap();
    assert_eq!(section["issuer"].as_str(), Some("https://idp.example"));
    assert_eq!(section["client_secret"].as_str(), Some("[redacted]"));
    assert_eq!(section["assertion"].as_str(), Some("[redacted]"));
    assert_eq!(reparsed["tokens"]["lifetime"].as_integer(), Some(300));
    // Not shown: redacted by its name, as before.
    assert_eq!(reparsed["refresh_tokens"].as_str(), Some("[redacted]"));
    // A named secret path wins over shown.
    let printed = Redactor::new()
        .shown("tokens")
        .secret("tokens")
        .print(&table);
    assert!(printed.contains("tokens = \"[redacted]\""), "{printed}");
}

#[test]
fn overrides_debug_shows_names_not_values() {
    let overrides = Overrides::from_vars(
        "IDJAG_GATEWAY",
        vars(&[("IDJAG_GATEWAY__IDP__CLIENT_SECRET", "hunter2")]),
    )
    .unwrap();
    let text = format!("{overrides:?}");
    assert!(text.contains("IDJAG_GATEWAY__IDP__CLIENT_SECRET"));
    assert!(!text.contains("hunter2"));
}
