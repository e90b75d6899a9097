//! Where audit records go: JSON lines written by a dedicated thread ([`JsonLines`]), memory
//! ([`MemorySink`], tests and the demo), or several sinks at once ([`Tee`]).

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::observe::audit::{AuditRecord, AuditSink};

/// Bytes of lines waiting for the writer before requests wait for it: 8 MiB.
const MAX_PENDING: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    has_data: std::sync::Condvar,
    has_space: std::sync::Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// JSON lines to any writer (stdout, stderr, a file), written by a dedicated thread so no
/// request waits on the output.
///
/// With a batch interval (the default is 10 ms, `[audit] flush_interval`), requests append
/// to a buffer and the writer writes and flushes it once per interval: under load, one write
/// carries many lines and no request wakes a thread. With an interval of zero, each line
/// wakes the writer and is written and flushed on its own. Lines are never dropped: when
/// 8 MiB are waiting, requests wait for the writer. Dropping the sink writes what is queued.
/// A process killed outright can lose the last interval's lines (the operating system keeps
/// what was written).
pub struct JsonLines {
    queue: Arc<Queue>,
    interval: std::time::Duration,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLines")
            .field("interval", &self.interval)
            .finish()
    }
}

/// The default batch interval of [`JsonLines`].
pub const DEFAULT_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

impl JsonLines {
    /// Lines to `out`, batched every [`DEFAULT_FLUSH_INTERVAL`].
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_interval(out, DEFAULT_FLUSH_INTERVAL)
    }

    /// Lines to `out`, batched every `interval` (zero: each line on its own).
    pub fn with_interval(mut out: Box<dyn Write + Send>, interval: std::time::Duration) -> Self {
        let queue = Arc::new(Queue::default());
        let shared = queue.clone();
        let writer = std::thread::Builder::new()
            .name("idjag-audit".into())
            .spawn(move || {
                loop {
                    let mut pending = shared.lock();
                    while pending.lines.is_empty() && !pending.closed {
                        pending = shared
                            .has_data
                            .wait(pending)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                    let batch = std::mem::take(&mut pending.lines);
                    let closed = pending.closed;
                    shared.has_space.notify_all();
                    drop(pending);
                    if !batch.is_empty()
                        && out.write_all(&batch).and_then(|()| out.flush()).is_err()
                    {
                        tracing::error!("the audit log could not be written");
                    }
                    if closed && batch.is_empty() {
                        return;
                    }
                    if !interval.is_zero() && !closed {
                        std::thread::sleep(interval);
                    }
                }
            })
            .ok();
        Self {
            queue,
            interval,
            writer,
        }
    }
}

impl Drop for JsonLines {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.has_data.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl AuditSink for JsonLines {
    fn record(&self, record: &AuditRecord) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        if self.writer.is_none() {
            tracing::error!("the audit log writer could not be started");
            return;
        }
        let mut pending = self.queue.lock();
        while pending.lines.len() >= MAX_PENDING && !pending.closed {
            self.queue.has_data.notify_all();
            pending = self
                .queue
                .has_space
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        let was_empty = pending.lines.is_empty();
        pending.lines.extend_from_slice(&line);
        drop(pending);
        // The writer sleeps between batches; it waits for data only when the buffer ran
        // empty, and then one wake-up per batch is enough.
        if was_empty {
            self.queue.has_data.notify_one();
        }
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
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use serde_json::Value;

    use super::*;
    use crate::observe::audit::{AuditEntry, Outcome};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_writes_every_line_once_in_order_before_drop_returns() {
        for interval in [std::time::Duration::ZERO, DEFAULT_FLUSH_INTERVAL] {
            let out = Shared::default();
            let sink = JsonLines::with_interval(Box::new(out.clone()), interval);
            for i in 0..100 {
                let entry = AuditEntry::new(
                    Arc::new(MemorySink::default()),
                    UNIX_EPOCH,
                    &format!("r{i}"),
                    "POST",
                );
                sink.record(&entry.record);
                if i == 50 {
                    std::thread::sleep(std::time::Duration::from_millis(30));
                }
            }
            drop(sink);
            let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            let ids: Vec<String> = text
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["request_id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            assert_eq!(
                ids,
                (0..100).map(|i| format!("r{i}")).collect::<Vec<_>>(),
                "{interval:?}"
            );
        }
    }

    #[test]
    fn a_line_reaches_the_output_within_the_interval_without_drop() {
        let out = Shared::default();
        let sink = JsonLines::new(Box::new(out.clone()));
        let entry = AuditEntry::new(Arc::new(MemorySink::default()), UNIX_EPOCH, "r1", "GET");
        sink.record(&entry.record);
        let started = std::time::Instant::now();
        while out.0.lock().unwrap().is_empty()
            && started.elapsed() < std::time::Duration::from_secs(2)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(
            String::from_utf8(out.0.lock().unwrap().clone())
                .unwrap()
                .contains("\"r1\"")
        );
        drop(sink);
    }

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
