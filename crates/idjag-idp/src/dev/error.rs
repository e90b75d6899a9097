//! Why the development authorization server refused a request, and how each refusal is
//! answered. `Display` names the problem, never a code, token, secret or parameter value.

use http::StatusCode;
use idjag_core::server::ClientAuthError;
use idjag_core::{OAuthErrorCode, OAuthErrorResponse};

/// A refused authorization request (`GET` of the authorization endpoint) or login choice
/// (its `POST`).
///
/// Until the client and its redirect URI are verified, a refusal is an error page and never a
/// redirect ([`Self::redirects`] is false; RFC 6749 §4.1.2.1). After that, it is an RFC 6749
/// §4.1.2.1 error response redirected to the client, with `state` and `iss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DevAuthorizeError {
    /// Neither `GET` nor `POST` (error page, 405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The query or form is malformed: bad escapes, a repeated parameter, too many or too
    /// long, or (`POST`) not form-encoded (error page, 400).
    #[error("the request is malformed")]
    Malformed,
    /// `client_id` is missing (error page, 400).
    #[error("client_id is missing")]
    MissingClientId,
    /// No such development client (error page, 400).
    #[error("unknown client")]
    UnknownClient,
    /// `redirect_uri` is missing (error page, 400; OpenID Connect requires it).
    #[error("redirect_uri is missing")]
    MissingRedirectUri,
    /// `redirect_uri` matches none of the client's (error page, 400).
    #[error("redirect_uri is not registered for this client")]
    RedirectUriMismatch,
    /// The login form names no pending authorization request, or one that expired or was
    /// already answered (error page, 400).
    #[error("unknown, expired or used authorization request")]
    UnknownRequest,
    /// The login form carries no CSRF token (error page, 403).
    #[error("the CSRF token is missing")]
    MissingCsrfToken,
    /// The login form's CSRF token is not the one of its authorization request (error page, 403).
    #[error("the CSRF token does not match")]
    WrongCsrfToken,
    /// The login form was posted from another site (`Sec-Fetch-Site` or `Origin`; error page, 403).
    #[error("cross-site login form post")]
    CrossSiteRequest,
    /// The login form names no configured development user (error page, 400).
    #[error("unknown development user")]
    UnknownUser,
    /// `response_type` is missing (`invalid_request`).
    #[error("response_type is missing")]
    MissingResponseType,
    /// `response_type` is not `code` (`unsupported_response_type`).
    #[error("response_type is not code")]
    UnsupportedResponseType,
    /// `response_mode` is neither absent nor `query` (`invalid_request`).
    #[error("response_mode is not supported")]
    UnsupportedResponseMode,
    /// `scope` is missing or lacks `openid` (`invalid_scope`).
    #[error("scope must include openid")]
    MissingOpenidScope,
    /// `scope` is malformed or names a scope this IdP does not know (`invalid_scope`).
    #[error("scope is malformed or unsupported")]
    UnsupportedScope,
    /// No `code_challenge`: PKCE is required (`invalid_request`).
    #[error("code_challenge is missing")]
    MissingCodeChallenge,
    /// `code_challenge_method` is missing (which means `plain`), `plain` or unknown: only
    /// `S256` is accepted (`invalid_request`).
    #[error("code_challenge_method must be S256")]
    CodeChallengeMethodNotS256,
    /// `code_challenge` is not 43 base64url characters (`invalid_request`).
    #[error("code_challenge is malformed")]
    MalformedCodeChallenge,
    /// `state` or `nonce` is longer than this IdP keeps (`invalid_request`; `state` is then
    /// not echoed).
    #[error("{parameter} is too long")]
    ParameterTooLong {
        /// The parameter.
        parameter: &'static str,
    },
    /// `prompt=none`: this IdP has no session, so the user must log in (`login_required`).
    #[error("prompt=none needs a session, and the development IdP keeps none")]
    LoginRequired,
    /// A `request` object (`request_not_supported`).
    #[error("request objects are not supported")]
    RequestObjectNotSupported,
    /// A `request_uri` (`request_uri_not_supported`).
    #[error("request_uri is not supported")]
    RequestUriNotSupported,
    /// The user cancelled on the login page (`access_denied`).
    #[error("the user cancelled")]
    AccessDenied,
    /// Too many pending authorization requests or codes (`temporarily_unavailable`).
    #[error("too many pending requests")]
    TemporarilyUnavailable,
    /// The random generator failed (`server_error`).
    #[error("random generator failure")]
    ServerError,
}

