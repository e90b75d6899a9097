//! The token provider: cache, margin, single flight, the forced refresh after a 401, and the
//! renewal ladder of threat C05, all on the test clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use idjag_client::*;
use idjag_core::{
    Algorithm, ClientId, ClientSecret, Clock, RefreshToken, ScopeSet, SigningKey, wire,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::*;

fn provider(w: &World) -> Arc<TokenProvider> {
    Arc::new(TokenProvider::new(w.client()))
}

/// `n` callers asking at once, each on its own task.
async fn concurrently(
    p: &Arc<TokenProvider>,
    w: &World,
    n: usize,
) -> Vec<Result<AccessTokenGrant, ClientError>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (p, subject, request) = (p.clone(), w.subject(), w.request());
            tokio::spawn(async move { p.access_token(&subject, &request).await })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_cached_token_is_reused_until_the_margin_then_renewed() {
    let w = World::new().await;
    let exchanges = w.mount_minting_idp().await;
    let redemptions = w.mount_counting_ras().await; // expires_in 600
    let p = provider(&w);
    let (subject, request) = (w.subject(), w.request());

    assert_eq!(
        p.access_token(&subject, &request)
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-1"
    );
    w.clock.advance(Duration::from_secs(569));
    assert_eq!(
        p.access_token(&subject, &request)
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-1"
    );
    assert_eq!((count(&exchanges), count(&redemptions)), (1, 1));

    w.clock.advance(Duration::from_secs(1)); // 600 - 30 s margin
    assert_eq!(
        p.access_token(&subject, &request)
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-2"
    );
    assert_eq!(
        (count(&exchanges), count(&redemptions)),
        (2, 2),
        "no ID-JAG reuse by default"
    );
    assert_eq!((p.exchange_count(), p.redemption_count()), (2, 2));
}

#[tokio::test]
async fn short_lived_tokens_are_kept_for_half_their_life() {
    let w = World::new().await;
    let exchanges = w.mount_minting_idp().await;
    w.mount_ras(ok(
        json!({"access_token": "at", "token_type": "Bearer", "expires_in": 40}),
    ))
    .await;
    let p = provider(&w);
    p.access_token(&w.subject(), &w.request()).await.unwrap();
    w.clock.advance(Duration::from_secs(19));
    p.access_token(&w.subject(), &w.request()).await.unwrap();
    assert_eq!(count(&exchanges), 1);
    w.clock.advance(Duration::from_secs(1));
    p.access_token(&w.subject(), &w.request()).await.unwrap();
    assert_eq!(count(&exchanges), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_callers_cause_exactly_one_exchange() {
    let w = World::new().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ok(exchange_body(&w.id_jag())).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&w.idp)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ok(redeem_body("at-1")))
        .expect(1)
        .mount(&w.ras)
        .await;
    let p = provider(&w);
    let results = concurrently(&p, &w, 100).await;
    for result in results {
        assert_eq!(result.unwrap().access_token().secret(), "at-1");
    }
    w.idp.verify().await;
    w.ras.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_failure_and_a_later_call_tries_again() {
    let w = World::new().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503).set_delay(Duration::from_millis(200)))
        .expect(2)
        .mount(&w.idp)
        .await;
    let p = provider(&w);
    let results = concurrently(&p, &w, 100).await;
    for result in results {
        let error = result.unwrap_err();
        assert!(matches!(
            error,
            ClientError::UnexpectedStatus {
                stage: Stage::IdentityProvider,
                status: 503
            }
        ));
    }
    assert_eq!(w.idp_requests().await.len(), 1);
    // A failure is not cached: the next call asks the IdP again and meets the same 503.
    assert!(matches!(
        p.access_token(&w.subject(), &w.request())
            .await
            .unwrap_err(),
        ClientError::UnexpectedStatus {
            stage: Stage::IdentityProvider,
            status: 503
        }
    ));
    w.idp.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_forces_exactly_one_re_exchange_even_for_concurrent_callers() {
    let w = World::new().await;
    let exchanges = w.mount_minting_idp().await;
    let redemptions = w.mount_counting_ras().await;
    let p = provider(&w);
    let first = p.access_token(&w.subject(), &w.request()).await.unwrap();
    assert_eq!(first.access_token().secret(), "at-1");

    let rejected = first.access_token().clone();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (p, subject, request, rejected) =
                (p.clone(), w.subject(), w.request(), rejected.clone());
            tokio::spawn(async move {
                p.refresh_after_unauthorized(&subject, &request, &rejected)
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().access_token().secret(), "at-2");
    }
    assert_eq!((count(&exchanges), count(&redemptions)), (2, 2));

    // A late report about the old token does not cost another exchange.
    let again = p
        .refresh_after_unauthorized(&w.subject(), &w.request(), &rejected)
        .await
        .unwrap();
    assert_eq!(again.access_token().secret(), "at-2");
    assert_eq!(count(&exchanges), 2);
}

#[tokio::test]
async fn call_refreshes_once_after_a_401_then_surfaces_the_refusal() {
    let w = World::new().await;
    let exchanges = w.mount_minting_idp().await;
    w.mount_counting_ras().await;
    let p = provider(&w);
    let seen = std::sync::Mutex::new(Vec::new());

    let reply = p
        .call(&w.subject(), &w.request(), |grant| {
            let token = grant.access_token().secret().to_owned();
            seen.lock().unwrap().push(token.clone());
            async move {
                if token == "at-1" {
                    ResourceReply::Unauthorized(401)
                } else {
                    ResourceReply::Done(200)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(reply, 200);
    assert_eq!(*seen.lock().unwrap(), ["at-1", "at-2"]);
    assert_eq!(count(&exchanges), 2);

    let error = p
        .call(&w.subject(), &w.request(), |_grant| async {
            ResourceReply::Unauthorized(401)
        })
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Unauthorized(401)));
    assert_eq!(count(&exchanges), 3, "exactly one forced refresh");
}

#[tokio::test]
async fn c05_an_expired_access_token_re_presents_the_cached_id_jag_while_it_is_valid() {
    let w = World::new().await;
    let exchanges = w.mount_minting_idp().await;
    let redemptions = Arc::new(AtomicU64::new(0));
    let counter = redemptions.clone();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(move |_: &wiremock::Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            ok(json!({"access_token": format!("at-{n}"), "token_type": "Bearer", "expires_in": 120}))
        })
        .mount(&w.ras)
        .await;
    let request = AccessRequest::new(
        w.resource_as_with(World::ras_credentials())
            .with_id_jag_reuse(true),
    )
    .with_resource(idjag_core::Resource::new(RESOURCE).unwrap())
    .with_scope(ScopeSet::parse("chat.read chat.history").unwrap());
    let p = provider(&w);

    assert_eq!(
        p.access_token(&w.subject(), &request)
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-1"
    );
    w.clock.advance(Duration::from_secs(90)); // access token: 120 s - 30 s margin
    assert_eq!(
        p.access_token(&w.subject(), &request)
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-2"
    );
    assert_eq!((count(&exchanges), count(&redemptions)), (1, 2));
    let assertions: Vec<_> = w
        .ras_requests()
        .await
        .iter()
        .map(|r| {
            form(r)
                .into_iter()
                .find(|(n, _)| n == "assertion")
                .unwrap()
                .1
        })
        .collect();
    assert_eq!(
        assertions[0], assertions[1],
        "the same ID-JAG was presented again"
    );

    w.clock.advance(Duration::from_secs(180)); // T0 + 270: the ID-JAG (300 s) is within its margin
    assert_eq!(
        p.access_token(&w.subject(), &request)
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-3"
    );
    assert_eq!(
        (count(&exchanges), count(&redemptions)),
        (2, 3),
        "ID-JAG expired: new exchange"
    );
}

#[tokio::test]
async fn c05_a_reused_id_jag_that_the_server_refuses_is_replaced_by_one_new_exchange() {
    let w = World::new().await;
    let exchanges = w.mount_minting_idp().await;
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(move |_: &wiremock::Request| match counter.fetch_add(1, Ordering::SeqCst) + 1 {
            2 => oauth_error(400, json!({"error": "invalid_grant", "error_description": "jti replayed"})),
            n => ok(json!({"access_token": format!("at-{n}"), "token_type": "Bearer", "expires_in": 60})),
        })
        .mount(&w.ras)
        .await;
    let request = AccessRequest::new(
        w.resource_as_with(World::ras_credentials())
            .with_id_jag_reuse(true),
    );
    let p = provider(&w);
    p.access_token(&w.subject(), &request).await.unwrap();
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(
        p.access_token(&w.subject(), &request)
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-3"
    );
    assert_eq!((count(&exchanges), count(&calls)), (2, 3));
}

/// An IdP answering the refresh grant with a new ID token (signed with the deterministic
/// EdDSA `id_token_key`, valid an hour from the test clock's now) and a rotated refresh token,
/// or `invalid_grant` for `rt-dead`; token exchanges get fresh ID-JAGs.
async fn mount_renewing_idp(w: &World, id_token_key: &SigningKey) {
    let (idp, ras, clock, key) = (w.idp.uri(), w.ras.uri(), w.clock.clone(), w.idp_key.clone());
    let id_token_key = id_token_key.clone();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(move |r: &wiremock::Request| {
            let fields = form(r);
            let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            match get("grant_type").as_deref() {
                Some("refresh_token") if get("refresh_token").as_deref() == Some("rt-dead") => {
                    oauth_error(400, json!({"error": "invalid_grant"}))
                }
                Some("refresh_token") => {
                    let n = get("refresh_token").unwrap()[3..].parse::<u32>().unwrap();
                    let id_token = mint_id_token(&id_token_key, &idp, clock.now_unix() + 3600);
                    ok(json!({
                        "access_token": "idp-at", "token_type": "Bearer", "expires_in": 3600,
                        "id_token": id_token.secret(), "refresh_token": format!("rt-{}", n + 1),
                    }))
                }
                _ => {
                    let claims = claims_at(&idp, &ras, clock.now_unix(), "jti");
                    ok(exchange_body(
                        key.sign_jwt(Some(wire::TYP_ID_JAG), &claims)
                            .unwrap()
                            .secret(),
                    ))
                }
            }
        })
        .mount(&w.idp)
        .await;
}

fn eddsa() -> SigningKey {
    SigningKey::generate(Algorithm::EdDsa).unwrap()
}

fn grant_and_subject(r: &wiremock::Request) -> (String, String) {
    let fields = form(r);
    let get = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    (
        get("grant_type"),
        if get("subject_token").is_empty() {
            get("refresh_token")
        } else {
            get("subject_token")
        },
    )
}

#[tokio::test]
async fn c05_an_expired_id_token_is_renewed_at_the_idp_and_rotation_is_kept() {
    let w = World::new().await;
    let id_token_key = eddsa();
    mount_renewing_idp(&w, &id_token_key).await;
    w.mount_counting_ras().await;
    let old_id_token = w.id_token_until(T0 + 100);
    let subject = UserToken::id_token(old_id_token.clone())
        .with_subject_id("alice")
        .with_refresh_token(RefreshToken::new("rt-1"));
    let p = provider(&w);

    p.access_token(&subject, &w.request()).await.unwrap();
    w.clock.advance(Duration::from_secs(600)); // access token and ID token both expired
    assert_eq!(
        p.access_token(&subject, &w.request())
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-2"
    );
    w.clock.set_unix(T0 + 4300); // the renewed ID token (exp T0 + 4200) expired too
    assert_eq!(
        p.access_token(&subject, &w.request())
            .await
            .unwrap()
            .access_token()
            .secret(),
        "at-3"
    );

    // EdDSA signatures are deterministic, so the renewed tokens can be recomputed.
    let renewed_1 = mint_id_token(&id_token_key, &w.idp.uri(), T0 + 600 + 3600);
    let renewed_2 = mint_id_token(&id_token_key, &w.idp.uri(), T0 + 4300 + 3600);
    let seen: Vec<_> = w
        .idp_requests()
        .await
        .iter()
        .map(grant_and_subject)
        .collect();
    let exchange = wire::GRANT_TYPE_TOKEN_EXCHANGE.to_owned();
    assert_eq!(
        seen,
        [
            (exchange.clone(), old_id_token.secret().to_owned()),
            ("refresh_token".into(), "rt-1".into()),
            (exchange.clone(), renewed_1.secret().to_owned()),
            ("refresh_token".into(), "rt-2".into()),
            (exchange, renewed_2.secret().to_owned()),
        ]
    );
}

#[tokio::test]
async fn c05_when_every_renewal_fails_the_user_must_sign_in_again() {
    let w = World::new().await;
    mount_renewing_idp(&w, &eddsa()).await;
    w.mount_counting_ras().await;
    let p = provider(&w);
    let expired = w.id_token_until(T0 - 1);

    let no_refresh = UserToken::id_token(expired.clone());
    assert!(matches!(
        p.access_token(&no_refresh, &w.request()).await,
        Err(ClientError::ReauthenticationRequired {
            reason: ReauthReason::IdTokenExpired
        })
    ));
    let dead_refresh =
        UserToken::id_token(expired).with_refresh_token(RefreshToken::new("rt-dead"));
    assert!(matches!(
        p.access_token(&dead_refresh, &w.request()).await,
        Err(ClientError::ReauthenticationRequired {
            reason: ReauthReason::RefreshRejected
        })
    ));
    let grants: Vec<_> = w
        .idp_requests()
        .await
        .iter()
        .map(|r| grant_and_subject(r).0)
        .collect();
    assert_eq!(
        grants,
        ["refresh_token"],
        "no token exchange with an expired ID token"
    );
    assert_eq!(w.ras_requests().await.len(), 0);
}

#[tokio::test]
async fn the_cache_key_separates_subjects_and_scopes() {
    let w = World::new().await;
    let exchanges = w.mount_minting_idp().await;
    w.mount_counting_ras().await;
    let p = provider(&w);
    let narrow = w
        .request()
        .with_scope(ScopeSet::parse("chat.read").unwrap());

    let alice_1 = UserToken::id_token(w.id_token_until(ID_TOKEN_EXP)).with_subject_id("alice");
    let alice_2 = UserToken::id_token(w.id_token_until(ID_TOKEN_EXP + 1)).with_subject_id("alice");
    let bob = UserToken::id_token(w.id_token_until(ID_TOKEN_EXP)).with_subject_id("bob");
    p.access_token(&alice_1, &w.request()).await.unwrap();
    p.access_token(&alice_2, &w.request()).await.unwrap();
    assert_eq!(count(&exchanges), 1, "same subject id, same entry");
    p.access_token(&bob, &w.request()).await.unwrap();
    assert_eq!(count(&exchanges), 2);
    let _ = p.access_token(&alice_1, &narrow).await;
    assert_eq!(count(&exchanges), 3);

    let key = CacheKey::new(p.client(), &alice_1, &w.request());
    assert!(!format!("{key:?}").contains(alice_1.token().secret()));
    p.clear();
}

#[tokio::test]
async fn one_renewal_serves_every_resource_of_a_user() {
    let w = World::new().await;
    mount_renewing_idp(&w, &eddsa()).await;
    w.mount_counting_ras().await;
    let subject = UserToken::id_token(w.id_token_until(T0 + 100))
        .with_refresh_token(RefreshToken::new("rt-1"));
    let files = w
        .request()
        .with_resource(idjag_core::Resource::new("https://mcp.chat.example/files").unwrap());
    let p = provider(&w);
    p.access_token(&subject, &w.request()).await.unwrap();
    p.access_token(&subject, &files).await.unwrap();
    w.clock.advance(Duration::from_secs(600));
    p.access_token(&subject, &w.request()).await.unwrap();
    p.access_token(&subject, &files).await.unwrap();
    assert_eq!(p.exchange_count(), 4, "two cache keys, each renewed once");
    let refreshes: Vec<_> = w
        .idp_requests()
        .await
        .iter()
        .map(grant_and_subject)
        .filter(|(grant, _)| grant == "refresh_token")
        .collect();
    assert_eq!(
        refreshes,
        [("refresh_token".to_owned(), "rt-1".to_owned())],
        "rt-1 is used once, by one renewal"
    );
}

/// Threat C08: the cache key holds our registration at the resource AS (client id, method and
/// credential), so two registrations never share a cached token.
#[tokio::test]
async fn c08_two_registrations_at_one_authorization_server_never_share_a_cached_token() {
    let w = World::new().await;
    let exchanges = w.mount_minting_idp().await;
    let redemptions = w.mount_counting_ras().await;
    let p = provider(&w);
    let subject = w.subject();
    let id = || ClientId::new(RAS_CLIENT).unwrap();
    let signer = || {
        auth::PrivateKeyJwt::new(
            SigningKey::generate(Algorithm::Es256).unwrap(),
            w.clock.shared(),
        )
    };
    let key_a = ClientCredentials::private_key_jwt(id(), signer());
    let registrations = [
        World::ras_credentials(),
        ClientCredentials::secret_basic(id(), ClientSecret::new("rotated")).unwrap(),
        ClientCredentials::secret_post(id(), ClientSecret::new(RAS_SECRET)).unwrap(),
        key_a.clone(),
        ClientCredentials::private_key_jwt(id(), signer()),
    ];
    let requests: Vec<AccessRequest> = registrations
        .iter()
        .map(|r| w.request_with(r.clone()))
        .collect();
    let mut issued = Vec::new();
    for request in &requests {
        let grant = p.access_token(&subject, request).await.unwrap();
        issued.push(grant.access_token().secret().to_owned());
    }
    assert_eq!(issued, ["at-1", "at-2", "at-3", "at-4", "at-5"]);
    assert_eq!((count(&exchanges), count(&redemptions)), (5, 5));
    // Each registration's token stays cached for that registration, and a clone of the same
    // credentials (the same assertion provider) is the same registration.
    for (request, token) in requests.iter().zip(&issued) {
        let again = p.access_token(&subject, request).await.unwrap();
        assert_eq!(again.access_token().secret(), token);
    }
    let same = p
        .access_token(&subject, &w.request_with(key_a.clone()))
        .await
        .unwrap();
    assert_eq!(same.access_token().secret(), "at-4");
    assert_eq!((count(&exchanges), count(&redemptions)), (5, 5));

    // Another client id at the same server is another key too.
    let client = w.client();
    let other = ClientCredentials::secret_basic(
        ClientId::new("another-app").unwrap(),
        ClientSecret::new(RAS_SECRET),
    )
    .unwrap();
    assert_ne!(
        CacheKey::new(&client, &subject, &w.request()),
        CacheKey::new(&client, &subject, &w.request_with(other))
    );
    assert_eq!(
        CacheKey::new(&client, &subject, &w.request()),
        CacheKey::new(&client, &subject, &w.request_with(World::ras_credentials()))
    );
    let debug = format!("{:?}", CacheKey::new(&client, &subject, &w.request()));
    assert!(
        debug.contains("client_secret_basic") && !debug.contains(RAS_SECRET),
        "{debug}"
    );
}
