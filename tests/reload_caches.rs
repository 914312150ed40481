//! What tollgate remembers, against the real binary and a test IdP that
//! counts its calls:
//! - a reload under load keeps the verified-JWT and introspection caches
//!   of every provider whose settings did not change: no introspection
//!   call and no signature check again, and no check fails meanwhile;
//! - a provider whose settings change starts with empty caches;
//! - a token remembered while checked on a lenient route is still held to
//!   a stricter route's scopes and claims, and is judged from the cache
//!   there (JWTs and introspected tokens alike).
//!
//! Cache use is read from the process's own `/metrics`, so nothing else
//! counts into it.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use serde_json::json;
use tonic::transport::Channel;

use support::TollgateProcess;
use support::check::{GRPC_OK, assert_denied, bearer, get};
use support::idp::{INTROSPECTION_PATH, Idp, JWKS_PATH, jwks_of};
use support::tokens::{Token, unix_now};

const ISSUER: &str = "https://jwt-issuer.test";
const AUDIENCE: &str = "orders-api";
const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
/// Distinct tokens of each kind the load cycles through.
const TOKENS: usize = 12;
/// Checks in flight at once while the config is reloaded.
const WORKERS: usize = 4;
/// Bound on waiting for a reload to be logged (the file is polled every
/// second).
const RELOAD_LIMIT: Duration = Duration::from_secs(10);

/// One provider verifying JWTs with the IdP's keys, one introspecting at
/// its endpoint, and `routes`. `opaque_ttl` and `jwt_leeway` are the
/// settings the tests change to make a provider a different one.
fn config(idp: &Idp, opaque_ttl: &str, jwt_leeway: &str, routes: &str) -> String {
    format!(
        "server:\n  grpc_listen: 127.0.0.1:0\n\
         providers:\n\
         \x20 - name: jwt\n    issuer: {ISSUER}\n    audiences: [{AUDIENCE}]\n    leeway: {jwt_leeway}\n    jwks_uri: {jwks}\n\
         \x20 - name: opaque\n    introspection:\n      endpoint: {base}{INTROSPECTION_PATH}\n      cache: {{ttl: {opaque_ttl}}}\n\
         routes:\n{routes}",
        jwks = idp.jwks_uri(),
        base = idp.base_url(),
    )
}

const OPEN: &str = "  - {name: open, match: {path: {prefix: /open}}}\n";
const STRICT: &str = concat!(
    "  - {name: scoped, match: {path: {prefix: /scoped}}, require: {scopes: [admin]}}\n",
    "  - {name: claimed, match: {path: {prefix: /claimed}}, require: {claims: [{claim: tenant, equals: acme}]}}\n",
);

/// A JWT of the `jwt` provider, told apart from others by `jti`.
fn jwt(jti: &str, scopes: &[&str], tenant: &str) -> String {
    Token::es256()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .scopes(scopes)
        .claim("tenant", tenant)
        .claim("jti", jti)
        .sign()
}

/// An opaque token the IdP says is active, with these scopes and tenant.
fn opaque(idp: &Idp, token: &str, scope: &str, tenant: &str) -> String {
    idp.set_introspection(
        token,
        json!({"active": true, "scope": scope, "tenant": tenant, "exp": unix_now() + 600}),
    );
    token.to_owned()
}

async fn connect(tollgate: &TollgateProcess) -> AuthorizationClient<Channel> {
    AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .expect("connecting to tollgate")
}

async fn check(
    client: &mut AuthorizationClient<Channel>,
    path: &str,
    token: &str,
) -> CheckResponse {
    let request: CheckRequest = get(path, &[("authorization", &bearer(token))]);
    client
        .check(request)
        .await
        .unwrap_or_else(|status| panic!("Check {path} failed: {status}"))
        .into_inner()
}

fn is_allowed(response: &CheckResponse) -> bool {
    response.status.as_ref().map(|s| s.code) == Some(GRPC_OK)
}

/// The process's own `/metrics`.
async fn metrics(tollgate: &TollgateProcess) -> String {
    let url = format!("http://{}/metrics", tollgate.admin_addr().await);
    support::get(&url, &[]).await.body
}

