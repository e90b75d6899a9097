//! What `demo --serve` tells a person and a script about the running stack: every URL, the
//! clients and their secrets, and a ready ID token per development user. [`StackInfo`] is
//! the `--info` JSON document (its shape is documented in the gateway's README and stays
//! stable within a `version`); [`StackInfo::describe`] is the same facts as text.
//!
//! It holds secrets and tokens of a development stack on loopback, on purpose: the file is
//! written with mode 0600 and removed when the stack stops.

use std::fmt::Write as _;
use std::path::Path;

use idjag_core::ClientId;
use serde::Serialize;
use serde_json::Value;

use super::DemoError;
use super::flow::claims_for_display;
use super::topology::{
    EMA_CLIENT, GATEWAY_CLIENT, PUBLIC_CLIENT, PUBLIC_CLIENT_REDIRECT, Topology,
};

/// The version of the document's shape.
pub const INFO_VERSION: u32 = 1;

/// The `--info` document.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StackInfo {
    /// [`INFO_VERSION`].
    pub version: u32,
    /// The development IdP.
    pub idp: IdpInfo,
    /// The resource authorization server of the notes MCP server.
    pub resource_authorization_server: ResourceAsInfo,
    /// The MCP servers behind the gateway, reachable directly too.
    pub mcp_servers: Vec<McpServerInfo>,
    /// The gateway.
    pub gateway: GatewayInfo,
    /// The EMA requesting app, registered at the IdP and at the gateway with the same id.
    pub ema_client: EmaClientInfo,
    /// The development users, with ready ID tokens.
    pub users: Vec<UserInfo>,
    /// Where the audit lines go, if anywhere.
    pub audit_log: Option<String>,
}

/// The development IdP (idjag-idp's development OpenID provider and its token exchange).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct IdpInfo {
    /// Its issuer.
    pub issuer: String,
    /// Its OpenID discovery document.
    pub metadata_url: String,
    /// The login page (authorization code + PKCE).
    pub authorization_endpoint: String,
    /// Code and refresh grants, and the RFC 8693 token exchange for ID-JAGs.
    pub token_endpoint: String,
    /// Its keys.
    pub jwks_uri: String,
}

/// The resource authorization server (idjag-resource).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ResourceAsInfo {
    /// Its issuer.
    pub issuer: String,
    /// Its RFC 8414 document.
    pub metadata_url: String,
    /// The RFC 7523 JWT-bearer grant with ID-JAGs.
    pub token_endpoint: String,
}

/// One MCP server.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct McpServerInfo {
    /// Its name (its gateway route is `/mcp/{name}`).
    pub name: String,
    /// Its Streamable HTTP endpoint.
    pub url: String,
    /// What it accepts: `id_jag` (access tokens of the resource AS) or `api_key`.
    pub accepts: String,
    /// Its tools.
    pub tools: Vec<String>,
}

/// The gateway.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct GatewayInfo {
    /// Its public base URL.
    pub url: String,
    /// Its admin listener (`/healthz`, `/readyz`, `/metrics`, `/admin/`).
    pub admin_url: String,
    /// The admin API's bearer token.
    pub admin_token: String,
    /// Its routes.
    pub routes: Vec<RouteInfo>,
    /// Its own authorization server.
    pub authorization_server: GatewayAsInfo,
}

/// One gateway route.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RouteInfo {
    /// The upstream's name.
    pub name: String,
    /// The route: an MCP Streamable HTTP endpoint.
    pub url: String,
    /// `id_jag`: the gateway obtains the upstream's token through the ID-JAG flow;
    /// `bridged`: the upstream knows nothing of ID-JAG (see `credential`).
    pub kind: String,
    /// The upstream credential mode (`id_jag`, `static`).
    pub credential: String,
    /// The upstream's endpoint.
    pub upstream: String,
    /// The route's RFC 9728 metadata (named by its 401 answers).
    pub resource_metadata: String,
}

