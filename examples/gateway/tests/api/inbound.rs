//! Inbound authentication: G01, G02, G04, G05, G09 (token size), G22, G23, G24.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use idjag_core::{
    Algorithm, AlgorithmSet, Audience, ClientId, IdToken, IdTokenClaims, NumericDate, SigningKey,
    TestClock, ValidationError, wire,
};
use idjag_gateway::config::{ConfigDuration, InboundKind};
use idjag_gateway::demo::GATEWAY_CLIENT;
use idjag_gateway::inbound::TeamMap;
use idjag_gateway::inbound::{InboundAuth, InboundError, InboundSettings};
use idjag_idp::IdJagIssuer;
use serde_json::{Value, json};

use crate::support::*;

fn gateway_client() -> ClientId {
    ClientId::new(GATEWAY_CLIENT).unwrap()
}

fn alice(t: &Topology) -> String {
    t.id_token("alice").unwrap().secret().to_owned()
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn upstream_calls(t: &Topology) -> usize {
    t.flow
        .drain()
        .iter()
        .filter(|e| e.place == idjag_gateway::demo::Place::McpServer)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g01_no_authorization_gets_401_with_the_gateways_resource_metadata_and_no_upstream_call() {
    let (t, audit) = start(UpstreamKind::Echo).await;
    let response = send(&t.route_url, None, &initialize()).await;
    assert_eq!(response.status(), 401);
    let metadata_url = format!(
        "{}/.well-known/oauth-protected-resource/mcp/notes",
        t.gateway_url
    );
    assert_eq!(
        challenge(&response),
        format!("Bearer resource_metadata=\"{metadata_url}\"")
    );
    assert_eq!(upstream_calls(&t), 0);
    assert_eq!(audit.records()[0].reason, "no_token");

    // The metadata names the route as the resource and the IdP as its authorization server.
    let metadata: Value = client()
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], t.route_url);
    assert_eq!(metadata["authorization_servers"], json!([t.idp.as_str()]));
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    let unknown = client()
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp/nope",
            t.gateway_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g02_a_token_for_another_audience_is_refused_with_invalid_token() {
    let (t, audit) = start(UpstreamKind::Echo).await;
    // An ID token issued to another client of the IdP.
    let other_app = t
        .users
        .id_token("alice", &ClientId::new("other-app").unwrap())
        .unwrap();
    // An IdP access token for another MCP server.
    let other_server = idp_access_token(&t, "http://127.0.0.1:9/mcp", None, &["eng"]);
    for token in [other_app.secret(), other_server.as_str()] {
        let response = send(&t.route_url, Some(token), &initialize()).await;
        assert_eq!(response.status(), 401);
        assert!(
            challenge(&response).starts_with("Bearer error=\"invalid_token\", resource_metadata=")
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
    assert_eq!(upstream_calls(&t), 0);
    let reasons: Vec<String> = audit.records().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons, ["wrong_audience", "wrong_audience"]);

    // An IdP access token for this route is accepted as an identity; the ID-JAG upstream
    // then needs the user's ID token, and says so.
    let for_route = idp_access_token(&t, &t.route_url, None, &["eng"]);
    let response = send(&t.route_url, Some(&for_route), &initialize()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "id_token_required");
    assert_eq!(upstream_calls(&t), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g04_malformed_authorization_headers_are_refused_and_a_lower_case_scheme_is_accepted() {
    let (t, _) = start(UpstreamKind::Echo).await;
    let token = alice(&t);
    let send = |headers: Vec<String>| {
        let mut request = post(&t.route_url, None, &initialize());
        for h in headers {
            request = request.header("authorization", h);
        }
        request.send()
    };
    let two = send(vec![format!("Bearer {token}"), format!("Bearer {token}")])
        .await
        .unwrap();
    assert_eq!(two.status(), 400);
    assert!(challenge(&two).contains("error=\"invalid_request\""));
    let basic = send(vec!["Basic dXNlcjpwdw==".into()]).await.unwrap();
    assert_eq!(basic.status(), 401);
    assert!(!challenge(&basic).contains("error="));
    assert_eq!(
        send(vec![format!("Bearer  {token}")])
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        send(vec!["Bearer abc$def".into()]).await.unwrap().status(),
        400
    );
    assert_eq!(send(vec!["Bearer a,b".into()]).await.unwrap().status(), 400);
    assert_eq!(upstream_calls(&t), 0);
    let lower = send(vec![format!("bearer {token}")]).await.unwrap();
    assert_eq!(lower.status(), 200);
    assert_eq!(upstream_calls(&t), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g05_a_token_in_the_query_string_or_the_body_is_ignored() {
    let (t, audit) = start(UpstreamKind::Echo).await;
    let token = alice(&t);
    let in_query = send(
        &format!("{}?access_token={token}", t.route_url),
        None,
        &initialize(),
    )
    .await;
    assert_eq!(in_query.status(), 401);
    let in_form = client()
        .post(&t.route_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(in_form.status(), 401);
    assert_eq!(upstream_calls(&t), 0);
    assert!(audit.records().iter().all(|r| r.reason == "no_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g09_a_token_longer_than_the_maximum_is_refused_without_decoding() {
    let (t, audit) = start(UpstreamKind::Echo).await;
    let long = format!("eyJ{}", "A".repeat(9000));
    let response = send(&t.route_url, Some(&long), &initialize()).await;
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains("invalid_token"));
    assert_eq!(audit.records()[0].reason, "token_too_large");
    assert_eq!(upstream_calls(&t), 0);
}

fn seconds(n: u64) -> ConfigDuration {
    ConfigDuration(Duration::from_secs(n))
}

/// An ID token of `user` signed by `key` (whose kid the gateway may not know).
fn signed_with(t: &Topology, key: &SigningKey, user: &str) -> String {
    let claims = t.users.claims(user, &gateway_client()).unwrap();
    key.sign_jwt(Some(wire::TYP_JWT), &claims)
        .unwrap()
        .secret()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g22_with_the_idp_down_cached_keys_still_verify_a_new_kid_fails_closed_and_refetches_are_cooled_down()
 {
    let (t, audit) = start_with(UpstreamKind::Echo, |c| {
        c.idp.jwks_max_age = ConfigDuration(Duration::from_millis(500));
        c.idp.jwks_cooldown = seconds(30);
    })
    .await;
    let ok = send(&t.route_url, Some(&alice(&t)), &initialize()).await;
    assert_eq!(ok.status(), 200);
    let fetches = t.gateway.jwks_fetch_count();
    assert_eq!(fetches, 1);

    // The IdP and the resource AS go down; the keys' max age passes.
    t.set_idp_down(true);
    t.set_resource_as_down(true);
    tokio::time::sleep(Duration::from_millis(700)).await;

    // A new token signed by the cached key passes inbound authentication (within the stale
    // window); only the upstream credential fails, as the IdP is down.
    let response = send(&t.route_url, Some(&alice(&t)), &initialize()).await;
    assert_eq!(response.status(), 502);
    let record = audit.records().pop().unwrap();
    assert_eq!(
        (record.user.as_deref(), record.reason.as_str()),
        (Some("alice"), "credential_unavailable")
    );

    // Tokens with a kid nobody published: 401, and concurrent misses share at most one
    // fetch, within the cool-down.
    let before = t.gateway.jwks_fetch_count();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let key = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_thumbprint_kid();
        let token = signed_with(&t, &key, "alice");
        let url = t.route_url.clone();
        tasks.push(tokio::spawn(async move {
            let _ = i;
            send(&url, Some(&token), &initialize()).await.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 401);
    }
    assert!(
        t.gateway.jwks_fetch_count() - before <= 1,
        "{} fetches",
        t.gateway.jwks_fetch_count() - before
    );
    assert!(
        audit
            .records()
            .iter()
            .rev()
            .take(10)
            .all(|r| r.reason == "unknown_key")
    );
}

/// A JWKS endpoint that serves the IdP's published keys minus the removed kids.
#[derive(Clone, Default)]
struct JwksProxy {
    idp: Arc<Mutex<Option<IdJagIssuer>>>,
    removed: Arc<Mutex<HashSet<String>>>,
    served: Arc<AtomicUsize>,
}

async fn serve_proxy(proxy: JwksProxy) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let router = Router::new().route(
        "/jwks",
        get(move || {
            let proxy = proxy.clone();
            async move {
                proxy.served.fetch_add(1, Ordering::SeqCst);
                let idp = proxy.idp.lock().unwrap().clone();
                let Some(idp) = idp else {
                    return json_response(json!({"keys": []}));
                };
                let mut jwks = idp.jwks();
                let removed = proxy.removed.lock().unwrap().clone();
                if let Some(keys) = jwks["keys"].as_array_mut() {
                    keys.retain(|k| !removed.contains(k["kid"].as_str().unwrap_or_default()));
                }
                json_response(jwks)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g23_key_rotation_under_load_refreshes_once_without_a_401_and_removed_keys_then_fail() {
    let proxy = JwksProxy::default();
    let jwks_uri = serve_proxy(proxy.clone()).await;
    let (t, _) = start_with(UpstreamKind::Echo, move |c| {
        c.idp.jwks_uri = Some(jwks_uri.clone());
        c.idp.jwks_max_age = seconds(3);
        c.idp.jwks_cooldown = ConfigDuration(Duration::from_millis(300));
    })
    .await;
    *proxy.idp.lock().unwrap() = Some(t.idp_server.clone());
    let old_key = t.idp_server.current_signing_key();
    let new_key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_thumbprint_kid();

    // Load: 8 clients, each with its own token, calling a tool back to back.
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let run_phase = |key: SigningKey, how_long: Duration| {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let token = signed_with(&t, &key, "alice");
            let url = t.route_url.clone();
            let statuses = statuses.clone();
            tasks.push(tokio::spawn(async move {
                let until = tokio::time::Instant::now() + how_long;
                let mut n = 0;
                while tokio::time::Instant::now() < until {
                    n += 1;
                    let status = send(
                        &url,
                        Some(&token),
                        &tools_call(n, "echo", json!({"text": "x"})),
                    )
                    .await
                    .status()
                    .as_u16();
                    statuses.lock().unwrap().push(status);
                }
            }));
        }
        tasks
    };
    for task in run_phase(old_key.clone(), Duration::from_millis(600)) {
        task.await.unwrap();
    }
    let fetches_before = t.gateway.jwks_fetch_count();
    assert_eq!(fetches_before, 1);

    // Rotation: the IdP publishes the new key; clients start presenting tokens it signed.
    t.idp_server.stage_signing_key(new_key.clone()).unwrap();
    for task in run_phase(new_key.clone(), Duration::from_millis(600)) {
        task.await.unwrap();
    }
    let statuses = statuses.lock().unwrap().clone();
    assert!(statuses.len() > 16);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    assert_eq!(
        t.gateway.jwks_fetch_count(),
        fetches_before + 1,
        "one refresh for the new kid"
    );

    // The old key leaves the JWKS; once the cached set is older than its max age, a token
    // signed with it is refused.
    let old_kid = old_key.kid().unwrap().as_str().to_owned();
    proxy.removed.lock().unwrap().insert(old_kid);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let late = signed_with(&t, &old_key, "alice");
    let response = send(&t.route_url, Some(&late), &initialize()).await;
    assert_eq!(response.status(), 401);
    let fresh = signed_with(&t, &new_key, "alice");
    let response = send(&t.route_url, Some(&fresh), &initialize()).await;
    assert_eq!(response.status(), 200);
}

fn clock_settings(t: &Topology) -> InboundSettings {
    let mut settings = InboundSettings::new(
        t.idp.clone(),
        gateway_client(),
        Audience::new(t.gateway_url.as_str()).unwrap(),
        vec![Audience::new(t.route_url.as_str()).unwrap()],
    );
    settings.accept = vec![InboundKind::IdToken];
    settings.algorithms = AlgorithmSet::from([Algorithm::Es256]);
    settings.leeway = Duration::from_secs(30);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g24_clock_skew_within_the_leeway_is_accepted_and_beyond_it_is_rejected() {
    let (t, _) = start(UpstreamKind::Echo).await;
    let clock = TestClock::at_unix(0);
    let auth = InboundAuth::with_keys(
        clock_settings(&t),
        t.idp_server.published_keys(),
        TeamMap::default(),
        clock.shared(),
    )
    .unwrap();
    let route = Audience::new(t.route_url.as_str()).unwrap();
    let iat = 1_900_000_000;
    let token = |i: i64| -> IdToken {
        let mut claims: IdTokenClaims = t.users.claims("alice", &gateway_client()).unwrap();
        claims.iat = NumericDate::from_unix(iat).unwrap();
        claims.exp = NumericDate::from_unix(iat + 600).unwrap();
        claims.auth_time = Some(claims.iat);
        claims.extra.insert("jti".into(), json!(format!("g24-{i}")));
        t.users.sign(&claims).unwrap()
    };
    let headers = |token: &IdToken| {
        let mut h = http::HeaderMap::new();
        h.insert(
            "authorization",
            format!("Bearer {}", token.secret()).parse().unwrap(),
        );
        h
    };
    let cases = [
        (iat + 600 + 29, None),
        (iat + 600 + 31, Some(ValidationError::Expired)),
        (iat - 29, None),
        (iat - 31, Some(ValidationError::IssuedInFuture)),
    ];
    for (i, (now, expected)) in cases.into_iter().enumerate() {
        clock.set_unix(now);
        let result = auth.authenticate(&headers(&token(i as i64)), &route).await;
        match expected {
            None => assert_eq!(
                result.unwrap().identity.user.as_str(),
                "alice",
                "clock {now}"
            ),
            Some(error) => assert_eq!(
                result.unwrap_err(),
                InboundError::Invalid(error),
                "clock {now}"
            ),
        }
    }
    // A cached identity is not used past `exp`: the token is validated again.
    let cached = token(10);
    clock.set_unix(iat + 10);
    assert!(auth.authenticate(&headers(&cached), &route).await.is_ok());
    clock.set_unix(iat + 600 + 31);
    assert_eq!(
        auth.authenticate(&headers(&cached), &route)
            .await
            .unwrap_err(),
        InboundError::Invalid(ValidationError::Expired)
    );
}
