//! The integration tests of idjag-resource: every server runs on 127.0.0.1:0.

mod audit;
mod concurrency;
mod endpoints;
mod layer;
mod rotation;
mod support;
mod token_endpoint;
mod validation;
mod vectors;