/// The gateway's authorization server.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct GatewayAsInfo {
    /// Its issuer (the gateway's URL).
    pub issuer: String,
    /// Its RFC 8414 document.
    pub metadata_url: String,
    /// Authorization code + PKCE (S256); the user signs in at the IdP.
    pub authorization_endpoint: String,
    /// Code, refresh and RFC 7523 JWT-bearer (ID-JAG) grants.
    pub token_endpoint: String,
    /// RFC 7591 dynamic registration (open).
    pub registration_endpoint: String,
    /// Whether dynamic registration is on.
    pub dynamic_registration: bool,
    /// Whether Client ID Metadata Documents (a URL as `client_id`) are accepted.
    pub client_id_metadata_documents: bool,
    /// Whether metadata documents may be served from loopback `http` URLs (the test-only
    /// `allow_loopback` switch, on because the demo is loopback only).
    pub metadata_documents_from_loopback: bool,
    /// Pre-registered clients.
    pub clients: Vec<GatewayClientInfo>,
}

/// A client pre-registered at the gateway.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct GatewayClientInfo {
    /// Its id.
    pub client_id: String,
    /// Its secret (`client_secret_basic` or `_post`); `null` for a public client.
    pub client_secret: Option<String>,
    /// Its redirect URIs (loopback ones match any port); empty: JWT-bearer grant only.
    pub redirect_uris: Vec<String>,
}

/// The EMA requesting app.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EmaClientInfo {
    /// Its id at the IdP and at the gateway.
    pub client_id: String,
    /// Its secret at both.
    pub client_secret: String,
    /// The resources the IdP's policy lets it ask ID-JAGs for (audience: the gateway).
    pub resources: Vec<String>,
    /// The scope its ID-JAGs carry.
    pub scope: String,
}

/// A development user.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UserInfo {
    /// `sub`.
    pub name: String,
    /// `groups`.
    pub groups: Vec<String>,
    /// What the policies let them do.
    pub access: String,
    /// An ID token issued to the EMA client (trade it at the IdP's token endpoint).
    pub id_token: String,
    /// An ID token issued to the gateway's client id at the IdP (send it to a route as a
    /// bearer token).
    pub gateway_id_token: String,
    /// When both expire (Unix seconds).
    pub id_token_expires_at: i64,
}

fn access_of(user: &str) -> &'static str {
    match user {
        "alice" => "team engineering: every tool but delete_*; EMA client allowed",
        "bob" => "team sales: list_notes only on notes; EMA client allowed",
        "carol" => "group eng, but the IdP's policy refuses her every ID-JAG",
        _ => "",
    }
}

