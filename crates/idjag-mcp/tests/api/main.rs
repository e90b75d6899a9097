//! Integration tests of idjag-mcp: one binary, one module per side (STYLE: `tests/api` with
//! submodules). Each module needs the features of its side.

#![allow(unreachable_pub)] // test helpers are shared between the submodules of this binary

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "auth-enterprise-managed")]
mod rmcp_ema;
#[cfg(feature = "server")]
mod server;
