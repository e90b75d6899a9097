//! Discovery (`docs/flow.md#discovery`, requirements MD-07 to MD-12; threats C04, C09, C10).

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use idjag_client::discovery::*;
use idjag_client::http::HttpErrorKind;
use idjag_client::*;
use idjag_core::challenge::BearerChallenge;
use idjag_core::endpoint::EndpointError;
use idjag_core::{Issuer, Resource, wire};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

async fn get(server: &MockServer, at: &str, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(response)
        .mount(server)
        .await;
}

fn discovery() -> Discovery {
    Discovery::new(Arc::new(
        idjag_client::http::ReqwestHttpClient::new().unwrap(),
    ))
}

fn as_metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "grant_types_supported": [wire::GRANT_TYPE_JWT_BEARER],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    })
}

async fn paths(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect()
}

struct Site {
    rs: MockServer,
    w: World,
}

impl Site {
    async fn new() -> Self {
        Self {
            rs: MockServer::start().await,
            w: World::new().await,
        }
    }

    fn resource(&self) -> Resource {
        Resource::new(format!("{}/mcp", self.rs.uri())).unwrap()
    }

    fn prm(&self) -> Value {
        json!({"resource": self.resource().as_str(), "authorization_servers": [self.w.ras.uri()]})
    }
}

#[tokio::test]
async fn the_challenge_url_is_used_first_and_alone() {
    let site = Site::new().await;
    get(&site.rs, "/custom/prm", ok(site.prm())).await;
    let header = format!(
        r#"Bearer resource_metadata="{}/custom/prm", scope="chat.read""#,
        site.rs.uri()
    );
    let challenge = BearerChallenge::from_header_values([header.as_str()])
        .unwrap()
        .unwrap();
    let prm = discovery()
        .protected_resource(&site.resource(), Some(&challenge))
        .await
        .unwrap();
    assert_eq!(prm.authorization_servers, [site.w.ras_issuer()]);
    assert_eq!(paths(&site.rs).await, ["/custom/prm"]);

    // A challenge URL that fails does not fall back to the well-known URLs.
    site.rs.reset().await;
    get(
        &site.rs,
        "/.well-known/oauth-protected-resource/mcp",
        ok(site.prm()),
    )
    .await;
    let error = discovery()
        .protected_resource(&site.resource(), Some(&challenge))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::NotFound)
    ));
    assert_eq!(paths(&site.rs).await, ["/custom/prm"]);
}

#[tokio::test]
async fn well_known_urls_are_tried_with_path_insertion_then_at_the_root() {
    let site = Site::new().await;
    get(
        &site.rs,
        "/.well-known/oauth-protected-resource",
        ok(site.prm()),
    )
    .await;
    let prm = discovery()
        .protected_resource(&site.resource(), None)
        .await
        .unwrap();
    assert_eq!(prm.resource, site.resource());
    assert_eq!(
        paths(&site.rs).await,
        [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource"
        ]
    );
}

#[tokio::test]
async fn protected_resource_metadata_for_another_resource_is_not_used() {
    let site = Site::new().await;
    let mut prm = site.prm();
    prm["resource"] = json!(format!("{}/mcp/", site.rs.uri()));
    get(
        &site.rs,
        "/.well-known/oauth-protected-resource/mcp",
        ok(prm),
    )
    .await;
    let error = discovery()
        .protected_resource(&site.resource(), None)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::ResourceMismatch)
    ));
}

#[tokio::test]
async fn authorization_server_metadata_follows_the_mcp_order() {
    let w = World::new().await;
    let issuer = Issuer::new(format!("{}/tenant1", w.ras.uri())).unwrap();
    get(
        &w.ras,
        "/.well-known/oauth-authorization-server/tenant1",
        ResponseTemplate::new(200).set_body_string("<html>spa</html>"),
    )
    .await;
    get(
        &w.ras,
        "/tenant1/.well-known/openid-configuration",
        ok(as_metadata(issuer.as_str())),
    )
    .await;
    let metadata = discovery().authorization_server(&issuer).await.unwrap();
    assert_eq!(metadata.issuer, issuer);
    assert_eq!(
        paths(&w.ras).await,
        [
            "/.well-known/oauth-authorization-server/tenant1",
            "/.well-known/openid-configuration/tenant1",
            "/tenant1/.well-known/openid-configuration"
        ]
    );
}

