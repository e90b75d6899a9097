//! The token-exchange request of the ID-JAG profile (RFC 8693 §2.1; ID-JAG -04 §4.3;
//! requirements TX-02 to TX-07, TX-11, TX-12).

use idjag_core::jose::parse_object;
use idjag_core::server::FormBody;
use idjag_core::{
    Audience, AuthorizationDetail, InvalidIdentifier, OAuthErrorCode, Resource, ScopeSet, Segment,
    SubjectToken, SubjectTokenType, wire,
};
use serde_json::Value;

/// Most authorization details one request may carry.
pub(crate) const MAX_AUTHORIZATION_DETAILS: usize = 32;

/// Why the request's parameters were refused. Names parameters, never their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeRequestError {
    /// A required parameter is absent (`invalid_request`).
    #[error("parameter {parameter} is missing")]
    Missing {
        /// The parameter.
        parameter: &'static str,
    },
    /// `requested_token_type` is not the id-jag URN: no silent fallback to another token type
    /// (`invalid_request`; threat X08).
    #[error("requested_token_type is not the ID-JAG token type")]
    RequestedTokenType,
    /// `audience` holds several values joined by spaces (`invalid_request`; threat X09). A repeated
    /// `audience` parameter is refused by the form parser.
    #[error("audience must name exactly one resource authorization server")]
    MultipleAudiences,
    /// `audience` is not a valid identifier (`invalid_request`).
    #[error("audience is malformed")]
    MalformedAudience,
    /// `audience` names this IdP itself (`invalid_target`; threat X09).
    #[error("audience is this IdP")]
    AudienceIsThisIssuer,
    /// A `resource` is not an absolute URI without a fragment (`invalid_target`; threat X12).
    #[error("resource is not valid: {0}")]
    Resource(InvalidIdentifier),
    /// `scope` is not a space-delimited list of RFC 6749 §3.3 tokens (`invalid_scope`).
    #[error("scope is malformed")]
    Scope,
    /// `authorization_details` is not one well-formed JSON array (`invalid_request`; threat X13).
    #[error("authorization_details is not one well-formed JSON array")]
    AuthorizationDetailsMalformed,
    /// An authorization detail is not an object with a string `type`, or there are more than
    /// 32 (`invalid_authorization_details`; threat X13).
    #[error("authorization_details has an invalid entry")]
    AuthorizationDetail,
    /// `subject_token_type` is not one of the profile's URNs (`invalid_request`).
    #[error("subject_token_type is not supported")]
    SubjectTokenType,
    /// `actor_token` and `actor_token_type` must come together (`invalid_request`; requirement
    /// TX-07).
    #[error("actor_token and actor_token_type must be sent together")]
    ActorTokenPairing,
    /// This IdP defines no actor-token processing, so it refuses actor tokens rather than
    /// ignore them (`invalid_request`; decision D-17).
    #[error("actor tokens are not supported")]
    ActorTokenUnsupported,
}

impl ExchangeRequestError {
    /// The OAuth error code.
    pub fn oauth_error(&self) -> OAuthErrorCode {
        match self {
            Self::AudienceIsThisIssuer | Self::Resource(_) => OAuthErrorCode::InvalidTarget,
            Self::Scope => OAuthErrorCode::InvalidScope,
            Self::AuthorizationDetail => OAuthErrorCode::InvalidAuthorizationDetails,
            _ => OAuthErrorCode::InvalidRequest,
        }
    }

    /// A stable reason code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "missing_parameter",
            Self::RequestedTokenType => "unsupported_requested_token_type",
            Self::MultipleAudiences => "multiple_audiences",
            Self::MalformedAudience => "malformed_audience",
            Self::AudienceIsThisIssuer => "audience_is_this_issuer",
            Self::Resource(_) => "invalid_resource",
            Self::Scope => "malformed_scope",
            Self::AuthorizationDetailsMalformed => "malformed_authorization_details",
            Self::AuthorizationDetail => "invalid_authorization_detail",
            Self::SubjectTokenType => "unsupported_subject_token_type",
            Self::ActorTokenPairing => "actor_token_pairing",
            Self::ActorTokenUnsupported => "actor_token_unsupported",
        }
    }
}

/// A well-formed token-exchange request for an ID-JAG.
#[derive(Debug)]
pub(crate) struct ExchangeRequest {
    pub(crate) audience: Audience,
    pub(crate) resources: Vec<Resource>,
    pub(crate) scope: Option<ScopeSet>,
    pub(crate) authorization_details: Option<Vec<AuthorizationDetail>>,
    pub(crate) subject_token: SubjectToken,
    pub(crate) subject_token_type: SubjectTokenType,
}

