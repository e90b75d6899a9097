//! Integration tests of idjag-client against mock IdP and resource AS servers on loopback.

#![allow(unreachable_pub)] // test helpers are shared between the submodules of this binary

mod support;

mod discovery;
mod leg1;
mod leg2;
mod provider;
mod security;
mod wire;