#[tokio::test]
async fn c04_metadata_with_another_issuer_aborts_discovery() {
    let w = World::new().await;
    get(
        &w.ras,
        "/.well-known/oauth-authorization-server",
        ok(as_metadata("https://evil.example")),
    )
    .await;
    get(
        &w.ras,
        "/.well-known/openid-configuration",
        ok(as_metadata(&w.ras.uri())),
    )
    .await;
    let error = discovery()
        .authorization_server(&w.ras_issuer())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Discovery(DiscoveryError::IssuerMismatch)
        ),
        "{error:?}"
    );
    assert_eq!(
        paths(&w.ras).await,
        ["/.well-known/oauth-authorization-server"]
    );

    // A trailing slash is another issuer too (RFC 8414 §3.3: identical).
    w.ras.reset().await;
    get(
        &w.ras,
        "/.well-known/oauth-authorization-server",
        ok(as_metadata(&format!("{}/", w.ras.uri()))),
    )
    .await;
    let error = discovery()
        .authorization_server(&w.ras_issuer())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::IssuerMismatch)
    ));
}

#[tokio::test]
async fn c04_metadata_redirects_are_not_followed() {
    let w = World::new().await;
    let elsewhere = MockServer::start().await;
    get(&elsewhere, "/metadata", ok(as_metadata(&w.ras.uri()))).await;
    let redirect = ResponseTemplate::new(302)
        .insert_header("location", format!("{}/metadata", elsewhere.uri()).as_str());
    get(
        &w.ras,
        "/.well-known/oauth-authorization-server",
        redirect.clone(),
    )
    .await;
    get(&w.ras, "/.well-known/openid-configuration", redirect).await;
    let error = discovery()
        .authorization_server(&w.ras_issuer())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::NotFound)
    ));
    assert!(paths(&elsewhere).await.is_empty());
}

#[tokio::test]
async fn grant_profile_support_is_advertised_assumed_or_refused() {
    let w = World::new().await;
    let d = discovery();
    let strict = discovery().with_profile_assumption(ProfileAssumption::RequireAdvertised);
    let md = |extra: Value| {
        let mut doc = as_metadata(&w.ras.uri());
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        serde_json::from_value::<idjag_core::AuthorizationServerMetadata>(doc).unwrap()
    };
    let advertised =
        md(json!({"authorization_grant_profiles_supported": [wire::GRANT_PROFILE_ID_JAG]}));
    assert_eq!(
        d.profile_support(&advertised),
        Ok(ProfileSupport::Advertised)
    );
    assert_eq!(
        strict.profile_support(&advertised),
        Ok(ProfileSupport::Advertised)
    );
    let silent = md(json!({}));
    assert_eq!(d.profile_support(&silent), Ok(ProfileSupport::Assumed));
    assert_eq!(
        strict.profile_support(&silent),
        Err(DiscoveryError::ProfileNotSupported)
    );
    let other_profiles =
        md(json!({"authorization_grant_profiles_supported": ["urn:example:other"]}));
    assert_eq!(
        d.profile_support(&other_profiles),
        Err(DiscoveryError::ProfileNotSupported)
    );
    let no_jwt_bearer = md(json!({"grant_types_supported": ["authorization_code"]}));
    assert_eq!(
        d.profile_support(&no_jwt_bearer),
        Err(DiscoveryError::ProfileNotSupported)
    );
    let profile_without_grant = md(json!({
        "grant_types_supported": ["authorization_code"],
        "authorization_grant_profiles_supported": [wire::GRANT_PROFILE_ID_JAG]
    }));
    assert_eq!(
        d.profile_support(&profile_without_grant),
        Err(DiscoveryError::ProfileNotSupported)
    );
}

#[tokio::test]
async fn the_expected_authorization_server_pins_the_choice() {
    let site = Site::new().await;
    get(
        &site.rs,
        "/.well-known/oauth-protected-resource/mcp",
        ok(site.prm()),
    )
    .await;
    let error = discovery()
        .resource(
            &site.resource(),
            None,
            Some(&Issuer::new("https://trusted-as.example").unwrap()),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::UnexpectedAuthorizationServer)
    ));
    assert!(paths(&site.w.ras).await.is_empty());

    site.rs.reset().await;
    get(
        &site.rs,
        "/.well-known/oauth-protected-resource/mcp",
        ok(json!({"resource": site.resource().as_str()})),
    )
    .await;
    let error = discovery()
        .resource(&site.resource(), None, None)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::NoAuthorizationServer)
    ));
}

