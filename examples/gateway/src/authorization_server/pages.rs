//! What the authorization server answers: error pages for the user's browser (when the
//! client or its redirect URI cannot be trusted, RFC 6749 §4.1.2.1), redirects back to the
//! client, and RFC 6749 §5.2 JSON errors. Every answer is `no-store`; pages carry a strict
//! content security policy, no referrer and no framing. No token, code or secret is ever
//! written into a page or an error body.

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, REFERRER_POLICY};
use http::{HeaderValue, StatusCode};
use idjag_core::{OAuthErrorCode, OAuthErrorResponse};
use url::Url;

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// One error page: a title, what happened and what to do, and a stable code the user can
/// quote to their administrator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorPage {
    pub(crate) status: StatusCode,
    /// A stable code (`unknown_client`, `redirect_uri_mismatch`, ...).
    pub(crate) code: &'static str,
    pub(crate) title: &'static str,
    pub(crate) detail: &'static str,
}

impl ErrorPage {
    pub(crate) const fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: &'static str,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail,
        }
    }

    /// The page, naming the client (`who`: its name or id, escaped) when known.
    pub(crate) fn render(&self, who: Option<&str>) -> Response {
        let client = who.map_or_else(String::new, |who| {
            format!(
                "<p class=\"client\">Application: <strong>{}</strong></p>",
                escape(&truncate(who, 200))
            )
        });
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · idjag gateway</title><style>{STYLE}</style></head>\
<body><main><h1>{title}</h1><p>{detail}</p>{client}\
<p class=\"code\">Error code: <code id=\"error-code\">{code}</code></p>\
<p class=\"hint\">You can close this window. If this keeps happening, tell your administrator the error code.</p>\
</main></body></html>\n",
            title = escape(self.title),
            detail = escape(self.detail),
            code = escape(self.code),
        );
        let mut response = Response::new(Body::from(html));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        page_headers(headers);
        response
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:34rem;margin:10vh auto;background:#fff;border-radius:12px;padding:2rem 2.25rem;box-shadow:0 2px 12px rgba(0,0,0,.08)}\
h1{font-size:1.35rem;margin:0 0 1rem;color:#a12622}p{line-height:1.5}code{background:#eef0f3;padding:.1rem .35rem;border-radius:4px;word-break:break-all}\
.hint{color:#5b6270;font-size:.9rem}";

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `no-store`, no referrer, no framing, nothing loaded from anywhere.
pub(crate) fn page_headers(headers: &mut http::HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A `302 Found` to `location`, not cached, sending no referrer.
pub(crate) fn redirect(location: &Url) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::try_from(location.as_str()) {
        headers.insert(LOCATION, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Back to the client's verified redirect URI with an error (RFC 6749 §4.1.2.1), its `state`
/// and our `iss` (RFC 9207).
pub(crate) fn redirect_error(
    redirect_uri: &str,
    code: OAuthErrorCode,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return INVALID_REDIRECT.render(None);
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", code.as_str());
        query.append_pair("error_description", description);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    redirect(&url)
}

const INVALID_REDIRECT: ErrorPage = ErrorPage::new(
    StatusCode::BAD_REQUEST,
    "invalid_redirect_uri",
    "Sign-in cannot continue",
    "The application's redirect address is not valid.",
);

/// An RFC 6749 §5.2 JSON error (`no-store`), with a `WWW-Authenticate` challenge when given.
pub(crate) fn oauth_error(
    status: StatusCode,
    code: OAuthErrorCode,
    description: &str,
    challenge: Option<HeaderValue>,
) -> Response {
    let body = OAuthErrorResponse::new(code).with_description(description);
    let response = idjag_core::server::error_response(&body, challenge);
    let (mut parts, body) = response.into_parts();
    parts.status = status;
    Response::from_parts(parts, Body::from(body))
}

/// A `no-store` JSON answer.
pub(crate) fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let (parts, body) = idjag_core::server::json_response(status, body).into_parts();
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("a\u{0}b"), "a\u{fffd}b");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
