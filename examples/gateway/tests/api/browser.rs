//! The admin page in headless Chromium, driven over the DevTools protocol on
//! `--remote-debugging-pipe` (two FIFOs handed to Chromium as its descriptors 3 and 4 by
//! `bash`; no extra crate): sign in, see the pending call, approve it, the agent's retry runs
//! once; a form without the CSRF token is refused (the Origin and Sec-Fetch-Site checks
//! are tested over HTTP in `approvals`).
//! Screenshots go to `target/screenshots/` (CI keeps them as artifacts).
//!
//! Without Chromium the test says why and passes, except under CI (`CI` set), where it fails:
//! `scripts/test.sh` installs Debian's `chromium`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::approvals::{ADMIN_TOKEN, HOSTILE_TOOL, alice, call_tool, reviewed};
use crate::support::*;

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
struct Browser {
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
    fn launch(executable: &Path) -> Self {
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
        browser.call("Page.enable", json!({}));
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
    fn loading(&mut self, action: impl FnOnce(&mut Self)) {
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

    fn goto(&mut self, url: &str) {
        self.loading(|b| {
            let navigated = b.call("Page.navigate", json!({ "url": url }));
            assert!(navigated.get("errorText").is_none(), "{url}: {navigated}");
        });
    }

    /// Evaluates `script` in the page (the DevTools protocol, not the page's own script: the
    /// page has none and its policy allows none).
    fn eval(&mut self, script: &str) -> Value {
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

    fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    fn click(&mut self, selector: &str) {
        let script = format!("document.querySelector({}).click()", json!(selector));
        self.loading(|b| {
            b.eval(&script);
        });
    }

    fn screenshot(&mut self, name: &str) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(screenshots().join(name), png).unwrap();
    }
}

#[test]
fn in_chromium_an_administrator_signs_in_and_approves_and_the_retry_runs_once() {
    let Some(executable) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: Chromium is missing (scripts/test.sh installs Debian's chromium)"
        );
        eprintln!("skipped: no chromium, chromium-browser or google-chrome on PATH");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let recorder = Recorder::default();
    let (t, _audit) = runtime.block_on(reviewed(recorder.clone(), ""));
    let arguments = json!({ "text": "<script>alert(1)</script>", "page": "Roadmap" });
    let held = runtime.block_on(call_tool(&t, 1, HOSTILE_TOOL, arguments.clone()));
    let id = held["error"]["data"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut browser = Browser::launch(&executable);
    let page = format!("{}/admin/page", t.admin_url);
    browser.goto(&page);
    assert!(browser.text().contains("Admin token"));
    browser.screenshot("approvals-1-sign-in.png");

    browser.eval(&format!(
        "document.getElementById('token').value = {}",
        json!(ADMIN_TOKEN)
    ));
    browser.click("#sign-in");
    let listed = browser.text();
    assert!(listed.contains("Pending (1)"), "{listed}");
    assert!(
        listed.contains(HOSTILE_TOOL),
        "the tool name shown as text: {listed}"
    );
    assert!(listed.contains("<script>alert(1)</script>"), "{listed}");
    // Shown as text, so nothing was injected: no element but the page's own.
    assert_eq!(
        browser.eval("document.querySelectorAll('script, img').length"),
        json!(0)
    );
    // The cookie is HttpOnly: the page's script could not read it.
    assert_eq!(browser.eval("document.cookie"), json!(""));
    browser.screenshot("approvals-2-pending.png");

    // A form without the CSRF token, on the page itself: refused.
    let forge = format!(
        "(() => {{ const f = document.createElement('form'); f.method = 'post'; \
         f.action = '/admin/page/approvals/{id}/approve'; document.body.appendChild(f); f.submit(); }})()"
    );
    browser.loading(|b| {
        b.eval(&forge);
    });
    assert_eq!(browser.text(), "forbidden: missing or wrong CSRF token");
    browser.screenshot("approvals-3-no-csrf-refused.png");

    assert_eq!(recorder.count(), 0);

    browser.goto(&page);
    assert!(browser.text().contains("Pending (1)"));
    browser.click(&format!("#approve-{id}"));
    let approved = browser.text();
    assert!(
        approved.contains("Approved: the agent's identical retry runs once."),
        "{approved}"
    );
    assert!(approved.contains("Pending (0)"), "{approved}");
    browser.screenshot("approvals-4-approved.png");

    let ran = runtime.block_on(call_tool(&t, 2, HOSTILE_TOOL, arguments.clone()));
    assert!(ran.get("result").is_some(), "{ran}");
    assert_eq!(recorder.count(), 1);
    let again = runtime.block_on(call_tool(&t, 3, HOSTILE_TOOL, arguments));
    assert_eq!(again["error"]["data"]["reason"], "approval_held");
    assert_eq!(recorder.count(), 1, "the approval ran once");

    browser.goto(&format!("{}/approval-status/{id}", t.gateway_url));
    assert!(browser.text().contains("Approved and already used."));
    browser.screenshot("approvals-5-status.png");
    // No token on any page.
    assert!(!browser.text().contains(&alice(&t)));
    drop(browser);
    drop(t);
    runtime.shutdown_background();
}
