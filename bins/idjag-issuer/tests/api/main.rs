//! The integration tests of idjag-issuer: the binary started as a process from configuration
//! files in the repository (`tests/configs/`), driven over HTTP on loopback.

mod bridge;
mod config;
mod exchange;
mod rotation;
mod support;
