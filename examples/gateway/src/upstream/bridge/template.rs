//! `header_template`: headers rendered from templates over the caller's identity and,
//! optionally, a secret. See the [bridging docs](super).

use std::collections::BTreeMap;
use std::fmt;

use http::{HeaderName, HeaderValue};
use idjag_core::{BoxFuture, ClientSecret};

use super::check_bridge_header;
use crate::inbound::Authenticated;
use crate::upstream::credential::{Credential, CredentialError, UpstreamCredential};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    User,
    Issuer,
    Agent,
    Teams,
    Secret,
}

/// Parsed header templates. See the [bridging docs](super).
#[derive(Debug, Clone)]
pub struct HeaderTemplates {
    headers: Vec<(HeaderName, Vec<Part>)>,
}

impl HeaderTemplates {
    /// Parses `name → template`.
    pub fn parse(templates: &BTreeMap<String, String>) -> Result<Self, String> {
        if templates.is_empty() {
            return Err("at least one header".to_owned());
        }
        let mut headers = Vec::new();
        for (name, template) in templates {
            headers.push((check_bridge_header(name)?, parse_template(template)?));
        }
        Ok(Self { headers })
    }

    /// Each header and its template, written back in canonical form.
    pub fn templates(&self) -> impl Iterator<Item = (&str, String)> {
        self.headers
            .iter()
            .map(|(name, parts)| (name.as_str(), template_text(parts)))
    }

    /// Whether a template uses `{secret}`.
    pub fn uses_secret(&self) -> bool {
        self.headers
            .iter()
            .any(|(_, parts)| parts.contains(&Part::Secret))
    }

    fn render(
        &self,
        caller: &Authenticated,
        secret: Option<&ClientSecret>,
    ) -> Result<Credential, CredentialError> {
        let identity = &caller.identity;
        let mut out = Vec::with_capacity(self.headers.len());
        for (name, parts) in &self.headers {
            let mut text = String::new();
            for part in parts {
                match part {
                    Part::Text(t) => text.push_str(t),
                    Part::User => text.push_str(identity.user.as_str()),
                    Part::Issuer => text.push_str(identity.issuer.as_str()),
                    Part::Agent => text.push_str(identity.agent.as_deref().unwrap_or("")),
                    Part::Teams => text.push_str(&identity.teams.join(",")),
                    Part::Secret => text.push_str(secret.map_or("", ClientSecret::secret)),
                }
            }
            let value =
                HeaderValue::try_from(text).map_err(|_| CredentialError::InvalidTemplateValue)?;
            out.push((name.clone(), value));
        }
        Ok(Credential::from_headers(out))
    }
}

impl serde::Serialize for HeaderTemplates {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.templates())
    }
}

fn template_text(parts: &[Part]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(text) => out.push_str(&text.replace('{', "{{").replace('}', "}}")),
            Part::User => out.push_str("{user}"),
            Part::Issuer => out.push_str("{issuer}"),
            Part::Agent => out.push_str("{agent}"),
            Part::Teams => out.push_str("{teams}"),
            Part::Secret => out.push_str("{secret}"),
        }
    }
    out
}

fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let part = match name.as_str() {
                    "user" => Part::User,
                    "issuer" => Part::Issuer,
                    "agent" => Part::Agent,
                    "teams" => Part::Teams,
                    "secret" => Part::Secret,
                    other => return Err(format!("unknown placeholder {{{other}}}")),
                };
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
            '}' => return Err("a lone } (write }} for a brace)".to_owned()),
            c if c.is_control() => return Err("a control character".to_owned()),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

/// A `header_template` credential.
pub struct TemplateCredential {
    templates: HeaderTemplates,
    secret: Option<ClientSecret>,
}

impl fmt::Debug for TemplateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateCredential")
            .field("headers", &self.templates.headers.len())
            .field("secret", &self.secret)
            .finish()
    }
}

impl TemplateCredential {
    /// Templates and the secret they may use.
    pub fn new(templates: HeaderTemplates, secret: Option<ClientSecret>) -> Self {
        Self { templates, secret }
    }

    /// The templates.
    pub fn templates(&self) -> &HeaderTemplates {
        &self.templates
    }
}

impl UpstreamCredential for TemplateCredential {
    fn mode(&self) -> &'static str {
        "header_template"
    }

    fn credential<'a>(
        &'a self,
        caller: &'a Authenticated,
    ) -> BoxFuture<'a, Result<Credential, CredentialError>> {
        Box::pin(async move { self.templates.render(caller, self.secret.as_ref()) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use idjag_core::Issuer;

    use super::*;
    use crate::inbound::InboundToken;

    #[test]
    fn templates_parse_placeholders_and_escapes_only() {
        assert_eq!(
            parse_template("u={user};{{x}}").unwrap(),
            [
                Part::Text("u=".into()),
                Part::User,
                Part::Text(";{x}".into())
            ]
        );
        for (template, error) in [
            ("{env:HOME}", "unknown placeholder {env:HOME}"),
            ("a}b", "a lone } (write }} for a brace)"),
            ("a\nb", "a control character"),
        ] {
            assert_eq!(parse_template(template).unwrap_err(), error);
        }
    }

    #[test]
    fn templates_are_written_back_as_they_parse() {
        for template in [
            "u={user};{{x}}",
            "{issuer}/{agent}:{teams}",
            "Token {secret}",
            "}}{{",
        ] {
            assert_eq!(template_text(&parse_template(template).unwrap()), template);
        }
    }

    #[test]
    fn no_header_can_be_injected_through_a_claim() {
        use idjag_core::{Audience, IdTokenClaims, NumericDate, Subject};
        let templates = HeaderTemplates::parse(&std::collections::BTreeMap::from([(
            "x-user".to_owned(),
            "{user}".to_owned(),
        )]))
        .unwrap();
        let caller = |user: &str| {
            let claims = IdTokenClaims::new(
                Issuer::new("https://idp.example").unwrap(),
                Subject::new(user).unwrap(),
                Audience::new("gw").unwrap(),
                NumericDate::from_unix(1).unwrap(),
                NumericDate::from_unix(2).unwrap(),
            );
            Authenticated {
                identity: Arc::new(
                    crate::inbound::TeamMap::default()
                        .from_id_token(&claims)
                        .unwrap(),
                ),
                token: InboundToken::IdToken(idjag_core::IdToken::new("t")),
                token_digest: [0; 32],
            }
        };
        let ok = templates.render(&caller("alice"), None).unwrap();
        assert_eq!(ok.headers()[0].1, "alice");
        assert!(ok.headers()[0].1.is_sensitive());
        // A CR/LF never reaches a template: verified identifiers refuse control characters,
        // and a value that could not be a header would be refused when rendered.
        assert!(Subject::new("alice\r\nx-admin: 1").is_err());
        assert!(HeaderValue::try_from("alice\r\nx-admin: 1".to_owned()).is_err());
    }
}
