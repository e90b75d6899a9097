//! The crate's integration tests: real sockets on loopback.

#![allow(missing_docs, unreachable_pub)]

#[path = "api/audit.rs"]
mod audit;
#[path = "api/env.rs"]
mod env;
#[path = "api/listener.rs"]
mod listener;
#[path = "api/reload.rs"]
mod reload;
#[path = "api/support.rs"]
mod support;
#[path = "api/telemetry.rs"]
mod telemetry;
#[path = "api/tls.rs"]
mod tls;
