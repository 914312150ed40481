//! What a JWKS response may be (size, time), errors
//! without credentials, and the refresh task's lifetime.

use super::*;

#[tokio::test(start_paused = true)]
async fn oversize_body_is_refused_without_content_length() {
    let server = TestServer::start().await;
    let padded = |len: usize| {
        let mut body = JWKS.trim_end().as_bytes().to_vec();
        body.resize(len, b' ');
        Reply {
            content_length: false,
            ..Reply::ok(body)
        }
    };
    server.set("/jwks", padded(MAX_BODY_BYTES + 1));
    let jwks = remote(&server, settings());
    let error = cause(jwks.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::TooLarge { .. }),
        "{error:?}"
    );

    // Exactly at the cap is fine.
    server.set("/jwks", padded(MAX_BODY_BYTES));
    sleep(Duration::from_secs(31)).await;
    assert_eq!(jwks.refetch_for_unknown_kid().await.unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn fetch_timeout_applies() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(JWKS).delayed(Duration::from_secs(60)));
    let jwks = remote(&server, settings());
    let started = Instant::now();
    let error = cause(jwks.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::Http { source, .. } if source.is_timeout()),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn refresh_task_stops_when_the_last_handle_is_dropped() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(JWKS));
    let jwks = remote(
        &server,
        JwksSettings {
            refresh_interval: Duration::from_secs(60),
            ..settings()
        },
    );
    wait_loaded(&jwks).await;
    let clone = jwks.clone();
    drop(jwks);
    sleep(Duration::from_secs(61)).await;
    until("refresh while a clone lives", || server.hits("/jwks") == 2).await;

    drop(clone);
    sleep(Duration::from_secs(600)).await;
    assert_eq!(server.hits("/jwks"), 2);
}

#[test]
fn errors_show_urls_without_credentials_or_query() {
    let url = Url::parse("https://user:secret@idp.example/keys?api_key=s3cret").unwrap();
    let error = JwksError::Status {
        uri: display_url(&url),
        status: StatusCode::BAD_GATEWAY,
    };
    assert!(!error.to_string().contains("secret"));
}
