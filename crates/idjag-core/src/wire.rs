//! Wire constants: every URN, media type and identifier the ID-JAG flow puts on the wire.
//!
//! Values are quoted exactly from the specifications named on each constant.

/// Grant type of an RFC 8693 token exchange (leg 1, at the IdP). Requirement TX-01.
pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Grant type of an RFC 7523 JWT-bearer authorization grant (leg 2, at the resource AS).
/// requirement JB-01.
pub const GRANT_TYPE_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The draft DPoP-bound JWT grant (draft-parecki-oauth-jwt-dpop-grant); idjag does not support it.
pub const GRANT_TYPE_JWT_DPOP: &str = "urn:ietf:params:oauth:grant-type:jwt-dpop";
/// Grant type of RFC 6749 §4.4 client credentials.
pub const GRANT_TYPE_CLIENT_CREDENTIALS: &str = "client_credentials";
/// Grant type of RFC 6749 §6 refresh.
pub const GRANT_TYPE_REFRESH_TOKEN: &str = "refresh_token";
/// Grant type of RFC 6749 §4.1 authorization code.
pub const GRANT_TYPE_AUTHORIZATION_CODE: &str = "authorization_code";

/// Token type URN of an ID-JAG (`requested_token_type`, `issued_token_type`). Requirements TX-02,
/// TX-15.
pub const TOKEN_TYPE_ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
/// Token type URN of an OIDC ID token used as a subject token. Requirement TX-05.
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// Token type URN of a refresh token used as a subject token. Requirement TX-05.
pub const TOKEN_TYPE_REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
/// Token type URN of a base64url SAML 2.0 assertion used as a subject token. Requirement TX-05.
pub const TOKEN_TYPE_SAML2: &str = "urn:ietf:params:oauth:token-type:saml2";
/// Token type URN of an access token (RFC 8693 §3).
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Token type URN of a generic JWT (RFC 8693 §3).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Grant profile identifier advertised in `authorization_grant_profiles_supported`. Requirement
/// MD-03.
pub const GRANT_PROFILE_ID_JAG: &str = "urn:ietf:params:oauth:grant-profile:id-jag";

/// Client assertion type of RFC 7523 §2.2 `private_key_jwt`.
pub const CLIENT_ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// JOSE `typ` of an ID-JAG (ID-JAG -04 §3.1). Requirement IDJAG-01.
pub const TYP_ID_JAG: &str = "oauth-id-jag+jwt";
/// JOSE `typ` of an RFC 9068 JWT access token. Requirement JWT-10.
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";
/// JOSE `typ` of a client-authentication JWT (draft-ietf-oauth-rfc7523bis).
pub const TYP_CLIENT_AUTHENTICATION: &str = "client-authentication+jwt";
/// JOSE `typ` of a DPoP proof (RFC 9449).
pub const TYP_DPOP: &str = "dpop+jwt";
/// The generic JOSE `typ` many issuers put on ID tokens and client assertions.
pub const TYP_JWT: &str = "JWT";

/// Media type of an ID-JAG (`application/oauth-id-jag+jwt`, ID-JAG -04 §10.1).
pub const MEDIA_TYPE_ID_JAG: &str = "application/oauth-id-jag+jwt";
/// Media type of an RFC 9068 access token.
pub const MEDIA_TYPE_ACCESS_TOKEN: &str = "application/at+jwt";
/// Media type of a JWK Set (RFC 7517 §8.5).
pub const MEDIA_TYPE_JWK_SET: &str = "application/jwk-set+json";
/// Media type of OAuth form bodies.
pub const MEDIA_TYPE_FORM: &str = "application/x-www-form-urlencoded";
/// Media type of JSON bodies.
pub const MEDIA_TYPE_JSON: &str = "application/json";

/// `token_type` of a token-exchange response that is not an access token (RFC 8693 §2.2.1).
/// requirement TX-15.
pub const TOKEN_TYPE_NOT_APPLICABLE: &str = "N_A";
/// `token_type` of a bearer access token (RFC 6750).
pub const TOKEN_TYPE_BEARER: &str = "Bearer";
/// `token_type` of a DPoP-bound access token (RFC 9449).
pub const TOKEN_TYPE_DPOP: &str = "DPoP";

/// The MCP Enterprise-Managed Authorization extension identifier. Requirement EMA-01.
pub const MCP_EXTENSION_ENTERPRISE_MANAGED_AUTHORIZATION: &str =
    "io.modelcontextprotocol/enterprise-managed-authorization";

/// RFC 8414 well-known path of OAuth authorization server metadata.
pub const WELL_KNOWN_OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery well-known path.
pub const WELL_KNOWN_OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 9728 well-known path of protected resource metadata.
pub const WELL_KNOWN_OAUTH_PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// Client authentication method names (RFC 7591 / OIDC registry).
pub mod auth_method {
    /// HTTP Basic with form-urlencoded id and secret (RFC 6749 §2.3.1).
    pub const CLIENT_SECRET_BASIC: &str = "client_secret_basic";
    /// `client_id` and `client_secret` in the form body.
    pub const CLIENT_SECRET_POST: &str = "client_secret_post";
    /// RFC 7523 §2.2 JWT signed with the client's private key.
    pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";
    /// A public client: no authentication.
    pub const NONE: &str = "none";
}
