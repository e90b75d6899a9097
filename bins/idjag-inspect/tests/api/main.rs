//! `idjag-inspect` from the outside: the library against a JWK Set served over loopback HTTP,
//! and the binary's verdicts and exit codes.

mod cli;
mod remote_jwks;