impl StackInfo {
    /// The facts of `topology` (started with its authorization server), with fresh ID tokens.
    pub fn of(topology: &Topology, audit_log: Option<&Path>) -> Result<Self, DemoError> {
        let t = topology;
        let idp = t.idp.as_str().trim_end_matches('/');
        let ras = t.resource_as.as_str().trim_end_matches('/');
        let gw = t.gateway_url.as_str();
        let route = |name: &str, kind: &str, credential: &str, upstream: &str| RouteInfo {
            name: name.to_owned(),
            url: format!("{gw}/mcp/{name}"),
            kind: kind.to_owned(),
            credential: credential.to_owned(),
            upstream: upstream.to_owned(),
            resource_metadata: format!("{gw}/.well-known/oauth-protected-resource/mcp/{name}"),
        };
        let ema = ClientId::new(EMA_CLIENT).map_err(DemoError::setup)?;
        let users = t
            .users
            .users()
            .map(|user| {
                let name = user.subject.as_str();
                let id_token = t.users.id_token(name, &ema).map_err(DemoError::setup)?;
                let gateway_id_token = t.id_token(name)?;
                let expires = claims_for_display(id_token.secret())
                    .and_then(|c| c.get("exp").and_then(Value::as_i64))
                    .unwrap_or_default();
                Ok(UserInfo {
                    name: name.to_owned(),
                    groups: user.groups.clone(),
                    access: access_of(name).to_owned(),
                    id_token: id_token.secret().to_owned(),
                    gateway_id_token: gateway_id_token.secret().to_owned(),
                    id_token_expires_at: expires,
                })
            })
            .collect::<Result<Vec<_>, DemoError>>()?;
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Ok(Self {
            version: INFO_VERSION,
            idp: IdpInfo {
                issuer: t.idp.as_str().to_owned(),
                metadata_url: format!("{idp}/.well-known/openid-configuration"),
                authorization_endpoint: format!("{idp}/authorize"),
                token_endpoint: t.idp_server.token_endpoint().to_string(),
                jwks_uri: t.idp_server.jwks_uri().to_string(),
            },
            resource_authorization_server: ResourceAsInfo {
                issuer: t.resource_as.as_str().to_owned(),
                metadata_url: format!("{ras}/.well-known/oauth-authorization-server"),
                token_endpoint: t.resource_server.token_endpoint().to_owned(),
            },
            mcp_servers: vec![
                McpServerInfo {
                    name: "notes".into(),
                    url: t.mcp_url.clone(),
                    accepts: "id_jag".into(),
                    tools: strings(&["list_notes", "add_note", "delete_all_notes"]),
                },
                McpServerInfo {
                    name: "wiki".into(),
                    url: t.wiki_url.clone(),
                    accepts: "api_key".into(),
                    tools: strings(&["search", "publish"]),
                },
            ],
            gateway: GatewayInfo {
                url: gw.to_owned(),
                admin_url: t.admin_url.clone(),
                admin_token: t.admin_token.secret().to_owned(),
                routes: vec![
                    route("notes", "id_jag", "id_jag", &t.mcp_url),
                    route("wiki", "bridged", "static", &t.wiki_url),
                ],
                authorization_server: GatewayAsInfo {
                    issuer: gw.to_owned(),
                    metadata_url: format!("{gw}/.well-known/oauth-authorization-server"),
                    authorization_endpoint: format!("{gw}/oauth/authorize"),
                    token_endpoint: format!("{gw}/oauth/token"),
                    registration_endpoint: format!("{gw}/oauth/register"),
                    dynamic_registration: true,
                    client_id_metadata_documents: true,
                    metadata_documents_from_loopback: true,
                    clients: vec![
                        GatewayClientInfo {
                            client_id: EMA_CLIENT.into(),
                            client_secret: Some(t.ema_secret.secret().to_owned()),
                            redirect_uris: Vec::new(),
                        },
                        GatewayClientInfo {
                            client_id: PUBLIC_CLIENT.into(),
                            client_secret: None,
                            redirect_uris: vec![PUBLIC_CLIENT_REDIRECT.into()],
                        },
                    ],
                },
            },
            ema_client: EmaClientInfo {
                client_id: EMA_CLIENT.into(),
                client_secret: t.ema_secret.secret().to_owned(),
                resources: vec![format!("{gw}/mcp/notes"), format!("{gw}/mcp/wiki")],
                scope: "mcp".into(),
            },
            users,
            audit_log: audit_log.map(|p| p.display().to_string()),
        })
    }

    /// Writes the document to `path` atomically (a temporary file in the same directory,
    /// mode 0600, renamed over `path`).
    pub fn write_to(&self, path: &Path) -> Result<(), DemoError> {
        use std::io::Write;
        let json = serde_json::to_vec_pretty(self).map_err(DemoError::setup)?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(DemoError::io)?;
        file.write_all(&json).map_err(DemoError::io)?;
        file.write_all(b"\n").map_err(DemoError::io)?;
        file.as_file().sync_all().map_err(DemoError::io)?;
        file.persist(path).map_err(|e| DemoError::io(e.error))?;
        Ok(())
    }

