//! Headless Chromium for the page tests, driven over the DevTools protocol on
//! `--remote-debugging-pipe` (two FIFOs handed to Chromium as its descriptors 3 and 4 by
//! `bash`; no extra crate). One page per [`Browser`]; what the page logged, its document's
//! response headers and screenshots under `target/screenshots/` (CI keeps them as artifacts).
//!
//! Without Chromium [`chromium_or_skip`] says why and the test passes, except under CI (`CI`
//! set), where it fails: `scripts/test.sh` installs Debian's `chromium`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::random;

/// Chromium's executable, if there is one.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let output = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            (output.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
}

/// Chromium's executable; without one, `None` after saying so (a failure under CI).
pub(crate) fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: Chromium is missing (scripts/test.sh installs Debian's chromium)"
        );
        eprintln!("skipped: no chromium, chromium-browser or google-chrome on PATH");
    }
    found
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How long a silent DevTools pipe means Chromium is stuck (a guard against hanging, not a
/// timing assertion).
const HANG: std::time::Duration = std::time::Duration::from_secs(90);

/// One headless Chromium and one page, over the DevTools pipe.
pub(crate) struct Browser {
    child: Child,
    to: std::fs::File,
    from: std::sync::mpsc::Receiver<Value>,
    next: u64,
    session: String,
    events: Vec<Value>,
    dir: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Browser {
    pub(crate) fn launch(executable: &Path) -> Self {
        let dir = std::env::temp_dir().join(random("idjag-chromium"));
        std::fs::create_dir_all(&dir).unwrap();
        let (input, output) = (dir.join("in"), dir.join("out"));
        for fifo in [&input, &output] {
            assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
        }
        let child = Command::new("bash")
            .args([
                "-c",
                "exec \"$0\" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
                 --no-first-run --no-default-browser-check --remote-debugging-pipe \
                 --window-size=1280,900 --user-data-dir=\"$1/profile\" about:blank 3<\"$1/in\" 4>\"$1/out\"",
            ])
            .arg(executable)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The same order as bash: its descriptor 3 (our writer), then 4 (our reader).
        let to = std::fs::OpenOptions::new()
            .write(true)
            .open(&input)
            .unwrap();
        let mut pipe = BufReader::new(std::fs::File::open(&output).unwrap());
        // A reader thread, so a page that never loads fails the test instead of hanging it.
        let (sender, from) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            loop {
                let mut buffer = Vec::new();
                match pipe.read_until(0, &mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        buffer.pop();
                        let Ok(message) = serde_json::from_slice(&buffer) else {
                            break;
                        };
                        if sender.send(message).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut browser = Self {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            events: Vec::new(),
            dir,
        };
        let target = browser.browser_call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = browser.browser_call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page", "Network", "Runtime", "Log"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        browser
    }

    fn read(&mut self) -> Value {
        match self.from.recv_timeout(HANG) {
            Ok(message) => message,
            Err(e) => panic!(
                "no DevTools message ({e}); events so far: {:?}",
                self.events
            ),
        }
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next += 1;
        let mut message = json!({ "id": self.next, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let answer = self.read();
            if answer["id"] == json!(self.next) {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
            if answer.get("method").is_some() {
                self.events.push(answer);
            }
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(session))
    }

    /// Runs `action` (which loads a page) and waits for that page's `load` event.
    pub(crate) fn loading(&mut self, action: impl FnOnce(&mut Self)) {
        self.events.clear();
        action(self);
        while !self
            .events
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired" && e["sessionId"] == json!(self.session))
        {
            let event = self.read();
            if event.get("method").is_some() {
                self.events.push(event);
            }
        }
    }

    pub(crate) fn goto(&mut self, url: &str) {
        self.loading(|b| {
            let navigated = b.call("Page.navigate", json!({ "url": url }));
            assert!(navigated.get("errorText").is_none(), "{url}: {navigated}");
        });
    }

    /// Evaluates `script` in the page (the DevTools protocol, not the page's own script: the
    /// pages have none and their policies allow none).
    pub(crate) fn eval(&mut self, script: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": script, "returnByValue": true }),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{script}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// The text of the element `selector` (empty without one).
    pub(crate) fn text_of(&mut self, selector: &str) -> String {
        let script = format!(
            "document.querySelector({})?.innerText ?? ''",
            json!(selector)
        );
        self.eval(&script).as_str().unwrap_or("").to_owned()
    }

    pub(crate) fn text(&mut self) -> String {
        self.text_of("body")
    }

    pub(crate) fn click(&mut self, selector: &str) {
        let script = format!("document.querySelector({}).click()", json!(selector));
        self.loading(|b| {
            b.eval(&script);
        });
    }

    /// The `Network.responseReceived` parameters of the page's document.
    fn document(&self) -> &Value {
        self.events
            .iter()
            .rev()
            .find(|e| {
                e["method"] == "Network.responseReceived" && e["params"]["type"] == "Document"
            })
            .map(|e| &e["params"])
            .expect("the document's response")
    }

    /// The status and headers (names in lower case) of the page's document, as received.
    pub(crate) fn document_response(&self) -> (u64, Vec<(String, String)>) {
        let response = &self.document()["response"];
        let headers = response["headers"]
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        (response["status"].as_u64().unwrap_or(0), headers)
    }

    /// What the page reported as an error since it started loading: console errors, uncaught
    /// exceptions, and log entries at level `error` (failed loads, policy violations), but
    /// for the one Chromium logs for an error page's own status.
    pub(crate) fn console_errors(&mut self) -> Vec<String> {
        // A round trip, so every event sent before it has been read.
        self.eval("0");
        let document = self.document()["requestId"].clone();
        self.events
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => Some(p["exceptionDetails"].to_string()),
                    "Runtime.consoleAPICalled" if p["type"] == "error" => {
                        Some(p["args"].to_string())
                    }
                    "Log.entryAdded"
                        if p["entry"]["level"] == "error"
                            && p["entry"]["networkRequestId"] != document =>
                    {
                        Some(p["entry"].to_string())
                    }
                    _ => None,
                }
            })
            .collect()
    }

    pub(crate) fn screenshot(&mut self, name: &str) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(screenshots().join(name), png).unwrap();
    }
}
