//! What the root end-to-end tests share: loopback listeners, a real `idjag-idp` and a real
//! `idjag-resource` trusting it through its published metadata and JWKS, and the requesting
//! app's registration at the IdP.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use idjag_client::{ClientCredentials, IdentityProvider};
use idjag_core::server::{RegisteredClient, StaticClientRegistry};
use idjag_core::*;
use idjag_idp::dev::{DevUser, DevUsers};
use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};
use idjag_resource::{RegisteredResource, ResourceAuthorizationServer, TrustedIssuer};
use tokio::net::TcpListener;

/// The requesting app's secret at the IdP.
pub const IDP_SECRET: &str = "idp-secret";
/// The requesting app's secret at the resource AS.
pub const AS_SECRET: &str = "as-secret";

/// A listener on `127.0.0.1:0` and its `http://` base URL.
pub async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Serves an IdP at `issuer` with the TOML `policy`, the requesting app `agent` (secret
/// [`IDP_SECRET`]) as its one client, and dev users who can sign in.
pub fn spawn_idp(
    listener: TcpListener,
    issuer: &Issuer,
    policy: &str,
    agent: &str,
    users: &[&str],
) -> DevUsers {
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
    tokio::spawn(async move { axum::serve(listener, idp.router()).await });
    users
}

/// Serves a resource AS at `issuer` that trusts `idp` through its metadata and JWKS, protects
/// `resource` with `scopes`, and knows the requesting app as `agent` (secret [`AS_SECRET`]).
/// Returns the keys its access tokens verify with.
pub fn spawn_resource_as(
    listener: TcpListener,
    issuer: &Issuer,
    idp: &Issuer,
    resource: &Resource,
    scopes: &str,
    agent: &str,
) -> KeySet {
    let server = ResourceAuthorizationServer::builder(
        issuer.clone(),
        SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_thumbprint_kid(),
    )
    .trust(TrustedIssuer::remote(idp.clone(), SystemClock::shared()).unwrap())
    .resource(
        RegisteredResource::new(resource.clone()).with_scopes(ScopeSet::parse(scopes).unwrap()),
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
    let router = server.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    keys
}

/// The requesting app's registration at the IdP (`client_secret_basic`).
pub fn idp_registration(idp: &Issuer, agent: &str) -> IdentityProvider {
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
