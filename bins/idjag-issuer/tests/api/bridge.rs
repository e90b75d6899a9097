//! The bridge: idjag-issuer trusting an upstream OpenID provider nobody here wrote,
//! `oauth2-mock-server` (npm, pinned in `interop/oidc-mock`), started on loopback. Its ID tokens
//! (keys by discovery) are exchanged for ID-JAGs with the subject and groups mapped by
//! configuration; its ID tokens for the wrong audience, from the wrong issuer or signed with a
//! key the issuer does not publish are refused, each with its exact error; its refresh tokens
//! are redeemed upstream when configured.

use idjag_core::*;
use idjag_test_support::process::{OidcMock, TestDir};
use serde_json::{Value, json};

use crate::support::*;

async fn mock(options: Vec<String>) -> OidcMock {
    tokio::task::spawn_blocking(move || {
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        OidcMock::start(&options)
    })
    .await
    .unwrap()
}

/// The upstream's answer to a password grant for `user` at `client`.
async fn upstream_tokens(
    http: &reqwest::Client,
    upstream: &OidcMock,
    user: &str,
    client: &str,
) -> Value {
    let reply = send(
        http.post(format!("{}/token", upstream.issuer)).body(form(&[
            ("grant_type", "password"),
            ("username", user),
            ("client_id", client),
            ("scope", "openid"),
        ])),
        &[("content-type", wire::MEDIA_TYPE_FORM)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json
}

async fn id_token(http: &reqwest::Client, upstream: &OidcMock, user: &str, client: &str) -> String {
    upstream_tokens(http, upstream, user, client).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn upstream_section(upstream: &OidcMock) -> String {
    format!(
        "[upstream]\nissuer = \"{}\"\nalgorithms = [\"RS256\"]\ngroups_claim = \"groups\"\n\
         [upstream.jwks_cache]\ncooldown_secs = 1\n",
        upstream.issuer
    )
}

/// Users with groups, and one whose groups overflowed (Entra ID's overage marker).
fn claims_file(dir: &TestDir) -> String {
    let claims = json!({
        "carol": {"groups": ["chat-admins"]},
        "dave": {"groups": ["offboarded", "chat-admins"]},
        "frank": {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph.example/v1.0/users/frank/getMemberObjects"}}},
    });
    dir.write("claims.json", claims.to_string())
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_id_tokens_are_bridged_with_subjects_and_groups_mapped_by_configuration() {
    let dir = TestDir::new();
    let upstream = mock(vec!["--claims".into(), claims_file(&dir)]).await;
    let i = Server::start(Setup {
        upstream: upstream_section(&upstream),
        ..Setup::default()
    })
    .await;
    let http = reqwest::Client::new();
    // alice: a reader.
    let reply = i
        .exchange(&id_token(&http, &upstream, "alice", CLIENT).await, &[])
        .await;
    let (_, claims) = i.issued(&reply).await;
    assert_eq!(
        claims["iss"], i.base,
        "the ID-JAG is this issuer's, not the upstream's"
    );
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], CLIENT_AT_AS);
    // carol: her group widens her scope.
    let wide = [("scope", Some("chat.read chat.admin"))];
    let reply = i
        .exchange(&id_token(&http, &upstream, "carol", CLIENT).await, &wide)
        .await;
    assert_eq!(reply.json["scope"], "chat.admin chat.read");
    i.issued(&reply).await;
    // dave: the deny rule's group wins over the allow rule's.
    let reply = i
        .exchange(&id_token(&http, &upstream, "dave", CLIENT).await, &wide)
        .await;
    i.refused(&reply, 400, "access_denied", "denied_by_rule");
    // frank: an overage marker instead of groups is refused, never read as "no groups".
    let reply = i
        .exchange(&id_token(&http, &upstream, "frank", CLIENT).await, &[])
        .await;
    i.refused(&reply, 400, "invalid_grant", "groups_overage");
    // mallory: no rule.
    let reply = i
        .exchange(&id_token(&http, &upstream, "mallory", CLIENT).await, &[])
        .await;
    i.refused(&reply, 400, "access_denied", "not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_id_tokens_for_the_wrong_audience_issuer_or_key_are_refused() {
    let upstream = mock(Vec::new()).await;
    let i = Server::start(Setup {
        upstream: upstream_section(&upstream),
        // repo-agent is `repo-agent-at-idp` at the upstream IdP.
        client: "upstream_client_id = \"repo-agent-at-idp\"".into(),
        ..Setup::default()
    })
    .await;
    let http = reqwest::Client::new();
    // The right audience: the client's id at the upstream.
    let good = id_token(&http, &upstream, "alice", "repo-agent-at-idp").await;
    i.issued(&i.exchange(&good, &[]).await).await;
    // Wrong audience: issued to another application at the same IdP (or to this client's id
    // here, which is not its id there).
    for client in ["someone-else", CLIENT] {
        let token = id_token(&http, &upstream, "alice", client).await;
        let reply = i.exchange(&token, &[]).await;
        i.refused(&reply, 400, "invalid_grant", "subject_token_other_client");
    }
    // Wrong issuer: another IdP's token, for the right client.
    let other = mock(Vec::new()).await;
    let token = id_token(&http, &other, "alice", "repo-agent-at-idp").await;
    let reply = i.exchange(&token, &[]).await;
    i.refused(
        &reply,
        400,
        "invalid_grant",
        "subject_token_untrusted_issuer",
    );
    // Wrong key: an IdP minting tokens in the trusted issuer's name with its own key, which
    // the trusted issuer does not publish.
    let impostor = mock(vec!["--claim-issuer".into(), upstream.issuer.clone()]).await;
    let token = id_token(&http, &impostor, "alice", "repo-agent-at-idp").await;
    let (_, claims) = idjag_test_support::forge::decode(&token);
    assert_eq!(claims["iss"], upstream.issuer);
    let reply = i.exchange(&token, &[]).await;
    i.refused(&reply, 400, "invalid_grant", "subject_token_invalid");
    let line = i.process.audit().pop().unwrap();
    assert!(
        line.get("subject_sha256").is_none(),
        "no unverified subject in the audit"
    );
    // And an upstream token with its signature flipped.
    let at = good.rfind('.').unwrap() + 10;
    let flipped = if &good[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &good[..at], &good[at + 1..]);
    let reply = i.exchange(&forged, &[]).await;
    i.refused(&reply, 400, "invalid_grant", "subject_token_bad_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refresh_tokens_are_redeemed_upstream_when_configured() {
    let dir = TestDir::new();
    let upstream = mock(vec!["--claims".into(), claims_file(&dir)]).await;
    let i = Server::start(Setup {
        upstream: upstream_section(&upstream),
        subject_tokens: "refresh_tokens = \"upstream\"".into(),
        client: "upstream_secret_env = \"TEST_UPSTREAM_SECRET\"".into(),
        ..Setup::default()
    })
    .await;
    let http = reqwest::Client::new();
    let tokens = upstream_tokens(&http, &upstream, "carol", CLIENT).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let reply = i
        .exchange(
            refresh,
            &[
                ("subject_token_type", Some(wire::TOKEN_TYPE_REFRESH_TOKEN)),
                ("scope", Some("chat.read chat.admin")),
            ],
        )
        .await;
    assert_eq!(reply.json["scope"], "chat.admin chat.read");
    let (_, claims) = i.issued(&reply).await;
    assert_eq!(
        claims["sub"], "carol",
        "the user behind the refresh token, fresh from upstream"
    );
    // other-agent has no upstream credentials: its refresh tokens cannot be redeemed.
    let body = format!(
        "{}&client_id={OTHER_CLIENT}&client_secret={OTHER_SECRET}",
        i.exchange_form(
            refresh,
            &[("subject_token_type", Some(wire::TOKEN_TYPE_REFRESH_TOKEN))]
        )
    );
    let reply = i
        .post(&[("content-type", wire::MEDIA_TYPE_FORM)], body)
        .await;
    i.refused(&reply, 400, "invalid_grant", "no_upstream_credentials");
}
