//! The demo plays the user's browser and a standard OAuth MCP client: [`Browser`] follows
//! redirects one by one, keeps cookies per host and fills in the IdP's login form;
//! [`OAuthApp`] is a public client with PKCE that registers (RFC 7591), sends the user to the
//! gateway's authorization endpoint and redeems the code, as MCP clients do.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::DemoError;

/// One answer the browser got.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page {
    /// The URL asked for.
    pub url: Url,
    /// The status.
    pub status: u16,
    /// Where a redirect points.
    pub location: Option<Url>,
    /// The `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// A browser: no automatic redirects, cookies per host (`Path` and expiry ignored, `Max-Age=0`
/// removes).
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    cookies: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

fn http_error(e: impl std::fmt::Display) -> DemoError {
    DemoError::Http(e.to_string())
}

fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Decodes the few HTML entities the pages use.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `name="..."` inside one tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with no cookies.
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            cookies: Mutex::new(HashMap::new()),
        }
    }

    fn cookie_header(&self, url: &Url) -> Option<String> {
        let jar = self.cookies.lock().unwrap_or_else(PoisonError::into_inner);
        let cookies = jar.get(&host_key(url))?;
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep_cookies(&self, url: &Url, headers: &reqwest::header::HeaderMap) {
        let mut jar = self.cookies.lock().unwrap_or_else(PoisonError::into_inner);
        let host = jar.entry(host_key(url)).or_default();
        for value in headers.get_all(reqwest::header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let gone = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if gone {
                host.remove(name);
            } else {
                host.insert(name.to_owned(), val.to_owned());
            }
        }
    }

    /// Forgets every cookie (another browser).
    pub fn clear_cookies(&self) {
        self.cookies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    async fn send(&self, url: &Url, form: Option<&[(String, String)]>) -> Result<Page, DemoError> {
        let mut request = match form {
            None => self.http.get(url.clone()),
            Some(pairs) => self.http.post(url.clone()).form(pairs),
        };
        if let Some(cookies) = self.cookie_header(url) {
            request = request.header(reqwest::header::COOKIE, cookies);
        }
        let response = request.send().await.map_err(http_error)?;
        self.keep_cookies(url, response.headers());
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok());
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.text().await.map_err(http_error)?;
        Ok(Page {
            url: url.clone(),
            status,
            location,
            content_type,
            body,
        })
    }

    /// GETs `url` and follows redirects (at most 10) until one points at a URL starting with
    /// `stop_at` (returned, not fetched) or a page answers.
    pub async fn follow(&self, url: &str, stop_at: &str) -> Result<Landing, DemoError> {
        let mut next = Url::parse(url).map_err(http_error)?;
        for _ in 0..10 {
            let page = self.send(&next, None).await?;
            match &page.location {
                Some(location) if (300..400).contains(&page.status) => {
                    if location.as_str().starts_with(stop_at) {
                        return Ok(Landing::Redirected(location.clone()));
                    }
                    next = location.clone();
                }
                _ => return Ok(Landing::Page(page)),
            }
        }
        Err(DemoError::Http("too many redirects".into()))
    }

    /// Fills in the login form of `page` as `user` and submits it; follows redirects as
    /// [`Self::follow`].
    pub async fn log_in(
        &self,
        page: &Page,
        user: &str,
        stop_at: &str,
    ) -> Result<Landing, DemoError> {
        let form_start = page
            .body
            .find("<form")
            .ok_or_else(|| DemoError::Http("no login form".into()))?;
        let form_tag_end = page.body[form_start..].find('>').unwrap_or(0) + form_start;
        let action = attribute(&page.body[form_start..form_tag_end], "action").unwrap_or_default();
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut rest = &page.body[form_tag_end..];
        while let Some(i) = rest.find("<input") {
            let end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
            let tag = &rest[i..end];
            if let Some(name) = attribute(tag, "name") {
                pairs.push((name, attribute(tag, "value").unwrap_or_default()));
            }
            rest = &rest[end..];
        }
        // The development login page lists its users as the form's buttons: press `user`'s.
        pairs.push(("user".to_owned(), user.to_owned()));
        let target = page.url.join(&action).map_err(http_error)?;
        let answer = self.send(&target, Some(&pairs)).await?;
        match &answer.location {
            Some(location) if (300..400).contains(&answer.status) => {
                if location.as_str().starts_with(stop_at) {
                    Ok(Landing::Redirected(location.clone()))
                } else {
                    self.follow(location.as_str(), stop_at).await
                }
            }
            _ => Ok(Landing::Page(answer)),
        }
    }

    /// The whole sign-in: from the client's authorization URL through the IdP's login page
    /// (as `user`) back to the client's redirect URI (`stop_at`), or the page shown instead.
    pub async fn sign_in(
        &self,
        authorization_url: &str,
        user: &str,
        stop_at: &str,
    ) -> Result<Landing, DemoError> {
        match self.follow(authorization_url, stop_at).await? {
            Landing::Page(page) if page.status == 200 && page.body.contains("<form") => {
                self.log_in(&page, user, stop_at).await
            }
            other => Ok(other),
        }
    }
}

