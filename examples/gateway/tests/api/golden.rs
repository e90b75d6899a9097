//! Golden files: the normalized plan of every shipped configuration, secrets redacted,
//! compared byte for byte with `tests/api/golden/*.json`. A change to what the gateway
//! would run from a shipped file shows up here, in review.
//!
//! After an intended change, rewrite the files and review the diff:
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p idjag-gateway --test api golden
//! ```

use std::path::{Path, PathBuf};

use idjag_gateway::plan::Environment;
use idjag_gateway::{Config, Plan};

/// Every variable holds a marked secret; key files are read from the fixtures, any other
/// file holds a marked secret.
struct Golden;

const MARK: &str = "golden-secret";

impl Environment for Golden {
    fn var(&self, name: &str) -> Option<String> {
        Some(format!("{MARK}-env-{name}"))
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        if path.extension().is_some_and(|e| e == "pem") {
            return std::fs::read_to_string(fixtures().join(path));
        }
        Ok(format!("{MARK}-file\n"))
    }
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    manifest().join("tests/api/golden")
}

/// Plans `config` and compares its rendering with `golden` (or rewrites it).
fn check(config: &Path, golden: &str) {
    let config = Config::from_path(config).unwrap();
    let rendered = Plan::with_environment(&config, &Golden).unwrap().render();
    assert!(!rendered.contains(MARK), "a secret reached the rendering");
    assert!(
        !rendered.contains("PRIVATE KEY"),
        "a key reached the rendering"
    );
    let path = fixtures().join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        rendered == expected,
        "{} differs from the plan of its configuration; rerun with UPDATE_GOLDEN=1 and review the diff.\n--- rendered ---\n{rendered}",
        path.display()
    );
}

#[test]
fn the_commented_example_plans_to_its_golden_file() {
    check(&manifest().join("gateway.toml"), "gateway.json");
}

#[test]
fn every_credential_mode_plans_to_its_golden_file() {
    check(&fixtures().join("all-modes.toml"), "all-modes.json");
}
