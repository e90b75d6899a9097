//! The idjag-store integration tests: one binary, one module per area.

#![allow(missing_docs, unreachable_pub)]

#[path = "api/support.rs"]
mod support;

#[path = "api/conformance.rs"]
mod conformance;
