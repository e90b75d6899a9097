//! Server-side request plumbing shared by the IdP, the resource AS, resource servers and the
//! gateway: strict form parsing, client authentication, replay detection, bearer tokens and
//! OAuth responses (challenges are in [`crate::challenge`]). Pure functions over `http` types; no sockets.

mod bearer;
mod client_auth;
mod form;
mod replay;
mod request;
mod response;

pub use bearer::{BearerError, bearer_token};
pub use client_auth::{
    AuthenticatedClient, ClientAuthError, ClientAuthErrorKind, ClientAuthMethod,
    ClientAuthenticator, ClientRegistry, PresentedCredentials, RegisteredClient,
    RegisteredCredential, SecretCheck, SecretHash, StaticClientRegistry,
};
pub use form::{FormBody, FormError, MAX_FORM_PARAMETERS, is_form_content_type};
pub use replay::{
    DEFAULT_REPLAY_PER_HOLDER, InMemoryReplayCache, Replay, ReplayCache, ReplayKey,
    ReplayStoreError,
};
pub use request::{FormRequestError, read_form_request};
pub use response::{error_response, json_response, no_store_headers};
