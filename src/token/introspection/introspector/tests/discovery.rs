//! Finding the endpoint in the issuer's metadata: OIDC Discovery, then
//! RFC 8414; one attempt at a time; another issuer's metadata refused.

use super::*;

fn discovered(issuer: &str) -> IntrospectionSettings {
    IntrospectionSettings {
        endpoint: Endpoint::Discovered {
            issuer: issuer.to_owned(),
        },
        ..settings(Url::parse("http://unused/").unwrap(), ClientAuth::None)
    }
}

#[tokio::test]
async fn the_endpoint_comes_from_openid_configuration() {
    let issuer = Arc::new(StdMutex::new(String::new()));
    let shared = Arc::clone(&issuer);
    let idp = TestEndpoint::start(move |seen| {
        let issuer = shared.lock().unwrap().clone();
        match seen.path.as_str() {
            "/.well-known/openid-configuration" => reply(format!(
                r#"{{"issuer":"{issuer}","introspection_endpoint":"{issuer}/token/introspection"}}"#
            )),
            "/token/introspection" => reply(active("")),
            _ => Reply {
                status: 404,
                ..reply("{}")
            },
        }
    })
    .await;
    let url = format!("http://{}", idp.addr);
    *issuer.lock().unwrap() = url.clone();
    let i = introspector(discovered(&url));
    i.ready(Duration::from_millis(50)).await;
    i.introspect("t", TokenKey::of("t")).await.unwrap();
    assert_eq!(idp.last().path, "/token/introspection");
}

#[tokio::test]
async fn rfc8414_metadata_is_the_fallback() {
    let issuer = Arc::new(StdMutex::new(String::new()));
    let shared = Arc::clone(&issuer);
    let idp = TestEndpoint::start(move |seen| {
        let issuer = shared.lock().unwrap().clone();
        match seen.path.as_str() {
            "/.well-known/oauth-authorization-server/tenant" => reply(format!(
                r#"{{"issuer":"{issuer}","introspection_endpoint":"{issuer}/introspect"}}"#
            )),
            "/tenant/introspect" => reply(active("")),
            _ => Reply {
                status: 404,
                ..reply("{}")
            },
        }
    })
    .await;
    let url = format!("http://{}/tenant", idp.addr);
    *issuer.lock().unwrap() = url.clone();
    let i = introspector(discovered(&url));
    i.introspect("t", TokenKey::of("t")).await.unwrap();
    assert_eq!(idp.last().path, "/tenant/introspect");
}

#[tokio::test]
async fn checks_queued_behind_a_failing_discovery_share_its_outcome() {
    // Every metadata URL answers 500, slowly enough that all the checks
    // below queue behind the first attempt.
    let idp = TestEndpoint::start(|_| Reply {
        status: 500,
        delay: Duration::from_millis(300),
        ..reply("{}")
    })
    .await;
    let i = Arc::new(introspector(discovered(&format!("http://{}", idp.addr))));
    let mut checks = JoinSet::new();
    for n in 0..10 {
        let i = Arc::clone(&i);
        checks.spawn(async move {
            i.introspect(&format!("token-{n}"), TokenKey::of(&format!("token-{n}")))
                .await
        });
    }
    while let Some(outcome) = checks.join_next().await {
        let error = outcome.unwrap().unwrap_err();
        assert!(
            matches!(*error, IntrospectionError::Discovery { ref reason, .. } if reason.contains("HTTP 500")),
            "{error:?}"
        );
    }
    // One attempt: OIDC Discovery, then RFC 8414. Each check retrying in
    // turn would have made 20 requests, the last check waiting for all.
    assert_eq!(idp.calls(), 2);
    // A later check tries again.
    i.introspect("later", TokenKey::of("later"))
        .await
        .unwrap_err();
    assert_eq!(idp.calls(), 4);
}

#[tokio::test]
async fn metadata_of_another_issuer_is_refused() {
    let idp = TestEndpoint::start(|_| {
        reply(r#"{"issuer":"https://evil.example","introspection_endpoint":"https://evil.example/i"}"#)
    })
    .await;
    let i = introspector(discovered(&format!("http://{}", idp.addr)));
    let error = i.introspect("t", TokenKey::of("t")).await.unwrap_err();
    assert!(
        matches!(*error, IntrospectionError::Discovery { ref reason, .. } if reason.contains("evil")),
        "{error:?}"
    );
}
