//! MCP over HTTP, as plain functions with no state: which headers cross the gateway, the
//! JSON-RPC message a client sends and the errors the gateway answers with, SSE framing and
//! request ids. The proxy, the bridging modes, the admin API and the demo's agent share
//! them.

pub mod headers;
pub mod jsonrpc;
pub mod request_id;
pub mod sse;
