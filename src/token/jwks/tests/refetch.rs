//! Refetches for unknown kids: rate-limited, shared by every waiter, and
//! outliving the check that started them.

use super::*;

#[tokio::test(start_paused = true)]
async fn unknown_kid_refetch_is_rate_limited_and_picks_up_rotation() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(jwks_of(&[EC1])));
    let jwks = remote(&server, settings());
    wait_loaded(&jwks).await;
    assert_eq!(server.hits("/jwks"), 1);

    server.set("/jwks", Reply::ok(jwks_of(&[EC1, EC2])));
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(keys.contains_kid("ec-2"));
    assert_eq!(server.hits("/jwks"), 2);

    // A second unknown kid within the interval does not fetch again.
    server.set("/jwks", Reply::ok(jwks_of(&[EC2])));
    sleep(Duration::from_secs(29)).await;
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(keys.contains_kid("ec-1"));
    assert_eq!(server.hits("/jwks"), 2);

    sleep(Duration::from_secs(2)).await;
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(!keys.contains_kid("ec-1"));
    assert_eq!(server.hits("/jwks"), 3);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_refetch_still_counts_against_the_rate_limit() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(JWKS));
    let jwks = remote(&server, settings());
    wait_loaded(&jwks).await;
    // The IdP hangs; each check gives up before the fetch ends, as Envoy's
    // ext_authz timeout makes it.
    server.set("/jwks", Reply::ok(JWKS).delayed(Duration::from_secs(60)));
    for _ in 0..8 {
        let check =
            tokio::time::timeout(Duration::from_millis(400), jwks.refetch_for_unknown_kid()).await;
        assert!(check.is_err(), "the fetch is still running: {check:?}");
    }
    // Past the fetch timeout, the one fetch has failed and nothing else ran.
    sleep(Duration::from_secs(10)).await;
    assert_eq!(server.hits("/jwks"), 2, "one load, then one refetch");
    let later = jwks.refetch_for_unknown_kid().await;
    assert!(
        later.is_ok(),
        "rate-limited, with the cached keys: {later:?}"
    );
    assert_eq!(server.hits("/jwks"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refetch_outlives_the_check_that_started_it() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(jwks_of(&[EC1])));
    let jwks = remote(&server, settings());
    wait_loaded(&jwks).await;
    // The IdP rotates and answers slowly, slower than the check may wait.
    server.set(
        "/jwks",
        Reply::ok(jwks_of(&[EC1, EC2])).delayed(Duration::from_millis(1500)),
    );
    let check = tokio::time::timeout(Duration::from_secs(1), jwks.refetch_for_unknown_kid()).await;
    assert!(check.is_err(), "the check gave up first");
    sleep(Duration::from_secs(1)).await;
    // The fetch finished anyway: the next check sees the rotated key.
    assert!(jwks.current().is_some_and(|keys| keys.contains_kid("ec-2")));
    assert_eq!(server.hits("/jwks"), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_refetches_share_one_fetch() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(JWKS).delayed(Duration::from_millis(500)));
    let jwks = remote(&server, settings());

    // Before the first load: the callers and the background task share
    // one request, whoever starts it.
    let mut callers = JoinSet::new();
    for _ in 0..50 {
        let jwks = jwks.clone();
        callers.spawn(async move { jwks.refetch_for_unknown_kid().await });
    }
    while let Some(result) = callers.join_next().await {
        assert_eq!(result.unwrap().unwrap().len(), 3);
    }
    assert_eq!(server.hits("/jwks"), 1);

    // Once loaded, and past the rate limit: 50 unknown kids at once cost
    // exactly one more request.
    sleep(Duration::from_secs(31)).await;
    for _ in 0..50 {
        let jwks = jwks.clone();
        callers.spawn(async move { jwks.refetch_for_unknown_kid().await });
    }
    while let Some(result) = callers.join_next().await {
        assert_eq!(result.unwrap().unwrap().len(), 3);
    }
    assert_eq!(server.hits("/jwks"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refetch_of_the_same_document_keeps_the_same_keys() {
    let server = TestServer::start().await;
    server.set("/jwks", Reply::ok(jwks_of(&[EC1])));
    let jwks = remote(&server, settings());
    wait_loaded(&jwks).await;
    let before = jwks.current().unwrap();

    // The same document: the very same key set, so what was verified
    // against it stays verified.
    let same = jwks.refetch_for_unknown_kid().await.unwrap();
    assert_eq!(server.hits("/jwks"), 2);
    assert!(Arc::ptr_eq(&before, &same));

    // A changed document (here a key added) is a new key set.
    server.set("/jwks", Reply::ok(jwks_of(&[EC1, EC2])));
    sleep(Duration::from_secs(31)).await;
    let changed = jwks.refetch_for_unknown_kid().await.unwrap();
    assert_eq!(server.hits("/jwks"), 3);
    assert!(!Arc::ptr_eq(&before, &changed));
    assert!(changed.contains_kid("ec-2"));
}
