//! Real servers on loopback: an IdP ([`idp`]), a resource authorization server trusting it
//! ([`resource_as`]) and a protected MCP server ([`mcp`]), each on a listener from
//! [`crate::net::loopback`], in a task of the current runtime.

#[cfg(any(feature = "idp", feature = "resource", feature = "client"))]
use idjag_core::{ClientId, ClientSecret, Issuer};

/// The requesting app's secret at a spawned IdP.
pub const IDP_SECRET: &str = "idp-secret";
/// The requesting app's secret at a spawned resource AS.
pub const AS_SECRET: &str = "as-secret";

/// Serves an IdP at `issuer` with the TOML `policy`, the requesting app `agent` (secret
/// [`IDP_SECRET`]) as its one client, and dev users who can sign in.
#[cfg(feature = "idp")]
pub fn idp(
    listener: tokio::net::TcpListener,
    issuer: &Issuer,
    policy: &str,
    agent: &str,
    users: &[&str],
) -> idjag_idp::dev::DevUsers {
    use std::sync::Arc;

    use idjag_core::server::{RegisteredClient, StaticClientRegistry};
    use idjag_idp::dev::{DevUser, DevUsers};
    use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};

    let clients = StaticClientRegistry::new().with(RegisteredClient::with_secret(
        ClientId::new(agent).unwrap(),
        &ClientSecret::new(IDP_SECRET),
    ));
    let idp = IdJagIssuer::builder(
        issuer.clone(),
        SigningKeys::generate_es256().unwrap(),
        Arc::new(clients),
        Arc::new(TomlPolicy::from_toml_str(policy).unwrap()),
    )
    .build()
    .unwrap();
    let users = users.iter().fold(DevUsers::new(&idp), |all, user| {
        all.with_user(DevUser::new(user).unwrap())
    });
    crate::net::serve(listener, idp.router());
    users
}

/// Serves a resource AS at `issuer` that trusts `idp` through its metadata and JWKS, protects
/// `resource` with `scopes`, and knows the requesting app as `agent` (secret [`AS_SECRET`]).
/// Returns the keys its access tokens verify with.
#[cfg(feature = "resource")]
pub fn resource_as(
    listener: tokio::net::TcpListener,
    issuer: &Issuer,
    idp: &Issuer,
    resource: &idjag_core::Resource,
    scopes: &str,
    agent: &str,
) -> idjag_core::KeySet {
    use idjag_core::server::{RegisteredClient, StaticClientRegistry};
    use idjag_core::{ScopeSet, SystemClock};
    use idjag_resource::{RegisteredResource, ResourceAuthorizationServer, TrustedIssuer};

    let server =
        ResourceAuthorizationServer::builder(issuer.clone(), crate::keys::es256_thumbprint())
            .trust(TrustedIssuer::remote(idp.clone(), SystemClock::shared()).unwrap())
            .resource(
                RegisteredResource::new(resource.clone())
                    .with_scopes(ScopeSet::parse(scopes).unwrap()),
            )
            .clients(
                StaticClientRegistry::new().with(RegisteredClient::with_secret(
                    ClientId::new(agent).unwrap(),
                    &ClientSecret::new(AS_SECRET),
                )),
            )
            .build()
            .unwrap();
    let keys = server.verification_keys();
    crate::net::serve(listener, server.router());
    keys
}

/// The requesting app's registration at a spawned IdP (`client_secret_basic`, token endpoint
/// `<issuer>/token`).
#[cfg(feature = "client")]
pub fn idp_registration(idp: &Issuer, agent: &str) -> idjag_client::IdentityProvider {
    use idjag_client::{ClientCredentials, IdentityProvider};

    IdentityProvider::new(
        idp.clone(),
        &format!("{idp}/token"),
        ClientCredentials::secret_basic(
            ClientId::new(agent).unwrap(),
            ClientSecret::new(IDP_SECRET),
        )
        .unwrap(),
    )
    .unwrap()
}

/// Serves an rmcp Streamable HTTP server behind `auth` (idjag-mcp's bearer layer, RFC 9728
/// route and tool scopes): a new service from `service` per session, sessions kept in memory.
#[cfg(feature = "mcp")]
pub fn mcp<S>(
    listener: tokio::net::TcpListener,
    auth: &idjag_mcp::server::McpAuth,
    service: impl Fn() -> Result<S, std::io::Error> + Send + Sync + 'static,
) where
    S: rmcp::ServerHandler + Send + 'static,
{
    use std::sync::Arc;

    use rmcp::transport::StreamableHttpService;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

    let service = StreamableHttpService::new(
        service,
        Arc::new(LocalSessionManager::default()),
        auth.server_config(),
    );
    crate::net::serve(listener, auth.router(service));
}
