//! The page's HTML: every value from a request, a token or the store goes through
//! [`escape`]; the markup around it is fixed. No script, no inline style.

use std::fmt::Write as _;

use serde_json::Value;

use crate::policy::approval::{ApprovalStatus, HeldCall};

/// The stylesheet (`style-src 'self'`).
pub(crate) const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b;background:#fafafa}\
h1{font-size:1.4rem}header{display:flex;justify-content:space-between;align-items:center}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{border:1px solid #ccc;padding:.5rem;text-align:left;vertical-align:top}\
pre{margin:0;white-space:pre-wrap;word-break:break-all;max-width:40rem}\
small{color:#555}code{font-size:.85rem}\
form.inline{display:inline}button{padding:.4rem .9rem;margin:.1rem;cursor:pointer}\
button.approve{background:#1a7f37;color:#fff;border:0}button.reject{background:#b42318;color:#fff;border:0}\
.notice{padding:.6rem;background:#e7f0ff;border:1px solid #9bb8ff;margin-bottom:1rem}\
.error{padding:.6rem;background:#fde8e8;border:1px solid #f5a3a3;margin-bottom:1rem}\
label{display:block;margin:.5rem 0}input[type=password]{width:30rem;max-width:100%}\n";

/// `text` safe in HTML text and in quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `main` (already HTML).
pub(crate) fn document(title: &str, stylesheet: &str, header_extra: &str, main: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - idjag-gateway</title><link rel=\"stylesheet\" href=\"{stylesheet}\"></head>\
         <body><header><h1>{title}</h1>{header_extra}</header><main>{main}</main></body></html>\n",
        title = escape(title),
        stylesheet = escape(stylesheet),
    )
}

/// The sign-in form; `problem` is a fixed sentence.
pub(crate) fn login(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"error\">{}</p>", escape(p)))
        .unwrap_or_default();
    let main = format!(
        "{problem}<form method=\"post\" action=\"/admin/page/login\">\
         <label>Admin token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\" required></label>\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form>\
         <p><small>Sign-in is by the gateway's admin token only.</small></p>"
    );
    document("Approvals: sign in", "/admin/page/style.css", "", &main)
}

fn ago(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

fn status_name(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Pending => "pending",
        ApprovalStatus::Approved => "approved",
        ApprovalStatus::Rejected => "rejected",
        ApprovalStatus::Consumed => "used",
        _ => "unknown",
    }
}

fn text_of(call: &HeldCall, key: &str) -> String {
    match call.details.get(key) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The arguments as the audit rule recorded them, pretty-printed (then escaped).
fn arguments(call: &HeldCall) -> String {
    match call.details.get("arguments") {
        None | Some(Value::Null) => "(not recorded)".to_owned(),
        Some(value) => serde_json::to_string_pretty(value).unwrap_or_default(),
    }
}

fn decision_form(id: &str, decision: &str, label: &str, csrf: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/admin/page/approvals/{id}/{decision}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"{decision}\" id=\"{decision}-{id}\">{label}</button></form>",
        id = escape(id),
        csrf = escape(csrf),
    )
}

/// The list: pending calls with their buttons, then the decided ones.
pub(crate) fn list(calls: &[HeldCall], now: i64, csrf: &str, notice: Option<&str>) -> String {
    let mut main = String::new();
    if let Some(notice) = notice {
        let _ = write!(
            main,
            "<p class=\"notice\" id=\"notice\">{}</p>",
            escape(notice)
        );
    }
    let (pending, decided): (Vec<&HeldCall>, Vec<&HeldCall>) = calls
        .iter()
        .partition(|c| c.status == ApprovalStatus::Pending);
    let _ = write!(main, "<h2>Pending ({})</h2>", pending.len());
    if pending.is_empty() {
        main.push_str("<p id=\"none-pending\">No call is waiting.</p>");
    } else {
        main.push_str(
            "<table id=\"pending\"><thead><tr><th>Held</th><th>User</th><th>Agent</th>\
             <th>Upstream and tool</th><th>Arguments (as the audit log records them)</th>\
             <th>Decision</th></tr></thead><tbody>",
        );
        for call in pending {
            let agent = text_of(call, "agent");
            let _ = write!(
                main,
                "<tr><td>{held} ago<br><small>expires in {expires}</small><br><code>{id}</code></td>\
                 <td>{user}<br><small>{issuer}</small></td><td>{agent}</td>\
                 <td>{upstream}<br><strong>{tool}</strong></td><td><pre>{arguments}</pre></td>\
                 <td>{approve}{reject}</td></tr>",
                held = ago(now - call.created),
                expires = ago(call.expires - now),
                id = escape(&call.id),
                user = escape(&text_of(call, "user")),
                issuer = escape(&text_of(call, "issuer")),
                agent = if agent.is_empty() {
                    "<small>unknown</small>".to_owned()
                } else {
                    escape(&agent)
                },
                upstream = escape(&text_of(call, "upstream")),
                tool = escape(&text_of(call, "tool")),
                arguments = escape(&arguments(call)),
                approve = decision_form(&call.id, "approve", "Approve", csrf),
                reject = decision_form(&call.id, "reject", "Reject", csrf),
            );
        }
        main.push_str("</tbody></table>");
    }
    if !decided.is_empty() {
        main.push_str(
            "<h2>Decided</h2><table id=\"decided\"><thead><tr><th>Status</th><th>User</th>\
             <th>Upstream and tool</th><th>Id</th></tr></thead><tbody>",
        );
        for call in decided {
            let _ = write!(
                main,
                "<tr><td>{status}</td><td>{user}</td><td>{upstream} / {tool}</td><td><code>{id}</code></td></tr>",
                status = status_name(call.status),
                user = escape(&text_of(call, "user")),
                upstream = escape(&text_of(call, "upstream")),
                tool = escape(&text_of(call, "tool")),
                id = escape(&call.id),
            );
        }
        main.push_str("</tbody></table>");
    }
    let sign_out = format!(
        "<form method=\"post\" action=\"/admin/page/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" id=\"sign-out\">Sign out</button></form>",
        escape(csrf)
    );
    document(
        "Calls awaiting approval",
        "/admin/page/style.css",
        &sign_out,
        &main,
    )
}

/// A held call's status page, for the user who made it: its state, upstream and tool only.
pub(crate) fn status(call: Option<&HeldCall>) -> String {
    let main = match call {
        None => "<p id=\"status\">This approval is unknown or has expired. Call the tool again to ask anew.</p>"
            .to_owned(),
        Some(call) => {
            let what = match call.status {
                ApprovalStatus::Pending => "Waiting for an administrator's decision. Reload this page to see it.",
                ApprovalStatus::Approved => "Approved: retry the call now; it runs once.",
                ApprovalStatus::Rejected => "Rejected by an administrator.",
                ApprovalStatus::Consumed => "Approved and already used.",
                _ => "Unknown.",
            };
            format!(
                "<p id=\"status\" class=\"{class}\">{what}</p><p>Tool <strong>{tool}</strong> on {upstream}.</p>",
                class = status_name(call.status),
                tool = escape(&text_of(call, "tool")),
                upstream = escape(&text_of(call, "upstream")),
            )
        }
    };
    document("Approval status", "/approval-status/style.css", "", &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<script>alert('x')</script>" onload="&"#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot; onload=&quot;&amp;"
        );
    }
}
