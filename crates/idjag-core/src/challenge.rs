//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1): one [`BearerChallenge`] type that a
//! protected resource renders (RFC 6750 §3, RFC 9728 §5.1, MCP 2025-11-25) and a client
//! parses, so both sides speak the same parameters.
//!
//! ```
//! use idjag_core::challenge::BearerChallenge;
//! use idjag_core::{OAuthErrorCode, ScopeSet};
//!
//! // The resource server refuses with a challenge...
//! let sent = BearerChallenge::new()
//!     .with_error(OAuthErrorCode::InsufficientScope)
//!     .with_scope(ScopeSet::parse("chat.write").unwrap())
//!     .with_resource_metadata("https://mcp.example/.well-known/oauth-protected-resource");
//! // ...and the client reads it back from the header.
//! let read = BearerChallenge::from_header_values([sent.to_string().as_str()])?.unwrap();
//! assert_eq!(read.scope().unwrap().to_string(), "chat.write");
//! assert_eq!(read, sent);
//! # Ok::<(), idjag_core::challenge::ChallengeError>(())
//! ```

use http::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};

use crate::endpoint::{EndpointError, check_endpoint};
use crate::error::{ErrorCode, OAuthErrorCode};
use crate::id::ScopeSet;

/// Why a `WWW-Authenticate` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// Not a well-formed list of challenges (RFC 9110 §11.6.1), not ASCII, longer than 8 KiB,
    /// a parameter given twice, or a `scope` that is not an RFC 6749 §3.3 scope string.
    #[error("malformed WWW-Authenticate header")]
    Malformed,
    /// `resource_metadata` is not an `https` URL (`http` only on loopback).
    #[error("resource_metadata is not a valid endpoint: {0}")]
    Endpoint(EndpointError),
}

/// One challenge of a `WWW-Authenticate` header: a scheme with parameters or a token68.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// The scheme, as sent (compare it without case).
    pub scheme: String,
    /// Parameters, names lower-cased, values unquoted; each name at most once.
    pub params: Vec<(String, String)>,
    /// A token68, when the challenge carries one instead of parameters.
    pub token68: Option<String>,
}

