//! The injected clock. Library code reads time only through a [`Clock`], so tests can freeze
//! and step it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in whole seconds since the Unix epoch (negative before it).
    fn now_unix(&self) -> i64 {
        match self.now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemClock;

impl SystemClock {
    /// A shared handle to the system clock.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system time
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A settable clock for tests. Clones share the same time.
///
/// ```
/// use idjag_core::{Clock, TestClock};
/// use std::time::Duration;
/// let clock = TestClock::at_unix(1_700_000_000);
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now_unix(), 1_700_000_030);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    /// A clock frozen at `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: i64) -> Self {
        Self(Arc::new(AtomicI64::new(secs.saturating_mul(1000))))
    }

    /// Sets the time to `secs` seconds after the Unix epoch.
    pub fn set_unix(&self, secs: i64) {
        self.0.store(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the clock forward (millisecond resolution).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the clock backward (millisecond resolution).
    pub fn rewind(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_sub(ms, Ordering::SeqCst);
    }

    /// A shared handle to this clock.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        let ms = self.0.load(Ordering::SeqCst);
        if ms >= 0 {
            UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
        }
    }
}
