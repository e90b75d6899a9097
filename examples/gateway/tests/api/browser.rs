//! The admin page in headless Chromium ([`crate::chromium`]): sign in, see the pending
//! call, approve it, the agent's retry runs once; a form without the CSRF token is refused
//! (the Origin and Sec-Fetch-Site checks are tested over HTTP in `approvals`). Screenshots
//! `approvals-*.png`.

use serde_json::json;

use crate::approvals::{ADMIN_TOKEN, HOSTILE_TOOL, alice, call_tool, reviewed};
use crate::chromium::{Browser, chromium_or_skip};
use crate::support::*;

#[test]
fn in_chromium_an_administrator_signs_in_and_approves_and_the_retry_runs_once() {
    let Some(executable) = chromium_or_skip() else {
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
