//! The answer caches: per token, single flight, lifetimes cut short by
//! `exp`, and inactive answers kept apart.

use super::*;

#[tokio::test]
async fn answers_are_cached_by_token() {
    let idp = TestEndpoint::start(|seen| {
        let token = &seen.form[0].1;
        if token == "good" {
            reply(active(""))
        } else {
            reply(r#"{"active":false}"#)
        }
    })
    .await;
    let i = introspector(settings(idp.url("/i"), ClientAuth::None));
    for _ in 0..3 {
        assert!(matches!(
            i.introspect("good", TokenKey::of("good")).await.unwrap(),
            Introspection::Active(_)
        ));
        assert!(matches!(
            i.introspect("bad", TokenKey::of("bad")).await.unwrap(),
            Introspection::Inactive
        ));
    }
    assert_eq!(idp.calls(), 2, "one call per distinct token");
    assert_eq!(
        i.cached_entries().await,
        CachedEntries {
            active: 1,
            inactive: 1
        }
    );
}

#[tokio::test]
async fn a_flood_of_inactive_tokens_leaves_active_answers_cached() {
    let idp = TestEndpoint::start(|seen| {
        if seen.form[0].1 == "good" {
            reply(active(""))
        } else {
            reply(r#"{"active":false}"#)
        }
    })
    .await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.cache.max_entries = 50;
    s.cache.inactive_ttl = Duration::from_secs(60);
    let i = introspector(s);
    i.introspect("good", TokenKey::of("good")).await.unwrap();
    for n in 0..500 {
        let answer = i
            .introspect(
                &format!("made-up-{n}"),
                TokenKey::of(&format!("made-up-{n}")),
            )
            .await
            .unwrap();
        assert!(matches!(answer, Introspection::Inactive));
    }
    let entries = i.cached_entries().await;
    assert_eq!(entries.active, 1, "{entries:?}");
    assert!(entries.inactive <= 5, "a tenth of max_entries: {entries:?}");
    let calls = idp.calls();
    assert!(matches!(
        i.introspect("good", TokenKey::of("good")).await.unwrap(),
        Introspection::Active(_)
    ));
    assert_eq!(idp.calls(), calls, "the active answer came from the cache");
}

#[tokio::test]
async fn concurrent_checks_of_one_token_share_one_call() {
    let idp = TestEndpoint::start(|_| Reply {
        delay: Duration::from_millis(300),
        ..reply(active(""))
    })
    .await;
    let i = Arc::new(introspector(settings(idp.url("/i"), ClientAuth::None)));
    let mut checks = JoinSet::new();
    for _ in 0..25 {
        let i = Arc::clone(&i);
        checks.spawn(async move {
            i.introspect("same-token", TokenKey::of("same-token"))
                .await
                .is_ok()
        });
    }
    while let Some(ok) = checks.join_next().await {
        assert!(ok.unwrap());
    }
    assert_eq!(idp.calls(), 1);
}

#[tokio::test]
async fn inactive_answers_expire_after_inactive_ttl() {
    let idp = TestEndpoint::start(|_| reply(r#"{"active":false}"#)).await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.cache.inactive_ttl = Duration::from_millis(300);
    let i = introspector(s);
    i.introspect("t", TokenKey::of("t")).await.unwrap();
    i.introspect("t", TokenKey::of("t")).await.unwrap();
    assert_eq!(idp.calls(), 1, "cached while fresh");
    tokio::time::sleep(Duration::from_millis(600)).await;
    i.introspect("t", TokenKey::of("t")).await.unwrap();
    assert_eq!(idp.calls(), 2, "asked again once expired");
}

#[tokio::test]
async fn active_answers_never_outlive_exp() {
    // `exp` is whole seconds, so this entry lives between 2 and 3 s: long
    // enough that a loaded machine still makes the second call in time.
    let exp = later(3);
    let idp = TestEndpoint::start(move |_| reply(active(&format!(r#","exp":{exp}"#)))).await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.cache.ttl = Duration::from_secs(3600);
    let i = introspector(s);
    i.introspect("t", TokenKey::of("t")).await.unwrap();
    i.introspect("t", TokenKey::of("t")).await.unwrap();
    assert_eq!(idp.calls(), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    i.introspect("t", TokenKey::of("t")).await.unwrap();
    assert_eq!(idp.calls(), 2, "the entry ended at exp, not after the TTL");
}

#[test]
fn cache_lifetime_is_the_ttl_cut_short_by_exp() {
    let ttl = Duration::from_secs(300);
    let now = 1_000_000;
    let exp = |n: f64| Some(serde_json::json!(n));
    assert_eq!(cache_lifetime(ttl, None, now), ttl);
    assert_eq!(
        cache_lifetime(ttl, exp(1_000_060.0).as_ref(), now),
        Duration::from_secs(60)
    );
    assert_eq!(cache_lifetime(ttl, exp(2_000_000.0).as_ref(), now), ttl);
    assert_eq!(
        cache_lifetime(ttl, exp(999_000.0).as_ref(), now),
        Duration::ZERO
    );
    assert_eq!(
        cache_lifetime(ttl, Some(&serde_json::json!("soon")), now),
        Duration::ZERO,
        "a non-numeric exp is never cached (and validate refuses it)"
    );
}