impl DevAuthorizeError {
    /// Whether the refusal is redirected to the client (true once its client and redirect
    /// URI are verified), rather than shown on an error page.
    pub fn redirects(&self) -> bool {
        !matches!(
            self,
            Self::MethodNotAllowed
                | Self::Malformed
                | Self::MissingClientId
                | Self::UnknownClient
                | Self::MissingRedirectUri
                | Self::RedirectUriMismatch
                | Self::UnknownRequest
                | Self::MissingCsrfToken
                | Self::WrongCsrfToken
                | Self::CrossSiteRequest
                | Self::UnknownUser
        )
    }

    /// The `error` code (RFC 6749 §4.1.2.1; OpenID Connect Core §3.1.2.6), also shown on the
    /// error page.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::UnsupportedResponseType => OAuthErrorCode::UnsupportedResponseType.as_str(),
            Self::MissingOpenidScope | Self::UnsupportedScope => {
                OAuthErrorCode::InvalidScope.as_str()
            }
            Self::LoginRequired => "login_required",
            Self::RequestObjectNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::AccessDenied => OAuthErrorCode::AccessDenied.as_str(),
            Self::TemporarilyUnavailable => OAuthErrorCode::TemporarilyUnavailable.as_str(),
            Self::ServerError => OAuthErrorCode::ServerError.as_str(),
            _ => OAuthErrorCode::InvalidRequest.as_str(),
        }
    }

    /// The status of the error page (a redirected refusal is a `303 See Other`).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MissingCsrfToken | Self::WrongCsrfToken | Self::CrossSiteRequest => {
                StatusCode::FORBIDDEN
            }
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A stable, low-cardinality reason code for the log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Malformed => "malformed_request",
            Self::MissingClientId => "missing_client_id",
            Self::UnknownClient => "unknown_client",
            Self::MissingRedirectUri => "missing_redirect_uri",
            Self::RedirectUriMismatch => "redirect_uri_mismatch",
            Self::UnknownRequest => "unknown_authorization_request",
            Self::MissingCsrfToken => "missing_csrf_token",
            Self::WrongCsrfToken => "wrong_csrf_token",
            Self::CrossSiteRequest => "cross_site_request",
            Self::UnknownUser => "unknown_user",
            Self::MissingResponseType => "missing_response_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedResponseMode => "unsupported_response_mode",
            Self::MissingOpenidScope => "missing_openid_scope",
            Self::UnsupportedScope => "unsupported_scope",
            Self::MissingCodeChallenge => "missing_code_challenge",
            Self::CodeChallengeMethodNotS256 => "code_challenge_method_not_s256",
            Self::MalformedCodeChallenge => "malformed_code_challenge",
            Self::ParameterTooLong { .. } => "parameter_too_long",
            Self::LoginRequired => "login_required",
            Self::RequestObjectNotSupported => "request_object_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::AccessDenied => "user_cancelled",
            Self::TemporarilyUnavailable => "capacity",
            Self::ServerError => "random_failure",
        }
    }

    /// The fixed `error_description` (and error page text). It names parameters, never values.
    pub fn description(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "The authorization endpoint accepts GET and POST only.",
            Self::Malformed => {
                "The request is malformed (bad encoding, a repeated parameter, or too large)."
            }
            Self::MissingClientId => "The request names no client (client_id is missing).",
            Self::UnknownClient => "The client is not registered at this development IdP.",
            Self::MissingRedirectUri => "The request has no redirect_uri.",
            Self::RedirectUriMismatch => "The redirect_uri is not registered for this client.",
            Self::UnknownRequest => "This sign-in request expired or was already answered.",
            Self::MissingCsrfToken => "The sign-in form is missing its CSRF token.",
            Self::WrongCsrfToken => "The sign-in form's CSRF token does not match its request.",
            Self::CrossSiteRequest => "The sign-in form was posted from another site.",
            Self::UnknownUser => "The chosen user is not a development user of this IdP.",
            Self::MissingResponseType => "response_type is missing",
            Self::UnsupportedResponseType => "only response_type=code is supported",
            Self::UnsupportedResponseMode => "only response_mode=query is supported",
            Self::MissingOpenidScope => "scope must include openid",
            Self::UnsupportedScope => "scope is malformed or names an unsupported scope",
            Self::MissingCodeChallenge => "PKCE is required: code_challenge is missing",
            Self::CodeChallengeMethodNotS256 => "code_challenge_method must be S256",
            Self::MalformedCodeChallenge => "code_challenge must be 43 base64url characters",
            Self::ParameterTooLong { parameter } => match *parameter {
                "state" => "state is too long",
                "nonce" => "nonce is too long",
                _ => "a parameter is too long",
            },
            Self::LoginRequired => "the development IdP keeps no session: the user must log in",
            Self::RequestObjectNotSupported => "request objects are not supported",
            Self::RequestUriNotSupported => "request_uri is not supported",
            Self::AccessDenied => "the user cancelled the sign-in",
            Self::TemporarilyUnavailable => "too many pending sign-ins, try again later",
            Self::ServerError => "the sign-in could not be completed",
        }
    }
}

