//! What the gateway records: one audit line per request, Prometheus metrics derived from
//! the audit records, and cache counters.
//!
//! | module | job |
//! |---|---|
//! | [`audit`] | the audit record, the entry that writes it exactly once, the sink trait |
//! | [`arguments`] | what is recorded of tool arguments |
//! | [`sinks`] | JSON lines on a writer thread, memory, several sinks at once |
//! | [`metrics`] | Prometheus `/metrics` |
//! | [`counters`] | cache hit and miss counters |

pub mod arguments;
pub mod audit;
pub mod counters;
pub mod metrics;
pub mod sinks;
