//! # idjag
//!
//! The facade over the idjag crates: the Identity Assertion JWT Authorization
//! Grant (ID-JAG) and the MCP Enterprise-Managed Authorization extension.
//!
//! `idjag::core` is always present; enable a role with a feature:
//!
//! | feature    | crate            | for                                      |
//! |------------|------------------|------------------------------------------|
//! | (always)   | [`core`]         | JOSE parsing, keys, claims, validation   |
//! | `client`   | `client`         | the requesting app: token exchange, JWT-bearer, discovery, caching |
//! | `idp`      | `idp`            | IdP-side issuance (token exchange)       |
//! | `resource` | `resource`       | resource AS (JWT-bearer redemption, RFC 9068 tokens) and resource-server bearer checks |
//! | `mcp`      | `mcp`            | MCP Enterprise-Managed Authorization on rmcp: capability, authorizing client, server pieces |
//!
//! The crypto backend is `aws-lc-rs` (default) or `josekit` (OpenSSL): every role crate takes
//! its signatures, keys and random ids from idjag-core's backend, so
//! `--no-default-features --features josekit,client,idp,resource,mcp` builds the whole facade on
//! OpenSSL. Shared vocabulary (subject token types, the `WWW-Authenticate: Bearer` challenge,
//! token-endpoint request errors) lives in [`core`] once and the role crates use it.
//!
//! ```
//! use idjag::core::wire;
//! assert_eq!(wire::TOKEN_TYPE_ID_JAG, "urn:ietf:params:oauth:token-type:id-jag");
//! ```
//!
//! The [`manual`] module holds the long-form documentation: the flow, the requirements
//! checklist and the threat model.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod manual;

pub use idjag_core as core;

#[cfg(feature = "client")]
pub use idjag_client as client;
#[cfg(feature = "idp")]
pub use idjag_idp as idp;
#[cfg(feature = "mcp")]
pub use idjag_mcp as mcp;
#[cfg(feature = "resource")]
pub use idjag_resource as resource;
