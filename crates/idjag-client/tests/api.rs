//! Integration tests of idjag-client against mock IdP and resource AS servers on loopback.

#![allow(unreachable_pub)] // test helpers are shared between the submodules of this binary

#[path = "api/support.rs"]
mod support;

#[path = "api/discovery.rs"]
mod discovery;

#[path = "api/leg1.rs"]
mod leg1;

#[path = "api/leg2.rs"]
mod leg2;

#[path = "api/provider.rs"]
mod provider;

#[path = "api/security.rs"]
mod security;

#[path = "api/wire.rs"]
mod wire;
