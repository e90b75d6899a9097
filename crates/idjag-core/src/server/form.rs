//! Strict `application/x-www-form-urlencoded` request bodies (RFC 6749 §3.1, §3.2).

use std::collections::HashMap;

use crate::wire;

/// Most parameters a body may carry.
pub const MAX_FORM_PARAMETERS: usize = 64;

/// Why a form body was refused. Carries parameter names only when they are short and plain,
/// never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// A `%` not followed by two hex digits, or a decoded value that is not UTF-8.
    #[error("invalid form encoding")]
    Encoding,
    /// A parameter appears more than once with a value (RFC 6749 §3.1: parameters MUST NOT
    /// repeat; threat X16).
    #[error("parameter {name} is repeated")]
    Duplicate {
        /// The parameter name (or `<other>` when it is not short and plain).
        name: String,
    },
    /// More than [`MAX_FORM_PARAMETERS`] parameters.
    #[error("too many parameters")]
    TooManyParameters,
    /// A required parameter is absent or empty.
    #[error("parameter {name} is missing")]
    Missing {
        /// The parameter name.
        name: &'static str,
    },
}

/// A decoded form body. Empty values count as omitted (RFC 6749 §3.1), which also tolerates
/// peers that send e.g. an empty `code=` beside a jwt-bearer grant.
#[derive(Clone, Default)]
pub struct FormBody {
    params: HashMap<String, String>,
    /// Values of the parameters the caller allowed to repeat, in request order.
    repeated: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for FormBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets (client_secret, subject_token, assertion): names only.
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("FormBody").field("names", &names).finish()
    }
}

fn plain_name(name: &str) -> String {
    if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name.to_owned()
    } else {
        "<other>".to_owned()
    }
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(FormError::Encoding)?;
                let hex = std::str::from_utf8(hex).map_err(|_| FormError::Encoding)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(FormError::Encoding);
                }
                out.push(u8::from_str_radix(hex, 16).map_err(|_| FormError::Encoding)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::Encoding)
}

impl FormBody {
    /// Parses a form body strictly: percent-escapes must be complete, everything must decode
    /// to UTF-8, and no parameter may carry a value twice.
    ///
    /// ```
    /// use idjag_core::server::{FormBody, FormError};
    /// let form = FormBody::parse(b"grant_type=a&scope=x%20y&code=").unwrap();
    /// assert_eq!(form.get("scope"), Some("x y"));
    /// assert_eq!(form.get("code"), None); // empty means omitted
    /// assert!(matches!(FormBody::parse(b"a=1&a=2"), Err(FormError::Duplicate { .. })));
    /// assert_eq!(FormBody::parse(b"a=%zz").unwrap_err(), FormError::Encoding);
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        Self::parse_with_repeatable(body, &[])
    }

    /// Parses like [`Self::parse`], except that the parameters named in `repeatable` may
    /// appear several times (RFC 8693 §2.1 lets `resource` and `audience` repeat). Read them
    /// with [`Self::get_all`]; [`Self::get`] answers for them only when there is exactly one
    /// value. Every other parameter must still appear at most once.
    ///
    /// ```
    /// use idjag_core::server::{FormBody, FormError};
    /// let body = b"resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example&scope=x";
    /// let form = FormBody::parse_with_repeatable(body, &["resource"]).unwrap();
    /// assert_eq!(form.get_all("resource"), ["https://a.example", "https://b.example"]);
    /// assert_eq!(form.get("resource"), None); // two values: ask for all of them
    /// assert!(matches!(
    ///     FormBody::parse_with_repeatable(b"scope=a&scope=b", &["resource"]),
    ///     Err(FormError::Duplicate { .. })
    /// ));
    /// ```
    pub fn parse_with_repeatable(body: &[u8], repeatable: &[&str]) -> Result<Self, FormError> {
        let mut params = HashMap::new();
        let mut repeated: HashMap<String, Vec<String>> = HashMap::new();
        let mut count = 0;
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            count += 1;
            if count > MAX_FORM_PARAMETERS {
                return Err(FormError::TooManyParameters);
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if value.is_empty() {
                continue;
            }
            if repeatable.contains(&name.as_str()) {
                repeated.entry(name).or_default().push(value);
                continue;
            }
            if params.contains_key(&name) {
                return Err(FormError::Duplicate {
                    name: plain_name(&name),
                });
            }
            params.insert(name, value);
        }
        Ok(Self { params, repeated })
    }

    /// A parameter's value; `None` when absent or empty (or, for a parameter allowed to
    /// repeat, when it has more than one value).
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.params.get(name) {
            Some(value) => Some(value),
            None => match self.repeated.get(name).map(Vec::as_slice) {
                Some([one]) => Some(one),
                _ => None,
            },
        }
    }

    /// Every value of a parameter, in request order: several for a parameter allowed to
    /// repeat ([`Self::parse_with_repeatable`]), otherwise none or one.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        match self.repeated.get(name) {
            Some(values) => values.iter().map(String::as_str).collect(),
            None => self
                .params
                .get(name)
                .map(String::as_str)
                .into_iter()
                .collect(),
        }
    }

    /// A required parameter's value.
    pub fn require(&self, name: &'static str) -> Result<&str, FormError> {
        self.get(name).ok_or(FormError::Missing { name })
    }

    /// Whether the parameter is present with a value.
    pub fn contains(&self, name: &str) -> bool {
        self.params.contains_key(name) || self.repeated.contains_key(name)
    }

    /// The parameter names present.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params
            .keys()
            .chain(self.repeated.keys())
            .map(String::as_str)
    }
}

