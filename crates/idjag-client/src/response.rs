//! Strict reading of token endpoint answers: the success body (RFC 6749 §5.1, RFC 8693
//! §2.2.1) and the error body (RFC 6749 §5.2).

use idjag_core::claims::ClaimReader;
use idjag_core::{
    AccessToken, AuthorizationDetail, ErrorCode, JoseError, OAuthErrorCode, OAuthErrorResponse,
    Resource, ScopeSet, Segment,
};
use serde_json::{Map, Value};

use crate::error::{ClientError, ResponseProblem, Stage, classify};

/// Parses a body as one JSON object, refusing duplicate member names.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ResponseProblem> {
    idjag_core::jose::parse_object(body, Segment::Payload).map_err(|e| match e {
        JoseError::DuplicateMember { .. } => ResponseProblem::DuplicateMember,
        _ => ResponseProblem::NotJson,
    })
}

/// The members of a successful token response, typed. Unknown members are ignored.
pub(crate) struct TokenFields {
    pub(crate) access_token: AccessToken,
    pub(crate) token_type: String,
    pub(crate) issued_token_type: Option<String>,
    pub(crate) expires_in: Option<u64>,
    pub(crate) scope: Option<ScopeSet>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) authorization_details: Option<Vec<AuthorizationDetail>>,
    pub(crate) resource: Option<Vec<Resource>>,
    pub(crate) id_token: Option<String>,
}

impl TokenFields {
    pub(crate) fn from_map(mut map: Map<String, Value>) -> Result<Self, ResponseProblem> {
        let expires_in = expires_in(map.remove("expires_in"))?;
        let mut r = ClaimReader::new(map);
        let access_token = r
            .opt_string("access_token")
            .map_err(|_| wrong("access_token"))?;
        let access_token = match access_token {
            Some(token) if !token.is_empty() => AccessToken::new(token),
            Some(_) => {
                return Err(ResponseProblem::Invalid {
                    member: "access_token",
                });
            }
            None => {
                return Err(ResponseProblem::Missing {
                    member: "access_token",
                });
            }
        };
        let token_type = r
            .opt_string("token_type")
            .map_err(|_| wrong("token_type"))?
            .ok_or(ResponseProblem::Missing {
                member: "token_type",
            })?;
        let issued_token_type = r
            .opt_string("issued_token_type")
            .map_err(|_| wrong("issued_token_type"))?;
        let scope = match r.opt_string("scope").map_err(|_| wrong("scope"))? {
            Some(s) => Some(
                ScopeSet::parse(&s).map_err(|_| ResponseProblem::Invalid { member: "scope" })?,
            ),
            None => None,
        };
        let refresh_token = r
            .opt_string("refresh_token")
            .map_err(|_| wrong("refresh_token"))?;
        let authorization_details = r
            .opt_array("authorization_details")
            .map_err(|_| wrong("authorization_details"))?
            .map(AuthorizationDetail::from_json_array)
            .transpose()
            .map_err(|_| ResponseProblem::Invalid {
                member: "authorization_details",
            })?;
        let resource = r
            .opt_resources("resource")
            .map_err(|_| ResponseProblem::Invalid { member: "resource" })?;
        let id_token = r.opt_string("id_token").map_err(|_| wrong("id_token"))?;
        Ok(Self {
            access_token,
            token_type,
            issued_token_type,
            expires_in,
            scope,
            refresh_token,
            authorization_details,
            resource,
            id_token,
        })
    }
}

fn wrong(member: &'static str) -> ResponseProblem {
    ResponseProblem::WrongType { member }
}

/// `expires_in`: a non-negative integer. A string of digits is also taken, since some servers
/// send one; anything else is an error.
fn expires_in(value: Option<Value>) -> Result<Option<u64>, ResponseProblem> {
    let invalid = ResponseProblem::Invalid {
        member: "expires_in",
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or(invalid),
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().map(Some).map_err(|_| invalid)
        }
        Some(Value::String(_)) => Err(invalid),
        Some(_) => Err(wrong("expires_in")),
    }
}

/// Longest `error` code accepted.
const MAX_ERROR_CODE: usize = 128;
/// Longest `error_description` kept.
const MAX_ERROR_DESCRIPTION: usize = 512;

