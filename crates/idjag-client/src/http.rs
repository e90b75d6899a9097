//! The HTTP seam: every request the client makes goes through an [`HttpClient`].
//!
//! The default is [`ReqwestHttpClient`] (feature `reqwest`): rustls, redirects never followed,
//! connect, read and whole-request timeouts, and a response size cap. Implement [`HttpClient`]
//! (or wrap a closure with [`from_fn`]) to route requests through your own stack: a proxy, a
//! tower service, a test fake. The shape is the one rmcp's `OAuthHttpClient` and the `oauth2`
//! crate use, `http::Request<Vec<u8>>` in and `http::Response<Vec<u8>>` out, so one adapter
//! serves both worlds.
//!
//! # rmcp
//!
//! rmcp 3.9's `OAuthHttpClient` takes the same `http::Request<Vec<u8>>` (inside an
//! `OAuthHttpRequest` with a redirect policy and a timeout) and returns the same response
//! type. Routing rmcp's OAuth requests through an idjag [`HttpClient`] is a few lines in the
//! integration crate:
//!
//! ```text
//! struct ViaIdjag(idjag_client::http::SharedHttpClient);
//! impl rmcp::transport::auth::OAuthHttpClient for ViaIdjag {
//!     fn execute(&self, request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
//!         // idjag clients never follow redirects: right for `OAuthHttpRedirectPolicy::Stop`,
//!         // which is what rmcp's EMA flow asks for.
//!         Box::pin(async move { self.0.execute(request.request).await.map_err(|e| Box::new(e) as _) })
//!     }
//! }
//! ```
//!
//! The other direction (an rmcp client as an idjag [`HttpClient`]) is not possible with rmcp
//! 3.9, whose `OAuthHttpRequest` has no public constructor; implement [`HttpClient`] directly on
//! the stack underneath instead.
//!
//! # Contract for implementations
//!
//! - Never follow redirects: return the 3xx response as it is. The client treats any status
//!   other than 200 as a failure, so a redirect never moves a token or a secret elsewhere.
//! - Bound the body. The client also checks the size of what it gets, but only after the
//!   implementation has read it.
//! - Apply timeouts. The client does not add its own, so that it runs on any executor.
//! - Send the request as given: the client has already checked the URL (https, or http on
//!   loopback only) and built every header and the body.
//! - Honour an [`AddressPolicy`] in the request's extensions: resolve the host, keep only the
//!   addresses the policy allows, and connect to one of those (never resolve again between the
//!   check and the connection); with none left, fail with [`HttpErrorKind::AddressNotAllowed`].
//!   Discovery attaches one to every fetch of a URL that a resource named (threat C10). An
//!   implementation that cannot honour it should refuse such requests; a proxy resolves names
//!   itself, so the policy cannot hold through one.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use idjag_core::BoxFuture;
use idjag_core::endpoint::{AddressClass, literal_ip};
use url::Url;

/// Which addresses a request may reach, attached by discovery to the fetches of URLs a
/// resource named (as an `http::Request` extension; threat C10): public addresses always,
/// loopback only for a loopback resource, private networks (RFC 1918, `fc00::/7`, CGNAT) only
/// when configured or when the resource itself is a private IP literal, and never link-local,
/// metadata, unspecified, multicast or reserved addresses ([`AddressClass::Blocked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPolicy {
    loopback: bool,
    private: bool,
}

impl AddressPolicy {
    /// Public addresses only.
    pub const PUBLIC: Self = Self {
        loopback: false,
        private: false,
    };

