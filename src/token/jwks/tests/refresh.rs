//! The background refresh: its schedule from `max-age`, rotation, stale
//! keys through an outage.

use super::*;

#[tokio::test(start_paused = true)]
async fn refresh_honours_max_age_clamped_to_bounds() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(JWKS).max_age("public, max-age=5"));
    let jwks = remote(
        &server,
        JwksSettings {
            min_refresh_interval: Duration::from_secs(60),
            max_refresh_interval: Duration::from_secs(3600),
            ..settings()
        },
    );
    wait_loaded(&jwks).await;
    assert_eq!(jwks.current().unwrap().len(), 3);
    assert_eq!(server.hits("/jwks"), 1);
    // The next response asks for far longer than the maximum.
    server.set("/jwks", Reply::ok(JWKS).max_age("max-age=\"999999\""));

    // max-age=5 is raised to the 60 s minimum.
    sleep(Duration::from_secs(55)).await;
    assert_eq!(server.hits("/jwks"), 1);
    sleep(Duration::from_secs(6)).await;
    until("second fetch", || server.hits("/jwks") == 2).await;

    // max-age=999999 is lowered to the 1 h maximum.
    sleep(Duration::from_secs(3590)).await;
    assert_eq!(server.hits("/jwks"), 2);
    sleep(Duration::from_secs(20)).await;
    until("third fetch", || server.hits("/jwks") == 3).await;
}

#[tokio::test(start_paused = true)]
async fn no_cache_uses_refresh_interval() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(JWKS).max_age("no-cache, max-age=3600"));
    let jwks = remote(&server, settings());
    wait_loaded(&jwks).await;
    sleep(Duration::from_secs(295)).await;
    assert_eq!(server.hits("/jwks"), 1);
    sleep(Duration::from_secs(10)).await;
    until("refresh after 5 min", || server.hits("/jwks") == 2).await;
}

#[tokio::test(start_paused = true)]
async fn stale_keys_serve_until_max_stale() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(JWKS));
    let jwks = remote(
        &server,
        JwksSettings {
            max_stale: Duration::from_secs(3600),
            retry_interval: Duration::from_secs(60),
            ..settings()
        },
    );
    wait_loaded(&jwks).await;

    server.set("/jwks", Reply::status(503));
    sleep(Duration::from_secs(30 * 60)).await;
    assert!(server.hits("/jwks") > 5, "retries while failing");
    assert_eq!(jwks.current().unwrap().len(), 3);
    assert_eq!(jwks.refetch_for_unknown_kid().await.unwrap().len(), 3);

    sleep(Duration::from_secs(31 * 60)).await;
    assert!(jwks.current().is_none());
    let error = cause(jwks.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::Status { status, .. } if status.as_u16() == 503),
        "{error:?}"
    );

    server.set("/jwks", Reply::ok(JWKS));
    until("recovery", || jwks.current().is_some()).await;
}

#[tokio::test(start_paused = true)]
async fn empty_or_unusable_key_set_keeps_old_keys() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(JWKS));
    let jwks = remote(&server, settings());
    wait_loaded(&jwks).await;

    server.set(
        "/jwks",
        Reply::ok(r#"{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}]}"#),
    );
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(keys.contains_kid("rsa-1"));

    server.set("/jwks", Reply::ok(r#"{"keys":[]}"#));
    sleep(Duration::from_secs(31)).await;
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(keys.contains_kid("rsa-1"));
    assert_eq!(server.hits("/jwks"), 3);
}

#[tokio::test(start_paused = true)]
async fn rotation_is_picked_up_on_refresh() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(jwks_of(&[EC1])).max_age("max-age=60"));
    let jwks = remote(&server, settings());
    wait_loaded(&jwks).await;
    assert!(jwks.current().unwrap().contains_kid("ec-1"));

    server.set("/jwks", Reply::ok(jwks_of(&[EC2])).max_age("max-age=60"));
    sleep(Duration::from_secs(61)).await;
    until("rotated keys", || {
        let keys = jwks.current().unwrap();
        keys.contains_kid("ec-2") && !keys.contains_kid("ec-1")
    })
    .await;
}