    /// The same facts for a person.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            let _ = writeln!(out, "{text}");
        };
        line(
            "idjag-gateway demo --serve: a development stack on loopback (not for production)\n"
                .into(),
        );
        line("Identity provider (idjag-idp development OpenID provider, login page without passwords)".into());
        line(format!("  issuer                  {}", self.idp.issuer));
        line(format!(
            "  metadata                {}",
            self.idp.metadata_url
        ));
        line(format!(
            "  authorization endpoint  {}",
            self.idp.authorization_endpoint
        ));
        line(format!(
            "  token endpoint          {}  (code, refresh, RFC 8693 token exchange for ID-JAGs)",
            self.idp.token_endpoint
        ));
        line(String::new());
        let ras = &self.resource_authorization_server;
        line("Resource authorization server (idjag-resource)".into());
        line(format!("  issuer                  {}", ras.issuer));
        line(format!(
            "  token endpoint          {}  (RFC 7523 JWT-bearer with ID-JAGs)",
            ras.token_endpoint
        ));
        line(String::new());
        line("MCP servers".into());
        for server in &self.mcp_servers {
            line(format!(
                "  {:<8} {}  (accepts {}; tools {})",
                server.name,
                server.url,
                server.accepts,
                server.tools.join(", ")
            ));
        }
        line(String::new());
        let gw = &self.gateway;
        line(format!(
            "Gateway {}  (admin {}, admin token {})",
            gw.url, gw.admin_url, gw.admin_token
        ));
        for route in &gw.routes {
            let kind = match route.kind.as_str() {
                "id_jag" => "ID-JAG upstream".to_owned(),
                other => format!("{other} upstream, credential {}", route.credential),
            };
            line(format!(
                "  route {:<6} {}  ({kind} -> {})",
                route.name, route.url, route.upstream
            ));
            line(format!(
                "               RFC 9728 metadata {}",
                route.resource_metadata
            ));
        }
        let asi = &gw.authorization_server;
        line(String::new());
        line("Gateway authorization server (the routes' own; users sign in at the IdP)".into());
        line(format!("  metadata (RFC 8414)     {}", asi.metadata_url));
        line(format!(
            "  authorization endpoint  {}",
            asi.authorization_endpoint
        ));
        line(format!(
            "  token endpoint          {}  (code, refresh, RFC 7523 JWT-bearer with ID-JAGs)",
            asi.token_endpoint
        ));
        line(format!(
            "  registration (RFC 7591) {}  open",
            asi.registration_endpoint
        ));
        line("  Client ID Metadata Documents: on, also from loopback http URLs (the test-only allow_loopback switch: this stack is loopback only)".into());
        for client in &asi.clients {
            let kind = match &client.client_secret {
                Some(secret) => format!("secret {secret}"),
                None => "public".to_owned(),
            };
            let uses = if client.redirect_uris.is_empty() {
                "JWT-bearer grant only".to_owned()
            } else {
                format!(
                    "redirect URIs {} (any loopback port)",
                    client.redirect_uris.join(" ")
                )
            };
            line(format!(
                "  pre-registered client   {}  {kind}; {uses}",
                client.client_id
            ));
        }
        line(String::new());
        let ema = &self.ema_client;
        line(format!(
            "EMA requesting app {} (at the IdP and the gateway), secret {}",
            ema.client_id, ema.client_secret
        ));
        line(format!(
            "  may ask the IdP for ID-JAGs with audience {} for {} (scope {})",
            asi.issuer,
            ema.resources.join(", "),
            ema.scope
        ));
        line(String::new());
        line(format!(
            "Development users: ID tokens issued to {} (trade them at the IdP's token endpoint; `gateway_id_token` in --info: issued to {}, for a route directly), valid until {} (Unix time)",
            ema.client_id,
            GATEWAY_CLIENT,
            self.users.first().map_or(0, |u| u.id_token_expires_at)
        ));
        for user in &self.users {
            line(format!(
                "  {:<6} groups [{}]: {}",
                user.name,
                user.groups.join(", "),
                user.access
            ));
            line(format!("         {}", user.id_token));
        }
        if let Some(path) = &self.audit_log {
            line(String::new());
            line(format!("Audit lines: {path}"));
        }
        out
    }
}
