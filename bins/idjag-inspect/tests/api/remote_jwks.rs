//! The signature check against a `jwks_uri`: the IdP's ID tokens and access tokens verify,
//! a token of a key the set does not hold fails IDJAG-02.

use idjag_core::{
    AccessTokenClaims, Algorithm, Audience, ClientId, IdTokenClaims, Issuer, Jti, NumericDate,
    ScopeSet, SigningKey, Subject, SystemClock, wire,
};
use idjag_inspect::{InspectedKind, Jwks, inspect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `body` as `application/json` to every request on a loopback port; the base URL.
async fn serve_json(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn now() -> i64 {
    SystemClock::shared().now_unix()
}

fn id_token_claims(issuer: &str) -> IdTokenClaims {
    IdTokenClaims::new(
        Issuer::new(issuer).unwrap(),
        Subject::new("alice").unwrap(),
        Audience::new("mcp-gateway").unwrap(),
        NumericDate::from_unix(now()).unwrap(),
        NumericDate::from_unix(now() + 300).unwrap(),
    )
}

#[tokio::test]
async fn inspect_verifies_the_idps_tokens_against_its_remote_jwks() {
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let idp = serve_json(serde_json::json!({ "keys": [key.public_jwk()] }).to_string()).await;
    let jwks = Jwks::Url(format!("{idp}/jwks"));
    let clock = SystemClock::shared();

    let id_token = key
        .sign_jwt(None, &id_token_claims(&idp))
        .unwrap()
        .secret()
        .to_owned();
    let report = inspect(&id_token, Some(&jwks), clock.clone()).await;
    assert_eq!(report.kind, InspectedKind::IdToken);
    assert!(
        report.valid && report.signature_verified,
        "{}",
        report.to_text()
    );

    let mut access = AccessTokenClaims::new(
        Issuer::new(idp.as_str()).unwrap(),
        Subject::new("alice").unwrap(),
        Audience::new("https://gw.example/mcp/notes").unwrap(),
        ClientId::new("chat-agent").unwrap(),
        Jti::new("at-1").unwrap(),
        NumericDate::from_unix(now()).unwrap(),
        NumericDate::from_unix(now() + 300).unwrap(),
    );
    access.scope = Some(ScopeSet::parse("notes.read").unwrap());
    access
        .extra
        .insert("groups".into(), serde_json::json!(["eng"]));
    let access = key
        .sign_jwt(Some(wire::TYP_ACCESS_TOKEN), &access)
        .unwrap()
        .secret()
        .to_owned();
    let report = inspect(&access, Some(&jwks), clock.clone()).await;
    assert_eq!(report.kind, InspectedKind::AccessToken);
    assert!(
        report.valid && report.signature_verified,
        "{}",
        report.to_text()
    );

    // A token of another key: its kid is unknown to the IdP's set.
    let stranger = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();
    let forged = stranger
        .sign_jwt(None, &id_token_claims(&idp))
        .unwrap()
        .secret()
        .to_owned();
    let report = inspect(&forged, Some(&jwks), clock).await;
    assert!(!report.signature_verified);
    assert!(
        report.to_text().contains("FAIL IDJAG-02"),
        "{}",
        report.to_text()
    );
}
