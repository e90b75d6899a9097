//! The idjag manual: the long-form pages of the repository's `docs/` folder.
//!
//! - [`flow`]: each step of the flow, which crate plays it, and the order of the checks at
//!   the IdP and at the resource authorization server;
//! - [`requirements`]: the requirements checklist, with the source section of each
//!   requirement and where idjag implements it, and the decisions on open questions;
//! - [`threat_model`]: each attack, its mitigation and the tests that prove it, and the
//!   RFC 8725 §3 practices.
//!
//! The crates' documentation cites these pages as "requirement TX-08", "decision D-07",
//! "threat G16" and "redemption check 13". Links between the pages point at the repository.

#[doc = include_str!("../docs/flow.md")]
pub mod flow {}

#[doc = include_str!("../docs/requirements.md")]
pub mod requirements {}

#[doc = include_str!("../docs/threat-model.md")]
pub mod threat_model {}
