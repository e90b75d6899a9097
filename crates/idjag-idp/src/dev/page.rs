//! The server-rendered pages of the development authorization endpoint: the login page
//! (pick a development user) and the error page. No JavaScript; every value is HTML-escaped;
//! one inline style, allowed by its hash in the `Content-Security-Policy`.

use std::fmt::Write as _;

use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, PRAGMA, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{Response, StatusCode};

use super::users::DevUser;

/// The one stylesheet, inline. Its hash is [`STYLE_HASH`]; change both together (a unit test
/// checks them).
const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;background:#f6f8fa}\
.banner{background:#9a3412;color:#fff;padding:12px 24px;text-align:center}\
.banner strong{letter-spacing:.02em}\
main{max-width:560px;margin:32px auto;padding:0 16px}\
.card{background:#fff;border:1px solid #d0d7de;border-radius:12px;padding:24px 28px}\
h1{font-size:22px;margin:0 0 4px}\
.meta{color:#59636e;font-size:14px;margin:0 0 20px}\
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eff2f5;padding:1px 5px;border-radius:4px;overflow-wrap:anywhere}\
ul{list-style:none;margin:0;padding:0}\
li{margin:0 0 10px}\
button{font:inherit;cursor:pointer}\
.user{display:block;width:100%;text-align:left;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 16px}\
.user:hover,.user:focus{border-color:#0969da;background:#f3f8ff;outline:none}\
.name{display:block;font-weight:600}\
.email{display:block;color:#59636e;font-size:14px}\
.groups{display:block;margin-top:6px}\
.group{display:inline-block;font-size:12px;background:#ddf4ff;color:#0a3069;border-radius:10px;padding:0 8px;margin:0 4px 2px 0}\
.none{color:#59636e;font-size:14px}\
.actions{margin-top:16px;text-align:right}\
.cancel{background:none;border:1px solid #d0d7de;border-radius:6px;padding:6px 14px;color:#1f2328}\
.error{color:#b42318;font-weight:600}\
.foot{color:#59636e;font-size:13px;margin-top:16px;text-align:center}";

/// `'sha256-…'` of [`STYLE`] (standard base64), for `style-src`.
const STYLE_HASH: &str = "'sha256-ZtnsYRI5+/Yd8dHNCi73Y8g3sMx37Uqx117trYadiFM='";

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab, newline and carriage return have no place here.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// What the login page shows and posts.
pub(super) struct LoginPage<'a> {
    pub(super) issuer: &'a str,
    pub(super) action: &'a str,
    pub(super) client_id: &'a str,
    pub(super) redirect_origin: &'a str,
    pub(super) scope: &'a str,
    pub(super) request_id: &'a str,
    pub(super) csrf: &'a str,
    pub(super) users: Vec<&'a DevUser>,
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{}</title><style>{STYLE}</style></head><body>\
         <div class=\"banner\" role=\"alert\"><strong>DEVELOPMENT IdP</strong> \u{2014} not for \
         production. Anyone who can reach it can sign in as any of its development users, \
         without a password.</div><main>",
        escape(title)
    );
}

impl LoginPage<'_> {
    pub(super) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        head(&mut out, "Sign in \u{2014} development IdP");
        let _ = write!(
            out,
            "<div class=\"card\"><h1>Sign in to {client}</h1>\
             <p class=\"meta\">Choose a development user. You will return to \
             <code>{origin}</code> with scopes <code>{scope}</code>.</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">",
            client = escape(self.client_id),
            origin = escape(self.redirect_origin),
            scope = escape(self.scope),
            action = escape(self.action),
            request = escape(self.request_id),
            csrf = escape(self.csrf),
        );
        if self.users.is_empty() {
            out.push_str("<p class=\"none\">No development users are configured.</p>");
        } else {
            out.push_str("<ul>");
            for user in &self.users {
                let subject = user.subject.as_str();
                let _ = write!(
                    out,
                    "<li><button class=\"user\" type=\"submit\" name=\"user\" value=\"{value}\">\
                     <span class=\"name\">{name}</span>",
                    value = escape(subject),
                    name = escape(user.name.as_deref().unwrap_or(subject)),
                );
                let email = user.email.as_deref().unwrap_or("no email");
                let _ = write!(
                    out,
                    "<span class=\"email\">{} \u{b7} sub <code>{}</code></span>",
                    escape(email),
                    escape(subject)
                );
                if !user.groups.is_empty() {
                    out.push_str("<span class=\"groups\">");
                    for group in &user.groups {
                        let _ = write!(out, "<span class=\"group\">{}</span>", escape(group));
                    }
                    out.push_str("</span>");
                }
                out.push_str("</button></li>");
            }
            out.push_str("</ul>");
        }
        let _ = write!(
            out,
            "<div class=\"actions\"><button class=\"cancel\" type=\"submit\" name=\"cancel\" \
             value=\"1\">Cancel</button></div></form></div>\
             <p class=\"foot\">Issuer <code>{}</code></p></main></body></html>",
            escape(self.issuer)
        );
        out
    }
}

/// The error page: no link back, since the redirect URI could not be trusted.
pub(super) fn error_page(issuer: &str, code: &str, description: &str) -> String {
    let mut out = String::with_capacity(2048);
    head(&mut out, "Sign-in refused \u{2014} development IdP");
    let _ = write!(
        out,
        "<div class=\"card\"><h1>This sign-in request was refused</h1>\
         <p class=\"error\">{description}</p>\
         <p class=\"meta\">Error <code>{code}</code>. Go back to the application and start \
         again.</p></div><p class=\"foot\">Issuer <code>{issuer}</code></p></main></body></html>",
        description = escape(description),
        code = escape(code),
        issuer = escape(issuer),
    );
    out
}

/// An HTML response with the strict headers of every page: a CSP that allows nothing but
/// the hashed inline style, no framing, no referrer, no caching. A page without a form also
/// gets `form-action 'none'`; the login page (`has_form`) gets no `form-action` at all:
/// browsers check every redirect that follows a form post against it, and after this IdP's
/// redirect the client may redirect again (a gateway sends the user on to its own client), so
/// no list of origins can be right. Its values are escaped and it runs no script.
pub(super) fn html_response(status: StatusCode, body: String, has_form: bool) -> Response<Vec<u8>> {
    let form_action = if has_form { "" } else { " form-action 'none';" };
    let csp = format!(
        "default-src 'none'; style-src {STYLE_HASH};{form_action} frame-ancestors 'none'; \
         base-uri 'none'"
    );
    let mut response = Response::new(body.into_bytes());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; form-action 'none'")),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_style_hash_in_the_csp_is_the_hash_of_the_inline_style() {
        let digest = Sha256::digest(STYLE.as_bytes());
        let expected = format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(STYLE_HASH, expected);
    }

    #[test]
    fn escape_covers_markup_quotes_and_controls() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\"\u{0}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\u{FFFD}"
        );
    }
}
