//! `WWW-Authenticate` parsing (RFC 9110 §11.6.1) and the Bearer challenge of RFC 6750 §3
//! with RFC 9728's `resource_metadata` (requirement MD-10).

use idjag_core::endpoint::check_endpoint;
use idjag_core::{ErrorCode, OAuthErrorCode, ScopeSet};
use url::Url;

use crate::error::DiscoveryError;

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
/// use idjag_client::discovery::parse_www_authenticate;
/// let challenges = parse_www_authenticate([
///     r#"Basic realm="x", Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource", scope="a b""#,
/// ]).unwrap();
/// assert_eq!(challenges.len(), 2);
/// assert_eq!(challenges[1].param("scope"), Some("a b"));
/// ```
pub fn parse_www_authenticate<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, DiscoveryError> {
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

    fn challenges(&mut self, out: &mut Vec<Challenge>) -> Result<(), DiscoveryError> {
        if self.s.len() > MAX_HEADER_BYTES || !self.s.is_ascii() {
            return Err(DiscoveryError::Challenge);
        }
        loop {
            self.skip_separators();
            if self.peek().is_none() {
                return Ok(());
            }
            let scheme = self.token().ok_or(DiscoveryError::Challenge)?.to_owned();
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
                return Err(DiscoveryError::Challenge);
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
    fn params(&mut self, challenge: &mut Challenge) -> Result<(), DiscoveryError> {
        loop {
            let name = self
                .token()
                .ok_or(DiscoveryError::Challenge)?
                .to_ascii_lowercase();
            self.skip_ows();
            if self.peek() != Some(b'=') {
                return Err(DiscoveryError::Challenge);
            }
            self.pos += 1;
            self.skip_ows();
            let value = if self.peek() == Some(b'"') {
                self.quoted_string()?
            } else {
                self.token().ok_or(DiscoveryError::Challenge)?.to_owned()
            };
            if challenge.params.iter().any(|(n, _)| *n == name) {
                return Err(DiscoveryError::Challenge);
            }
            challenge.params.push((name, value));
            self.skip_ows();
            match self.peek() {
                None => return Ok(()),
                Some(b',') => {}
                Some(_) => return Err(DiscoveryError::Challenge),
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

    fn quoted_string(&mut self) -> Result<String, DiscoveryError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(DiscoveryError::Challenge),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.peek().ok_or(DiscoveryError::Challenge)?;
                    if escaped != b'\t' && !(0x20..0x7f).contains(&escaped) {
                        return Err(DiscoveryError::Challenge);
                    }
                    out.push(char::from(escaped));
                    self.pos += 1;
                }
                Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) => {
                    out.push(char::from(b));
                    self.pos += 1;
                }
                Some(_) => return Err(DiscoveryError::Challenge),
            }
        }
    }
}

/// A `Bearer` (or `DPoP`) challenge from a protected resource: where its metadata is, which
/// scopes it wants and why it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BearerChallenge {
    /// The scheme: `Bearer` or `DPoP`.
    pub scheme: String,
    /// `resource_metadata` (RFC 9728 §5.1), checked to be `https` (or `http` on loopback).
    pub resource_metadata: Option<Url>,
    /// `scope` (MCP 2025-11-25: the scopes to request).
    pub scope: Option<ScopeSet>,
    /// `error` (RFC 6750 §3.1), for example `invalid_token` or `insufficient_scope`.
    pub error: Option<ErrorCode>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `realm`.
    pub realm: Option<String>,
}

impl BearerChallenge {
    /// The first `Bearer` challenge (scheme compared without case), else the first `DPoP` one,
    /// among the values of the `WWW-Authenticate` fields. `Ok(None)` when there is neither.
    ///
    /// ```
    /// use idjag_client::discovery::BearerChallenge;
    /// let c = BearerChallenge::from_header_values([
    ///     r#"bearer error="insufficient_scope", scope="chat.read chat.write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp""#,
    /// ]).unwrap().unwrap();
    /// assert_eq!(c.scope.unwrap().to_string(), "chat.read chat.write");
    /// assert_eq!(c.error.unwrap().as_str(), "insufficient_scope");
    /// ```
    pub fn from_header_values<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Self>, DiscoveryError> {
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
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Option<Self>, DiscoveryError> {
        let values = headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().map_err(|_| DiscoveryError::Challenge))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_header_values(values)
    }

    fn from_challenge(challenge: &Challenge) -> Result<Self, DiscoveryError> {
        let resource_metadata = challenge
            .param("resource_metadata")
            .map(|url| check_endpoint(url).map_err(DiscoveryError::Endpoint))
            .transpose()?;
        let scope = challenge
            .param("scope")
            .map(|s| ScopeSet::parse(s).map_err(|_| DiscoveryError::Challenge))
            .transpose()?;
        let error = challenge.param("error").map(|code| {
            OAuthErrorCode::from_wire(code)
                .map_or_else(|| ErrorCode::Extension(code.to_owned()), ErrorCode::Known)
        });
        Ok(Self {
            scheme: challenge.scheme.clone(),
            resource_metadata,
            scope,
            error,
            error_description: challenge.param("error_description").map(str::to_owned),
            realm: challenge.param("realm").map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Challenge>, DiscoveryError> {
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
            Err(DiscoveryError::Challenge)
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
            assert_eq!(parse(bad), Err(DiscoveryError::Challenge), "{bad}");
        }
    }

    #[test]
    fn bearer_scheme_is_matched_without_case_and_preferred_over_dpop() {
        let c = BearerChallenge::from_header_values([r#"DPoP algs="ES256", BEARER scope="x""#])
            .unwrap()
            .unwrap();
        assert_eq!(c.scheme, "BEARER");
        assert_eq!(c.scope.unwrap().to_string(), "x");
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
        assert!(matches!(err, Err(DiscoveryError::Endpoint(_))));
        let ok = BearerChallenge::from_header_values([
            r#"Bearer resource_metadata="http://127.0.0.1:9/prm""#,
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            ok.resource_metadata.unwrap().as_str(),
            "http://127.0.0.1:9/prm"
        );
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
}