    /// The policy for URLs named by `resource` (an MCP server or another protected resource):
    /// loopback when the resource is loopback, private networks when `allow_private` or when
    /// the resource is a private IP literal.
    ///
    /// ```
    /// use idjag_client::http::AddressPolicy;
    /// let url = |s: &str| url::Url::parse(s).unwrap();
    /// let public = AddressPolicy::for_resource(&url("https://mcp.example/mcp"), false);
    /// assert!(public.allows("93.184.215.14".parse().unwrap()));
    /// assert!(!public.allows("127.0.0.1".parse().unwrap()));
    /// assert!(!public.allows("10.0.0.1".parse().unwrap()));
    /// let local = AddressPolicy::for_resource(&url("http://localhost:3000/mcp"), false);
    /// assert!(local.allows("127.0.0.1".parse().unwrap()));
    /// let corp = AddressPolicy::for_resource(&url("https://mcp.corp/mcp"), true);
    /// assert!(corp.allows("10.0.0.1".parse().unwrap()));
    /// assert!(!corp.allows("169.254.169.254".parse().unwrap()));
    /// ```
    pub fn for_resource(resource: &Url, allow_private: bool) -> Self {
        let own = literal_ip(resource).map(AddressClass::of);
        Self {
            loopback: idjag_core::endpoint::is_loopback(resource)
                || own == Some(AddressClass::Loopback),
            private: allow_private || own == Some(AddressClass::Private),
        }
    }

    /// Also allows private networks.
    pub fn with_private(mut self) -> Self {
        self.private = true;
        self
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match AddressClass::of(ip) {
            AddressClass::Public => true,
            AddressClass::Loopback => self.loopback,
            AddressClass::Private => self.private,
            _ => false,
        }
    }

    /// Whether `url` may be fetched without resolving: its host is a name (to be resolved and
    /// checked at connection time) or an allowed IP literal.
    pub fn allows_url(&self, url: &Url) -> bool {
        literal_ip(url).is_none_or(|ip| self.allows(ip))
    }
}

/// An outbound request: absolute URI, headers and a buffered body.
pub type HttpRequest = http::Request<Vec<u8>>;
/// A response: status, headers and the buffered body.
pub type HttpResponse = http::Response<Vec<u8>>;
/// A shared HTTP client.
pub type SharedHttpClient = Arc<dyn HttpClient>;

/// Executes the client's HTTP requests. See the [module documentation](self) for the contract.
pub trait HttpClient: fmt::Debug + Send + Sync {
    /// Sends one request and returns the raw response.
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>>;
}

impl<T: HttpClient + ?Sized> HttpClient for Arc<T> {
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        (**self).execute(request)
    }
}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// The connection could not be made (DNS, TCP, TLS).
    Connect,
    /// A timeout expired.
    Timeout,
    /// The response body exceeded the size cap.
    TooLarge,
    /// The request could not be built or sent for another reason.
    Other,
    /// The request's [`AddressPolicy`] allows none of the host's addresses.
    AddressNotAllowed,
}

impl fmt::Display for HttpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connection failed",
            Self::Timeout => "timed out",
            Self::TooLarge => "response body too large",
            Self::Other => "request failed",
            Self::AddressNotAllowed => "no address of the host is allowed",
        })
    }
}

