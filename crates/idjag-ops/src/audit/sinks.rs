//! The sink tasks.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};
use tokio::sync::{mpsc, watch};

use super::{
    JournaldSink, Line, SinkClock, SinkConfig, SinkState, SyslogSink, SyslogTransport, WebhookSink,
};

/// Most lines taken from the queue at once.
const BATCH: usize = 256;

/// How long a sink gathers lines after the first of a batch before it writes them: under
/// load one write then carries many lines, instead of a system call (and, for the standard
/// streams and files, a hop to a blocking thread) per line.
const GATHER: Duration = Duration::from_millis(5);

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, milliseconds).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or_else(|| "-".to_owned())
}

pub(super) async fn spawn(
    config: &SinkConfig,
    state: Arc<SinkState>,
    queue: mpsc::Receiver<Line>,
    reopen: watch::Receiver<u64>,
    clock: SinkClock,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let writer = match config {
        SinkConfig::Stdout(_) => Writer::Stream(Box::new(tokio::io::stdout())),
        SinkConfig::Stderr(_) => Writer::Stream(Box::new(tokio::io::stderr())),
        SinkConfig::File(file) => Writer::File {
            file: open(&file.path)
                .await
                .map_err(|e| format!("cannot open {}: {e}", file.path.display()))?,
            path: file.path.clone(),
        },
        SinkConfig::Syslog(syslog) => Writer::Syslog(Syslog::connect(syslog, clock).await?),
        SinkConfig::Journald(journald) => Writer::Journald(Journald::connect(journald)?),
        #[cfg(feature = "otlp")]
        SinkConfig::Otlp(otlp) => Writer::Otlp(otlp_logs::OtlpLogs::new(&otlp.otlp())?),
        #[cfg(not(feature = "otlp"))]
        SinkConfig::Otlp(_) => return Err("OTLP logs need the `otlp` feature".to_owned()),
        SinkConfig::Webhook(webhook) => {
            let webhook = Webhook::new(webhook)?;
            return Ok(tokio::spawn(webhook.run(state, queue)));
        }
    };
    Ok(tokio::spawn(run(writer, state, queue, reopen)))
}

async fn open(path: &std::path::Path) -> io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .await
}

enum Writer {
    Stream(Box<dyn AsyncWrite + Unpin + Send>),
    File {
        path: std::path::PathBuf,
        file: tokio::fs::File,
    },
    Syslog(Syslog),
    Journald(Journald),
    #[cfg(feature = "otlp")]
    Otlp(otlp_logs::OtlpLogs),
}