/// Whether a `Content-Type` value is `application/x-www-form-urlencoded` (parameters such as
/// `charset=UTF-8` allowed, case-insensitive).
pub fn is_form_content_type(value: &str) -> bool {
    let media = value.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case(wire::MEDIA_TYPE_FORM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x16_invalid_percent_encoding_is_rejected() {
        for bad in [&b"a=%"[..], b"a=%4", b"a=%g1", b"%zz=1", b"a=%ff"] {
            assert_eq!(
                FormBody::parse(bad).unwrap_err(),
                FormError::Encoding,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn x16_duplicates_are_rejected_and_named_safely() {
        assert_eq!(
            FormBody::parse(b"audience=a&audience=b").unwrap_err(),
            FormError::Duplicate {
                name: "audience".into()
            }
        );
        assert_eq!(
            FormBody::parse(b"a%20b=1&a%20b=2").unwrap_err(),
            FormError::Duplicate {
                name: "<other>".into()
            }
        );
        // An empty repeat is an omission, not a duplicate.
        assert_eq!(FormBody::parse(b"code=&code=").unwrap().get("code"), None);
    }

    #[test]
    fn only_named_parameters_may_repeat() {
        let form = FormBody::parse_with_repeatable(
            b"resource=a%3Ab&audience=x&resource=&resource=c%3Ad",
            &["resource"],
        )
        .unwrap();
        assert_eq!(form.get_all("resource"), ["a:b", "c:d"]);
        assert_eq!(form.get("resource"), None);
        assert_eq!(form.get_all("audience"), ["x"]);
        assert!(form.contains("resource"));
        let one = FormBody::parse_with_repeatable(b"resource=a%3Ab", &["resource"]).unwrap();
        assert_eq!(one.get("resource"), Some("a:b"));
        assert_eq!(
            FormBody::parse_with_repeatable(b"resource=a&audience=x&audience=y", &["resource"])
                .unwrap_err(),
            FormError::Duplicate {
                name: "audience".into()
            }
        );
        // The count limit covers repeated parameters too.
        let many: Vec<String> = (0..=MAX_FORM_PARAMETERS)
            .map(|i| format!("resource=r{i}"))
            .collect();
        assert_eq!(
            FormBody::parse_with_repeatable(many.join("&").as_bytes(), &["resource"]).unwrap_err(),
            FormError::TooManyParameters
        );
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let body: Vec<String> = (0..=MAX_FORM_PARAMETERS)
            .map(|i| format!("p{i}=v"))
            .collect();
        assert_eq!(
            FormBody::parse(body.join("&").as_bytes()).unwrap_err(),
            FormError::TooManyParameters
        );
    }

    #[test]
    fn debug_shows_names_only() {
        let form = FormBody::parse(b"client_secret=s3%3Acr3t&grant_type=x").unwrap();
        let debug = format!("{form:?}");
        assert!(!debug.contains("s3:cr3t") && !debug.contains("s3%3Acr3t"));
        assert!(debug.contains("client_secret"));
    }

    #[test]
    fn form_content_type_accepts_parameters_and_case() {
        assert!(is_form_content_type("application/x-www-form-urlencoded"));
        assert!(is_form_content_type(
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
        ));
        assert!(!is_form_content_type("application/json"));
        assert!(!is_form_content_type("multipart/form-data"));
    }
}
