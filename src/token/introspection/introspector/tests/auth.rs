//! How tollgate authenticates to the endpoint, what it sends, and that a
//! redirect never carries the token on.

use super::*;

#[tokio::test]
async fn client_secret_basic_sends_credentials_in_the_header_only() {
    let idp = TestEndpoint::start(|_| reply(active(""))).await;
    let i = introspector(settings(
        idp.url("/introspect"),
        ClientAuth::ClientSecretBasic {
            client_id: "my:client".into(),
            secret: secret_from_file("p@ss word"),
        },
    ));
    let answer = i
        .introspect("opaque-token-1", TokenKey::of("opaque-token-1"))
        .await
        .unwrap();
    assert!(matches!(answer, Introspection::Active(ref c) if c["client_id"] == "c1"));
    let seen = idp.last();
    assert_eq!(seen.path, "/introspect");
    // RFC 6749 §2.3.1: form-encode id and secret, then base64 the pair.
    let expected = format!("Basic {}", STANDARD.encode("my%3Aclient:p%40ss+word"));
    assert_eq!(seen.authorization.as_deref(), Some(expected.as_str()));
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.form,
        [
            ("token".to_owned(), "opaque-token-1".to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
        ]
    );
}

#[tokio::test]
async fn client_secret_post_sends_credentials_in_the_body() {
    let idp = TestEndpoint::start(|_| reply(active(""))).await;
    let i = introspector(settings(
        idp.url("/introspect"),
        ClientAuth::ClientSecretPost {
            client_id: "tollgate".into(),
            secret: secret_from_file("s3cret&=+"),
        },
    ));
    i.introspect(
        "a token/with+odd=chars",
        TokenKey::of("a token/with+odd=chars"),
    )
    .await
    .unwrap();
    let seen = idp.last();
    assert_eq!(seen.authorization, None);
    assert_eq!(
        seen.form,
        [
            ("token".to_owned(), "a token/with+odd=chars".to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
            ("client_id".to_owned(), "tollgate".to_owned()),
            ("client_secret".to_owned(), "s3cret&=+".to_owned()),
        ]
    );
}

#[tokio::test]
async fn configured_headers_are_sent() {
    let idp = TestEndpoint::start(|_| reply(active(""))).await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.headers
        .insert(AUTHORIZATION, HeaderValue::from_static("Basic a3ltYTp4"));
    s.headers
        .insert("x-extra", HeaderValue::from_static("kyma"));
    introspector(s)
        .introspect("t", TokenKey::of("t"))
        .await
        .unwrap();
    let seen = idp.last();
    assert_eq!(seen.authorization.as_deref(), Some("Basic a3ltYTp4"));
    assert_eq!(seen.extra.as_deref(), Some("kyma"));
}

#[tokio::test]
async fn redirects_are_never_followed_with_a_token_and_credentials() {
    let thief = TestEndpoint::start(|_| reply(active(""))).await;
    let to = thief.url("/steal").to_string();
    let idp = TestEndpoint::start(move |_| Reply {
        status: 307,
        location: Some(to.clone()),
        ..reply("")
    })
    .await;
    let dir = std::env::temp_dir().join(format!("tollgate-redirect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), "s3cret").unwrap();
    let yaml = format!(
        "providers:\n  - {{name: p, introspection: {{endpoint: '{}', client_id: c, auth_method: client_secret_post, client_secret: {{file: secret}}}}}}\nroutes: [{{name: r}}]\n",
        idp.url("/i")
    );
    let mut config = crate::Config::from_yaml(&yaml, &dir).unwrap();
    let provider = crate::token::provider::Provider::start(
        config.authz.providers.remove(0),
        &reqwest::Client::new(),
        &[],
        None,
    );
    let error = provider
        .introspection()
        .unwrap()
        .introspect("t", TokenKey::of("t"))
        .await
        .unwrap_err();
    assert!(
        matches!(*error, IntrospectionError::Status { status, .. } if status == 307),
        "{error:?}"
    );
    assert_eq!(idp.calls(), 1);
    assert_eq!(thief.calls(), 0, "the redirect target saw the token");
}