fn joined(batch: &[Line]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(batch.iter().map(|l| l.len() + 1).sum());
    for line in batch {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    bytes
}

impl Writer {
    async fn write(&mut self, batch: &[Line]) -> io::Result<()> {
        match self {
            Self::Stream(out) => {
                out.write_all(&joined(batch)).await?;
                out.flush().await
            }
            Self::File { file, .. } => {
                file.write_all(&joined(batch)).await?;
                file.flush().await
            }
            Self::Syslog(syslog) => syslog.write(batch).await,
            Self::Journald(journald) => journald.write(batch).await,
            #[cfg(feature = "otlp")]
            Self::Otlp(otlp) => {
                otlp.write(batch);
                Ok(())
            }
        }
    }

    async fn reopen(&mut self, sink: &str) {
        if let Self::File { path, file } = self {
            match open(path).await {
                Ok(new) => {
                    let _ = file.flush().await;
                    *file = new;
                    tracing::info!(sink, path = %path.display(), "audit file reopened");
                }
                Err(error) => {
                    tracing::error!(sink, path = %path.display(), %error, "cannot reopen the audit file; still writing to the open one");
                }
            }
        }
    }

    async fn close(self) {
        match self {
            Self::Stream(mut out) => {
                let _ = out.flush().await;
            }
            Self::File { mut file, .. } => {
                let _ = file.flush().await;
            }
            Self::Syslog(_) | Self::Journald(_) => {}
            #[cfg(feature = "otlp")]
            Self::Otlp(otlp) => otlp.close().await,
        }
    }
}

async fn run(
    mut writer: Writer,
    state: Arc<SinkState>,
    mut queue: mpsc::Receiver<Line>,
    mut reopen: watch::Receiver<u64>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut reopen_open = true;
    loop {
        tokio::select! {
            biased;
            changed = reopen.changed(), if reopen_open => match changed {
                Ok(()) => writer.reopen(&state.name).await,
                Err(_) => reopen_open = false,
            },
            taken = queue.recv_many(&mut batch, BATCH) => {
                if taken == 0 {
                    break;
                }
                if batch.len() < BATCH {
                    tokio::time::sleep(GATHER).await;
                    while batch.len() < BATCH {
                        let Ok(line) = queue.try_recv() else { break };
                        batch.push(line);
                    }
                }
                state.queue_depth(queue.len());
                let result = writer.write(&batch).await;
                if let Err(error) = &result
                    && !state.write_failed.load(Ordering::Acquire)
                {
                    tracing::error!(sink = %state.name, %error, "audit lines could not be written");
                }
                state.wrote(batch.len(), result.is_ok());
                batch.clear();
            }
        }
    }
    writer.close().await;
}

/// RFC 5424 frames.
struct Syslog {
    transport: SyslogTransport,
    address: String,
    unix: Option<UnixDatagram>,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    /// `<PRI>1 ` and ` HOSTNAME APP-NAME PROCID audit - ` around the timestamp.
    pri: String,
    header_rest: String,
    clock: SinkClock,
}

impl Syslog {
    async fn connect(config: &SyslogSink, clock: SinkClock) -> Result<Self, String> {
        let hostname = config.hostname.clone().unwrap_or_else(hostname);
        let pri = format!("<{}>1 ", u16::from(config.facility_code()) * 8 + 6);
        let header_rest = format!(
            " {hostname} {} {} audit - ",
            config.app_name,
            std::process::id()
        );
        let address = config
            .address
            .clone()
            .unwrap_or_else(|| "/dev/log".to_owned());
        let mut syslog = Self {
            transport: config.transport,
            address,
            unix: None,
            udp: None,
            tcp: None,
            pri,
            header_rest,
            clock,
        };
        match syslog.transport {
            SyslogTransport::Unix => {
                let socket = UnixDatagram::unbound().map_err(|e| e.to_string())?;
                socket
                    .connect(&syslog.address)
                    .map_err(|e| format!("cannot connect to {}: {e}", syslog.address))?;
                syslog.unix = Some(socket);
            }
            SyslogTransport::Udp => {
                let target = tokio::net::lookup_host(&syslog.address)
                    .await
                    .map_err(|e| format!("cannot resolve {}: {e}", syslog.address))?
                    .next()
                    .ok_or_else(|| format!("{} has no address", syslog.address))?;
                let local = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
                socket.connect(target).await.map_err(|e| e.to_string())?;
                syslog.udp = Some(socket);
            }
            SyslogTransport::Tcp => {
                // Connected on first use, and again after a failure.
            }
        }
        Ok(syslog)
    }

    fn frame(&self, line: &str) -> String {
        format!(
            "{}{}{}{line}",
            self.pri,
            rfc3339((self.clock)()),
            self.header_rest
        )
    }

    async fn write(&mut self, batch: &[Line]) -> io::Result<()> {
        match self.transport {
            SyslogTransport::Unix => {
                let socket = self.unix.as_ref().ok_or(io::ErrorKind::NotConnected)?;
                for line in batch {
                    socket.send(self.frame(line).as_bytes()).await?;
                }
                Ok(())
            }
            SyslogTransport::Udp => {
                let socket = self.udp.as_ref().ok_or(io::ErrorKind::NotConnected)?;
                for line in batch {
                    socket.send(self.frame(line).as_bytes()).await?;
                }
                Ok(())
            }
            SyslogTransport::Tcp => {
                let mut bytes = Vec::new();
                for line in batch {
                    let frame = self.frame(line);
                    bytes.extend_from_slice(format!("{} ", frame.len()).as_bytes());
                    bytes.extend_from_slice(frame.as_bytes());
                }
                if self.tcp.is_none() {
                    self.tcp = Some(TcpStream::connect(&self.address).await?);
                }
                let Some(stream) = self.tcp.as_mut() else {
                    return Err(io::ErrorKind::NotConnected.into());
                };
                let result = stream.write_all(&bytes).await;
                if result.is_err() {
                    self.tcp = None;
                }
                result
            }
        }
    }
}

/// The journal's native protocol.
struct Journald {
    socket: UnixDatagram,
    fixed: Vec<u8>,
}

fn journal_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

impl Journald {
    fn connect(config: &JournaldSink) -> Result<Self, String> {
        let socket = UnixDatagram::unbound().map_err(|e| e.to_string())?;
        socket
            .connect(&config.socket)
            .map_err(|e| format!("cannot connect to {}: {e}", config.socket.display()))?;
        let mut fixed = Vec::new();
        journal_field(&mut fixed, "PRIORITY", b"6");
        journal_field(&mut fixed, "SYSLOG_FACILITY", b"10");
        journal_field(
            &mut fixed,
            "SYSLOG_IDENTIFIER",
            config.identifier.as_bytes(),
        );
        journal_field(&mut fixed, "IDJAG_AUDIT", b"1");
        Ok(Self { socket, fixed })
    }

    /// One datagram per entry. An entry larger than the socket's datagram limit fails
    /// (journald takes bigger ones only through a memfd, which needs `unsafe` here).
    async fn write(&mut self, batch: &[Line]) -> io::Result<()> {
        for line in batch {
            let mut entry = Vec::with_capacity(self.fixed.len() + line.len() + 16);
            journal_field(&mut entry, "MESSAGE", line.as_bytes());
            entry.extend_from_slice(&self.fixed);
            self.socket.send(&entry).await?;
        }
        Ok(())
    }
}

struct Webhook {
    client: reqwest::Client,
    url: String,
    headers: http::HeaderMap,
    batch_max: usize,
    max_pending: usize,
    retry_initial: std::time::Duration,
    retry_max: std::time::Duration,
}

impl Webhook {
    fn new(config: &WebhookSink) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout.0)
            .build()
            .map_err(|e| e.to_string())?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &config.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name}"))?;
            let mut value = http::HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-ndjson"),
        );
        Ok(Self {
            client,
            url: config.url.clone(),
            headers,
            batch_max: config.batch_max_lines,
            max_pending: config.max_pending_lines,
            retry_initial: config.retry_initial.0,
            retry_max: config.retry_max.0,
        })
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let response = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }

    async fn run(self, state: Arc<SinkState>, mut queue: mpsc::Receiver<Line>) {
        let mut pending: VecDeque<Line> = VecDeque::new();
        let mut closed = false;
        let mut delay = self.retry_initial;
        loop {
            if pending.is_empty() {
                if closed {
                    break;
                }
                match queue.recv().await {
                    Some(line) => pending.push_back(line),
                    None => {
                        closed = true;
                        continue;
                    }
                }
            }
            closed |= take_available(&mut queue, &mut pending, self.max_pending);
            state.queue_depth(queue.len());
            let n = pending.len().min(self.batch_max);
            let body = joined(pending.range(..n).cloned().collect::<Vec<_>>().as_slice());
            match self.post(body).await {
                Ok(()) => {
                    pending.drain(..n);
                    state.written.increment(n as u64);
                    if state.write_failed.swap(false, Ordering::AcqRel) {
                        tracing::info!(sink = %state.name, "audit webhook delivers again");
                        state.update_health();
                    }
                    delay = self.retry_initial;
                }
                Err(reason) => {
                    if !state.write_failed.swap(true, Ordering::AcqRel) {
                        state.update_health();
                    }
                    tracing::warn!(
                        sink = %state.name,
                        reason = %reason,
                        pending = pending.len(),
                        retry_in_ms = delay.as_millis() as u64,
                        "audit webhook failed; retrying the batch"
                    );
                    // Keep taking lines (up to the pending limit) while waiting.
                    let sleep = tokio::time::sleep(delay);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            () = &mut sleep => break,
                            line = queue.recv(), if !closed && pending.len() < self.max_pending => match line {
                                Some(line) => pending.push_back(line),
                                None => closed = true,
                            },
                        }
                    }
                    delay = (delay * 2).min(self.retry_max);
                }
            }
        }
    }
}

