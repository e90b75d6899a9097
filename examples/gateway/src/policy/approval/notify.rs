//! The notification of a newly held call: one `POST` of a JSON body that Slack- and
//! Teams-style incoming webhooks accept (a `text` line, plus the same facts as structured
//! members for anything else), tried a bounded number of times.
//!
//! The body names the approval, the upstream, the tool, the user, the IdP and the agent, when
//! the call expires and where to review it; never an argument value, a token or a secret. The
//! webhook URL is itself a secret (incoming-webhook URLs carry their credential): it is never
//! logged, and a failed attempt is logged without it.

use std::sync::Arc;
use std::time::Duration;

use idjag_core::ClientSecret;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::policy::approval::HeldDetails;

/// Most notifications being delivered at once; beyond, a notification is dropped (and
/// logged): a stuck webhook must not pile up tasks.
pub const MAX_IN_FLIGHT: usize = 64;

/// The first pause between attempts; it doubles after each, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a notification says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Notice {
    /// The approval id.
    pub id: String,
    /// Who, where, what (the arguments are not sent).
    pub details: HeldDetails,
    /// When the call expires (Unix seconds).
    pub expires: i64,
    /// Where administrators review it.
    pub review_url: String,
}

impl Notice {
    /// A notice of approval `id`.
    pub fn new(id: &str, details: HeldDetails, expires: i64, review_url: &str) -> Self {
        Self {
            id: id.to_owned(),
            details,
            expires,
            review_url: review_url.to_owned(),
        }
    }

    /// The JSON body: `text` (Slack, Teams), then the same facts as members.
    pub fn body(&self) -> Value {
        let d = &self.details;
        let agent = d.agent.as_deref().unwrap_or("unknown agent");
        let text = format!(
            "Approval needed: {user} ({issuer}) through {agent} called {tool} on {upstream}. Review: {url}",
            user = slack_escape(&d.user),
            issuer = slack_escape(&d.issuer),
            agent = slack_escape(agent),
            tool = slack_escape(&d.tool),
            upstream = slack_escape(&d.upstream),
            url = slack_escape(&self.review_url),
        );
        json!({
            "text": text,
            "event": "approval_held",
            "approval_id": self.id,
            "upstream": d.upstream,
            "tool": d.tool,
            "user": d.user,
            "issuer": d.issuer,
            "agent": d.agent,
            "expires": self.expires,
            "review_url": self.review_url,
        })
    }
}

/// `&`, `<` and `>` as Slack's message text wants them (they start links and mentions).
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Sends notices to one webhook.
#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    url: ClientSecret,
    attempts: u32,
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("url", &"[redacted]")
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// A 2xx answer, after this many attempts.
    Delivered(u32),
    /// Refused for good (a 4xx answer other than 408 and 429).
    Refused(u16),
    /// Every attempt failed.
    GaveUp,
}

impl Notifier {
    /// A notifier posting to `url`, `attempts` times at most, each within `timeout`; no
    /// redirects are followed.
    pub fn new(url: ClientSecret, attempts: u32, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Self {
            client,
            url: url.clone(),
            attempts: attempts.max(1),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Sends `notice` in the background (the held call's answer does not wait for it).
    pub fn spawn(&self, notice: Notice) {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(approval = %notice.id, "approval notification dropped: too many in flight");
            return;
        };
        let notifier = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            notifier.deliver(&notice).await;
        });
    }

    /// Sends `notice` now, retrying network errors, 408, 429 and 5xx answers with backoff.
    pub async fn deliver(&self, notice: &Notice) -> Delivery {
        let body = notice.body().to_string();
        let mut pause = FIRST_BACKOFF;
        for attempt in 1..=self.attempts {
            let sent = self
                .client
                .post(self.url.secret())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(approval = %notice.id, attempt, "approval notification delivered");
                    return Delivery::Delivered(attempt);
                }
                Ok(response) => {
                    let status = response.status();
                    let again = status.is_server_error()
                        || status == http::StatusCode::TOO_MANY_REQUESTS
                        || status == http::StatusCode::REQUEST_TIMEOUT;
                    tracing::warn!(approval = %notice.id, attempt, status = status.as_u16(), "approval notification refused");
                    if !again {
                        return Delivery::Refused(status.as_u16());
                    }
                }
                Err(error) => {
                    // Without the URL: it is a secret.
                    let error = error.without_url();
                    tracing::warn!(approval = %notice.id, attempt, %error, "approval notification failed");
                }
            }
            if attempt < self.attempts {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
        tracing::warn!(approval = %notice.id, attempts = self.attempts, "approval notification given up");
        Delivery::GaveUp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_text_and_facts_but_no_arguments() {
        let notice = Notice {
            id: "apr_1".into(),
            details: HeldDetails {
                upstream: "notes".into(),
                tool: "<!channel> & co".into(),
                user: "alice".into(),
                issuer: "https://idp.example".into(),
                agent: Some("chat".into()),
                arguments: Some(json!({ "secret_value": "hunter2" })),
                arguments_sha256: "ab".into(),
                policy_version: "cd".into(),
            },
            expires: 1_000,
            review_url: "https://admin.example/admin/page".into(),
        };
        let body = notice.body();
        assert_eq!(
            body["text"],
            "Approval needed: alice (https://idp.example) through chat called &lt;!channel&gt; &amp; co \
             on notes. Review: https://admin.example/admin/page"
        );
        assert_eq!(body["tool"], "<!channel> & co");
        assert_eq!(body["approval_id"], "apr_1");
        let text = body.to_string();
        assert!(
            !text.contains("hunter2")
                && !text.contains("secret_value")
                && !text.contains("arguments")
        );
    }
}
