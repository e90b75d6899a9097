//! The IdP both benchmarks drive: one client (Basic auth), one user, the test policy, and a
//! valid ES256 ID token as subject token. The clock is frozen, so the token never expires.

use std::sync::Arc;

use idjag_core::server::{RegisteredClient, StaticClientRegistry};
use idjag_core::{ClientId, ClientSecret, IdToken, Issuer, TestClock};
use idjag_idp::dev::{DevUser, DevUsers};
use idjag_idp::{IdJagIssuer, SigningKeys, TomlPolicy};

const AGENT: &str = "chat-agent";
const SECRET: &str = "agent-secret-0123456789abcdef";

const POLICY: &str = r#"
[[audience]]
issuer = "https://auth.chat.example"
resources = ["https://mcp.chat.example/mcp"]
client_ids = { "chat-agent" = "f53f191f9311af35" }

[[allow]]
clients = ["chat-agent"]
audience = "https://auth.chat.example"
groups = ["staff"]
scopes = ["chat.read", "chat.history"]

[[deny]]
users = ["mallory"]
"#;

pub(crate) struct Bench {
    pub(crate) idp: IdJagIssuer,
    #[allow(dead_code)] // read by the exchange bench only
    pub(crate) id_token: IdToken,
    pub(crate) body: Vec<u8>,
    pub(crate) authorization: String,
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn setup(issuer: &str) -> Bench {
    let clock = TestClock::at_unix(1_700_000_000);
    let agent = ClientId::new(AGENT).unwrap();
    let clients = StaticClientRegistry::new().with(RegisteredClient::with_secret(
        agent.clone(),
        &ClientSecret::new(SECRET),
    ));
    let idp = IdJagIssuer::builder(
        Issuer::new(issuer).unwrap(),
        SigningKeys::generate_es256().unwrap(),
        Arc::new(clients),
        Arc::new(TomlPolicy::from_toml_str(POLICY).unwrap()),
    )
    .clock(clock.shared())
    .build()
    .unwrap();
    let users = DevUsers::new(&idp).with_user(
        DevUser::new("alice")
            .unwrap()
            .with_email("alice@example.com")
            .with_groups(&["staff"]),
    );
    let id_token = users.id_token("alice", &agent).unwrap();
    let body = format!(
        "grant_type={}&requested_token_type={}&audience={}&resource={}&scope={}\
         &subject_token={}&subject_token_type={}",
        encode(idjag_core::wire::GRANT_TYPE_TOKEN_EXCHANGE),
        encode(idjag_core::wire::TOKEN_TYPE_ID_JAG),
        encode("https://auth.chat.example"),
        encode("https://mcp.chat.example/mcp"),
        encode("chat.read chat.history"),
        id_token.secret(),
        encode(idjag_core::wire::TOKEN_TYPE_ID_TOKEN),
    )
    .into_bytes();
    use base64::Engine as _;
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{AGENT}:{SECRET}"))
    );
    Bench {
        idp,
        id_token,
        body,
        authorization,
    }
}