/// RFC 6749 §5.2 `error` and `error_description` characters: `%x20-21 / %x23-5B / %x5D-7E`.
fn is_error_text(s: &str) -> bool {
    s.bytes()
        .all(|b| b == 0x20 || b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Reads an RFC 6749 §5.2 error body. `None` when the body is not one.
pub(crate) fn oauth_error(body: &[u8]) -> Option<Result<OAuthErrorResponse, ResponseProblem>> {
    let map = json_object(body).ok()?;
    let code = match map.get("error")? {
        Value::String(code)
            if !code.is_empty() && code.len() <= MAX_ERROR_CODE && is_error_text(code) =>
        {
            code.clone()
        }
        _ => return Some(Err(ResponseProblem::ErrorBody)),
    };
    let code =
        OAuthErrorCode::from_wire(&code).map_or(ErrorCode::Extension(code), ErrorCode::Known);
    let mut error = OAuthErrorResponse::new(code);
    if let Some(Value::String(d)) = map.get("error_description")
        && d.len() <= MAX_ERROR_DESCRIPTION
        && is_error_text(d)
    {
        error.error_description = Some(d.clone());
    }
    if let Some(Value::String(uri)) = map.get("error_uri")
        && uri.len() <= 2048
        && is_error_text(uri)
    {
        error.error_uri = Some(uri.clone());
    }
    for name in ["max_age", "acr_values"] {
        if let Some(value @ (Value::Number(_) | Value::String(_))) = map.get(name) {
            error.extra.insert(name.into(), value.clone());
        }
    }
    Some(Ok(error))
}

/// The error for a non-200 answer.
pub(crate) fn error_for_status(stage: Stage, status: u16, body: &[u8]) -> ClientError {
    match oauth_error(body) {
        Some(Ok(error)) if (400..600).contains(&status) => classify(stage, status, error),
        Some(Err(problem)) if (400..600).contains(&status) => {
            ClientError::malformed(stage, problem)
        }
        _ => ClientError::UnexpectedStatus { stage, status },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: serde_json::Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    #[test]
    fn error_bodies_keep_only_well_formed_text() {
        let error = oauth_error(&body(json!({
            "error": "invalid_grant",
            "error_description": "line\nbreak",
            "error_uri": "https://idp.example/errors/1",
            "max_age": 300,
            "other": "dropped",
        })))
        .unwrap()
        .unwrap();
        assert_eq!(error.error, OAuthErrorCode::InvalidGrant);
        assert_eq!(error.error_description, None);
        assert_eq!(
            error.error_uri.as_deref(),
            Some("https://idp.example/errors/1")
        );
        assert_eq!(error.extra.len(), 1);
        assert_eq!(
            oauth_error(&body(json!({"error": "a\"b"}))),
            Some(Err(ResponseProblem::ErrorBody))
        );
        assert_eq!(
            oauth_error(&body(json!({"error": "x".repeat(129)}))),
            Some(Err(ResponseProblem::ErrorBody))
        );
        assert_eq!(
            oauth_error(&body(json!({"error": ""}))),
            Some(Err(ResponseProblem::ErrorBody))
        );
        assert_eq!(oauth_error(b"not json"), None);
        assert_eq!(
            oauth_error(&body(json!({"message": "no error member"}))),
            None
        );
    }

    #[test]
    fn only_4xx_and_5xx_are_read_as_oauth_errors() {
        let error = body(json!({"error": "invalid_grant"}));
        assert!(matches!(
            error_for_status(Stage::IdentityProvider, 302, &error),
            ClientError::UnexpectedStatus { status: 302, .. }
        ));
        assert!(matches!(
            error_for_status(Stage::IdentityProvider, 400, &error),
            ClientError::PolicyDenied {
                code: OAuthErrorCode::InvalidGrant,
                ..
            }
        ));
        assert!(matches!(
            error_for_status(Stage::ResourceAuthorizationServer, 400, &error),
            ClientError::Rejected { .. }
        ));
    }

    #[test]
    fn expires_in_is_an_integer_or_digits() {
        assert_eq!(expires_in(None), Ok(None));
        assert_eq!(expires_in(Some(json!(300))), Ok(Some(300)));
        assert_eq!(expires_in(Some(json!("300"))), Ok(Some(300)));
        assert_eq!(
            expires_in(Some(json!(1.5))),
            Err(ResponseProblem::Invalid {
                member: "expires_in"
            })
        );
        assert_eq!(
            expires_in(Some(json!("+300"))),
            Err(ResponseProblem::Invalid {
                member: "expires_in"
            })
        );
        assert_eq!(
            expires_in(Some(json!("9".repeat(13)))),
            Err(ResponseProblem::Invalid {
                member: "expires_in"
            })
        );
        assert_eq!(
            expires_in(Some(json!([300]))),
            Err(ResponseProblem::WrongType {
                member: "expires_in"
            })
        );
    }

    proptest::proptest! {
        #[test]
        fn token_fields_never_panic(value in proptest::arbitrary::any::<Vec<(String, i64)>>()) {
            let map: Map<String, Value> = value.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            let _ = TokenFields::from_map(map);
        }
    }
}
