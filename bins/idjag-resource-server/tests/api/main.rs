//! The integration tests of idjag-resource-server: the binary started as a process from a
//! configuration file in the repository (`tests/configs/`), driven over HTTP on loopback.

mod config;
mod endpoints;
mod logs;
mod rotation;
mod shared_state;
mod support;
mod token_endpoint;
mod validation;
