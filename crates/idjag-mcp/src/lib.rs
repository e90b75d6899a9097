//! # idjag-mcp
//!
//! MCP Enterprise-Managed Authorization on rmcp.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod capability;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod server;

pub use capability::{EXTENSION_ID, EnterpriseManagedAuthorization};
