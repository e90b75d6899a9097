//! # idjag-gateway
//!
//! The reference MCP gateway of idjag.
#![forbid(unsafe_code)]

pub mod audit;
pub mod authz;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
mod gateway;
pub mod headers;
pub mod identity;
pub mod inbound;
pub mod jsonrpc;
pub mod proxy;
mod reply;
pub mod server;
pub mod session;
pub mod sse;
pub mod upstream;

pub use config::Config;
pub use gateway::{BuildError, Gateway, GatewayBuilder};