/// A transport failure. Its `Display` names only the kind; the underlying error, if any, is
/// reachable through [`std::error::Error::source`].
#[derive(Clone)]
pub struct HttpError {
    kind: HttpErrorKind,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl HttpError {
    /// An error of `kind`.
    pub fn new(kind: HttpErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// An error of `kind` caused by `source`.
    pub fn with_source(kind: HttpErrorKind, source: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            kind,
            source: Some(Arc::new(source)),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpError")
            .field("kind", &self.kind)
            .field("has_source", &self.source.is_some())
            .finish()
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl PartialEq for HttpError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl StdError for HttpError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// An [`HttpClient`] made from a closure (see [`from_fn`]).
pub struct FnHttpClient<F>(F);

impl<F> fmt::Debug for FnHttpClient<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHttpClient")
    }
}

/// Wraps an async closure as an [`HttpClient`].
///
/// ```
/// use idjag_client::http::{from_fn, HttpError, HttpErrorKind, HttpRequest};
/// let offline = from_fn(|_request: HttpRequest| async {
///     Err(HttpError::new(HttpErrorKind::Connect))
/// });
/// # let _ = offline;
/// ```
pub fn from_fn<F, Fut>(f: F) -> FnHttpClient<F>
where
    F: Fn(HttpRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HttpResponse, HttpError>> + Send + 'static,
{
    FnHttpClient(f)
}

impl<F, Fut> HttpClient for FnHttpClient<F>
where
    F: Fn(HttpRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HttpResponse, HttpError>> + Send + 'static,
{
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        Box::pin((self.0)(request))
    }
}

/// Limits of the default HTTP client, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Time to establish a connection (TCP and TLS). Default 5 s.
    pub connect_timeout: Duration,
    /// Longest pause while reading the response. Default 10 s.
    pub read_timeout: Duration,
    /// Deadline for the whole request, body included. Default 30 s.
    pub request_timeout: Duration,
    /// Largest response body accepted. Default 1 MiB.
    pub max_response_bytes: usize,
}

/// Default response size cap: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl HttpConfig {
    /// Checks the limits: timeouts and the size cap must be positive.
    pub fn validate(&self) -> Result<(), crate::InputError> {
        let zero = Duration::ZERO;
        if self.connect_timeout == zero || self.read_timeout == zero || self.request_timeout == zero
        {
            return Err(crate::InputError::Config { what: "timeout" });
        }
        if self.max_response_bytes == 0 {
            return Err(crate::InputError::Config {
                what: "max_response_bytes",
            });
        }
        Ok(())
    }
}

#[cfg(feature = "reqwest")]
pub use self::reqwest_client::{NameResolver, ReqwestHttpClient, SystemResolver};

#[cfg(feature = "reqwest")]
mod reqwest_client {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::{Mutex, PoisonError};

    use super::*;

    /// Resolves host names for the address-checked requests of [`ReqwestHttpClient`]. The
    /// default is [`SystemResolver`]; tests give names the addresses they need.
    pub trait NameResolver: fmt::Debug + Send + Sync {
        /// The addresses of `host`.
        fn resolve(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
    }

    /// The operating system's resolver (`getaddrinfo`, on tokio's blocking pool).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct SystemResolver;

    impl NameResolver for SystemResolver {
        fn resolve(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
            Box::pin(async move {
                let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
                Ok(addresses.map(|a| a.ip()).collect())
            })
        }
    }

    /// The resolver's refusal, recognised again in reqwest's error chain.
    #[derive(Debug)]
    struct AddressRefused;

    impl fmt::Display for AddressRefused {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("no address of the host is allowed by the address policy")
        }
    }

    impl StdError for AddressRefused {}

    /// Resolves, then keeps only the addresses the policy allows: reqwest connects to what
    /// this returns, so there is no second resolution to rebind between check and use.
    struct GuardedResolver {
        policy: AddressPolicy,
        names: Arc<dyn NameResolver>,
    }

    impl reqwest::dns::Resolve for GuardedResolver {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let (policy, names) = (self.policy, self.names.clone());
            let host = name.as_str().to_owned();
            Box::pin(async move {
                let allowed: Vec<SocketAddr> = names
                    .resolve(host)
                    .await?
                    .into_iter()
                    .filter(|ip| policy.allows(*ip))
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect();
                if allowed.is_empty() {
                    return Err(Box::new(AddressRefused) as Box<dyn StdError + Send + Sync>);
                }
                Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
            })
        }
    }

    /// The default [`HttpClient`]: reqwest 0.13 with rustls, redirects never followed,
    /// timeouts and a response size cap from [`HttpConfig`].
    ///
    /// A request with an [`AddressPolicy`] extension goes through a separate reqwest client
    /// (one per policy, built on first use) whose DNS resolver drops the addresses the policy
    /// does not allow, and which uses no proxy, so the address checked is the address
    /// connected to. IP-literal hosts are checked before sending.
    #[derive(Clone)]
    pub struct ReqwestHttpClient {
        client: reqwest::Client,
        config: HttpConfig,
        names: Arc<dyn NameResolver>,
        guarded: Arc<Mutex<HashMap<AddressPolicy, reqwest::Client>>>,
    }