/// Where the browser ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Landing {
    /// Redirected to the client's redirect URI (with `code` or `error`).
    Redirected(Url),
    /// A page (an error page, or a login page not filled in).
    Page(Page),
}

impl Landing {
    /// The query parameter `name` of the redirect.
    pub fn param(&self, name: &str) -> Option<String> {
        match self {
            Self::Redirected(url) => url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned()),
            Self::Page(_) => None,
        }
    }

    /// The page, if the browser ended on one.
    pub fn page(&self) -> Option<&Page> {
        match self {
            Self::Page(page) => Some(page),
            Self::Redirected(_) => None,
        }
    }
}

/// A standard OAuth MCP client (public, PKCE S256), as the MCP SDKs behave.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// Its client id.
    pub client_id: String,
    /// Its redirect URI.
    pub redirect_uri: String,
    /// The PKCE verifier of the current sign-in.
    pub verifier: String,
}

impl OAuthApp {
    /// A client known as `client_id` (configured, or a metadata document URL).
    pub fn new(client_id: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            verifier: idjag_core::random::url_safe(32).unwrap_or_default(),
        }
    }

    /// Registers at the gateway (RFC 7591) as a public client.
    pub async fn register(gateway_url: &str, redirect_uri: &str) -> Result<Self, DemoError> {
        let answer: Value = reqwest::Client::new()
            .post(format!("{gateway_url}/oauth/register"))
            .json(&json!({
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "client_name": "demo MCP client",
            }))
            .send()
            .await
            .map_err(http_error)?
            .json()
            .await
            .map_err(http_error)?;
        let client_id = answer["client_id"]
            .as_str()
            .ok_or_else(|| DemoError::Http(format!("registration refused: {answer}")))?;
        Ok(Self::new(client_id, redirect_uri))
    }

    /// The S256 challenge of the verifier.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    /// The authorization URL for `resource` (a route).
    pub fn authorization_url(&self, gateway_url: &str, resource: &str, state: &str) -> String {
        let mut url = Url::parse(&format!("{gateway_url}/oauth/authorize")).unwrap_or_else(|_| {
            Url::parse("http://invalid/").unwrap_or_else(|_| unreachable!("a valid URL"))
        });
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("code_challenge", &self.challenge())
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state)
            .append_pair("resource", resource);
        url.into()
    }

    /// Posts `form` to the gateway's token endpoint: the status and the JSON answer.
    pub async fn token_request(
        &self,
        gateway_url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, Value), DemoError> {
        let response = reqwest::Client::new()
            .post(format!("{gateway_url}/oauth/token"))
            .form(form)
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status().as_u16();
        let body = response.json().await.map_err(http_error)?;
        Ok((status, body))
    }

    /// Redeems `code` (with this client's verifier).
    pub async fn redeem(&self, gateway_url: &str, code: &str) -> Result<(u16, Value), DemoError> {
        self.token_request(
            gateway_url,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", &self.verifier),
                ("client_id", &self.client_id),
            ],
        )
        .await
    }

    /// Refreshes with `refresh_token`.
    pub async fn refresh(
        &self,
        gateway_url: &str,
        refresh_token: &str,
    ) -> Result<(u16, Value), DemoError> {
        self.token_request(
            gateway_url,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &self.client_id),
            ],
        )
        .await
    }
}
