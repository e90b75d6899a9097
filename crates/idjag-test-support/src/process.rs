//! The servers' binaries as processes (feature `process`): a configuration file from a template
//! in the repository, the process started with `serve --config`, readiness through its
//! `/healthz`, its output captured to files, `kill -9`, SIGTERM and restart; plus real
//! `redis-server` processes and the npm upstream IdP mock (`interop/oidc-mock`).
//!
//! Every helper panics with an instruction when something it needs is missing (a
//! `redis-server`, the npm packages), so tests never skip silently.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use idjag_core::crypto::{PrivateKeyMaterial, default_backend};
use idjag_core::{Algorithm, SigningKey};
use serde_json::Value;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/idjag-test-support lives two levels below the root")
        .to_path_buf()
}

/// A free loopback port (bound, read, released: another process may take it in between,
/// which the callers' start-up checks would notice).
pub use crate::redis::free_port;

/// `template` with every `{{NAME}}` replaced by its value. Panics on a placeholder left over.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    if let Some(at) = text.find("{{") {
        let rest: String = text[at..].chars().take(40).collect();
        panic!("unreplaced placeholder in a configuration template: {rest}");
    }
    text
}

/// A fresh key for `alg` and its PKCS#8 PEM text (for configuration files).
pub fn pem_key(alg: Algorithm) -> (SigningKey, String) {
    let PrivateKeyMaterial::Pkcs8(der) = default_backend().generate(alg).unwrap() else {
        panic!("the default crypto backend generates PKCS#8 keys");
    };
    let key = SigningKey::from_pkcs8_der(alg, der.secret()).unwrap();
    (key, pem("PRIVATE KEY", der.secret()))
}