/// The value of `series` in `text`; 0 when it is not there yet.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// The cache counters of the process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Lookups {
    jwt_hits: f64,
    jwt_misses: f64,
    introspection_hits: f64,
    introspection_misses: f64,
}

async fn lookups(tollgate: &TollgateProcess) -> Lookups {
    let text = metrics(tollgate).await;
    let sample = |series: &str| sample(&text, series);
    Lookups {
        jwt_hits: sample(r#"tollgate_cache_hits_total{cache="verified_jwt"}"#),
        jwt_misses: sample(r#"tollgate_cache_misses_total{cache="verified_jwt"}"#),
        introspection_hits: sample(r#"tollgate_cache_hits_total{cache="introspection/opaque"}"#),
        introspection_misses: sample(
            r#"tollgate_cache_misses_total{cache="introspection/opaque"}"#,
        ),
    }
}

/// Rewrites the config and waits until tollgate has logged `reloads`
/// successful reloads in all.
async fn reload(tollgate: &TollgateProcess, yaml: &str, reloads: usize) {
    std::fs::write(tollgate.config_path(), yaml).expect("rewriting the config");
    let deadline = tokio::time::Instant::now() + RELOAD_LIMIT;
    while tollgate.logs().matches("config reloaded").count() < reloads {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reload {reloads} was not logged\n{}",
            tollgate.describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks `tokens` on `/open` from [`WORKERS`] tasks until stopped; counts
/// checks and the ones that were not allowed.
struct Load {
    stop: Arc<AtomicBool>,
    checks: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    workers: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(client: &AuthorizationClient<Channel>, tokens: &[String]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let checks = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..WORKERS {
            let (stop, checks, refused) = (stop.clone(), checks.clone(), refused.clone());
            let (mut client, tokens) = (client.clone(), tokens.to_vec());
            workers.spawn(async move {
                for token in tokens.iter().cycle().skip(worker) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if !is_allowed(&check(&mut client, "/open/orders", token).await) {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    checks.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        Load {
            stop,
            checks,
            refused,
            workers,
        }
    }

    /// Stops the workers; how many checks they made, and how many failed.
    async fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        while self.workers.join_next().await.is_some() {}
        (
            self.checks.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test]
async fn a_reload_under_load_keeps_the_caches_of_unchanged_providers_and_empties_changed_ones() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let jwts: Vec<String> = (0..TOKENS)
        .map(|i| jwt(&i.to_string(), &["read"], "acme"))
        .collect();
    let opaques: Vec<String> = (0..TOKENS)
        .map(|i| opaque(&idp, &format!("opaque-{i}"), "read", "acme"))
        .collect();
    let all: Vec<String> = jwts.iter().chain(&opaques).cloned().collect();
    let tollgate = TollgateProcess::start(&config(&idp, "60s", "30s", OPEN)).await;
    let mut client = connect(&tollgate).await;
    for token in &all {
        assert!(
            is_allowed(&check(&mut client, "/open", token).await),
            "{}",
            tollgate.describe()
        );
    }
    let calls = idp.hits(INTROSPECTION_PATH);
    assert_eq!(calls, TOKENS, "one introspection call per token");
    let fetches = idp.hits(JWKS_PATH);
    let warm = lookups(&tollgate).await;
    assert_eq!(warm.jwt_misses, TOKENS as f64, "{warm:?}");

    // Only the routes change: both providers are the same ones.
    let load = Load::start(&client, &all);
    reload(
        &tollgate,
        &config(&idp, "60s", "30s", &format!("{OPEN}{STRICT}")),
        1,
    )
    .await;
    for token in &all {
        assert!(is_allowed(&check(&mut client, "/open", token).await));
    }
    let (checks, refused) = load.finish().await;
    assert_eq!(
        refused, 0,
        "{refused} of {checks} checks failed around the reload"
    );
    assert!(checks >= all.len(), "the load made only {checks} checks");
    assert_eq!(
        idp.hits(INTROSPECTION_PATH),
        calls,
        "the reload emptied the introspection cache"
    );
    assert_eq!(
        idp.hits(JWKS_PATH),
        fetches,
        "the reload fetched the keys again"
    );
    let after = lookups(&tollgate).await;
    assert_eq!(
        after.jwt_misses, warm.jwt_misses,
        "a JWT was verified again: {after:?}"
    );
    assert_eq!(
        after.introspection_misses, warm.introspection_misses,
        "{after:?}"
    );
    assert!(after.jwt_hits >= warm.jwt_hits + TOKENS as f64, "{after:?}");
    assert!(
        after.introspection_hits >= warm.introspection_hits + TOKENS as f64,
        "{after:?}"
    );

    // The introspecting provider changes: its answers are asked for anew;
    // the JWT provider's verifications still stand.
    reload(&tollgate, &config(&idp, "61s", "30s", OPEN), 2).await;
    for token in &all {
        assert!(is_allowed(&check(&mut client, "/open", token).await));
    }
    assert_eq!(
        idp.hits(INTROSPECTION_PATH),
        calls + TOKENS,
        "a changed provider starts empty"
    );
    let changed = lookups(&tollgate).await;
    assert_eq!(changed.jwt_misses, warm.jwt_misses, "{changed:?}");

    // The JWT provider changes: every JWT is verified again, with the keys
    // it already has (the key source is the same).
    reload(&tollgate, &config(&idp, "61s", "20s", OPEN), 3).await;
    for token in &jwts {
        assert!(is_allowed(&check(&mut client, "/open", token).await));
    }
    let verified = lookups(&tollgate).await;
    assert_eq!(
        verified.jwt_misses,
        warm.jwt_misses + TOKENS as f64,
        "{verified:?}"
    );
    assert_eq!(
        idp.hits(JWKS_PATH),
        fetches,
        "the same key source fetched again"
    );
}

/// The challenge of a 403 for the scope `admin`; the config has no realm.
const NEEDS_ADMIN: &str = r#"Bearer error="insufficient_scope", scope="admin""#;
const CLAIM_REFUSED: &str = r#"Bearer error="insufficient_scope""#;

#[tokio::test]
async fn a_remembered_token_is_held_to_each_routes_own_scopes_and_claims() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let tollgate =
        TollgateProcess::start(&config(&idp, "60s", "30s", &format!("{OPEN}{STRICT}"))).await;
    let mut client = connect(&tollgate).await;
    let weak = [
        jwt("weak", &["read"], "other"),
        opaque(&idp, "opaque-weak", "read", "other"),
    ];
    let strong = [
        jwt("strong", &["admin"], "acme"),
        opaque(&idp, "opaque-strong", "admin", "acme"),
    ];
    // Lenient first: both weak tokens are allowed, and remembered.
    for token in &weak {
        assert!(
            is_allowed(&check(&mut client, "/open", token).await),
            "{}",
            tollgate.describe()
        );
    }
    let remembered = lookups(&tollgate).await;
    for token in &weak {
        let scoped = check(&mut client, "/scoped", token).await;
        assert_denied(
            &scoped,
            403,
            Some(NEEDS_ADMIN),
            "insufficient_scope",
            Some(token),
        );
        let claimed = check(&mut client, "/claimed", token).await;
        assert_denied(
            &claimed,
            403,
            Some(CLAIM_REFUSED),
            "insufficient_scope",
            Some(token),
        );
    }
    // Judged from the cache, not verified or introspected again.
    let judged = lookups(&tollgate).await;
    assert_eq!(judged.jwt_misses, remembered.jwt_misses, "{judged:?}");
    assert_eq!(judged.jwt_hits, remembered.jwt_hits + 2.0, "{judged:?}");
    assert_eq!(
        judged.introspection_misses, remembered.introspection_misses,
        "{judged:?}"
    );
    assert_eq!(
        judged.introspection_hits,
        remembered.introspection_hits + 2.0,
        "{judged:?}"
    );
    assert_eq!(
        idp.hits(INTROSPECTION_PATH),
        1,
        "the weak opaque token was asked about once"
    );
    let claim_denies = sample(
        &metrics(&tollgate).await,
        r#"tollgate_checks_total{decision="deny",reason="claim_mismatch",route="claimed"}"#,
    );
    assert_eq!(claim_denies, 2.0, "the claim, not a scope, refused them");

    for token in &strong {
        for path in ["/open", "/scoped", "/claimed"] {
            let response = check(&mut client, path, token).await;
            assert!(is_allowed(&response), "{path}: {response:?}");
        }
    }
}
