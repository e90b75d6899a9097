//! Conversions to and from the `oauth2` crate's newtypes (feature `oauth2`), so code that
//! already holds rmcp or `oauth2` values hands them over directly.
//!
//! ```
//! use idjag_client::ClientCredentials;
//! let id = oauth2::ClientId::new("agent".into());
//! let secret = oauth2::ClientSecret::new("s3cr3t".into());
//! let credentials = ClientCredentials::oauth2_secret_basic(&id, &secret).unwrap();
//! assert_eq!(credentials.client_id().as_str(), "agent");
//! ```

use idjag_core::{AccessToken, ClientId, ClientSecret};

use crate::auth::ClientCredentials;
use crate::error::InputError;
use crate::redeem::AccessTokenGrant;

/// Our client id from an `oauth2` one (checked: non-empty, bounded, no control characters).
pub fn client_id_from_oauth2(id: &oauth2::ClientId) -> Result<ClientId, InputError> {
    ClientId::new(id.as_str()).map_err(|error| InputError::Identifier {
        what: "client_id",
        error,
    })
}

/// Our client secret from an `oauth2` one.
pub fn client_secret_from_oauth2(secret: &oauth2::ClientSecret) -> ClientSecret {
    ClientSecret::new(secret.secret().as_str())
}

/// An `oauth2` access token from ours.
pub fn access_token_to_oauth2(token: &AccessToken) -> oauth2::AccessToken {
    oauth2::AccessToken::new(token.secret().to_owned())
}

/// Our access token from an `oauth2` one.
pub fn access_token_from_oauth2(token: &oauth2::AccessToken) -> AccessToken {
    AccessToken::new(token.secret().as_str())
}

impl From<&AccessTokenGrant> for oauth2::AccessToken {
    fn from(grant: &AccessTokenGrant) -> Self {
        access_token_to_oauth2(grant.access_token())
    }
}

impl ClientCredentials {
    /// `client_secret_basic` from `oauth2` values.
    pub fn oauth2_secret_basic(
        id: &oauth2::ClientId,
        secret: &oauth2::ClientSecret,
    ) -> Result<Self, InputError> {
        Self::secret_basic(
            client_id_from_oauth2(id)?,
            client_secret_from_oauth2(secret),
        )
    }

    /// `client_secret_post` from `oauth2` values.
    pub fn oauth2_secret_post(
        id: &oauth2::ClientId,
        secret: &oauth2::ClientSecret,
    ) -> Result<Self, InputError> {
        Self::secret_post(
            client_id_from_oauth2(id)?,
            client_secret_from_oauth2(secret),
        )
    }

    /// A public client from an `oauth2` client id.
    pub fn oauth2_public(id: &oauth2::ClientId) -> Result<Self, InputError> {
        Ok(Self::public(client_id_from_oauth2(id)?))
    }
}
