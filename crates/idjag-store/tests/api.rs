//! The idjag-store integration tests: one binary, one module per area.

#![allow(missing_docs, unreachable_pub)]

#[path = "api/support.rs"]
mod support;

#[path = "api/conformance.rs"]
mod conformance;

#[path = "api/caps.rs"]
mod caps;

#[path = "api/redis.rs"]
mod redis;

#[path = "api/embedded.rs"]
mod embedded;

#[path = "api/secrets.rs"]
mod secrets;

#[path = "api/config.rs"]
mod config;

#[path = "api/model.rs"]
mod model;
