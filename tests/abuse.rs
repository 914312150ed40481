//! Abuse (issue 8, part 4): floods against the real `tollgate` binary, its
//! IdP on 127.0.0.1 counting what reaches it.
//!
//! - Tokens signed with a real key but naming unknown `kid`s make at most
//!   the rate-limited number of JWKS fetches, are all 401, and leave a valid
//!   caller's cached verification alone.
//! - Garbage (JWS-shaped, and opaque strings the IdP calls inactive) keeps
//!   both caches within `max_entries`, memory within a bound, and does not
//!   push valid callers out of the caches.
//! - Many distinct valid tokens fill the caches to their bound, not past it.
//!
//! Checks go straight to tollgate's gRPC port, as Envoy sends them: every
//! answer must be an allow or a deny, never a gRPC error (a fault Envoy's
//! failure mode might turn into an allow). Memory is read from
//! `/proc/<pid>/status`; entry counts from the admin `/metrics`.

mod support;

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use support::TollgateProcess;
use support::check::{GRPC_OK, bearer, get};
use support::idp::{INTROSPECTION_PATH, Idp, JWKS_PATH, jwks_of};
use support::tokens::Token;

const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
/// Checks in flight at once during a flood.
const CONCURRENCY: usize = 32;
/// Both caches' `max_entries` in these tests.
const MAX_ENTRIES: u64 = 1000;
/// The verified-JWT cache's `cache` label in the metrics.
const VERIFIED_CACHE: &str = "verified_jwt";
/// The label of provider `idp`'s cache of active introspection answers.
const INTROSPECTION_CACHE: &str = "introspection/idp";
/// The label of its cache of inactive answers, a tenth of `max_entries`.
const INACTIVE_CACHE: &str = "introspection_inactive/idp";
/// How often memory and cache sizes are sampled during a flood.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const MIB: u64 = 1024 * 1024;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `bytes` random bytes as lowercase hex, from the standard library's
/// randomly seeded hasher (no RNG crate needed for test noise).
fn random_hex(bytes: usize) -> String {
    let state = RandomState::new();
    let mut out = String::with_capacity(bytes * 2);
    let mut counter = 0u64;
    while out.len() < bytes * 2 {
        let mut hasher = state.build_hasher();
        hasher.write_u64(counter);
        counter += 1;
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out.truncate(bytes * 2);
    out
}

/// A token from `issuer` with scope `read`, signed by the fixture key
/// `ec-1` under header `kid` (which the IdP may not publish).
fn jwt(issuer: &str, kid: &str, subject: &str) -> Token {
    Token::es256()
        .kid(kid)
        .issuer(issuer)
        .audience("orders")
        .subject(subject)
        .client_id("svc")
        .scopes(["read"])
        .lifetime(Duration::from_secs(600))
}

/// An active introspection answer with scope `read`.
fn active(subject: &str) -> serde_json::Value {
    json!({"active": true, "scope": "read", "aud": ["orders"], "client_id": "svc",
           "sub": subject, "exp": unix_now() + 600, "token_type": "Bearer"})
}

/// Provider `idp` verifies its JWTs with the IdP's JWKS (`jwks_cache`
/// settings as given) and introspects everything else; `GET /` needs
/// `read`. Both caches hold at most [`MAX_ENTRIES`].
fn config(idp: &Idp, jwks_cache: &str, introspection_cache: &str) -> String {
    format!(
        r#"
server:
  grpc_listen: 127.0.0.1:0
  token_cache: {{ max_entries: {MAX_ENTRIES} }}
log:
  # The listening lines the harness waits for, not a line per check.
  level: warn,tollgate::server=info,tollgate::http=info
providers:
  - name: idp
    issuer: {issuer}
    audiences: [orders]
    discovery: true
    jwks_cache: {{ {jwks_cache} }}
    introspection:
      auth_method: none
      headers: {{ x-test-credential: tollgate }}
      cache: {{ max_entries: {MAX_ENTRIES}, {introspection_cache} }}
routes:
  - name: read
    match: {{ path: {{ prefix: / }} }}
    require: {{ scopes: [read] }}
"#,
        issuer = idp.base_url(),
    )
}

/// How tollgate answered one check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Answer {
    Allow,
    /// A deny with this HTTP status.
    Deny(i32),
    /// A gRPC error or an answer that is neither: a fault.
    Fault(String),
}