#[tokio::test]
async fn discovered_targets_drive_the_whole_flow() {
    let site = Site::new().await;
    let w = &site.w;
    get(
        &site.rs,
        "/.well-known/oauth-protected-resource/mcp",
        ok(site.prm()),
    )
    .await;
    get(
        &w.ras,
        "/.well-known/oauth-authorization-server",
        ok(as_metadata(&w.ras.uri())),
    )
    .await;
    let header = r#"Bearer error="invalid_token", scope="chat.read""#;
    let challenge = BearerChallenge::from_header_values([header])
        .unwrap()
        .unwrap();
    let client = w.client();
    let target = client
        .discovery()
        .resource(&site.resource(), Some(&challenge), Some(&w.ras_issuer()))
        .await
        .unwrap();
    assert_eq!(target.profile, ProfileSupport::Assumed);
    let request = target.access_request(World::ras_credentials()).unwrap();
    assert_eq!(request.resources(), [site.resource()]);
    assert_eq!(request.scope().to_string(), "chat.read");

    let mut claims = w.claims();
    claims.resource = Some(vec![site.resource()]);
    claims.scope = Some(idjag_core::ScopeSet::parse("chat.read").unwrap());
    let mut body = exchange_body(&w.sign(&claims));
    body["scope"] = json!("chat.read");
    w.mount_idp(ok(body)).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ok(redeem_body("at-1")))
        .mount(&w.ras)
        .await;
    let grant = client.access_token(&w.subject(), &request).await.unwrap();
    assert_eq!(grant.access_token().secret(), "at-1");
    let exchange = form(&w.idp_requests().await[0]);
    assert!(exchange.contains(&("audience".into(), w.ras.uri())));
    assert!(exchange.contains(&("resource".into(), site.resource().as_str().into())));
}

#[tokio::test]
async fn discovered_endpoints_must_be_https_or_loopback() {
    let w = World::new().await;
    let mut doc = as_metadata(&w.ras.uri());
    doc["token_endpoint"] = json!("http://as.example/token");
    let metadata: idjag_core::AuthorizationServerMetadata = serde_json::from_value(doc).unwrap();
    let error = ResourceAsTarget::from_metadata(&metadata, World::ras_credentials()).unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::Endpoint(EndpointError::NotHttps))
    ));
    let mut doc = as_metadata(&w.ras.uri());
    doc.as_object_mut().unwrap().remove("token_endpoint");
    let metadata: idjag_core::AuthorizationServerMetadata = serde_json::from_value(doc).unwrap();
    let error = ResourceAsTarget::from_metadata(&metadata, World::ras_credentials()).unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::NoTokenEndpoint)
    ));
}

#[tokio::test]
async fn idp_metadata_comes_from_the_issuer_or_an_explicit_alias() {
    let w = World::new().await;
    let idp_doc = |issuer: &str| {
        json!({
            "issuer": issuer,
            "token_endpoint": format!("{}/token", w.idp.uri()),
            "jwks_uri": format!("{}/jwks", w.idp.uri()),
            "grant_types_supported": ["authorization_code", wire::GRANT_TYPE_TOKEN_EXCHANGE],
        })
    };
    get(
        &w.idp,
        "/.well-known/openid-configuration",
        ok(idp_doc(&w.idp.uri())),
    )
    .await;
    let metadata = discovery()
        .identity_provider(&w.idp_issuer(), &IdpMetadataLocation::Issuer)
        .await
        .unwrap();
    let idp = IdentityProvider::from_metadata(&metadata, World::idp_credentials()).unwrap();
    assert_eq!(
        idp.token_endpoint().as_str(),
        format!("{}/token", w.idp.uri())
    );

    // The vanity host serves the metadata; the issuer stays the configured one.
    let alias = MockServer::start().await;
    get(
        &alias,
        "/.well-known/openid-configuration",
        ok(idp_doc(&w.idp.uri())),
    )
    .await;
    let location = IdpMetadataLocation::Alias(url::Url::parse(&alias.uri()).unwrap());
    assert!(
        discovery()
            .identity_provider(&w.idp_issuer(), &location)
            .await
            .is_ok()
    );
    let document = IdpMetadataLocation::Document(
        url::Url::parse(&format!("{}/.well-known/openid-configuration", alias.uri())).unwrap(),
    );
    assert!(
        discovery()
            .identity_provider(&w.idp_issuer(), &document)
            .await
            .is_ok()
    );

    // Without the alias option, a document naming the alias host as issuer is refused.
    alias.reset().await;
    get(
        &alias,
        "/.well-known/openid-configuration",
        ok(idp_doc(&alias.uri())),
    )
    .await;
    let error = discovery()
        .identity_provider(&w.idp_issuer(), &location)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ClientError::Discovery(DiscoveryError::IssuerMismatch)
    ));
}

