//! The development OpenID provider (feature `dev`) over HTTP: discovery, the code flow with
//! PKCE driven like a browser, refresh rotation, every refusal with its exact answer, the
//! login page's escaping and headers, and no secret in the logs.

use std::time::Duration;

use idjag_core::*;
use serde_json::{Value, json};

use crate::dev_support::*;
use crate::support::*;

#[tokio::test]
async fn discovery_lists_the_dev_provider_at_both_well_known_paths() {
    let d = start_dev().await;
    let base = &d.h.base;
    let mut documents = Vec::new();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = d.browser.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        documents.push(response.json::<Value>().await.unwrap());
    }
    // One document: the OpenID and RFC 8414 views never disagree.
    assert_eq!(documents[0], documents[1]);
    let md = &documents[0];
    assert_eq!(md["issuer"], json!(base));
    assert_eq!(
        md["authorization_endpoint"],
        json!(format!("{base}/authorize"))
    );
    assert_eq!(md["token_endpoint"], json!(format!("{base}/token")));
    assert_eq!(md["jwks_uri"], json!(format!("{base}/jwks")));
    assert_eq!(md["userinfo_endpoint"], json!(format!("{base}/userinfo")));
    assert_eq!(md["response_types_supported"], json!(["code"]));
    assert_eq!(md["response_modes_supported"], json!(["query"]));
    assert_eq!(md["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        md["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        md["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        md["scopes_supported"],
        json!(["openid", "profile", "email", "groups", "offline_access"])
    );
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nonce",
        "auth_time",
        "email",
        "name",
        "groups",
    ] {
        assert!(
            md["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
    assert_eq!(md["subject_types_supported"], json!(["public"]));
    assert_eq!(
        md["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(md["request_parameter_supported"], json!(false));
    assert_eq!(md["request_uri_parameter_supported"], json!(false));
    assert_eq!(md["claims_parameter_supported"], json!(false));
    assert_eq!(
        md["authorization_response_iss_parameter_supported"],
        json!(true)
    );

    // Everything the issuer's own metadata says about token exchange is still said.
    let issuer_md = serde_json::to_value(d.h.idp.metadata()).unwrap();
    for member in [
        "issuer",
        "token_endpoint",
        "jwks_uri",
        "identity_chaining_requested_token_types_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "dpop_signing_alg_values_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert_eq!(md[member], issuer_md[member], "{member}");
    }
    assert_eq!(d.dev.metadata().issuer, *d.h.idp.issuer());
}

/// The whole flow, as a browser and a confidential client drive it: authorization request,
/// login page, choice, redirect with code and state, code redemption with the PKCE verifier,
/// and an ID token that idjag-core's ID-token validator accepts with the expected `nonce`
/// and `aud`. Then the access token at userinfo, and the ID token exchanged for an ID-JAG at
/// the same token endpoint.
#[tokio::test]
async fn code_flow_signs_alice_in_and_her_id_token_validates() {
    let d = start_dev().await;
    let page = d.authorize(&d.auth_request()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Alice Liddell"));
    assert!(page.body.contains("alice@example.com"));
    assert!(page.body.contains("<span class=\"group\">staff</span>"));
    assert!(page.body.contains("Sign in to chat-agent"));
    let form = page.login_form();
    assert_eq!(form.request.len(), 32);
    assert_eq!(form.csrf.len(), 43);

    let (location, query) = d.choose(&form, "alice").await.redirect();
    assert_eq!(location.as_str().split('?').next().unwrap(), AGENT_REDIRECT);
    assert_eq!(query["state"], STATE);
    assert_eq!(query["iss"], d.h.base);
    let code = &query["code"];
    assert_eq!(code.len(), 43);
    let events = d.take_dev_events();
    assert_eq!(events.last().unwrap()["fields"]["decision"], "code_issued");

    let answer = d.h.post(&d.redeem(code)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(answer.headers["pragma"], "no-cache");
    let body = &answer.body;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "email openid");
    assert!(body["access_token"].as_str().unwrap().len() >= 43);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    assert!(body.get("issued_token_type").is_none());

    let verified = d
        .id_token_validator(AGENT)
        .validate(body["id_token"].as_str().unwrap())
        .unwrap();
    let claims = verified.claims();
    assert_eq!(claims.iss.as_str(), d.h.base);
    assert_eq!(claims.sub.as_str(), "alice");
    assert_eq!(claims.aud.as_str(), AGENT);
    assert_eq!(claims.nonce.as_deref(), Some(NONCE));
    assert_eq!(claims.iat.unix(), NOW);
    assert_eq!(claims.exp.unix(), NOW + 600);
    assert_eq!(claims.auth_time.map(|t| t.unix()), Some(NOW));
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!(claims.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(claims.groups.as_deref(), Some(&["staff".to_owned()][..]));
    // Another client's validator refuses it: `aud` is the chat agent.
    assert!(
        d.id_token_validator(OTHER)
            .validate(body["id_token"].as_str().unwrap())
            .is_err()
    );

    let (status, _, userinfo) = d.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        userinfo,
        json!({"sub": "alice", "name": "Alice Liddell", "email": "alice@example.com", "groups": ["staff"]})
    );

    // The token exchange on the same endpoint is the issuer's, unchanged.
    let exchange = d.h.valid().subject(
        body["id_token"].as_str().unwrap(),
        wire::TOKEN_TYPE_ID_TOKEN,
    );
    let id_jag = d.h.post(&exchange).await;
    let verified = d.h.validator(CHAT_AS).validate(id_jag.id_jag()).unwrap();
    assert_eq!(verified.claims().sub.as_str(), "alice");
    assert_eq!(verified.claims().client_id.as_str(), AGENT_AT_CHAT);
    d.h.expect_issued();
}

/// A public client on a loopback redirect URI: any port (RFC 8252 §7.3), `client_id` alone
/// at the token endpoint; a public client cannot use token exchange.
#[tokio::test]
async fn public_client_uses_any_loopback_port_and_no_secret() {
    let d = start_dev().await;
    let redirect_uri = "http://127.0.0.1:53127/callback";
    let request = d
        .auth_request()
        .set("client_id", CLI)
        .set("redirect_uri", redirect_uri)
        .remove("state")
        .remove("nonce");
    let page = d.authorize(&request).await;
    assert_eq!(page.status, 200);
    let (location, query) = d.choose(&page.login_form(), "alice").await.redirect();
    assert!(
        location
            .as_str()
            .starts_with("http://127.0.0.1:53127/callback?code=")
    );
    assert!(!query.contains_key("state"));

    let redeem = d
        .redeem(&query["code"])
        .no_auth()
        .set("client_id", CLI)
        .set("redirect_uri", redirect_uri);
    let answer = d.h.post(&redeem).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    let claims = d
        .id_token_validator(CLI)
        .validate(answer.body["id_token"].as_str().unwrap())
        .unwrap()
        .into_claims();
    assert_eq!(claims.nonce, None);

    // The same public client at the token exchange: refused, it has no credential there.
    let exchange =
        d.h.valid()
            .subject(
                answer.body["id_token"].as_str().unwrap(),
                wire::TOKEN_TYPE_ID_TOKEN,
            )
            .no_auth()
            .set("client_id", CLI);
    d.h.post(&exchange)
        .await
        .assert_error(401, "invalid_client");
}

/// `client_secret_post` works as well as Basic; a confidential client's exact loopback
/// redirect URI keeps its query, and the code is appended to it.
#[tokio::test]
async fn confidential_client_with_client_secret_post_and_a_redirect_uri_with_a_query() {
    let d = start_dev().await;
    let request = d
        .auth_request()
        .set("redirect_uri", AGENT_LOOPBACK_REDIRECT);
    let form = d.authorize(&request).await.login_form();
    let (location, query) = d.choose(&form, "alice").await.redirect();
    assert!(
        location
            .as_str()
            .starts_with("http://127.0.0.1:8080/cb?x=1&code=")
    );
    assert_eq!(query["x"], "1");
    let redeem = d
        .redeem(&query["code"])
        .set("redirect_uri", AGENT_LOOPBACK_REDIRECT)
        .post_secret(AGENT, AGENT_SECRET);
    assert_eq!(d.h.post(&redeem).await.status, 200);
    // The same port only: a confidential client gets exact matching.
    let other_port = d
        .auth_request()
        .set("redirect_uri", "http://127.0.0.1:8081/cb?x=1");
    d.authorize(&other_port)
        .await
        .assert_error_page(400, "The redirect_uri is not registered for this client.");
}

/// Refresh rotation: a fresh ID token (new `iat`, the login's `auth_time`, no `nonce`) and a
/// new refresh token; the old one presented again revokes the whole family.
#[tokio::test]
async fn refresh_rotates_and_renews_the_id_token() {
    let d = start_dev().await;
    let first = d.h.post(&d.redeem(&d.code().await)).await;
    let old_refresh = first.body["refresh_token"].as_str().unwrap().to_owned();

    d.h.clock.advance(Duration::from_secs(300));
    let renewed = d.h.post(&d.refresh(&old_refresh)).await;
    assert_eq!(renewed.status, 200, "{}", renewed.raw);
    assert_eq!(renewed.headers["cache-control"], "no-store");
    let new_refresh = renewed.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, old_refresh);
    assert_ne!(renewed.body["access_token"], first.body["access_token"]);
    assert_eq!(renewed.body["scope"], "email openid");
    let claims = d
        .id_token_validator(AGENT)
        .validate(renewed.body["id_token"].as_str().unwrap())
        .unwrap()
        .into_claims();
    assert_eq!(claims.sub.as_str(), "alice");
    assert_eq!(claims.aud.as_str(), AGENT);
    assert_eq!(claims.iat.unix(), NOW + 300);
    assert_eq!(claims.exp.unix(), NOW + 900);
    assert_eq!(claims.auth_time.map(|t| t.unix()), Some(NOW));
    assert_eq!(claims.nonce, None);
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));

    // A narrower scope is granted; a wider one is not.
    let narrower =
        d.h.post(&d.refresh(&new_refresh).set("scope", "openid"))
            .await;
    assert_eq!(narrower.status, 200, "{}", narrower.raw);
    assert_eq!(narrower.body["scope"], "openid");
    let newest = narrower.body["refresh_token"].as_str().unwrap().to_owned();
    d.h.post(&d.refresh(&newest).set("scope", "openid groups"))
        .await
        .assert_error(400, "invalid_scope");
    d.expect_refused("scope_not_granted");

    // Reuse of a rotated token: refused, and the family with it.
    let reuse = d.h.post(&d.refresh(&old_refresh)).await;
    reuse.assert_error(400, "invalid_grant");
    assert_eq!(
        reuse.body["error_description"],
        "the refresh token is invalid, expired, revoked, or was issued to another client"
    );
    d.expect_refused("refresh_token_reused");
    d.h.post(&d.refresh(&newest))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("refresh_token_revoked");
    let (status, headers, _) = d
        .userinfo(narrower.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client_and_expire() {
    let d = start_dev().await;
    let first = d.h.post(&d.redeem(&d.code().await)).await;
    let refresh = first.body["refresh_token"].as_str().unwrap().to_owned();
    d.h.post(&d.refresh(&refresh).basic(OTHER, OTHER_SECRET))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("refresh_token_client_mismatch");
    d.h.post(&d.refresh("not-a-refresh-token-at-all-0000000000000000"))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("unknown_refresh_token");
    d.h.post(&d.refresh(&refresh).basic(AGENT, "wrong-secret"))
        .await
        .assert_error(401, "invalid_client");
    d.expect_refused("wrong_client_secret");
    // Still good for its own client; then it expires (8 hours).
    d.h.clock.advance(Duration::from_secs(8 * 3600));
    d.h.post(&d.refresh(&refresh))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("refresh_token_expired");
}

#[tokio::test]
async fn pkce_plain_is_refused_with_a_redirect() {
    let d = start_dev().await;
    let request = d
        .auth_request()
        .set("code_challenge", VERIFIER)
        .set("code_challenge_method", "plain");
    d.authorize(&request).await.assert_redirected_error(
        &d.h.base,
        AGENT_REDIRECT,
        "invalid_request",
        "code_challenge_method must be S256",
        Some(STATE),
    );
    d.expect_refused("code_challenge_method_not_s256");
    // No method means plain (RFC 7636 §4.3): refused the same way.
    let request = d.auth_request().remove("code_challenge_method");
    d.authorize(&request).await.assert_redirected_error(
        &d.h.base,
        AGENT_REDIRECT,
        "invalid_request",
        "code_challenge_method must be S256",
        Some(STATE),
    );
    d.expect_refused("code_challenge_method_not_s256");
}

#[tokio::test]
async fn missing_pkce_is_refused_with_a_redirect() {
    let d = start_dev().await;
    let request = d
        .auth_request()
        .remove("code_challenge")
        .remove("code_challenge_method");
    d.authorize(&request).await.assert_redirected_error(
        &d.h.base,
        AGENT_REDIRECT,
        "invalid_request",
        "PKCE is required: code_challenge is missing",
        Some(STATE),
    );
    d.expect_refused("missing_code_challenge");
    let request = d.auth_request().set("code_challenge", "too-short");
    d.authorize(&request).await.assert_redirected_error(
        &d.h.base,
        AGENT_REDIRECT,
        "invalid_request",
        "code_challenge must be 43 base64url characters",
        Some(STATE),
    );
    d.expect_refused("malformed_code_challenge");
    // A code redeemed without a verifier.
    let code = d.code().await;
    let answer = d.h.post(&d.redeem(&code).remove("code_verifier")).await;
    answer.assert_error(400, "invalid_request");
    assert_eq!(
        answer.body["error_description"],
        "code_verifier is missing (PKCE is required)"
    );
    d.expect_refused("missing_parameter");
}

/// A wrong verifier is `invalid_grant`, and spends the code: the right verifier after it is
/// refused too.
#[tokio::test]
async fn wrong_code_verifier_is_invalid_grant_and_spends_the_code() {
    let d = start_dev().await;
    let code = d.code().await;
    let wrong = d.redeem(&code).set("code_verifier", &"A".repeat(43));
    let answer = d.h.post(&wrong).await;
    answer.assert_error(400, "invalid_grant");
    assert_eq!(
        answer.body["error_description"],
        "the authorization code is invalid, expired, used, or was issued to another client or redirect URI"
    );
    d.expect_refused("code_verifier_mismatch");
    d.h.post(&d.redeem(&code))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("code_reused");
    // A malformed verifier is invalid_request and does not touch the code.
    let code = d.code().await;
    d.h.post(&d.redeem(&code).set("code_verifier", "short"))
        .await
        .assert_error(400, "invalid_request");
    d.expect_refused("malformed_code_verifier");
    assert_eq!(d.h.post(&d.redeem(&code)).await.status, 200);
}

/// RFC 6749 §4.1.2: a code used twice is refused, and the tokens issued from it are revoked:
/// the refresh token and the access token stop working. (The ID token is self-contained and
/// lives until its `exp`.)
#[tokio::test]
async fn reused_code_is_refused_and_revokes_the_tokens_issued_from_it() {
    let d = start_dev().await;
    let code = d.code().await;
    let first = d.h.post(&d.redeem(&code)).await;
    assert_eq!(first.status, 200);
    let access = first.body["access_token"].as_str().unwrap();
    assert_eq!(d.userinfo(access).await.0, 200);

    let second = d.h.post(&d.redeem(&code)).await;
    second.assert_error(400, "invalid_grant");
    d.expect_refused("code_reused");

    let (status, headers, body) = d.userinfo(access).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(body["error"], "invalid_token");
    d.h.post(&d.refresh(first.body["refresh_token"].as_str().unwrap()))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("refresh_token_revoked");
    assert!(
        d.id_token_validator(AGENT)
            .validate(first.body["id_token"].as_str().unwrap())
            .is_ok()
    );
}

#[tokio::test]
async fn redirect_uri_mismatch_shows_an_error_page_and_never_redirects() {
    let d = start_dev().await;
    for redirect_uri in [
        "https://attacker.example/callback",
        "https://agent.example/callback/",
        "https://agent.example/callback?x=1",
        "https://AGENT.example/callback",
        "http://127.0.0.1:9999/callback",
    ] {
        let request = d.auth_request().set("redirect_uri", redirect_uri);
        let page = d.authorize(&request).await;
        page.assert_error_page(400, "The redirect_uri is not registered for this client.");
        assert!(page.body.contains("<code>invalid_request</code>"));
        assert!(!page.body.contains("attacker"));
        d.expect_refused("redirect_uri_mismatch");
    }
    d.authorize(&d.auth_request().remove("redirect_uri"))
        .await
        .assert_error_page(400, "The request has no redirect_uri.");
    d.expect_refused("missing_redirect_uri");
    // Even with other errors in the request, nothing is redirected to an unverified URI.
    let request = d
        .auth_request()
        .set("redirect_uri", "https://attacker.example/callback")
        .set("response_type", "token");
    d.authorize(&request)
        .await
        .assert_error_page(400, "The redirect_uri is not registered for this client.");

    // At the token endpoint, a redirect_uri other than the request's is invalid_grant.
    let code = d.code().await;
    d.h.post(&d.redeem(&code).set("redirect_uri", AGENT_LOOPBACK_REDIRECT))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("redirect_uri_mismatch");
    d.h.post(&d.redeem(&code).remove("redirect_uri"))
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn unknown_client_shows_an_error_page() {
    let d = start_dev().await;
    let page = d
        .authorize(&d.auth_request().set("client_id", "nobody"))
        .await;
    page.assert_error_page(400, "The client is not registered at this development IdP.");
    d.expect_refused("unknown_client");
    d.authorize(&d.auth_request().remove("client_id"))
        .await
        .assert_error_page(400, "The request names no client (client_id is missing).");
    d.expect_refused("missing_client_id");
    // A repeated parameter makes the whole request untrustworthy: an error page.
    let query = format!(
        "{}&redirect_uri=https%3A%2F%2Fattacker.example%2F",
        d.auth_request().query()
    );
    d.get_raw(&query).await.assert_error_page(
        400,
        "The request is malformed (bad encoding, a repeated parameter, or too large).",
    );
    d.expect_refused("malformed_request");
    d.get_raw(&format!("{}&state=%zz", d.auth_request().query()))
        .await
        .assert_error_page(400, "The request is malformed");
}

#[tokio::test]
async fn missing_or_wrong_csrf_token_is_refused() {
    let d = start_dev().await;
    let form = d.authorize(&d.auth_request()).await.login_form();
    let same_origin = [("sec-fetch-site", "same-origin")];

    let page = d
        .post_login(
            &[("request", &form.request), ("user", "alice")],
            &same_origin,
        )
        .await;
    page.assert_error_page(403, "The sign-in form is missing its CSRF token.");
    d.expect_refused("missing_csrf_token");

    let forged = idjag_core::random::url_safe(32).unwrap();
    let page = d
        .post_login(
            &[
                ("request", &form.request),
                ("csrf", &forged),
                ("user", "alice"),
            ],
            &same_origin,
        )
        .await;
    page.assert_error_page(
        403,
        "The sign-in form&#39;s CSRF token does not match its request.",
    );
    d.expect_refused("wrong_csrf_token");

    // Another request's CSRF token does not fit this one.
    let other = d.authorize(&d.auth_request()).await.login_form();
    d.post_login(
        &[
            ("request", &form.request),
            ("csrf", &other.csrf),
            ("user", "alice"),
        ],
        &same_origin,
    )
    .await
    .assert_error_page(403, "does not match its request");
    d.expect_refused("wrong_csrf_token");

    // A cross-site post is refused before the token is looked at.
    d.post_login(
        &[
            ("request", &form.request),
            ("csrf", &form.csrf),
            ("user", "alice"),
        ],
        &[("sec-fetch-site", "cross-site")],
    )
    .await
    .assert_error_page(403, "The sign-in form was posted from another site.");
    d.expect_refused("cross_site_request");
    d.post_login(
        &[
            ("request", &form.request),
            ("csrf", &form.csrf),
            ("user", "alice"),
        ],
        &[("origin", "https://attacker.example")],
    )
    .await
    .assert_error_page(403, "The sign-in form was posted from another site.");

    // The refusals left the request pending: the real form still works, once.
    let (_, query) = d.choose(&form, "alice").await.redirect();
    assert!(query.contains_key("code"));
    d.choose(&form, "alice")
        .await
        .assert_error_page(400, "This sign-in request expired or was already answered.");
    d.expect_refused("unknown_authorization_request");
    // No request at all, or a form that is not form-encoded.
    d.post_login(&[("csrf", &form.csrf), ("user", "alice")], &[])
        .await
        .assert_error_page(400, "expired or was already answered");
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let d = start_dev().await;
    let code = d.code().await;
    d.h.clock.advance(Duration::from_secs(60));
    let answer = d.h.post(&d.redeem(&code)).await;
    answer.assert_error(400, "invalid_grant");
    d.expect_refused("code_expired");
    // 59 s is still within the lifetime.
    let code = d.code().await;
    d.h.clock.advance(Duration::from_secs(59));
    assert_eq!(d.h.post(&d.redeem(&code)).await.status, 200);
    // A login page left open longer than 10 minutes cannot be answered.
    let form = d.authorize(&d.auth_request()).await.login_form();
    d.h.clock.advance(Duration::from_secs(600));
    d.choose(&form, "alice")
        .await
        .assert_error_page(400, "This sign-in request expired or was already answered.");
}

/// A wrong secret is `invalid_client` (401, with a Basic challenge after Basic), and does
/// not spend the code: the client that holds the secret can still redeem it.
#[tokio::test]
async fn wrong_client_secret_is_invalid_client_and_leaves_the_code() {
    let d = start_dev().await;
    let code = d.code().await;
    let answer = d.h.post(&d.redeem(&code).basic(AGENT, "guessed")).await;
    answer.assert_error(401, "invalid_client");
    assert!(
        answer.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    d.expect_refused("wrong_client_secret");
    let answer =
        d.h.post(&d.redeem(&code).post_secret(AGENT, "guessed"))
            .await;
    answer.assert_error(401, "invalid_client");
    assert!(answer.headers.get("www-authenticate").is_none());
    // No authentication at all, for a confidential client.
    d.h.post(&d.redeem(&code).no_auth().set("client_id", AGENT))
        .await
        .assert_error(401, "invalid_client");
    d.expect_refused("auth_method_not_allowed");
    // Another client with its own valid secret: the code is not its own (and is spent).
    d.h.post(&d.redeem(&code).basic(OTHER, OTHER_SECRET))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("code_client_mismatch");

    let code = d.code().await;
    d.h.post(&d.redeem(&code).basic(AGENT, "guessed")).await;
    assert_eq!(d.h.post(&d.redeem(&code)).await.status, 200);
    d.h.post(&d.redeem("no-such-code-000000000000000000000000000000"))
        .await
        .assert_error(400, "invalid_grant");
    d.expect_refused("unknown_code");
}

/// Every other refusal of the authorization request, redirected with its exact code.
#[tokio::test]
async fn authorization_request_refusals_are_redirected_with_their_codes() {
    let d = start_dev().await;
    let cases: [(AuthRequest, &str, &str, &str); 11] = [
        (
            d.auth_request().remove("response_type"),
            "invalid_request",
            "response_type is missing",
            "missing_response_type",
        ),
        (
            d.auth_request().set("response_type", "token"),
            "unsupported_response_type",
            "only response_type=code is supported",
            "unsupported_response_type",
        ),
        (
            d.auth_request().set("response_type", "code id_token"),
            "unsupported_response_type",
            "only response_type=code is supported",
            "unsupported_response_type",
        ),
        (
            d.auth_request().set("response_mode", "fragment"),
            "invalid_request",
            "only response_mode=query is supported",
            "unsupported_response_mode",
        ),
        (
            d.auth_request().remove("scope"),
            "invalid_scope",
            "scope must include openid",
            "missing_openid_scope",
        ),
        (
            d.auth_request().set("scope", "email profile"),
            "invalid_scope",
            "scope must include openid",
            "missing_openid_scope",
        ),
        (
            d.auth_request().set("scope", "openid admin"),
            "invalid_scope",
            "scope is malformed or names an unsupported scope",
            "unsupported_scope",
        ),
        (
            d.auth_request().set("nonce", &"n".repeat(513)),
            "invalid_request",
            "nonce is too long",
            "parameter_too_long",
        ),
        (
            d.auth_request().set("prompt", "none"),
            "login_required",
            "the development IdP keeps no session: the user must log in",
            "login_required",
        ),
        (
            d.auth_request().set("request", "eyJhbGciOiJub25lIn0.e30."),
            "request_not_supported",
            "request objects are not supported",
            "request_object_not_supported",
        ),
        (
            d.auth_request()
                .set("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            "request_uri_not_supported",
            "request_uri is not supported",
            "request_uri_not_supported",
        ),
    ];
    for (request, error, description, reason) in cases {
        d.authorize(&request).await.assert_redirected_error(
            &d.h.base,
            AGENT_REDIRECT,
            error,
            description,
            Some(STATE),
        );
        d.expect_refused(reason);
    }
    // A state too long to echo: refused without it.
    d.authorize(&d.auth_request().set("state", &"s".repeat(513)))
        .await
        .assert_redirected_error(
            &d.h.base,
            AGENT_REDIRECT,
            "invalid_request",
            "state is too long",
            None,
        );
    // The user cancels on the login page.
    let form = d.authorize(&d.auth_request()).await.login_form();
    d.post_login(
        &[
            ("request", &form.request),
            ("csrf", &form.csrf),
            ("cancel", "1"),
        ],
        &[],
    )
    .await
    .assert_redirected_error(
        &d.h.base,
        AGENT_REDIRECT,
        "access_denied",
        "the user cancelled the sign-in",
        Some(STATE),
    );
    d.expect_refused("user_cancelled");
    // A user who is not on the list (a tampered form).
    let form = d.authorize(&d.auth_request()).await.login_form();
    d.choose(&form, "root").await.assert_error_page(
        400,
        "The chosen user is not a development user of this IdP.",
    );
    d.expect_refused("unknown_user");
    // Neither GET nor POST.
    let response = d.browser.put(d.authorize_url()).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
}

/// A user whose name, email and group carry markup: every value is escaped on the page.
#[tokio::test]
async fn login_page_escapes_a_user_name_with_a_script() {
    let d = start_dev().await;
    let request = d
        .auth_request()
        .set("client_id", CLI)
        .set("redirect_uri", "http://127.0.0.1:4000/callback");
    let page = d.authorize(&request).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(!page.body.contains("<img"), "{}", page.body);
    assert!(!page.body.contains("<b "), "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("x@example.com&quot;&gt;&lt;b onmouseover=alert(1)&gt;")
    );
    assert!(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // The value posted back is the plain `sub`; the user signs in fine.
    let (_, query) = d.choose(&page.login_form(), "xss").await.redirect();
    let redeem = d
        .redeem(&query["code"])
        .no_auth()
        .set("client_id", CLI)
        .set("redirect_uri", "http://127.0.0.1:4000/callback");
    let answer = d.h.post(&redeem).await;
    let claims = d
        .id_token_validator(CLI)
        .validate(answer.body["id_token"].as_str().unwrap())
        .unwrap()
        .into_claims();
    assert_eq!(claims.name.as_deref(), Some(SCRIPT_NAME));
}

#[tokio::test]
async fn login_and_error_pages_carry_strict_headers() {
    let d = start_dev().await;
    let page = d.authorize(&d.auth_request()).await;
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    // No form-action: browsers check every redirect after the post against it, and the
    // client may redirect on (a gateway to its own client).
    assert!(
        csp.ends_with("'; frame-ancestors 'none'; base-uri 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("form-action"), "{csp}");
    assert!(!csp.contains("unsafe"));
    assert!(!page.body.contains("<script"));
    assert!(!page.body.contains(" style="), "no inline style attributes");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(page.body.contains("DEVELOPMENT IdP"));
    assert!(
        page.body
            .contains(&format!("action=\"{}\"", d.authorize_url()))
    );
    assert!(page.body.contains("method=\"post\""));

    let error = d
        .authorize(&d.auth_request().set("client_id", "nobody"))
        .await;
    let csp = error.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("; form-action 'none'; "), "{csp}");
    assert_eq!(error.headers["x-frame-options"], "DENY");
    assert_eq!(error.headers["referrer-policy"], "no-referrer");
    assert_eq!(error.headers["cache-control"], "no-store");

    // The redirect after the choice: never cached, no referrer.
    let response = d.choose(&page.login_form(), "alice").await;
    assert_eq!(response.status, 303);
    assert_eq!(response.headers["cache-control"], "no-store");
    assert_eq!(response.headers["referrer-policy"], "no-referrer");
}

/// Over a full flow and its refusals, no code, token, secret, CSRF token, state, nonce or
/// verifier appears in any `tracing` output.
#[tokio::test]
async fn dev_flow_never_logs_codes_tokens_or_secrets() {
    let d = start_dev().await;
    let page = d.authorize(&d.auth_request()).await;
    let form = page.login_form();
    let (_, query) = d.choose(&form, "alice").await.redirect();
    let code = query["code"].clone();
    let tokens = d.h.post(&d.redeem(&code)).await;
    d.h.post(&d.redeem(&code)).await; // reuse
    let renewed =
        d.h.post(&d.refresh(tokens.body["refresh_token"].as_str().unwrap()))
            .await;
    d.h.post(
        &d.redeem("guessed-code-value-0000")
            .basic(AGENT, "guessed-secret"),
    )
    .await;
    d.userinfo(tokens.body["access_token"].as_str().unwrap())
        .await;

    let logs = d.h.logs.text();
    assert!(
        logs.contains("\"target\":\"idjag::dev\""),
        "the capture works"
    );
    let mut secrets = vec![
        code,
        form.csrf.clone(),
        STATE.to_owned(),
        NONCE.to_owned(),
        VERIFIER.to_owned(),
        AGENT_SECRET.to_owned(),
        "guessed-secret".to_owned(),
        "guessed-code-value".to_owned(),
    ];
    for answer in [&tokens, &renewed] {
        for member in ["access_token", "refresh_token", "id_token"] {
            if let Some(value) = answer.body[member].as_str() {
                secrets.push(value.to_owned());
            }
        }
    }
    let needles: Vec<&str> = secrets.iter().map(String::as_str).collect();
    idjag_test_support::logs::assert_no_secret(&logs, &needles);
    let debug = format!("{:?}", d.dev);
    for secret in &needles {
        assert!(!debug.contains(secret), "a secret reached Debug");
    }
}