impl Challenge {
    /// A parameter by (lower-case) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the values of one or more `WWW-Authenticate` fields into challenges.
///
/// ```
/// use idjag_core::challenge::parse_www_authenticate;
/// let challenges = parse_www_authenticate([
///     r#"Basic realm="x", Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource", scope="a b""#,
/// ]).unwrap();
/// assert_eq!(challenges.len(), 2);
/// assert_eq!(challenges[1].param("scope"), Some("a b"));
/// ```
pub fn parse_www_authenticate<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, ChallengeError> {
    let mut challenges = Vec::new();
    for value in values {
        Parser::new(value).challenges(&mut challenges)?;
    }
    Ok(challenges)
}

const MAX_HEADER_BYTES: usize = 8 * 1024;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Skips whitespace and empty list elements.
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start)
            .then(|| std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default())
    }

    fn at_element_end(&mut self) -> bool {
        let save = self.pos;
        self.skip_ows();
        let end = matches!(self.peek(), None | Some(b','));
        self.pos = save;
        end
    }

    fn challenges(&mut self, out: &mut Vec<Challenge>) -> Result<(), ChallengeError> {
        if self.s.len() > MAX_HEADER_BYTES || !self.s.is_ascii() {
            return Err(ChallengeError::Malformed);
        }
        loop {
            self.skip_separators();
            if self.peek().is_none() {
                return Ok(());
            }
            let scheme = self.token().ok_or(ChallengeError::Malformed)?.to_owned();
            let mut challenge = Challenge {
                scheme,
                params: Vec::new(),
                token68: None,
            };
            if self.at_element_end() {
                out.push(challenge);
                continue;
            }
            if self.peek() != Some(b' ') {
                return Err(ChallengeError::Malformed);
            }
            self.skip_ows();
            if let Some(token68) = self.token68() {
                challenge.token68 = Some(token68);
                out.push(challenge);
                continue;
            }
            self.params(&mut challenge)?;
            out.push(challenge);
        }
    }

    /// A token68 followed by the end of the element; otherwise nothing is consumed.
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_token68_char) {
            self.pos += 1;
        }
        let chars_end = self.pos;
        while self.peek() == Some(b'=') {
            self.pos += 1;
        }
        if chars_end > start && self.at_element_end() {
            return Some(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned());
        }
        self.pos = start;
        None
    }

    /// `auth-param *( OWS "," OWS auth-param )`, stopping before the next challenge.
    fn params(&mut self, challenge: &mut Challenge) -> Result<(), ChallengeError> {
        loop {
            let name = self
                .token()
                .ok_or(ChallengeError::Malformed)?
                .to_ascii_lowercase();
            self.skip_ows();
            if self.peek() != Some(b'=') {
                return Err(ChallengeError::Malformed);
            }
            self.pos += 1;
            self.skip_ows();
            let value = if self.peek() == Some(b'"') {
                self.quoted_string()?
            } else {
                self.token().ok_or(ChallengeError::Malformed)?.to_owned()
            };
            if challenge.params.iter().any(|(n, _)| *n == name) {
                return Err(ChallengeError::Malformed);
            }
            challenge.params.push((name, value));
            self.skip_ows();
            match self.peek() {
                None => return Ok(()),
                Some(b',') => {}
                Some(_) => return Err(ChallengeError::Malformed),
            }
            // A comma: another parameter of this challenge, or the next challenge.
            let save = self.pos;
            self.skip_separators();
            if self.peek().is_none() {
                return Ok(());
            }
            let next = self.pos;
            let is_param = self.token().is_some() && {
                self.skip_ows();
                self.peek() == Some(b'=')
            };
            if !is_param {
                self.pos = save;
                return Ok(());
            }
            self.pos = next;
        }
    }

    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(ChallengeError::Malformed),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.peek().ok_or(ChallengeError::Malformed)?;
                    if escaped != b'\t' && !(0x20..0x7f).contains(&escaped) {
                        return Err(ChallengeError::Malformed);
                    }
                    out.push(char::from(escaped));
                    self.pos += 1;
                }
                Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) => {
                    out.push(char::from(b));
                    self.pos += 1;
                }
                Some(_) => return Err(ChallengeError::Malformed),
            }
        }
    }
}

/// A `WWW-Authenticate: Bearer ...` (or `DPoP ...`) challenge: where the resource's metadata
/// is, which scopes it wants and why it refused (RFC 6750 §3, RFC 9728 §5.1, MCP 2025-11-25).
///
/// A protected resource builds one with [`Self::new`] and the `with_*` methods and sends
/// [`Self::to_header_value`]; a client reads one with [`Self::from_headers`] or
/// [`Self::from_header_values`]. A parsed challenge's `resource_metadata` was checked to be
/// `https` (or `http` on loopback); one built here is not checked, it is ours.
///
/// ```
/// use idjag_core::challenge::BearerChallenge;
/// use idjag_core::{OAuthErrorCode, ScopeSet};
/// let challenge = BearerChallenge::new()
///     .with_resource_metadata("https://mcp.example/.well-known/oauth-protected-resource")
///     .with_error(OAuthErrorCode::InsufficientScope)
///     .with_scope(ScopeSet::parse("tools.write").unwrap());
/// assert_eq!(
///     challenge.to_string(),
///     r#"Bearer error="insufficient_scope", scope="tools.write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource""#
/// );
///
/// let read = BearerChallenge::from_header_values([
///     r#"bearer error="insufficient_scope", scope="chat.read chat.write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp""#,
/// ]).unwrap().unwrap();
/// assert_eq!(read.scope().unwrap().to_string(), "chat.read chat.write");
/// assert_eq!(read.error().unwrap().as_str(), "insufficient_scope");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    scheme: String,
    realm: Option<String>,
    error: Option<ErrorCode>,
    error_description: Option<String>,
    scope: Option<ScopeSet>,
    resource_metadata: Option<String>,
}

impl Default for BearerChallenge {
    fn default() -> Self {
        Self::new()
    }
}

