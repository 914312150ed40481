//! Answers that are no answer (error statuses, bad bodies, timeouts,
//! unreachable endpoints) are faults and are never cached.

use super::*;

#[tokio::test]
async fn failures_are_errors_and_are_not_cached() {
    let idp = TestEndpoint::start(|seen| match seen.form[0].1.as_str() {
        "500" => Reply {
            status: 500,
            ..reply("{}")
        },
        "garbage" => reply("<html>oops</html>"),
        "no-active" => reply(r#"{"scope":"read"}"#),
        "string-active" => reply(r#"{"active":"true"}"#),
        "array" => reply("[true]"),
        _ => reply(active("")),
    })
    .await;
    let i = introspector(settings(idp.url("/i"), ClientAuth::None));
    for token in ["500", "garbage", "no-active", "string-active", "array"] {
        let error = i.introspect(token, TokenKey::of(token)).await.unwrap_err();
        let text = crate::error_chain::ErrorChain(error.as_ref()).to_string();
        assert!(!text.contains(token) || token == "500", "{text}");
        i.introspect(token, TokenKey::of(token)).await.unwrap_err();
    }
    assert_eq!(idp.calls(), 10, "errors are retried, not cached");
    assert!(matches!(
        *i.introspect("500", TokenKey::of("500")).await.unwrap_err(),
        IntrospectionError::Status { .. }
    ));
    assert!(matches!(
        *i.introspect("garbage", TokenKey::of("garbage"))
            .await
            .unwrap_err(),
        IntrospectionError::Response {
            source: ResponseError::NotJson(_),
            ..
        }
    ));
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let idp = TestEndpoint::start(|_| Reply {
        delay: Duration::from_secs(5),
        ..reply(active(""))
    })
    .await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.timeout = Duration::from_millis(200);
    let error = introspector(s)
        .introspect("t", TokenKey::of("t"))
        .await
        .unwrap_err();
    assert!(
        matches!(*error, IntrospectionError::Http { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error() {
    // Nothing listens on port 1 of loopback: the connection is refused.
    let url = Url::parse("http://127.0.0.1:1/i").unwrap();
    let error = introspector(settings(url, ClientAuth::None))
        .introspect("secret-token-value", TokenKey::of("secret-token-value"))
        .await
        .unwrap_err();
    let text = crate::error_chain::ErrorChain(error.as_ref()).to_string();
    assert!(matches!(*error, IntrospectionError::Http { .. }), "{text}");
    assert!(!text.contains("secret-token-value"), "{text}");
}
