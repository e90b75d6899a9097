//! Strict compact-JWS parsing: the first steps of every validation, free of keys and claims.
//!
//! Order: size cap, counted split, strict base64url, UTF-8, duplicate-rejecting JSON, header
//! policy. Nothing past the size check runs on an oversized token (CVE-2025-30204 class).

pub mod base64url;
mod compact;
mod header;
pub(crate) mod json;

pub use compact::{DEFAULT_MAX_TOKEN_BYTES, UnverifiedJws};
pub use header::{Header, typ_matches};
pub use json::parse_object;