impl BearerChallenge {
    /// A bare `Bearer` challenge.
    pub fn new() -> Self {
        Self {
            scheme: "Bearer".to_owned(),
            realm: None,
            error: None,
            error_description: None,
            scope: None,
            resource_metadata: None,
        }
    }

    /// Sets `realm`.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Sets `error`.
    pub fn with_error(mut self, error: impl Into<ErrorCode>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// Sets `error_description` (keep it generic: it is sent to the client).
    pub fn with_error_description(mut self, description: impl Into<String>) -> Self {
        self.error_description = Some(description.into());
        self
    }

    /// Sets `scope`: the scope needed.
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Sets `resource_metadata`: the RFC 9728 metadata URL.
    pub fn with_resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// The scheme: `Bearer` for a challenge built here; as sent (compare it without case) for
    /// a parsed one, `Bearer` or `DPoP`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// `realm`.
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// `error` (RFC 6750 §3.1), for example `invalid_token` or `insufficient_scope`; a code
    /// idjag does not know is kept as [`ErrorCode::Extension`].
    pub fn error(&self) -> Option<&ErrorCode> {
        self.error.as_ref()
    }

    /// `error_description`.
    pub fn error_description(&self) -> Option<&str> {
        self.error_description.as_deref()
    }

    /// `scope` (MCP 2025-11-25: the scopes to request).
    pub fn scope(&self) -> Option<&ScopeSet> {
        self.scope.as_ref()
    }

    /// `resource_metadata` (RFC 9728 §5.1).
    pub fn resource_metadata(&self) -> Option<&str> {
        self.resource_metadata.as_deref()
    }

    /// The header value.
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// The first `Bearer` challenge (scheme compared without case), else the first `DPoP` one,
    /// among the values of the `WWW-Authenticate` fields. `Ok(None)` when there is neither.
    pub fn from_header_values<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Self>, ChallengeError> {
        let challenges = parse_www_authenticate(values)?;
        let pick = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
            .or_else(|| {
                challenges
                    .iter()
                    .find(|c| c.scheme.eq_ignore_ascii_case("dpop"))
            });
        pick.map(Self::from_challenge).transpose()
    }

    /// Reads the `WWW-Authenticate` fields of a response's headers.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ChallengeError> {
        let values = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().map_err(|_| ChallengeError::Malformed))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_header_values(values)
    }

    fn from_challenge(challenge: &Challenge) -> Result<Self, ChallengeError> {
        let resource_metadata = challenge
            .param("resource_metadata")
            .map(|url| {
                check_endpoint(url)
                    .map(String::from)
                    .map_err(ChallengeError::Endpoint)
            })
            .transpose()?;
        let scope = challenge
            .param("scope")
            .map(|s| ScopeSet::parse(s).map_err(|_| ChallengeError::Malformed))
            .transpose()?;
        let error = challenge.param("error").map(|code| {
            OAuthErrorCode::from_wire(code)
                .map_or_else(|| ErrorCode::Extension(code.to_owned()), ErrorCode::Known)
        });
        Ok(Self {
            scheme: challenge.scheme.clone(),
            realm: challenge.param("realm").map(str::to_owned),
            error,
            error_description: challenge.param("error_description").map(str::to_owned),
            scope,
            resource_metadata,
        })
    }
}

fn quoted(out: &mut std::fmt::Formatter<'_>, value: &str) -> std::fmt::Result {
    out.write_str("\"")?;
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.write_str("\\")?;
        }
        write!(out, "{c}")?;
    }
    out.write_str("\"")
}