#[tokio::test]
async fn an_idp_that_lists_what_it_issues_must_list_id_jag() {
    let w = World::new().await;
    for (extra, accepted_by_default) in [
        (
            json!({"identity_chaining_requested_token_types_supported": [wire::TOKEN_TYPE_ID_JAG]}),
            true,
        ),
        (json!({}), true),
        (
            json!({"identity_chaining_requested_token_types_supported": [wire::TOKEN_TYPE_ACCESS_TOKEN]}),
            false,
        ),
        (
            json!({"grant_types_supported": ["authorization_code"]}),
            false,
        ),
    ] {
        w.idp.reset().await;
        let mut doc =
            json!({"issuer": w.idp.uri(), "token_endpoint": format!("{}/token", w.idp.uri())});
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        get(&w.idp, "/.well-known/oauth-authorization-server", ok(doc)).await;
        let result = discovery()
            .identity_provider(&w.idp_issuer(), &IdpMetadataLocation::Issuer)
            .await;
        assert_eq!(result.is_ok(), accepted_by_default, "{extra}");
        if !accepted_by_default {
            assert!(matches!(
                result,
                Err(ClientError::Discovery(DiscoveryError::IdJagNotIssued))
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Threats C09 and C10: where a resource may send discovery.
// ---------------------------------------------------------------------------------------------

/// Names resolved to fixed addresses, as a DNS answer under an attacker's control would be.
#[derive(Debug)]
struct Names(Vec<(String, IpAddr)>);

impl idjag_client::http::NameResolver for Names {
    fn resolve(&self, host: String) -> idjag_core::BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let found: Vec<IpAddr> = self
            .0
            .iter()
            .filter(|(name, _)| *name == host)
            .map(|(_, ip)| *ip)
            .collect();
        Box::pin(async move {
            if found.is_empty() {
                Err(io::Error::new(io::ErrorKind::NotFound, "unknown name"))
            } else {
                Ok(found)
            }
        })
    }
}

/// Discovery through the default HTTP client, with `names` as the DNS.
fn resolving(names: &[(&str, &str)]) -> Discovery {
    let names = Names(
        names
            .iter()
            .map(|(n, ip)| ((*n).to_owned(), ip.parse().unwrap()))
            .collect(),
    );
    let mut config = idjag_client::http::HttpConfig::default();
    config.connect_timeout = Duration::from_millis(300);
    let http =
        idjag_client::http::ReqwestHttpClient::with_resolver(config, Arc::new(names)).unwrap();
    Discovery::new(Arc::new(http))
}

fn challenge_at(url: &str) -> BearerChallenge {
    BearerChallenge::from_header_values([format!(r#"Bearer resource_metadata="{url}""#).as_str()])
        .unwrap()
        .unwrap()
}

fn is_discovery(error: &ClientError, expected: DiscoveryError) -> bool {
    matches!(error, ClientError::Discovery(e) if *e == expected)
}

#[tokio::test]
async fn c09_a_resource_metadata_url_on_another_origin_is_refused_before_any_fetch() {
    let site = Site::new().await;
    let elsewhere = MockServer::start().await;
    get(&elsewhere, "/prm", ok(site.prm())).await;
    get(&site.rs, "/prm", ok(site.prm())).await;
    let same_server_other_name = site.rs.uri().replace("127.0.0.1", "localhost");
    for url in [
        format!("{}/prm", elsewhere.uri()),
        format!("{same_server_other_name}/prm"),
        "https://evil.example/prm".to_owned(),
        format!("{}/prm", site.rs.uri().replace("http://", "https://")),
    ] {
        let error = discovery()
            .protected_resource(&site.resource(), Some(&challenge_at(&url)))
            .await
            .unwrap_err();
        assert!(
            is_discovery(&error, DiscoveryError::MetadataCrossOrigin),
            "{url}: {error:?}"
        );
    }
    assert!(paths(&elsewhere).await.is_empty());
    assert!(paths(&site.rs).await.is_empty());
    // The resource's own origin, any path, is fine.
    let own = format!("{}/prm", site.rs.uri());
    let metadata = discovery()
        .protected_resource(&site.resource(), Some(&challenge_at(&own)))
        .await
        .unwrap();
    assert_eq!(metadata.resource, site.resource());
}

#[tokio::test]
async fn c09_an_https_resource_naming_http_metadata_is_refused() {
    let site = Site::new().await;
    let port = site.rs.address().port();
    get(&site.rs, "/prm", ok(site.prm())).await;
    for host in ["127.0.0.1", "localhost"] {
        let resource = Resource::new(format!("https://{host}:{port}/mcp")).unwrap();
        let error = discovery()
            .protected_resource(
                &resource,
                Some(&challenge_at(&format!("http://{host}:{port}/prm"))),
            )
            .await
            .unwrap_err();
        assert!(
            is_discovery(&error, DiscoveryError::MetadataDowngrade),
            "{error:?}"
        );
    }
    assert!(paths(&site.rs).await.is_empty());
}

#[tokio::test]
async fn c10_a_name_resolving_to_a_private_address_is_refused_unless_allowed() {
    let names = [
        ("mcp.test", "10.0.0.9"),
        ("ula.test", "fd00::9"),
        ("cgnat.test", "100.64.0.9"),
        ("imds.test", "169.254.169.254"),
        ("mapped.test", "::ffff:169.254.169.254"),
        ("unspecified.test", "0.0.0.0"),
    ];
    for host in ["mcp.test", "ula.test", "cgnat.test"] {
        let resource = Resource::new(format!("https://{host}/mcp")).unwrap();
        let error = resolving(&names)
            .protected_resource(&resource, None)
            .await
            .unwrap_err();
        assert!(
            is_discovery(&error, DiscoveryError::AddressNotAllowed),
            "{host}: {error:?}"
        );
        // Allowed: the checked address goes on to the connection (where nothing answers).
        let error = resolving(&names)
            .allow_private_addresses()
            .protected_resource(&resource, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ClientError::Transport { error, .. }
                if matches!(error.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout)),
            "{host}: {error:?}"
        );
    }
    // Link-local (cloud metadata) and unspecified addresses: never, by name or literal.
    for url in [
        "https://imds.test/latest",
        "https://mapped.test/latest",
        "https://unspecified.test/latest",
        "https://169.254.169.254/latest",
        "https://[fe80::1]/latest",
    ] {
        let resource = Resource::new(url).unwrap();
        let error = resolving(&names)
            .allow_private_addresses()
            .protected_resource(&resource, None)
            .await
            .unwrap_err();
        assert!(
            is_discovery(&error, DiscoveryError::AddressNotAllowed),
            "{url}: {error:?}"
        );
    }
}

#[tokio::test]
async fn c10_loopback_is_reachable_only_for_a_loopback_resource() {
    let site = Site::new().await;
    let port = site.rs.address().port();
    let local = Resource::new(format!("http://localhost:{port}/mcp")).unwrap();
    get(
        &site.rs,
        "/.well-known/oauth-protected-resource/mcp",
        ok(json!({"resource": local.as_str(), "authorization_servers": [site.w.ras.uri()]})),
    )
    .await;
    let names = [("localhost", "127.0.0.1"), ("mcp.test", "127.0.0.1")];
    // A loopback resource (by name): its metadata on loopback is fetched.
    let metadata = resolving(&names)
        .protected_resource(&local, None)
        .await
        .unwrap();
    assert_eq!(metadata.resource, local);
    // A name that is not loopback but resolves there (DNS rebinding): refused, private
    // networks allowed or not.
    let public = Resource::new(format!("https://mcp.test:{port}/mcp")).unwrap();
    for d in [
        resolving(&names),
        resolving(&names).allow_private_addresses(),
    ] {
        let error = d.protected_resource(&public, None).await.unwrap_err();
        assert!(
            is_discovery(&error, DiscoveryError::AddressNotAllowed),
            "{error:?}"
        );
    }
    assert_eq!(
        paths(&site.rs).await,
        ["/.well-known/oauth-protected-resource/mcp"]
    );
}

#[tokio::test]
async fn c10_an_authorization_server_the_resource_chose_is_held_to_its_address_policy() {
    let names = [("as.test", "10.0.0.9"), ("imds.test", "169.254.169.254")];
    for listed in [
        "https://as.test",
        "https://imds.test",
        "https://10.0.0.9",
        "https://[fd00::1]",
        "https://169.254.169.254",
    ] {
        let site = Site::new().await;
        get(
            &site.rs,
            "/.well-known/oauth-protected-resource/mcp",
            ok(json!({"resource": site.resource().as_str(), "authorization_servers": [listed]})),
        )
        .await;
        let error = resolving(&names)
            .resource(&site.resource(), None, None)
            .await
            .unwrap_err();
        assert!(
            is_discovery(&error, DiscoveryError::AddressNotAllowed),
            "{listed}: {error:?}"
        );
    }
}
