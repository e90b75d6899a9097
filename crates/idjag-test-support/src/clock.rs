//! The fixed test time.

use idjag_core::TestClock;

/// The Unix time every test starts at: 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000;

/// A test clock frozen at [`NOW`]; step it with [`TestClock::advance`].
pub fn frozen() -> TestClock {
    TestClock::at_unix(NOW)
}