impl std::fmt::Display for BearerChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.scheme)?;
        let scope = self.scope.as_ref().map(ToString::to_string);
        let params = [
            ("realm", self.realm.as_deref()),
            ("error", self.error.as_ref().map(ErrorCode::as_str)),
            ("error_description", self.error_description.as_deref()),
            ("scope", scope.as_deref()),
            ("resource_metadata", self.resource_metadata.as_deref()),
        ];
        let mut first = true;
        for (name, value) in params {
            if let Some(value) = value {
                f.write_str(if first { " " } else { ", " })?;
                first = false;
                write!(f, "{name}=")?;
                quoted(f, value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Challenge>, ChallengeError> {
        parse_www_authenticate([s])
    }

    #[test]
    fn quoted_strings_keep_commas_and_escapes() {
        let c = parse(r#"Bearer realm="a, \"b\"", error=invalid_token"#).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), Some(r#"a, "b""#));
        assert_eq!(c[0].param("error"), Some("invalid_token"));
    }

    #[test]
    fn several_challenges_split_at_the_right_comma() {
        let c = parse(r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Bearer"#).unwrap();
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Newauth", "Basic", "Bearer"]);
        assert_eq!(c[0].params.len(), 3);
        assert_eq!(c[1].param("realm"), Some("simple"));
    }

    #[test]
    fn token68_and_empty_elements() {
        let c = parse(", Negotiate abc+/def==, , Bearer realm=x").unwrap();
        assert_eq!(c[0].token68.as_deref(), Some("abc+/def=="));
        assert_eq!(c[1].param("realm"), Some("x"));
    }

    #[test]
    fn param_names_are_case_insensitive_and_unique() {
        let c = parse(r#"Bearer Scope="a""#).unwrap();
        assert_eq!(c[0].param("scope"), Some("a"));
        assert_eq!(
            parse(r#"Bearer scope="a", SCOPE="b""#),
            Err(ChallengeError::Malformed)
        );
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            r#"Bearer realm="unterminated"#,
            "Bearer , realm=x",
            "Bearer =x",
            "Bearer realm=\"a\" junk",
            "Bearer\trealm=x",
            "Bearer realm=\"caf\u{e9}\"",
        ] {
            assert_eq!(parse(bad), Err(ChallengeError::Malformed), "{bad}");
        }
    }

    #[test]
    fn bearer_scheme_is_matched_without_case_and_preferred_over_dpop() {
        let c = BearerChallenge::from_header_values([r#"DPoP algs="ES256", BEARER scope="x""#])
            .unwrap()
            .unwrap();
        assert_eq!(c.scheme(), "BEARER");
        assert_eq!(c.scope().unwrap().to_string(), "x");
        assert_eq!(
            BearerChallenge::from_header_values([r#"Basic realm="x""#]).unwrap(),
            None
        );
    }

    #[test]
    fn resource_metadata_must_be_https_or_loopback() {
        let err = BearerChallenge::from_header_values([
            r#"Bearer resource_metadata="http://evil.example/prm""#,
        ]);
        assert_eq!(err, Err(ChallengeError::Endpoint(EndpointError::NotHttps)));
        let ok = BearerChallenge::from_header_values([
            r#"Bearer resource_metadata="http://127.0.0.1:9/prm""#,
        ])
        .unwrap()
        .unwrap();
        assert_eq!(ok.resource_metadata().unwrap(), "http://127.0.0.1:9/prm");
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn quoted_values_round_trip(v in "[ -~]{0,40}") {
            let quoted = v.replace('\\', "\\\\").replace('"', "\\\"");
            let c = parse(&format!("Bearer realm=\"{quoted}\", scope=a")).unwrap();
            proptest::prop_assert_eq!(c[0].param("realm"), Some(v.as_str()));
            proptest::prop_assert_eq!(c[0].param("scope"), Some("a"));
        }
    }

    #[test]
    fn challenge_values_are_quoted_and_escaped() {
        let c = BearerChallenge::new().with_realm("a\"b\\c\nd");
        assert_eq!(c.to_string(), r#"Bearer realm="a\"b\\cd""#);
        assert_eq!(BearerChallenge::new().to_string(), "Bearer");
    }

    #[test]
    fn a_rendered_challenge_parses_back_to_itself() {
        let rendered = BearerChallenge::new()
            .with_realm("mcp")
            .with_error(OAuthErrorCode::InsufficientScope)
            .with_error_description("needs \"write\"")
            .with_scope(ScopeSet::parse("tools.read tools.write").unwrap())
            .with_resource_metadata("https://mcp.example/.well-known/oauth-protected-resource");
        let parsed = BearerChallenge::from_header_values([rendered.to_string().as_str()])
            .unwrap()
            .unwrap();
        assert_eq!(parsed, rendered);
    }
}