/// Moves queued lines into `pending` up to `max`; `true` when the queue is closed.
fn take_available(
    queue: &mut mpsc::Receiver<Line>,
    pending: &mut VecDeque<Line>,
    max: usize,
) -> bool {
    while pending.len() < max {
        match queue.try_recv() {
            Ok(line) => pending.push_back(line),
            Err(mpsc::error::TryRecvError::Empty) => return false,
            Err(mpsc::error::TryRecvError::Disconnected) => return true,
        }
    }
    false
}

#[cfg(feature = "otlp")]
mod otlp_logs {
    use opentelemetry::logs::{
        AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
    };
    use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};

    use super::Line;
    use crate::telemetry::OtlpConfig;

    pub(super) struct OtlpLogs {
        provider: SdkLoggerProvider,
        logger: SdkLogger,
    }

    impl OtlpLogs {
        pub(super) fn new(config: &OtlpConfig) -> Result<Self, String> {
            let exporter =
                crate::telemetry::otlp::log_exporter(config).map_err(|e| e.to_string())?;
            let provider = SdkLoggerProvider::builder()
                .with_batch_exporter(exporter)
                .build();
            let logger = provider.logger("idjag.audit");
            Ok(Self { provider, logger })
        }

        pub(super) fn write(&self, batch: &[Line]) {
            for line in batch {
                let mut record = self.logger.create_log_record();
                record.set_event_name("idjag.audit");
                record.set_severity_number(Severity::Info);
                record.set_severity_text("INFO");
                record.set_body(AnyValue::from(line.to_string()));
                self.logger.emit(record);
            }
        }

        pub(super) async fn close(self) {
            let provider = self.provider;
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_with_milliseconds() {
        let time = UNIX_EPOCH + std::time::Duration::from_millis(1_785_000_000_123);
        assert_eq!(rfc3339(time), "2026-07-25T17:20:00.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn journal_fields_use_the_binary_form_for_newlines() {
        let mut out = Vec::new();
        journal_field(&mut out, "MESSAGE", b"a=b");
        assert_eq!(out, b"MESSAGE=a=b\n");
        let mut out = Vec::new();
        journal_field(&mut out, "MESSAGE", b"a\nb");
        let mut expected = b"MESSAGE\n".to_vec();
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(b"a\nb\n");
        assert_eq!(out, expected);
    }
}
