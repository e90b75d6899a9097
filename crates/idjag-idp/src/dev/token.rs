//! The `authorization_code` and `refresh_token` grants of the development provider, on the
//! issuer's token endpoint beside its token exchange.

use http::{HeaderMap, Request, Response, StatusCode};
use idjag_core::jose::base64url;
use idjag_core::server::{FormBody, error_response, json_response, read_form_request};
use idjag_core::{
    AccessToken, ClientId, IdToken, NumericDate, RefreshToken, ScopeSet, Subject, TokenResponse,
    wire,
};
use sha2::{Digest as _, Sha256};

use super::error::DevTokenError;
use super::provider::{DEV_LOG_TARGET, DevOidcProvider};
use super::state::{AccessEntry, DevState, Family, RefreshEntry, digest};

/// What a successful grant issues.
struct Issued {
    client_id: ClientId,
    subject: Subject,
    access_token: String,
    refresh_token: String,
    id_token: Option<IdToken>,
    scope: ScopeSet,
}

/// Who the new tokens are for, read under the lock.
struct Grant {
    family: u64,
    client_id: ClientId,
    subject: Subject,
    scope: ScopeSet,
    auth_time: NumericDate,
    nonce: Option<String>,
}

impl DevOidcProvider {
    /// Handles one request to the issuer's token endpoint, framework-agnostic:
    /// `grant_type=authorization_code` and `grant_type=refresh_token` are answered here,
    /// every other request goes to [`IdJagIssuer::handle`](crate::IdJagIssuer::handle)
    /// unchanged (token exchange, and every envelope refusal: method, size, content type,
    /// malformed form).
    ///
    /// The code grant needs the client (`client_secret_basic` or `client_secret_post` for a
    /// confidential client, `client_id` alone for a public one), the single-use `code` within
    /// its 60 s, the `redirect_uri` of the authorization request and the PKCE `code_verifier`.
    /// It answers an ID token, an access token and a refresh token. The refresh grant rotates
    /// the refresh token (a rotated one presented again revokes its whole family) and answers
    /// a fresh ID token with the original `auth_time` and no `nonce` (OpenID Connect Core §12.2).
    pub async fn handle_token<B: AsRef<[u8]>>(&self, request: Request<B>) -> Response<Vec<u8>> {
        let (parts, body) = request.into_parts();
        let form = read_form_request(
            &parts.method,
            &parts.headers,
            body.as_ref(),
            self.issuer().max_body_bytes(),
            &["resource"],
        );
        let result = match form
            .as_ref()
            .ok()
            .and_then(|f| Some((f, f.get("grant_type")?)))
        {
            Some((form, wire::GRANT_TYPE_AUTHORIZATION_CODE)) => (
                "authorization_code",
                self.code_grant(&parts.headers, form).await,
            ),
            Some((form, wire::GRANT_TYPE_REFRESH_TOKEN)) => (
                "refresh_token",
                self.refresh_grant(&parts.headers, form).await,
            ),
            _ => return self.issuer().handle(Request::from_parts(parts, body)).await,
        };
        self.token_response(result)
    }