    impl fmt::Debug for ReqwestHttpClient {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ReqwestHttpClient")
                .field("config", &self.config)
                .field("names", &self.names)
                .finish_non_exhaustive()
        }
    }

    fn builder(config: &HttpConfig) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.request_timeout)
    }

    fn config_error() -> crate::InputError {
        crate::InputError::Config {
            what: "http client",
        }
    }

    impl ReqwestHttpClient {
        /// A client with the default [`HttpConfig`].
        pub fn new() -> Result<Self, crate::ClientError> {
            Self::with_config(HttpConfig::default())
        }

        /// A client with `config`.
        pub fn with_config(config: HttpConfig) -> Result<Self, crate::ClientError> {
            Self::with_resolver(config, Arc::new(SystemResolver))
        }

        /// A client with `config` whose address-checked requests resolve names with `names`
        /// (other requests use reqwest's own resolver).
        pub fn with_resolver(
            config: HttpConfig,
            names: Arc<dyn NameResolver>,
        ) -> Result<Self, crate::ClientError> {
            config.validate()?;
            let client = builder(&config).build().map_err(|_| config_error())?;
            Ok(Self {
                client,
                config,
                names,
                guarded: Arc::default(),
            })
        }

        /// The limits in force.
        pub fn config(&self) -> &HttpConfig {
            &self.config
        }

        /// The reqwest client for `policy`: resolver-filtered and proxy-free.
        fn guarded(&self, policy: AddressPolicy) -> Result<reqwest::Client, HttpError> {
            let mut clients = self.guarded.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(client) = clients.get(&policy) {
                return Ok(client.clone());
            }
            let resolver = GuardedResolver {
                policy,
                names: self.names.clone(),
            };
            let client = builder(&self.config)
                .no_proxy()
                .dns_resolver(Arc::new(resolver))
                .build()
                .map_err(|e| HttpError::with_source(HttpErrorKind::Other, e))?;
            clients.insert(policy, client.clone());
            Ok(client)
        }

        async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
            let policy = request.extensions().get::<AddressPolicy>().copied();
            let client = match policy {
                None => self.client.clone(),
                Some(policy) => {
                    let url = Url::parse(&request.uri().to_string())
                        .map_err(|e| HttpError::with_source(HttpErrorKind::Other, e))?;
                    if !policy.allows_url(&url) {
                        return Err(HttpError::new(HttpErrorKind::AddressNotAllowed));
                    }
                    self.guarded(policy)?
                }
            };
            let request = reqwest::Request::try_from(request)
                .map_err(|e| HttpError::with_source(HttpErrorKind::Other, e))?;
            let mut response = client.execute(request).await.map_err(transport)?;
            let max = self.config.max_response_bytes;
            if response
                .content_length()
                .is_some_and(|len| len > max as u64)
            {
                return Err(HttpError::new(HttpErrorKind::TooLarge));
            }
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport)? {
                if body.len() + chunk.len() > max {
                    return Err(HttpError::new(HttpErrorKind::TooLarge));
                }
                body.extend_from_slice(&chunk);
            }
            builder
                .body(body)
                .map_err(|e| HttpError::with_source(HttpErrorKind::Other, e))
        }
    }

    fn refused_by_policy(error: &reqwest::Error) -> bool {
        let mut source: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(e) = source {
            if e.is::<AddressRefused>() {
                return true;
            }
            source = e.source();
        }
        false
    }

    fn transport(error: reqwest::Error) -> HttpError {
        let kind = if refused_by_policy(&error) {
            HttpErrorKind::AddressNotAllowed
        } else if error.is_timeout() {
            HttpErrorKind::Timeout
        } else if error.is_connect() {
            HttpErrorKind::Connect
        } else {
            HttpErrorKind::Other
        };
        // reqwest errors may name the URL; URLs never carry our secrets (they travel in
        // headers and bodies only), but the source is kept out of Display anyway.
        HttpError::with_source(kind, error.without_url())
    }

    impl HttpClient for ReqwestHttpClient {
        fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
            Box::pin(self.send(request))
        }
    }
}
