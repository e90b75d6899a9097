//! What the gateway records: one audit line per request, Prometheus metrics derived from
//! the audit records and its token requests, cache counters.
//!
//! | module | job |
//! |---|---|
//! | [`audit`] | the audit record, the entry that writes it exactly once, the sink trait, the client context |
//! | [`arguments`] | what is recorded of tool arguments |
//! | [`sinks`] | `idjag-ops`'s sinks as an audit sink, memory, several sinks at once |
//! | [`metrics`] | the gateway's Prometheus metrics |
//! | [`outbound`] | token requests with spans and outcome counters |
//! | [`counters`] | cache hit and miss counters |

pub mod arguments;
pub mod audit;
pub mod counters;
pub mod metrics;
pub mod outbound;
pub mod sinks;