    fn token_response(
        &self,
        (grant, result): (&'static str, Result<Issued, DevTokenError>),
    ) -> Response<Vec<u8>> {
        match result {
            Ok(issued) => {
                tracing::info!(
                    target: DEV_LOG_TARGET,
                    endpoint = "token",
                    grant,
                    decision = "issued",
                    client_id = issued.client_id.as_str(),
                    subject = issued.subject.as_str(),
                    scope = %issued.scope,
                    "dev tokens issued"
                );
                let mut response = TokenResponse::new(
                    AccessToken::new(issued.access_token),
                    wire::TOKEN_TYPE_BEARER,
                );
                response.expires_in = Some(self.inner.access_token_lifetime.unsigned_abs());
                response.scope = Some(issued.scope);
                response.refresh_token = Some(RefreshToken::new(issued.refresh_token));
                if let Some(id_token) = issued.id_token {
                    response
                        .extra
                        .insert("id_token".into(), id_token.secret().into());
                }
                json_response(StatusCode::OK, &response)
            }
            Err(error) => {
                tracing::info!(
                    target: DEV_LOG_TARGET,
                    endpoint = "token",
                    grant,
                    decision = "refused",
                    reason = error.reason_code(),
                    error = error.oauth_error().as_str(),
                    client_authenticated = !matches!(error, DevTokenError::ClientAuth(_)),
                    "dev token request refused"
                );
                let challenge = match &error {
                    DevTokenError::ClientAuth(e) => {
                        e.www_authenticate(self.issuer().issuer().as_str())
                    }
                    _ => None,
                };
                let mut response = error_response(&error.to_oauth_response(), challenge);
                *response.status_mut() = error.status();
                response
            }
        }
    }

    async fn code_grant(
        &self,
        headers: &HeaderMap,
        form: &FormBody,
    ) -> Result<Issued, DevTokenError> {
        let client = self
            .inner
            .authenticator
            .authenticate(headers, form)
            .await
            .map_err(DevTokenError::ClientAuth)?;
        let code = required(form, "code")?;
        let redirect_uri = required(form, "redirect_uri")?;
        let verifier = required(form, "code_verifier")?;
        if !is_code_verifier(verifier) {
            return Err(DevTokenError::MalformedCodeVerifier);
        }
        let (access_token, refresh_token) = new_tokens()?;
        let now = self.now();
        let key = digest(code);
        let grant = {
            let mut state = self.state();
            let Some(code) = state.codes.remove(&key) else {
                return Err(match state.redeemed.get(&key).map(|r| r.family) {
                    Some(family) => {
                        // RFC 6749 §4.1.2: a code used twice revokes what it gave.
                        if let Some(family) = family {
                            state.revoke_family(family);
                        }
                        DevTokenError::CodeReused
                    }
                    None => DevTokenError::UnknownCode,
                });
            };
            let remember_until = now.saturating_add(self.inner.refresh_token_lifetime);
            let checked = if code.expires_at <= now {
                Err(DevTokenError::CodeExpired)
            } else if &code.client_id != client.client_id() {
                Err(DevTokenError::CodeIssuedToAnotherClient)
            } else if code.redirect_uri != redirect_uri {
                Err(DevTokenError::RedirectUriMismatch)
            } else if s256(verifier) != code.code_challenge {
                Err(DevTokenError::CodeVerifierMismatch)
            } else {
                Ok(())
            };
            // The code is spent whatever the outcome.
            if let Err(error) = checked {
                state.mark_redeemed(key, None, remember_until, now);
                return Err(error);
            }
            let family = Family {
                client_id: code.client_id.clone(),
                subject: code.subject.clone(),
                scope: code.scope.clone(),
                auth_time: code.auth_time,
                revoked: false,
                until: remember_until,
            };
            let family =
                match self.store_tokens(&mut state, family, &access_token, &refresh_token, now) {
                    Ok(family) => family,
                    Err(error) => {
                        state.mark_redeemed(key, None, remember_until, now);
                        return Err(error);
                    }
                };
            state.mark_redeemed(key, Some(family), remember_until, now);
            Grant {
                family,
                client_id: code.client_id,
                subject: code.subject,
                scope: code.scope,
                auth_time: code.auth_time,
                nonce: code.nonce,
            }
        };
        self.finish(grant, access_token, refresh_token)
    }

    async fn refresh_grant(
        &self,
        headers: &HeaderMap,
        form: &FormBody,
    ) -> Result<Issued, DevTokenError> {
        let client = self
            .inner
            .authenticator
            .authenticate(headers, form)
            .await
            .map_err(DevTokenError::ClientAuth)?;
        let presented = required(form, "refresh_token")?;
        let requested = form
            .get("scope")
            .map(ScopeSet::parse)
            .transpose()
            .map_err(|_| DevTokenError::MalformedScope)?;
        let (access_token, refresh_token) = new_tokens()?;
        let now = self.now();
        let key = digest(presented);
        let grant = {
            let mut state = self.state();
            let (family_id, rotated, expires_at) = state
                .refresh
                .get(&key)
                .map(|e| (e.family, e.rotated, e.expires_at))
                .ok_or(DevTokenError::UnknownRefreshToken)?;
            let family = state
                .families
                .get(&family_id)
                .ok_or(DevTokenError::UnknownRefreshToken)?;
            if &family.client_id != client.client_id() {
                return Err(DevTokenError::RefreshTokenIssuedToAnotherClient);
            }
            if family.revoked {
                return Err(DevTokenError::RefreshTokenRevoked);
            }
            if rotated {
                // RFC 9700 §4.14.2: a rotated refresh token presented again means two
                // parties hold the family; revoke it all.
                state.revoke_family(family_id);
                return Err(DevTokenError::RefreshTokenReused);
            }
            if expires_at <= now {
                return Err(DevTokenError::RefreshTokenExpired);
            }
            let scope = match requested {
                None => family.scope.clone(),
                Some(scope) if !scope.is_empty() && scope.is_subset(&family.scope) => scope,
                Some(_) => return Err(DevTokenError::ScopeNotGranted),
            };
            let grant = Grant {
                family: family_id,
                client_id: family.client_id.clone(),
                subject: family.subject.clone(),
                scope,
                auth_time: family.auth_time,
                nonce: None,
            };
            state
                .room_for_tokens(now)
                .map_err(|_| DevTokenError::TemporarilyUnavailable)?;
            if let Some(entry) = state.refresh.get_mut(&key) {
                entry.rotated = true;
            }
            let until = now.saturating_add(self.inner.refresh_token_lifetime);
            if let Some(family) = state.families.get_mut(&family_id) {
                family.until = family.until.max(until);
            }
            self.insert_tokens(&mut state, &grant, &access_token, &refresh_token, now);
            grant
        };
        self.finish(grant, access_token, refresh_token)
    }

    /// Starts a family and stores its first tokens.
    fn store_tokens(
        &self,
        state: &mut DevState,
        family: Family,
        access_token: &str,
        refresh_token: &str,
        now: i64,
    ) -> Result<u64, DevTokenError> {
        state
            .room_for_tokens(now)
            .map_err(|_| DevTokenError::TemporarilyUnavailable)?;
        let scope = family.scope.clone();
        let id = state
            .new_family(family, now)
            .map_err(|_| DevTokenError::TemporarilyUnavailable)?;
        state.refresh.insert(
            digest(refresh_token),
            RefreshEntry {
                family: id,
                rotated: false,
                expires_at: now.saturating_add(self.inner.refresh_token_lifetime),
            },
        );
        state.access.insert(
            digest(access_token),
            AccessEntry {
                family: id,
                scope,
                expires_at: now.saturating_add(self.inner.access_token_lifetime),
            },
        );
        Ok(id)
    }

    /// Stores a rotation's tokens in its family.
    fn insert_tokens(
        &self,
        state: &mut DevState,
        grant: &Grant,
        access_token: &str,
        refresh_token: &str,
        now: i64,
    ) {
        state.refresh.insert(
            digest(refresh_token),
            RefreshEntry {
                family: grant.family,
                rotated: false,
                expires_at: now.saturating_add(self.inner.refresh_token_lifetime),
            },
        );
        state.access.insert(
            digest(access_token),
            AccessEntry {
                family: grant.family,
                scope: grant.scope.clone(),
                expires_at: now.saturating_add(self.inner.access_token_lifetime),
            },
        );
    }

    /// Signs the ID token (outside the lock). A failure revokes the family just stored.
    fn finish(
        &self,
        grant: Grant,
        access_token: String,
        refresh_token: String,
    ) -> Result<Issued, DevTokenError> {
        let id_token = if grant.scope.contains("openid") {
            match self.id_token(&grant) {
                Ok(token) => Some(token),
                Err(error) => {
                    self.state().revoke_family(grant.family);
                    return Err(error);
                }
            }
        } else {
            None
        };
        Ok(Issued {
            client_id: grant.client_id,
            subject: grant.subject,
            access_token,
            refresh_token,
            id_token,
            scope: grant.scope,
        })
    }

    /// An ID token with the claims the development users mint, `aud` the client, the
    /// login's `auth_time`, and the authorization request's `nonce` (none after a refresh).
    fn id_token(&self, grant: &Grant) -> Result<IdToken, DevTokenError> {
        let users = self.users();
        let mut claims = users
            .claims(grant.subject.as_str(), &grant.client_id)
            .map_err(|_| DevTokenError::Issuance)?;
        claims.auth_time = Some(grant.auth_time);
        claims.nonce = grant.nonce.clone();
        users.sign(&claims).map_err(|_| DevTokenError::Issuance)
    }
}

fn required<'a>(form: &'a FormBody, parameter: &'static str) -> Result<&'a str, DevTokenError> {
    form.get(parameter)
        .ok_or(DevTokenError::Missing { parameter })
}

/// A fresh access token and refresh token: 256 random bits each, base64url.
fn new_tokens() -> Result<(String, String), DevTokenError> {
    let token = || idjag_core::random::url_safe(32).map_err(|_| DevTokenError::Issuance);
    Ok((token()?, token()?))
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub(super) fn s256(verifier: &str) -> String {
    base64url::encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn code_verifiers_are_43_to_128_unreserved_characters() {
        assert!(is_code_verifier(&"a".repeat(43)));
        assert!(is_code_verifier(&"-._~Az9".repeat(19)[..128]));
        assert!(!is_code_verifier(&"a".repeat(42)));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", "a".repeat(42))));
        assert!(!is_code_verifier(&format!("{}é", "a".repeat(41))));
    }
}