async fn check(client: &AuthorizationClient<Channel>, token: &str) -> Answer {
    let request = get("/orders", &[("authorization", &bearer(token))]);
    let response = match client.clone().check(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Answer::Fault(format!("gRPC {:?}", status.code())),
    };
    let code = response.status.as_ref().map(|s| s.code);
    match (&response.http_response, code) {
        (Some(HttpResponse::OkResponse(_)), Some(GRPC_OK)) => Answer::Allow,
        (Some(HttpResponse::DeniedResponse(denied)), Some(code)) if code != GRPC_OK => {
            Answer::Deny(denied.status.as_ref().map_or(0, |s| s.code))
        }
        _ => Answer::Fault(format!("{response:?}")),
    }
}

async fn client(tollgate: &TollgateProcess) -> AuthorizationClient<Channel> {
    AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", tollgate.addr()))
}

/// Checks `count` tokens made by `token(i)`, [`CONCURRENCY`] at a time,
/// and counts the answers.
async fn flood(
    client: &AuthorizationClient<Channel>,
    count: usize,
    token: impl Fn(usize) -> String + Send + Sync + 'static,
) -> BTreeMap<Answer, usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let token = Arc::new(token);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, next, token) = (client.clone(), Arc::clone(&next), Arc::clone(&token));
        workers.spawn(async move {
            let mut answers = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return answers;
                }
                *answers.entry(check(&client, &token(i)).await).or_insert(0) += 1;
            }
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(done) = workers.join_next().await {
        for (answer, n) in done.unwrap() {
            *answers.entry(answer).or_insert(0) += n;
        }
    }
    answers
}

/// The value of the series `name{labels}` in a Prometheus text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// tollgate's metrics, scraped from its admin port.
struct Metrics(String);

impl Metrics {
    async fn scrape(admin: std::net::SocketAddr) -> Metrics {
        let response = support::get(&format!("http://{admin}/metrics"), &[]).await;
        assert_eq!(response.status, 200, "{}", response.body);
        Metrics(response.body)
    }

    fn value(&self, series: &str) -> f64 {
        sample(&self.0, series).unwrap_or(0.0)
    }

    fn entries(&self, cache: &str) -> f64 {
        self.value(&format!("tollgate_cache_entries{{cache=\"{cache}\"}}"))
    }

    fn hits(&self, cache: &str) -> f64 {
        self.value(&format!("tollgate_cache_hits_total{{cache=\"{cache}\"}}"))
    }
}

/// The largest RSS and cache sizes seen while a flood ran.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    rss: u64,
    verified: f64,
    introspection: f64,
    inactive: f64,
}

/// Samples RSS and both cache gauges every [`SAMPLE_EVERY`] until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<Peaks>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(tollgate: &Arc<TollgateProcess>, admin: std::net::SocketAddr) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(Peaks::default()));
        let tollgate = Arc::clone(tollgate);
        let (stop_flag, shared) = (Arc::clone(&stop), Arc::clone(&peaks));
        let task = tokio::spawn(async move {
            while !stop_flag.load(Ordering::Relaxed) {
                let metrics = Metrics::scrape(admin).await;
                let rss = tollgate.rss_bytes();
                let mut peaks = shared.lock().await;
                peaks.rss = peaks.rss.max(rss);
                peaks.verified = peaks.verified.max(metrics.entries(VERIFIED_CACHE));
                peaks.introspection = peaks
                    .introspection
                    .max(metrics.entries(INTROSPECTION_CACHE));
                peaks.inactive = peaks.inactive.max(metrics.entries(INACTIVE_CACHE));
                drop(peaks);
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        });
        Sampler { stop, peaks, task }
    }

    async fn finish(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        *self.peaks.lock().await
    }
}