/// A refused `authorization_code` or `refresh_token` grant at the token endpoint. (Envelope
/// refusals, such as a wrong method or a malformed form, are the issuer's
/// [`ExchangeError::Envelope`](crate::ExchangeError::Envelope), answered the same way for every grant.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DevTokenError {
    /// Client authentication failed (`invalid_client`).
    #[error(transparent)]
    ClientAuth(ClientAuthError),
    /// A required parameter is missing (`invalid_request`).
    #[error("parameter {parameter} is missing")]
    Missing {
        /// The parameter.
        parameter: &'static str,
    },
    /// `code_verifier` is not 43 to 128 unreserved characters (`invalid_request`; RFC 7636 §4.1).
    #[error("code_verifier is malformed")]
    MalformedCodeVerifier,
    /// `scope` is malformed (`invalid_scope`).
    #[error("scope is malformed")]
    MalformedScope,
    /// No such authorization code (`invalid_grant`).
    #[error("unknown authorization code")]
    UnknownCode,
    /// The code was already redeemed; the tokens issued from it are revoked
    /// (`invalid_grant`; RFC 6749 §4.1.2).
    #[error("authorization code reused")]
    CodeReused,
    /// The code is older than its 60 s lifetime (`invalid_grant`).
    #[error("authorization code expired")]
    CodeExpired,
    /// The code was issued to another client (`invalid_grant`).
    #[error("authorization code issued to another client")]
    CodeIssuedToAnotherClient,
    /// `redirect_uri` is not the one of the authorization request (`invalid_grant`).
    #[error("redirect_uri does not match the authorization request")]
    RedirectUriMismatch,
    /// `code_verifier` does not hash to the `code_challenge` (`invalid_grant`; RFC 7636 §4.6).
    #[error("code_verifier does not match the code_challenge")]
    CodeVerifierMismatch,
    /// No such refresh token (`invalid_grant`).
    #[error("unknown refresh token")]
    UnknownRefreshToken,
    /// The refresh token was already rotated: its whole family is revoked (`invalid_grant`;
    /// RFC 9700 §4.14.2).
    #[error("refresh token reused")]
    RefreshTokenReused,
    /// The refresh token expired (`invalid_grant`).
    #[error("refresh token expired")]
    RefreshTokenExpired,
    /// The refresh token's family was revoked (`invalid_grant`).
    #[error("refresh token revoked")]
    RefreshTokenRevoked,
    /// The refresh token was issued to another client (`invalid_grant`).
    #[error("refresh token issued to another client")]
    RefreshTokenIssuedToAnotherClient,
    /// The requested `scope` exceeds the original grant (`invalid_scope`).
    #[error("scope exceeds the original grant")]
    ScopeNotGranted,
    /// Too many live tokens (`temporarily_unavailable`).
    #[error("too many live tokens")]
    TemporarilyUnavailable,
    /// The tokens could not be made: random generator, clock or signing failure (`server_error`).
    #[error("the tokens could not be issued")]
    Issuance,
}

