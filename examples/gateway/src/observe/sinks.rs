//! Where audit records go: `idjag-ops`'s sinks ([`LineSink`]: stdout, stderr, a file
//! reopened on SIGHUP, syslog, journald, OTLP logs, a webhook; each behind a bounded queue, so
//! no request waits for one), memory ([`MemorySink`], tests and the demo), or several sinks at
//! once ([`Tee`]).

use std::fmt;
use std::sync::{Arc, Mutex};

use idjag_ops::audit::{Audit, OnFull};

use crate::observe::audit::{AuditRecord, AuditSink};

/// Audit records as JSON lines through `idjag-ops`'s [`Audit`] sinks.
pub struct LineSink {
    audit: Arc<Audit>,
    fail_closed: bool,
}

impl fmt::Debug for LineSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSink")
            .field("audit", &self.audit)
            .field("fail_closed", &self.fail_closed)
            .finish()
    }
}

impl LineSink {
    /// Lines to `audit`; with `on_full = fail_closed`, [`AuditSink::accepting`] is `false`
    /// while a sink is unhealthy (full queue, failing writes).
    pub fn new(audit: Arc<Audit>, on_full: OnFull) -> Self {
        Self {
            audit,
            fail_closed: on_full == OnFull::FailClosed,
        }
    }

    /// The sinks.
    pub fn audit(&self) -> &Arc<Audit> {
        &self.audit
    }
}

/// One record as its JSON line.
pub fn to_line(record: &AuditRecord) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

impl AuditSink for LineSink {
    fn record(&self, record: &AuditRecord) {
        if let Err(error) = self.audit.record(to_line(record)) {
            tracing::warn!(%error, "audit line not queued");
        }
    }

    fn accepting(&self) -> bool {
        !self.fail_closed || self.audit.is_healthy()
    }
}

/// Records kept in memory (tests, the demo).
#[derive(Debug, Default, Clone)]
pub struct MemorySink(Arc<Mutex<Vec<AuditRecord>>>);

impl MemorySink {
    /// Every record so far.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, record: &AuditRecord) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record.clone());
    }
}

/// Several sinks.
#[derive(Debug)]
pub struct Tee(pub Vec<Arc<dyn AuditSink>>);

impl AuditSink for Tee {
    fn record(&self, record: &AuditRecord) {
        for sink in &self.0 {
            sink.record(record);
        }
    }

    fn accepting(&self) -> bool {
        self.0.iter().all(|sink| sink.accepting())
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::observe::audit::{AuditEntry, Outcome};

    #[test]
    fn an_abandoned_entry_is_still_written_once() {
        let sink = MemorySink::default();
        let entry = AuditEntry::new(Arc::new(sink.clone()), UNIX_EPOCH, "r1", "POST");
        drop(entry);
        let finished = AuditEntry::new(Arc::new(sink.clone()), UNIX_EPOCH, "r2", "GET");
        finished.finish(Outcome::Allow, "ok", 200);
        let records = sink.records();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (records[0].reason.as_str(), records[0].status),
            ("client_closed", 499)
        );
        assert_eq!(
            (records[1].decision, records[1].status),
            (Outcome::Allow, 200)
        );
    }
}
