//! The planning pass from the outside: the gateway is built from a plan, routes with the
//! same transport setting share one HTTP client, and `check-config` goes through the plan.

use std::path::Path;
use std::sync::Arc;

use idjag_gateway::config::ConfigError;
use idjag_gateway::observe::sinks::MemorySink;
use idjag_gateway::plan::Environment;
use idjag_gateway::{Config, Gateway, Plan};

/// Every variable is set; no file exists.
struct Variables;

impl Environment for Variables {
    fn var(&self, name: &str) -> Option<String> {
        Some(format!("test-secret-{name}"))
    }

    fn read_file(&self, _: &Path) -> std::io::Result<String> {
        Err(std::io::ErrorKind::NotFound.into())
    }
}

/// A gateway of static-key upstreams with these `(name, connect, read)` timeouts.
fn config(routes: &[(&str, &str, &str)]) -> Config {
    let mut text = "[server]\nlisten = \"127.0.0.1:1\"\ntls = \"off\"\nplain_http_reason = \"tests\"\npublic_url = \"http://127.0.0.1:1\"\n\
        [idp]\nissuer = \"http://127.0.0.1:2\"\nclient = { id = \"gw\", secret_env = \"IDP\" }\n"
        .to_owned();
    for (name, connect, read) in routes {
        text.push_str(&format!(
            "[[upstream]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:3/{name}\"\n\
             connect_timeout = \"{connect}\"\nread_timeout = \"{read}\"\n\
             credential = {{ mode = \"static\", secret_env = \"KEY\" }}\n\
             [[upstream.access]]\neveryone = true\nallow = [\"*\"]\n"
        ));
    }
    Config::from_toml_str(&text).unwrap()
}

/// The state in memory: these gateways never serve.
fn memory() -> Arc<dyn idjag_store::Store> {
    Arc::new(idjag_store::MemoryStore::new(
        idjag_core::SystemClock::shared(),
    ))
}

async fn build(config: &Config) -> Gateway {
    let plan = Plan::with_environment(config, &Variables).unwrap();
    Gateway::builder(plan)
        .audit_sink(Arc::new(MemorySink::default()))
        .store(memory())
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn routes_with_the_same_transport_setting_share_one_http_client() {
    let same = build(&config(&[("a", "5s", "60s"), ("b", "5s", "60s")])).await;
    assert_eq!(same.upstream_clients(), 1);
    let different = build(&config(&[
        ("a", "5s", "60s"),
        ("b", "5s", "60s"),
        ("c", "5s", "30s"),
        ("d", "1s", "60s"),
    ]))
    .await;
    assert_eq!(different.upstream_clients(), 3);
    let many: Vec<(String, &str, &str)> =
        (0..200).map(|i| (format!("r{i}"), "5s", "60s")).collect();
    let many: Vec<(&str, &str, &str)> = many.iter().map(|(n, c, r)| (n.as_str(), *c, *r)).collect();
    assert_eq!(build(&config(&many)).await.upstream_clients(), 1);
}

#[tokio::test]
async fn what_is_planned_is_what_runs() {
    let plan = Plan::with_environment(&config(&[("a", "5s", "60s")]), &Variables).unwrap();
    assert_eq!(plan.server.listen().to_string(), "127.0.0.1:1");
    assert_eq!(
        plan.upstreams[0].metadata_url,
        "http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp/a"
    );
    let gateway = Gateway::builder(plan)
        .audit_sink(Arc::new(MemorySink::default()))
        .store(memory())
        .build()
        .await
        .unwrap();
    assert_eq!(gateway.listen().to_string(), "127.0.0.1:1");
    assert_eq!(gateway.public_url(), "http://127.0.0.1:1");
}

#[test]
fn a_planning_error_names_its_key_and_stops_the_build() {
    let mut config = config(&[("a", "5s", "60s")]);
    config.upstreams[0].read_timeout =
        idjag_gateway::config::ConfigDuration(std::time::Duration::ZERO);
    assert_eq!(
        Plan::with_environment(&config, &Variables).unwrap_err(),
        ConfigError::new("upstream[a]", "timeouts must be positive")
    );
}