/// PEM armour around `der`.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One minimal HTTP/1.1 GET on loopback: the status, or `None` when nothing answered.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A server binary running as a process from a configuration file, killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    port: u16,
    admin_port: Option<u16>,
    ready_path: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl ServerProcess {
    /// Starts `binary serve --config <config>` and waits until `GET /healthz` answers 200 on
    /// `admin_port` (the admin listener), or on `port` without one. Output goes to
    /// `stdout.log` and `stderr.log` beside the configuration (appended across restarts).
    pub fn start(
        binary: &Path,
        config: &Path,
        port: u16,
        admin_port: Option<u16>,
        env: &[(&str, &str)],
    ) -> Self {
        let dir = config.parent().unwrap();
        let mut server = Self {
            binary: binary.to_path_buf(),
            args: vec![
                "serve".into(),
                "--config".into(),
                config.display().to_string(),
            ],
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            port,
            admin_port,
            ready_path: "/healthz".into(),
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
        };
        server.spawn();
        server
    }

    fn log_file(path: &Path) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Self::log_file(&self.stdout))
            .stderr(Self::log_file(&self.stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_status(self.admin_port.unwrap_or(self.port), &self.ready_path) == Some(200) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.binary.display(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} was not ready on port {} within 60 s:\n{}",
            self.binary.display(),
            self.port,
            self.stderr()
        );
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The admin listener's `http://127.0.0.1:<port>` (the public one without an admin port).
    pub fn admin_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port.unwrap_or(self.port))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit (at most 30 s, then SIGKILL).
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Starts it again with the same arguments (after [`Self::kill9`] or [`Self::terminate`]).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Everything it wrote to stdout so far (every run).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Everything it wrote to stderr so far (every run).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Its audit lines so far (stdout lines whose `type` is `audit`).
    pub fn audit(&self) -> Vec<Value> {
        self.stdout()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v["type"] == "audit")
            .collect()
    }

    /// Its audit lines once there are at least `count` (audit sinks write asynchronously),
    /// waiting up to 10 s; then whatever there is.
    pub fn audit_at_least(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.audit();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `binary` with `args` to completion: exit code, stdout, stderr.
pub fn run(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory for one test's configuration, keys and logs; removed on drop unless the
/// variable `IDJAG_KEEP_TEST_DIRS` is set (then its path is printed).
#[derive(Debug)]
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
}

impl TestDir {
    /// A fresh directory.
    pub fn new() -> Self {
        Self {
            dir: Some(tempfile::tempdir().unwrap()),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// Writes `name` in it; returns the path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os("IDJAG_KEEP_TEST_DIRS").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("kept test directory {}", dir.keep().display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recipes: the configurations of docs/recipes/*.md, made checkable.

/// The configuration of a recipe in `docs/recipes/`, written into a directory of its own.
#[derive(Debug)]
pub struct Recipe {
    /// The directory holding every file of the recipe.
    pub dir: TestDir,
    /// The server's configuration file (the block named `issuer.toml` or `resource-server.toml`).
    pub config: PathBuf,
    /// The environment variables its `*_env` keys name, with test values.
    pub env: Vec<(String, String)>,
}

/// Writes each ```toml block of `docs/recipes/<name>` whose first line is `# <file name>: ...`
/// into a fresh directory, with the absolute paths under `/etc/idjag/`, `/run/secrets/` and
/// `/var/lib/idjag/` moved inside it, and creates what they name: a fresh ES256 PKCS#8 key for
/// each `.pem` file, 64 hex digits for a `sealing_key_file`, a test secret for every other
/// `*_file`, and a value for each `*_env` variable. Panics when the recipe has no server
/// configuration block.
pub fn recipe(name: &str) -> Recipe {
    let markdown = std::fs::read_to_string(repo_root().join("docs/recipes").join(name))
        .unwrap_or_else(|e| panic!("docs/recipes/{name}: {e}"));
    let dir = TestDir::new();
    let root = dir.path().display().to_string();
    let moved = |text: &str| {
        text.replace("/etc/idjag/", &format!("{root}/etc/"))
            .replace("/run/secrets/", &format!("{root}/secrets/"))
            .replace("/var/lib/idjag/", &format!("{root}/var/"))
    };
    for sub in ["etc/keys", "secrets", "var"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let mut config = None;
    let mut env = Vec::new();
    let mut blocks = markdown.split("```toml\n").skip(1);
    for block in blocks.by_ref() {
        let text = block.split("\n```").next().unwrap_or_default();
        let Some(file) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# "))
            .and_then(|l| l.split(':').next())
        else {
            continue;
        };
        let text = moved(text);
        for line in text.lines() {
            let line = line.trim();
            let Some((key, value)) = line.split_once(" = ") else {
                continue;
            };
            let quoted = |v: &str| v.trim().trim_matches('"').to_owned();
            if key.ends_with("_env") {
                env.push((quoted(value), "recipe-secret-value".to_owned()));
            } else if key == "sealing_key_file" {
                std::fs::write(quoted(value), format!("{}\n", "5a".repeat(32))).unwrap();
            } else if key.ends_with("_file") {
                std::fs::write(quoted(value), "recipe-secret-value\n").unwrap();
            }
            for part in line.split('"').skip(1).step_by(2) {
                if part.ends_with(".pem") && part.starts_with(&root) {
                    std::fs::write(part, pem_key(Algorithm::Es256).1).unwrap();
                }
            }
        }
        let path = dir.write(file, text);
        if file.ends_with("issuer.toml") || file.ends_with("resource-server.toml") {
            config = Some(path);
        }
    }
    Recipe {
        config: config.unwrap_or_else(|| panic!("docs/recipes/{name} has no server configuration")),
        dir,
        env,
    }
}

// ---------------------------------------------------------------------------------------------
// redis-server: the `redis` module's helper.

pub use crate::redis::{RedisServer, redis_server_binary};

// ---------------------------------------------------------------------------------------------
// The upstream OIDC IdP: oauth2-mock-server (npm), pinned in interop/oidc-mock.

/// An `oauth2-mock-server` OpenID provider on a loopback port, started through
/// `interop/oidc-mock/serve.mjs`; killed on drop.
#[derive(Debug)]
pub struct OidcMock {
    child: Option<Child>,
    /// Its issuer (`http://127.0.0.1:<port>`).
    pub issuer: String,
}

/// `interop/oidc-mock/node_modules/.bin/node`; panics with the install command when the
/// packages are not installed.
pub fn oidc_mock_node() -> PathBuf {
    let dir = repo_root().join("interop/oidc-mock");
    let node = dir.join("node_modules/.bin/node");
    let package = dir.join("node_modules/oauth2-mock-server/package.json");
    if !node.exists() || !package.exists() {
        panic!(
            "the upstream IdP mock is not installed. Run `npm ci --prefix {}` (or `bash \
             scripts/test.sh`, which does it) first: these tests start oauth2-mock-server \
             (pinned in interop/oidc-mock/package.json) as the upstream OpenID provider.",
            dir.display()
        );
    }
    node
}

impl OidcMock {
    /// Starts one on a free port. `options` are `serve.mjs` options (`--claims FILE`,
    /// `--claim-issuer URL`, ...).
    pub fn start(options: &[&str]) -> Self {
        let node = oidc_mock_node();
        let script = repo_root().join("interop/oidc-mock/serve.mjs");
        let port = free_port();
        let mut child = Command::new(&node)
            .arg(&script)
            .args(["--port", &port.to_string()])
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()));
        let mut stdout = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let issuer = line
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("serve.mjs did not start: {line:?}"))
            .trim()
            .to_owned();
        Self {
            child: Some(child),
            issuer,
        }
    }
}

impl Drop for OidcMock {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
