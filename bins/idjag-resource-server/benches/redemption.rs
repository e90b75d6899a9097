//! Placeholder, replaced by the loopback benchmark.
fn main() {}
