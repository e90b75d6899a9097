//! A development IdP on loopback, for trying the login page and the code flow by hand:
//! `cargo run -p idjag-idp --example dev_idp [port]`, then open the printed authorization URL
//! in a browser. **Development only**: anyone who reaches it can sign in as any listed user.
//!
//! Clients: `cli` (public, `http://127.0.0.1/callback` on any port) and `demo` (confidential,
//! secret `demo-secret`, `http://127.0.0.1:8400/callback`). Users: alice, bob, carol.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use idjag_core::server::StaticClientRegistry;
use idjag_core::{ClientId, ClientSecret, Issuer};
use idjag_idp::dev::{DevClient, DevOidcProvider, DevUser, DevUsers};
use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8300".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let base = format!("http://{}", listener.local_addr()?);

    let demo = DevClient::confidential(ClientId::new("demo")?, &ClientSecret::new("demo-secret"))?
        .with_redirect_uri("http://127.0.0.1:8400/callback")?;
    let cli =
        DevClient::public(ClientId::new("cli")?).with_redirect_uri("http://127.0.0.1/callback")?;
    let idp = IdJagIssuer::builder(
        Issuer::new(base.as_str())?,
        SigningKeys::generate_es256()?,
        Arc::new(StaticClientRegistry::new().with(demo.registered_client())),
        Arc::new(TomlPolicy::from_toml_str("")?),
    )
    .build()?;
    let users = DevUsers::new(&idp)
        .with_user(
            DevUser::new("alice")?
                .with_name("Alice Liddell")
                .with_email("alice@example.com")
                .with_groups(&["eng", "staff"]),
        )
        .with_user(
            DevUser::new("bob")?
                .with_name("Bob Marley")
                .with_email("bob@example.com")
                .with_groups(&["sales"]),
        )
        .with_user(DevUser::new("carol")?.with_email("carol@example.com"));
    let dev = DevOidcProvider::builder(users)
        .client(demo)
        .client(cli)
        .build()?;

    println!("development IdP  {base}  (discovery: {base}/.well-known/openid-configuration)");
    println!(
        "sign in          {base}/authorize?response_type=code&client_id=cli\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8400%2Fcallback&scope=openid%20email\
         &state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256"
    );
    println!("                 (PKCE verifier: dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk)");
    axum::serve(listener, dev.router()).await?;
    Ok(())
}