fn require<'a>(
    form: &'a FormBody,
    parameter: &'static str,
) -> Result<&'a str, ExchangeRequestError> {
    form.get(parameter)
        .ok_or(ExchangeRequestError::Missing { parameter })
}

impl ExchangeRequest {
    /// Reads the request's parameters (the grant type and client authentication were checked
    /// before). The audience is not yet compared with this IdP's issuer.
    pub(crate) fn from_form(form: &FormBody) -> Result<Self, ExchangeRequestError> {
        if require(form, "requested_token_type")? != wire::TOKEN_TYPE_ID_JAG {
            return Err(ExchangeRequestError::RequestedTokenType);
        }
        let audience = require(form, "audience")?;
        if audience.contains([' ', '\t']) {
            return Err(ExchangeRequestError::MultipleAudiences);
        }
        let audience =
            Audience::new(audience).map_err(|_| ExchangeRequestError::MalformedAudience)?;
        let resources = form
            .get_all("resource")
            .into_iter()
            .map(|r| Resource::new(r).map_err(ExchangeRequestError::Resource))
            .collect::<Result<Vec<_>, _>>()?;
        let scope = form
            .get("scope")
            .map(|s| ScopeSet::parse(s).map_err(|_| ExchangeRequestError::Scope))
            .transpose()?;
        let authorization_details = form
            .get("authorization_details")
            .map(parse_authorization_details)
            .transpose()?
            .filter(|details| !details.is_empty());
        let subject_token = SubjectToken::new(require(form, "subject_token")?);
        let subject_token_type = SubjectTokenType::from_urn(require(form, "subject_token_type")?)
            .ok_or(ExchangeRequestError::SubjectTokenType)?;
        match (
            form.contains("actor_token"),
            form.contains("actor_token_type"),
        ) {
            (false, false) => {}
            (true, true) => return Err(ExchangeRequestError::ActorTokenUnsupported),
            _ => return Err(ExchangeRequestError::ActorTokenPairing),
        }
        Ok(Self {
            audience,
            resources,
            scope,
            authorization_details,
            subject_token,
            subject_token_type,
        })
    }
}

/// Parses `authorization_details` strictly: one JSON array (duplicate members rejected at
/// every depth, nesting capped) of objects with a string `type` (RFC 9396 §2).
fn parse_authorization_details(
    raw: &str,
) -> Result<Vec<AuthorizationDetail>, ExchangeRequestError> {
    // The core's strict parser reads objects, so the value is wrapped in one. A value that
    // smuggles in a second member, or is not one JSON value, gives a wrapper with another
    // shape (or a duplicate-member error) and is refused.
    let wrapped = format!("{{\"authorization_details\":{raw}}}");
    let mut object = parse_object(wrapped.as_bytes(), Segment::Payload)
        .map_err(|_| ExchangeRequestError::AuthorizationDetailsMalformed)?;
    if object.len() != 1 {
        return Err(ExchangeRequestError::AuthorizationDetailsMalformed);
    }
    let Some(Value::Array(items)) = object.remove("authorization_details") else {
        return Err(ExchangeRequestError::AuthorizationDetailsMalformed);
    };
    if items.len() > MAX_AUTHORIZATION_DETAILS {
        return Err(ExchangeRequestError::AuthorizationDetail);
    }
    AuthorizationDetail::from_json_array(items)
        .map_err(|_| ExchangeRequestError::AuthorizationDetail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_details_must_be_one_json_array_of_typed_objects() {
        let ok = parse_authorization_details(r#" [{"type":"chat","actions":["read"]}] "#).unwrap();
        assert_eq!(ok[0].kind(), "chat");
        for bad in [
            "not json",
            r#"{"type":"chat"}"#,
            r#"[], "authorization_details": []"#,
            r#"[], "x": 1"#,
            "[] ]",
            "",
        ] {
            assert_eq!(
                parse_authorization_details(bad).unwrap_err(),
                ExchangeRequestError::AuthorizationDetailsMalformed,
                "{bad}"
            );
        }
        for bad in [
            r#"[1]"#,
            r#"[{"actions":[]}]"#,
            r#"[{"type":""}]"#,
            r#"[{"type":7}]"#,
        ] {
            assert_eq!(
                parse_authorization_details(bad).unwrap_err(),
                ExchangeRequestError::AuthorizationDetail,
                "{bad}"
            );
        }
        assert_eq!(
            parse_authorization_details(r#"[{"type":"a","type":"b"}]"#).unwrap_err(),
            ExchangeRequestError::AuthorizationDetailsMalformed
        );
    }
}
