//! The `[store]` configuration: parsing, checks with exact errors, opening.

use std::time::Duration;

use idjag_core::TestClock;
use idjag_store::*;

fn parse(text: &str) -> StoreConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn invalid(config: &StoreConfig) -> (&'static str, &'static str) {
    match config.check() {
        Err(ConfigError::Invalid { field, problem }) => (field, problem),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_documented_redis_example_parses_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let password = dir.path().join("pw");
    std::fs::write(&password, "pw\n").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "").unwrap();
    let config = parse(&format!(
        r#"
max_staleness_secs = 30
sealing_key_file = "{}"
sealing_algorithm = "C20P"

[backend]
kind = "redis"
url = "rediss://redis.internal:6380/0"
username = "idjag"
password_file = "{}"
ca_file = "{}"
connect_timeout_ms = 2000
command_timeout_ms = 500
key_prefix = "idjag:"

[quotas]
id_jag_per_client = 100000
client_assertion_per_client = 5000
dpop_per_key = 100000
"#,
        key.display(),
        password.display(),
        ca.display()
    ));
    config.check().unwrap();
    assert_eq!(config.quotas.client_assertion_per_client, 5000);
    let options = config.replica_options().unwrap();
    assert_eq!(options.max_staleness, Duration::from_secs(30));
    assert_eq!(options.resync_interval, Duration::from_secs(10));
    assert!(config.sealer().unwrap().is_some());
    let BackendConfig::Redis(redis) = &config.backend else {
        panic!()
    };
    let opts = redis.options().unwrap();
    assert_eq!(opts.command_timeout, Duration::from_millis(500));
    assert_eq!(opts.username.as_deref(), Some("idjag"));
    assert_eq!(opts.password.as_deref().map(String::as_str), Some("pw"));
    assert!(!format!("{opts:?}").contains("\"pw\""));
}

#[tokio::test]
async fn memory_and_embedded_open_from_configuration() {
    let clock = TestClock::at_unix(1_700_000_000);
    let memory = parse("[backend]\nkind = \"memory\"\ncapacity = 10\n");
    assert_eq!(
        memory
            .open_and_ping(clock.shared())
            .await
            .unwrap()
            .backend(),
        "memory"
    );
    let dir = tempfile::tempdir().unwrap();
    let embedded = parse(&format!(
        "[backend]\nkind = \"embedded\"\npath = \"{}\"\n",
        dir.path().join("s.redb").display()
    ));
    let store = embedded.open_and_ping(clock.shared()).await.unwrap();
    assert_eq!(store.backend(), "embedded");
    let missing_dir = parse(&format!(
        "[backend]\nkind = \"embedded\"\npath = \"{}\"\n",
        dir.path().join("no/such/dir/s.redb").display()
    ));
    assert!(matches!(
        missing_dir.open(clock.shared()),
        Err(ConfigError::Embedded(EmbeddedOpenError::Io(_)))
    ));
}

#[test]
fn unknown_settings_and_kinds_are_refused() {
    for text in [
        "[backend]\nkind = \"memory\"\nsize = 3\n",
        "[backend]\nkind = \"etcd\"\n",
        "max_stalenes_secs = 3\n[backend]\nkind = \"memory\"\n",
        "[backend]\nkind = \"redis\"\nurl = \"redis://x\"\npassword = \"inline\"\n",
    ] {
        assert!(toml::from_str::<StoreConfig>(text).is_err(), "{text}");
    }
}

#[test]
fn each_bad_value_names_its_setting() {
    let base = "[backend]\nkind = \"memory\"\n";
    assert_eq!(
        invalid(&parse(&format!("max_staleness_secs = 0\n{base}"))),
        ("max_staleness_secs", "must be at least 1")
    );
    assert_eq!(
        invalid(&parse(&format!(
            "max_staleness_secs = 10\nresync_interval_secs = 10\n{base}"
        )))
        .0,
        "resync_interval_secs"
    );
    assert_eq!(
        invalid(&parse(&format!("{base}[quotas]\ndpop_per_key = 0\n"))).0,
        "quotas.dpop_per_key"
    );
    assert_eq!(
        invalid(&parse("[backend]\nkind = \"memory\"\ncapacity = 0\n")).0,
        "backend.capacity"
    );
    assert_eq!(
        invalid(&parse(&format!("sealing_algorithm = \"DES\"\n{base}"))).0,
        "sealing_algorithm"
    );
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "abcd").unwrap();
    assert_eq!(
        invalid(&parse(&format!(
            "sealing_key_file = \"{}\"\n{base}",
            short.display()
        ))),
        ("sealing_key", "must be 64 hexadecimal digits (32 bytes)")
    );
    assert!(matches!(
        parse(&format!(
            "sealing_key_file = \"{}\"\n{base}",
            dir.path().join("none").display()
        ))
        .check(),
        Err(ConfigError::File {
            field: "sealing_key_file",
            ..
        })
    ));
    assert!(matches!(
        parse(&format!(
            "sealing_key_env = \"IDJAG_STORE_TEST_UNSET_VARIABLE\"\n{base}"
        ))
        .check(),
        Err(ConfigError::Env {
            field: "sealing_key_env",
            ..
        })
    ));
    let redis = |extra: &str| {
        parse(&format!(
            "[backend]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\n{extra}"
        ))
    };
    assert_eq!(
        invalid(&redis("command_timeout_ms = 0\n")).0,
        "backend.command_timeout_ms"
    );
    assert_eq!(
        invalid(&redis("connect_timeout_ms = 60001\n")).0,
        "backend.connect_timeout_ms"
    );
    assert_eq!(
        invalid(&redis("cert_file = \"/c.pem\"\n")).0,
        "backend.cert_file"
    );
    assert_eq!(
        invalid(&redis("password_env = \"A\"\npassword_file = \"/p\"\n")).0,
        "backend.password_file"
    );
    assert!(matches!(
        redis("password_env = \"IDJAG_STORE_TEST_UNSET_VARIABLE\"\n").check(),
        Err(ConfigError::Env {
            field: "backend.password_env",
            ..
        })
    ));
    assert!(matches!(
        parse("[backend]\nkind = \"redis\"\nurl = \"http://127.0.0.1/\"\n").check(),
        Err(ConfigError::Redis(RedisConfigError::InvalidUrl))
    ));
}
