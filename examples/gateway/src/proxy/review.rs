//! How people learn of held calls and act on them, shared across requests: the webhook
//! notifier, the admin page's sign-ins and which MCP sessions declared URL-mode elicitation.
//!
//! Sign-ins and elicitation capabilities are kept by this instance (in memory): with several
//! instances behind a balancer, keep the admin page on one (or sticky), and a session whose
//! `initialize` went through another instance gets the plain JSON-RPC error. Both belong to
//! a configuration generation: a reload signs people out of the page.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::plan::{PagePlan, ReviewPlan};
use crate::policy::approval::notify::Notifier;

/// One admin page sign-in: its CSRF token and expiry. Kept under the SHA-256 of the
/// session id (the id itself is only in the browser's cookie).
#[derive(Clone)]
pub struct SignIn {
    /// The synchronizer token every form of this sign-in carries.
    pub csrf: String,
    /// When it ends (Unix seconds).
    pub expires: i64,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("csrf", &"[redacted]")
            .field("expires", &self.expires)
            .finish()
    }
}

/// The review settings and state.
#[derive(Debug)]
pub struct Review {
    /// The planned settings.
    pub plan: ReviewPlan,
    /// The webhook, when configured.
    pub notifier: Option<Notifier>,
    /// How long a held call waits for a decision (`[admin] approval_ttl`).
    pub approval_ttl: Duration,
    sign_ins: moka::future::Cache<[u8; 32], SignIn>,
    elicitation: moka::future::Cache<(String, [u8; 32]), ()>,
}

/// How long the instance remembers that a session declared URL-mode elicitation after its
/// last held call or `initialize`.
pub const ELICITATION_MEMORY: Duration = Duration::from_secs(24 * 3600);

impl Review {
    /// From the plan.
    pub fn new(plan: ReviewPlan, approval_ttl: Duration) -> Result<Self, String> {
        let notifier = match &plan.webhook {
            Some(webhook) => Some(Notifier::new(
                webhook.url.value().clone(),
                webhook.attempts,
                webhook.timeout,
            )?),
            None => None,
        };
        let (capacity, ttl) = plan.page.as_ref().map_or((1, Duration::from_secs(1)), |p| {
            (p.max_sessions, p.session_ttl)
        });
        Ok(Self {
            plan,
            notifier,
            approval_ttl,
            sign_ins: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            elicitation: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(ELICITATION_MEMORY)
                .build(),
        })
    }

    /// The page settings, when the page is on.
    pub fn page(&self) -> Option<&PagePlan> {
        self.plan.page.as_ref()
    }

    /// Records a sign-in under `session_id`.
    pub async fn sign_in(&self, session_id: &str, sign_in: SignIn) {
        self.sign_ins.insert(digest(session_id), sign_in).await;
    }

    /// The sign-in of `session_id`, if it has not expired at `now`.
    pub async fn signed_in(&self, session_id: &str, now: i64) -> Option<SignIn> {
        let key = digest(session_id);
        let found = self.sign_ins.get(&key).await?;
        if found.expires <= now {
            self.sign_ins.invalidate(&key).await;
            return None;
        }
        Some(found)
    }

    /// Ends the sign-in of `session_id`.
    pub async fn sign_out(&self, session_id: &str) {
        self.sign_ins.invalidate(&digest(session_id)).await;
    }

    /// Remembers that the session `id` at `upstream` declared URL-mode elicitation.
    pub async fn remember_elicitation(&self, upstream: &str, id: &[u8]) {
        self.elicitation
            .insert((upstream.to_owned(), Sha256::digest(id).into()), ())
            .await;
    }

    /// Whether the session `id` at `upstream` declared URL-mode elicitation.
    pub async fn elicits(&self, upstream: &str, id: &[u8]) -> bool {
        self.plan.elicitation
            && self
                .elicitation
                .get(&(upstream.to_owned(), Sha256::digest(id).into()))
                .await
                .is_some()
    }

    /// The status page of approval `id`.
    pub fn status_url(&self, id: &str) -> String {
        format!("{}{id}", self.plan.status_url)
    }

    /// Where administrators review held calls.
    pub fn review_url(&self) -> String {
        if self.plan.page.is_some() {
            format!("{}/admin/page", self.plan.admin_url)
        } else {
            format!("{}/admin/approvals", self.plan.admin_url)
        }
    }
}

fn digest(session_id: &str) -> [u8; 32] {
    Sha256::digest(session_id.as_bytes()).into()
}
