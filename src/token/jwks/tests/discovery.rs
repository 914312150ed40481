//! Static keys, OIDC discovery of the `jwks_uri`, and which key URLs and
//! redirects are followed.

use super::*;

#[tokio::test]
async fn static_keys_are_always_loaded() {
    let (keys, _) = KeySet::from_json(JWKS.as_bytes()).unwrap();
    let jwks = Jwks::start(
        "static".to_owned(),
        KeySource::Static(keys),
        settings(),
        reqwest::Client::new(),
    );
    assert_eq!(jwks.current().unwrap().len(), 3);
    assert!(*jwks.loaded().borrow());
    assert_eq!(jwks.refetch_for_unknown_kid().await.unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn discovery_finds_jwks_uri_and_rediscovers_after_failure() {
    let server = TestServer::start().await;
    let issuer = server.url("");
    let discovery = |jwks_path: &str| {
        serde_json::json!({
            "issuer": issuer,
            "jwks_uri": server.url(jwks_path),
            "authorization_endpoint": server.url("/authorize"),
        })
        .to_string()
    };
    server.set(
        "/.well-known/openid-configuration",
        Reply::ok(discovery("/jwks")),
    );
    server.set("/jwks", Reply::ok(JWKS));
    let jwks = Jwks::start(
        "test-idp".to_owned(),
        // The configured issuer has a trailing slash the document lacks.
        KeySource::Discovery {
            issuer: format!("{issuer}/"),
        },
        // No background retries to muddle the counts.
        JwksSettings {
            retry_interval: Duration::from_secs(3600),
            ..settings()
        },
        reqwest::Client::new(),
    );
    wait_loaded(&jwks).await;
    assert_eq!(server.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(server.hits("/jwks"), 1);

    // The cached jwks_uri is reused while it works.
    jwks.refetch_for_unknown_kid().await.unwrap();
    assert_eq!(server.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(server.hits("/jwks"), 2);

    // The IdP moves its keys: the old URL fails, then discovery is redone.
    server.set("/jwks", Reply::status(404));
    server.set(
        "/.well-known/openid-configuration",
        Reply::ok(discovery("/keys")),
    );
    server.set("/keys", Reply::ok(jwks_of(&[EC2])));
    sleep(Duration::from_secs(31)).await;
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(keys.contains_kid("rsa-1"), "old keys keep serving");
    sleep(Duration::from_secs(31)).await;
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(keys.contains_kid("ec-2"));
    assert_eq!(server.hits("/.well-known/openid-configuration"), 2);
    assert_eq!(server.hits("/keys"), 1);
}

#[tokio::test(start_paused = true)]
async fn discovery_refuses_another_issuer() {
    let server = TestServer::start().await;
    let document = serde_json::json!({
        "issuer": "https://evil.example",
        "jwks_uri": server.url("/jwks"),
    });
    server.set(
        "/.well-known/openid-configuration",
        Reply::ok(document.to_string()),
    );
    server.set("/jwks", Reply::ok(JWKS));
    let jwks = Jwks::start(
        "test-idp".to_owned(),
        KeySource::Discovery {
            issuer: server.url(""),
        },
        settings(),
        reqwest::Client::new(),
    );
    let error = cause(jwks.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::IssuerMismatch { found, .. } if found == "https://evil.example"),
        "{error:?}"
    );
    assert_eq!(server.hits("/jwks"), 0);
    assert!(jwks.current().is_none());
    assert!(!*jwks.loaded().borrow());
}

#[tokio::test]
async fn discovery_refuses_a_plain_http_jwks_uri() {
    let server = TestServer::start().await;
    let document = serde_json::json!({
        "issuer": server.url(""),
        "jwks_uri": "http://keys.example.com/jwks",
    });
    server.set(
        "/.well-known/openid-configuration",
        Reply::ok(document.to_string()),
    );
    let jwks = remote_discovery(&server);
    let error = cause(jwks.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::InsecureUrl { uri, .. } if uri == "http://keys.example.com/jwks"),
        "{error:?}"
    );
    assert!(jwks.current().is_none());
}

#[tokio::test]
async fn redirects_are_followed_only_where_they_keep_transport_security() {
    let server = TestServer::start().await;
    server.set("/moved", Reply::redirect(&server.url("/jwks")));
    server.set("/jwks", Reply::ok(JWKS));
    server.set("/away", Reply::redirect("http://keys.example.com/jwks"));
    let client = || {
        reqwest::Client::builder()
            .redirect(crate::fetch::redirect_policy())
            .build()
            .unwrap()
    };
    let fetch = |path: &str| {
        Jwks::start(
            "test-idp".to_owned(),
            KeySource::JwksUri(server.url(path)),
            settings(),
            client(),
        )
    };
    let moved = fetch("/moved");
    wait_loaded(&moved).await;
    assert_eq!(server.hits("/jwks"), 1);

    let away = fetch("/away");
    let error = cause(away.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::Http { .. }),
        "{error:?}"
    );
    assert!(away.current().is_none());
}