impl DevTokenError {
    /// The OAuth error code.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        match self {
            Self::ClientAuth(e) => e.oauth_error(),
            Self::Missing { .. } | Self::MalformedCodeVerifier => OAuthErrorCode::InvalidRequest,
            Self::MalformedScope | Self::ScopeNotGranted => OAuthErrorCode::InvalidScope,
            Self::TemporarilyUnavailable => OAuthErrorCode::TemporarilyUnavailable,
            Self::Issuance => OAuthErrorCode::ServerError,
            _ => OAuthErrorCode::InvalidGrant,
        }
    }

    /// The HTTP status (401 for `invalid_client`, 503 for `temporarily_unavailable`, 500 for
    /// `server_error`, 400 otherwise).
    pub fn status(&self) -> StatusCode {
        self.oauth_error().status()
    }

    /// A stable, low-cardinality reason code for the log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::ClientAuth(e) => e.reason_code(),
            Self::Missing { .. } => "missing_parameter",
            Self::MalformedCodeVerifier => "malformed_code_verifier",
            Self::MalformedScope => "malformed_scope",
            Self::UnknownCode => "unknown_code",
            Self::CodeReused => "code_reused",
            Self::CodeExpired => "code_expired",
            Self::CodeIssuedToAnotherClient => "code_client_mismatch",
            Self::RedirectUriMismatch => "redirect_uri_mismatch",
            Self::CodeVerifierMismatch => "code_verifier_mismatch",
            Self::UnknownRefreshToken => "unknown_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::RefreshTokenExpired => "refresh_token_expired",
            Self::RefreshTokenRevoked => "refresh_token_revoked",
            Self::RefreshTokenIssuedToAnotherClient => "refresh_token_client_mismatch",
            Self::ScopeNotGranted => "scope_not_granted",
            Self::TemporarilyUnavailable => "capacity",
            Self::Issuance => "issuance_failed",
        }
    }

    /// The generic `error_description`: a refused code or refresh token gets one answer
    /// whatever the reason, so a guesser learns nothing.
    pub fn description(&self) -> &'static str {
        match self {
            Self::ClientAuth(e) if e.oauth_error() == OAuthErrorCode::InvalidRequest => {
                "use exactly one client authentication method"
            }
            Self::ClientAuth(_) => "client authentication failed",
            Self::Missing { parameter } => match *parameter {
                "code" => "code is missing",
                "redirect_uri" => "redirect_uri is missing",
                "code_verifier" => "code_verifier is missing (PKCE is required)",
                "refresh_token" => "refresh_token is missing",
                _ => "a required parameter is missing",
            },
            Self::MalformedCodeVerifier => "code_verifier must be 43 to 128 unreserved characters",
            Self::MalformedScope => "scope is malformed",
            Self::UnknownCode
            | Self::CodeReused
            | Self::CodeExpired
            | Self::CodeIssuedToAnotherClient
            | Self::RedirectUriMismatch
            | Self::CodeVerifierMismatch => {
                "the authorization code is invalid, expired, used, or was issued to another client or redirect URI"
            }
            Self::UnknownRefreshToken
            | Self::RefreshTokenReused
            | Self::RefreshTokenExpired
            | Self::RefreshTokenRevoked
            | Self::RefreshTokenIssuedToAnotherClient => {
                "the refresh token is invalid, expired, revoked, or was issued to another client"
            }
            Self::ScopeNotGranted => "scope exceeds the original grant",
            Self::TemporarilyUnavailable => "too many live tokens, try again later",
            Self::Issuance => "the tokens could not be issued",
        }
    }

    /// The RFC 6749 §5.2 error body.
    pub fn to_oauth_response(&self) -> OAuthErrorResponse {
        OAuthErrorResponse::new(self.oauth_error()).with_description(self.description())
    }
}