/// Asserts that RSS grew from `before` to `highest` by at most `limit`.
fn assert_rss_growth(before: u64, highest: u64, limit: u64, over: &str) {
    let growth = highest.saturating_sub(before);
    assert!(
        growth <= limit,
        "RSS grew by {} KiB over {over} (from {} KiB to {} KiB); at most {} MiB allowed",
        growth / 1024,
        before / 1024,
        highest / 1024,
        limit / MIB
    );
}

fn assert_only(answers: &BTreeMap<Answer, usize>, expected: &Answer, count: usize, what: &str) {
    assert_eq!(
        answers.get(expected).copied().unwrap_or(0),
        count,
        "{what}: every check must be {expected:?}; got {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_kid_floods_make_rate_limited_fetches_and_are_refused() {
    const INTERVAL: Duration = Duration::from_secs(1);
    const FLOOD_FOR: Duration = Duration::from_secs(4);
    const MIN_FORGED: usize = 2000;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let tollgate = TollgateProcess::start(&config(
        &idp,
        "unknown_kid_refetch_interval: 1s",
        "inactive_ttl: 5s",
    ))
    .await;
    let admin = tollgate.admin_addr().await;
    let client = client(&tollgate).await;

    let valid = jwt(idp.base_url(), "ec-1", "valid-caller").sign();
    assert_eq!(check(&client, &valid).await, Answer::Allow);
    let fetches_before = idp.hits(JWKS_PATH);
    let cache_hits_before = Metrics::scrape(admin).await.hits(VERIFIED_CACHE);

    // A valid caller keeps calling through the flood.
    let flooding = Arc::new(AtomicBool::new(true));
    let valid_caller = {
        let (client, flooding, valid) = (client.clone(), Arc::clone(&flooding), valid.clone());
        tokio::spawn(async move {
            let mut answers = BTreeMap::new();
            while flooding.load(Ordering::Relaxed) {
                *answers.entry(check(&client, &valid).await).or_insert(0) += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };

    // Each forged token names a fresh random kid; the flood runs for at
    // least FLOOD_FOR so several rate-limit windows pass.
    let started = Instant::now();
    let issuer = idp.base_url().to_owned();
    let mut forged = BTreeMap::new();
    let mut sent = 0;
    while sent < MIN_FORGED || started.elapsed() < FLOOD_FOR {
        let issuer = issuer.clone();
        let batch = flood(&client, 500, move |i| {
            jwt(
                &issuer,
                &format!("forged-{}", random_hex(8)),
                &format!("s{i}"),
            )
            .sign()
        })
        .await;
        for (answer, n) in batch {
            *forged.entry(answer).or_insert(0) += n;
        }
        sent += 500;
    }
    let elapsed = started.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let valid_answers = valid_caller.await.unwrap();

    assert_only(&forged, &Answer::Deny(401), sent, "forged kids");
    let calls = valid_answers.values().sum::<usize>();
    assert!(calls > 0, "the valid caller made no calls");
    assert_only(&valid_answers, &Answer::Allow, calls, "the valid caller");

    // The initial fetch, then at most one refetch per interval, counting
    // the one a window's first forged token starts at its opening.
    let fetches = idp.hits(JWKS_PATH);
    eprintln!("{sent} forged kids over {elapsed:?}: {fetches} JWKS fetches in all");
    let windows = elapsed.as_secs_f64() / INTERVAL.as_secs_f64();
    let bound = 1 + windows.ceil() as usize + 1;
    assert!(
        fetches <= bound,
        "{sent} forged kids over {elapsed:?} made {fetches} JWKS fetches; at most {bound} allowed"
    );
    assert!(
        fetches > fetches_before,
        "the flood made no refetch at all ({fetches} fetches), so it tested nothing"
    );

    // Refetches that bring the same keys leave the valid caller's cached
    // verification standing: every call was a cache hit.
    let cache_hits = Metrics::scrape(admin).await.hits(VERIFIED_CACHE) - cache_hits_before;
    assert_eq!(
        cache_hits, calls as f64,
        "of the valid caller's {calls} checks during the flood, {cache_hits} were answered from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_floods_stay_bounded_and_keep_valid_callers_cached() {
    const GARBAGE: usize = 4000;
    /// Growth allowed over the flood: what the caches may hold (at most
    /// 100 inactive answers here) plus connection buffers and allocator
    /// slack; garbage itself must leave nothing behind.
    const RSS_GROWTH_LIMIT: u64 = 16 * MIB;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    idp.set_introspection("valid-opaque-token", active("opaque-caller"));
    // Inactive answers kept a minute: the flood's entries stay and compete
    // with the valid ones for the whole test.
    let tollgate =
        Arc::new(TollgateProcess::start(&config(&idp, "", "ttl: 60s, inactive_ttl: 60s")).await);
    let admin = tollgate.admin_addr().await;
    let client = client(&tollgate).await;

    let valid_jwt = jwt(idp.base_url(), "ec-1", "jwt-caller").sign();
    assert_eq!(check(&client, &valid_jwt).await, Answer::Allow);
    assert_eq!(check(&client, "valid-opaque-token").await, Answer::Allow);
    // Warm up every path (introspection client, metrics) before measuring.
    let warmup = flood(&client, 200, |_| random_hex(24)).await;
    assert_only(&warmup, &Answer::Deny(401), 200, "warm-up garbage");
    let rss_before = tollgate.rss_bytes();

    let sampler = Sampler::start(&tollgate, admin);
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"JWT"}"#);
    let jws_garbage = flood(&client, GARBAGE, move |i| {
        // Alternately a real header with random payload and signature, and
        // three random segments.
        if i % 2 == 0 {
            format!("{header}.{}.{}", random_hex(60), random_hex(32))
        } else {
            format!("{}.{}.{}", random_hex(12), random_hex(40), random_hex(32))
        }
    })
    .await;
    let opaque_garbage = flood(&client, GARBAGE, |_| random_hex(24)).await;
    let peaks = sampler.finish().await;
    let rss_after = tollgate.rss_bytes();
    eprintln!(
        "{} garbage tokens: RSS {} KiB before, {} KiB after, peak {} KiB; peak entries {peaks:?}",
        2 * GARBAGE,
        rss_before / 1024,
        rss_after / 1024,
        peaks.rss / 1024
    );

    assert_only(
        &jws_garbage,
        &Answer::Deny(401),
        GARBAGE,
        "JWS-shaped garbage",
    );
    assert_only(
        &opaque_garbage,
        &Answer::Deny(401),
        GARBAGE,
        "opaque garbage",
    );
    assert!(
        idp.hits(INTROSPECTION_PATH) >= GARBAGE,
        "the opaque garbage was not introspected, so it tested nothing"
    );
    let limit = MAX_ENTRIES as f64;
    assert!(
        peaks.introspection <= limit && peaks.verified <= limit && peaks.inactive <= limit / 10.0,
        "cache entries past max_entries {MAX_ENTRIES} (a tenth for inactive answers): {peaks:?}"
    );
    assert!(
        peaks.inactive > 0.0,
        "no inactive answer was ever cached: {peaks:?}"
    );
    assert_rss_growth(
        rss_before,
        rss_after.max(peaks.rss),
        RSS_GROWTH_LIMIT,
        &format!("{} garbage tokens", 2 * GARBAGE),
    );

    // The callers cached before the flood still answer from the caches: no
    // introspection call for the opaque token, a cache hit for the JWT.
    let introspections = idp.hits(INTROSPECTION_PATH);
    let jwt_hits = Metrics::scrape(admin).await.hits(VERIFIED_CACHE);
    assert_eq!(check(&client, "valid-opaque-token").await, Answer::Allow);
    assert_eq!(check(&client, &valid_jwt).await, Answer::Allow);
    assert_eq!(
        idp.hits(INTROSPECTION_PATH),
        introspections,
        "the flood pushed the valid opaque token out of the introspection cache"
    );
    assert_eq!(
        Metrics::scrape(admin).await.hits(VERIFIED_CACHE),
        jwt_hits + 1.0,
        "the flood pushed the valid JWT out of the verified-token cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distinct_valid_tokens_keep_the_caches_at_their_bound() {
    /// Distinct JWTs, and as many distinct opaque tokens: each four times
    /// what its cache may hold.
    const EACH: usize = 4 * MAX_ENTRIES as usize;
    /// Each token's claims carry this much padding, so an entry costs about
    /// 3-4 KiB and a cache that kept every token (8,000 entries, ~28 MiB)
    /// would show in the RSS.
    const PADDING: usize = 2048;
    /// Growth allowed: both caches full (2 x 1,000 entries at ~4 KiB) plus
    /// buffers and allocator slack.
    const RSS_GROWTH_LIMIT: u64 = 16 * MIB;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    for i in 0..EACH {
        let mut answer = active(&format!("opaque-{i}"));
        answer["padding"] = json!(random_hex(PADDING / 2));
        idp.set_introspection(&format!("opaque-{i}"), answer);
    }
    let tollgate = Arc::new(TollgateProcess::start(&config(&idp, "", "ttl: 60s")).await);
    let admin = tollgate.admin_addr().await;
    let client = client(&tollgate).await;
    let issuer = idp.base_url().to_owned();
    let jwts: Arc<Vec<String>> = Arc::new(
        (0..EACH)
            .map(|i| {
                jwt(&issuer, "ec-1", &format!("jwt-{i}"))
                    .claim("padding", random_hex(PADDING / 2))
                    .sign()
            })
            .collect(),
    );
    // Warm up both paths (introspection client, verification) first.
    let warmup = flood(&client, 100, |i| format!("opaque-{i}")).await;
    assert_only(&warmup, &Answer::Allow, 100, "warm-up");
    let tokens = Arc::clone(&jwts);
    let warmup = flood(&client, 100, move |i| tokens[i].clone()).await;
    assert_only(&warmup, &Answer::Allow, 100, "warm-up");
    let rss_before = tollgate.rss_bytes();

    let sampler = Sampler::start(&tollgate, admin);
    let tokens = Arc::clone(&jwts);
    let jwt_answers = flood(&client, EACH, move |i| tokens[i].clone()).await;
    let opaque_answers = flood(&client, EACH, |i| format!("opaque-{i}")).await;
    let peaks = sampler.finish().await;
    let rss_after = tollgate.rss_bytes();
    let settled = Metrics::scrape(admin).await;
    eprintln!(
        "{} distinct valid tokens: RSS {} KiB before, {} KiB after, peak {} KiB; peak entries {peaks:?}",
        2 * EACH,
        rss_before / 1024,
        rss_after / 1024,
        peaks.rss / 1024
    );

    assert_only(&jwt_answers, &Answer::Allow, EACH, "distinct JWTs");
    assert_only(
        &opaque_answers,
        &Answer::Allow,
        EACH,
        "distinct opaque tokens",
    );
    let limit = MAX_ENTRIES as f64;
    assert!(
        peaks.introspection <= limit && peaks.verified <= limit,
        "cache entries past max_entries {MAX_ENTRIES}: {peaks:?}"
    );
    // Filled to the bound, not kept small by something else.
    for cache in [VERIFIED_CACHE, INTROSPECTION_CACHE] {
        let entries = settled.entries(cache);
        assert!(
            entries >= limit * 0.9,
            "{cache} holds {entries} entries after {EACH} distinct tokens; expected about {MAX_ENTRIES}"
        );
    }
    assert_rss_growth(
        rss_before,
        rss_after.max(peaks.rss),
        RSS_GROWTH_LIMIT,
        &format!("{} distinct valid tokens", 2 * EACH),
    );
}
