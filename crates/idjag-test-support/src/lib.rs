//! # idjag-test-support
//!
//! What the idjag crates' integration tests share (never published):
//!
//! - [`clock`]: the fixed test time [`clock::NOW`] and a frozen [`idjag_core::TestClock`].
//! - [`keys`]: signing-key and key-set fixtures.
//! - [`forge`]: hand-made compact JWS (any header, any payload, any signature) for hostile
//!   inputs, and their decoding.
//! - [`form`]: form bodies and `client_secret_basic` headers as a client would send them.
//! - [`net`] (feature `net`): loopback listeners on `127.0.0.1:0` and an axum server task.
//! - [`spawn`] (features `idp`, `resource`, `client`, `mcp`): a real IdP, resource
//!   authorization server and MCP server on loopback.
//! - [`process`] (feature `process`): the servers' binaries as processes from configuration
//!   templates (with [`redis`]'s `redis-server`) and the npm upstream IdP mock.
//! - [`load`] (feature `load`): loopback benchmarks of a server process: the crypto limit,
//!   a lean HTTP/1.1 load, and the CPU time each side spent.
//! - [`redis`] (feature `redis`): a real `redis-server` on a free loopback port, killed and
//!   restarted at will.
//! - [`json_reference`] (feature `json-reference`): reference JSON parsers that disagree
//!   where real ones do, and a generator of hostile JSON-RPC bodies, for differential tests.
//! - [`logs`]: one process-wide `tracing` capture, per-thread views of it, and
//!   [`logs::assert_no_secret`].
//!
//! ```
//! use idjag_test_support::{clock, forge, keys};
//! use serde_json::json;
//!
//! let key = keys::es256("idp-key-1");
//! let token = forge::jws(
//!     &json!({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": "idp-key-1"}),
//!     &json!({"iss": "https://idp.example", "iat": clock::NOW}),
//!     Some(&key),
//! );
//! let (header, claims) = forge::decode(&token);
//! assert_eq!(header["kid"], "idp-key-1");
//! assert_eq!(claims["iat"], clock::NOW);
//! idjag_test_support::logs::assert_no_secret(&token, &["s3cret"]);
//! ```
//!
//! Helpers panic on failure: they are for tests only.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod clock;
pub mod forge;
pub mod form;
#[cfg(feature = "json-reference")]
pub mod json_reference;
pub mod keys;
#[cfg(feature = "load")]
pub mod load;
pub mod logs;
#[cfg(feature = "net")]
pub mod net;
#[cfg(feature = "process")]
pub mod process;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(
    feature = "idp",
    feature = "resource",
    feature = "client",
    feature = "mcp"
))]
pub mod spawn;
