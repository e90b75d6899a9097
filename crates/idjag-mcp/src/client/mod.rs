//! The client side: an rmcp Streamable HTTP client whose requests carry access tokens from the
//! ID-JAG flow.
//!
//! - [`EmaAuthorizer`]: built once per app from an [`idjag_client::TokenProvider`] (the IdP,
//!   the cache) and the app's [`ResourceAsRegistrations`].
//! - [`EmaAuthClient`]: one per user ([`EmaAuthorizer::client`]); an rmcp
//!   `StreamableHttpClient` around any other one (reqwest by default, [`mcp_http_client`]).
//! - [`UserTokenSource`]: where the user's subject token comes from ([`SharedUserToken`] to
//!   replace it after a new sign-in).
//! - [`AuthorizationError`] and [`authorization_error`]: the typed failure, found in any rmcp
//!   error.

mod authorizer;
mod error;
#[cfg(feature = "auth-enterprise-managed")]
pub mod rmcp_ema;
mod transport;

pub use authorizer::{EmaAuthorizer, ResourceAsRegistrations, SharedUserToken, UserTokenSource};
pub use error::{
    AuthorizationError, BoxError, EmaHttpError, EmaTransportError, authorization_error,
    transport_error,
};
pub use transport::{EmaAuthClient, mcp_http_client};
