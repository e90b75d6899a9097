//! Audit events, log hygiene and abandoned requests (threats J05, J06, X20;
//! requirement EMA-13).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{HeaderMap, Method, header};
use idjag_core::server::{ClientRegistry, RegisteredClient};
use idjag_core::*;
use idjag_resource::AuditSubjects;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore};

use crate::support::*;

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_granted_decision_is_one_event_with_the_listed_fields() {
    let h = Harness::start(Setup::default()).await;
    let reply = h.redeem(&h.idp.set(&[("jti", json!("audit-jti-1"))])).await;
    h.granted(&reply);
    let event = h.audit().pop().unwrap();
    assert_eq!(event.target, "idjag::audit");
    let expected = [
        ("message", "grant decision".to_owned()),
        ("server", h.base.clone()),
        ("decision", "granted".into()),
        ("reason", "ok".into()),
        ("iss", IDP.into()),
        ("client_id", CLIENT.into()),
        ("sub", sha256_hex("alice@acme")),
        ("jti_sha256", sha256_hex("audit-jti-1")),
        ("kid", "idp-key-1".into()),
        ("resource", RESOURCE.into()),
        ("scope", "chat.history chat.read".into()),
    ];
    let expected: std::collections::BTreeMap<String, String> = expected
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(event.fields, expected);
}

#[tokio::test]
async fn subjects_can_be_logged_plain_when_configured() {
    let h = Harness::start(Setup::builder(|b| b.audit_subjects(AuditSubjects::Plain))).await;
    h.grants(&h.idp.id_jag()).await;
    assert_eq!(h.audit().pop().unwrap().fields["sub"], "alice@acme");
}

#[tokio::test]
async fn x20_no_token_assertion_or_secret_reaches_any_log_event() {
    let h = Harness::start(Setup::default()).await;
    let user = "x20-user@acme";
    let good = h.idp.set(&[("sub", json!(user))]);
    let reply = h.redeem(&good).await;
    let access_token = reply.access_token().to_owned();
    let expired = h.idp.set(&[
        ("sub", json!(user)),
        ("exp", json!(NOW - 100)),
        ("iat", json!(NOW - 400)),
    ]);
    let forged = format!("{}.{}", good.rsplit_once('.').unwrap().0, "A".repeat(86));
    for token in [&good, &expired, &forged] {
        let _ = h.redeem(token).await;
    }
    let wrong = basic(CLIENT, "wr0ng-s3cret-value");
    let _ = h
        .post(
            &[
                ("content-type", wire::MEDIA_TYPE_FORM),
                ("authorization", &wrong),
            ],
            form(&[
                ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
                ("assertion", &good),
            ]),
        )
        .await;
    // The Debug output of everything the server holds is redacted too.
    let debug = format!("{:?}", h.server);
    let logs = all_captured_text();
    for haystack in [&logs, &debug] {
        for token in [&good, &expired, &forged, &access_token] {
            for part in token.split('.') {
                assert!(!haystack.contains(part), "a token segment leaked");
            }
        }
        for secret in [SECRET, "wr0ng-s3cret-value", "s3cr3t%3Avalue"] {
            assert!(!haystack.contains(secret), "a secret leaked");
        }
        assert!(!haystack.contains(user), "subjects are hashed by default");
    }
    assert_eq!(h.audit().len(), 5, "one event per decision");
}

/// A client registry that holds every lookup until the gate opens.
#[derive(Debug)]
struct GatedRegistry {
    entered: Arc<Notify>,
    gate: Arc<Semaphore>,
}

impl ClientRegistry for GatedRegistry {
    fn client<'a>(
        &'a self,
        client_id: &'a ClientId,
    ) -> BoxFuture<'a, Option<Arc<RegisteredClient>>> {
        Box::pin(async move {
            self.entered.notify_one();
            self.gate.acquire().await.unwrap().forget();
            registry().client(client_id).await
        })
    }
}

fn gated() -> (Setup, Arc<Notify>, Arc<Semaphore>) {
    let entered = Arc::new(Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    let registry = GatedRegistry {
        entered: entered.clone(),
        gate: gate.clone(),
    };
    (
        Setup::builder(move |b| b.clients_shared(Arc::new(registry))),
        entered,
        gate,
    )
}

fn token_request(token: &str) -> (HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, wire::MEDIA_TYPE_FORM.parse().unwrap());
    headers.insert(
        header::AUTHORIZATION,
        basic(CLIENT, SECRET).parse().unwrap(),
    );
    let body = form(&[
        ("grant_type", wire::GRANT_TYPE_JWT_BEARER),
        ("assertion", token),
    ]);
    (headers, body)
}

#[tokio::test]
async fn j06_a_request_dropped_mid_way_leaves_no_state_in_process() {
    let (setup, entered, gate) = gated();
    let h = Harness::start(setup).await;
    let token = h.idp.id_jag();
    let (headers, body) = token_request(&token);
    {
        let pending = h.server.token(&Method::POST, &headers, body.as_bytes());
        tokio::select! {
            _ = pending => panic!("the gate is closed"),
            _ = entered.notified() => {} // the request is inside client authentication
        }
        // `pending` is dropped here: the caller went away.
    }
    assert_eq!(h.replay.len(), 0);
    assert_eq!(h.signatures.load(Ordering::SeqCst), 0);
    assert!(h.audit().is_empty(), "no decision was taken");
    // The ID-JAG was not consumed: the next request redeems it.
    gate.add_permits(1000);
    h.grants(&token).await;
}

/// Writes a token request on a raw connection and returns the connection.
async fn send_raw(h: &Harness, token: &str, extra_headers: &str) -> tokio::net::TcpStream {
    let (_, body) = token_request(token);
    let mut stream = tokio::net::TcpStream::connect(h.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: localhost\r\n{extra_headers}Content-Type: {}\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n{body}",
        wire::MEDIA_TYPE_FORM,
        basic(CLIENT, SECRET),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j06_a_client_disconnecting_mid_request_leaves_no_state() {
    let (setup, entered, gate) = gated();
    let h = Harness::start(setup).await;
    let token = h.idp.id_jag();
    let stream = send_raw(&h, &token, "").await;
    entered.notified().await;
    drop(stream); // the client goes away while the server is mid-request
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.add_permits(1000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.replay.len(),
        0,
        "no replay entry without a delivered response"
    );
    assert_eq!(h.signatures.load(Ordering::SeqCst), 0);
    assert!(h.audit().is_empty());
    h.grants(&token).await;

    // A client that stays gets its answer.
    let mut stream = send_raw(&h, &h.idp.id_jag(), "Connection: close\r\n").await;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
