//! Faulty identity providers against the real `tollgate` binary. For every
//! way the test IdP can misbehave (`support::idp::Fault`), on the key paths
//! (JWKS, and discovery before it) and on introspection:
//!
//! - every check finishes within the configured timeout plus slack
//!   ([`CHECK_BOUND`]): a correctness bound that a hang fails, not a speed
//!   test;
//! - nothing is wrongly allowed: no keys is gRPC `UNAVAILABLE` and not
//!   SERVING, a failed refresh keeps the last good keys (a known `kid`
//!   verifies, a new one is not trusted), a failed introspection is
//!   `UNAVAILABLE`, never an allow and never a cached answer;
//! - the process's resident memory grows by less than [`RSS_BOUND`], also
//!   while the IdP streams endless and 64 MiB bodies to many fetches at once;
//! - once the IdP is healthy again the same checks allow, without a restart;
//! - no token or client secret appears in the log.
//!
//! Faults run concurrently, one tollgate and one IdP each; the intervals
//! are tollgate's shortest (1s) so recovery is quick.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use support::check::{allowed, assert_denied, bearer, get};
use support::idp::{
    DISCOVERY_PATH, Endpoint, Fault, INTROSPECTION_PATH, Idp, JWKS_PATH, OCT_SECRET, jwks_of,
};
use support::tokens::Token;
use support::{ScratchDir, TollgateProcess};

const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
const EC2_JWK: &str = include_str!("fixtures/keys/ec-p256-2.jwk.json");

/// Longest a check may take. The timeouts configured here are 500ms
/// (`fetch_timeout`, introspection `timeout`); a check that waits on a
/// discovery and a JWKS fetch can take two of them.
const CHECK_BOUND: Duration = Duration::from_secs(5);
/// Most the process's resident memory may grow during a case.
const RSS_BOUND: u64 = 32 * 1024 * 1024;
/// Longest tollgate gets to try the IdP, or to recover once it is healthy:
/// the retry interval is 1s; an introspection endpoint is rediscovered
/// every 5s.
const WAIT_LIMIT: Duration = Duration::from_secs(15);
/// A delay longer than every timeout configured here.
const SLOW: Duration = Duration::from_secs(10);
/// What tollgate logs for a failed JWKS fetch, before and after it had keys.
const FAILED_WITHOUT_KEYS: &str = "JWKS fetch failed; the provider has no keys";
const FAILED_KEEPING_KEYS: &str = "JWKS fetch failed; keeping the previous";

/// Faults that make a response unusable whatever the document.
const BODY_FAULTS: [Fault; 8] = [
    Fault::Slow(SLOW),
    Fault::ServerError,
    Fault::Garbage,
    Fault::Endless,
    Fault::Huge,
    Fault::Trickle,
    Fault::HtmlPage,
    Fault::Truncated,
];
/// JWKS documents holding only keys tollgate must refuse.
const KEY_FAULTS: [Fault; 5] = [
    Fault::OnlyOctKeys,
    Fault::UnknownKty,
    Fault::EcKeyWithRs256,
    Fault::RsaKeyWithEs256,
    Fault::EncryptionKey,
];
/// Introspection answers whose `active` is not a boolean.
const ACTIVE_FAULTS: [Fault; 3] = [
    Fault::ActiveAsString,
    Fault::ActiveAsNumber,
    Fault::ActiveMissing,
];

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// Runs every case at once and fails with the name of each that failed.
/// Cases run on this thread (a `LocalSet`): the support helpers' futures
/// are not `Send`. tollgate runs in its own processes, the IdPs on the
/// runtime's workers.
async fn run_cases<F>(cases: impl IntoIterator<Item = (String, F)>)
where
    F: Future<Output = ()> + 'static,
{
    let local = tokio::task::LocalSet::new();
    let failed = local.run_until(join_cases(cases)).await;
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

async fn join_cases<F>(cases: impl IntoIterator<Item = (String, F)>) -> Vec<String>
where
    F: Future<Output = ()> + 'static,
{
    let mut set = JoinSet::new();
    let mut names = HashMap::new();
    for (name, case) in cases {
        names.insert(set.spawn_local(case).id(), name);
    }
    let mut failed = Vec::new();
    while let Some(joined) = set.join_next_with_id().await {
        if let Err(error) = joined {
            let name = names[&error.id()].clone();
            let message = error
                .try_into_panic()
                .ok()
                .and_then(|panic| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                })
                .unwrap_or_default();
            failed.push(format!("{name}: {message}"));
        }
    }
    failed
}

/// What a check must come to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A fault for Envoy's failure mode: gRPC UNAVAILABLE.
    Unavailable,
    /// A 401 `invalid_token`: decided with the keys tollgate has.
    InvalidToken,
}

/// Calls `Check` on one tollgate, each call bounded by [`CHECK_BOUND`].
#[derive(Clone)]
struct Checker {
    client: AuthorizationClient<Channel>,
    case: String,
}

impl Checker {
    async fn new(tollgate: &TollgateProcess, case: &str) -> Checker {
        let client = AuthorizationClient::connect(tollgate.grpc_url())
            .await
            .unwrap_or_else(|e| panic!("{case}: connecting to tollgate: {e}"));
        Checker {
            client,
            case: case.to_owned(),
        }
    }

    /// `GET /orders` with `token`; panics if the answer takes longer than
    /// [`CHECK_BOUND`], including when it never comes.
    async fn check(&self, token: &str) -> Result<CheckResponse, tonic::Status> {
        let started = Instant::now();
        let mut client = self.client.clone();
        let call = client.check(get("/orders", &[("authorization", &bearer(token))]));
        let outcome = tokio::time::timeout(CHECK_BOUND, call)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: the check did not finish within {CHECK_BOUND:?}",
                    self.case
                )
            });
        let took = started.elapsed();
        assert!(
            took < CHECK_BOUND,
            "{}: the check took {took:?}, more than {CHECK_BOUND:?}",
            self.case
        );
        outcome.map(tonic::Response::into_inner)
    }

    /// The check is a fault for Envoy's failure mode: gRPC UNAVAILABLE.
    async fn expect_unavailable(&self, token: &str, what: &str) {
        match self.check(token).await {
            Err(status) if status.code() == tonic::Code::Unavailable => {
                assert!(
                    !status.message().contains(token),
                    "{}: {what}: the status repeats the token",
                    self.case
                );
            }
            other => panic!(
                "{}: {what}: expected gRPC UNAVAILABLE, got {other:?}",
                self.case
            ),
        }
    }

    async fn expect(&self, token: &str, expect: Expect, what: &str) {
        match expect {
            Expect::Unavailable => self.expect_unavailable(token, what).await,
            Expect::InvalidToken => self.expect_invalid_token(token, what).await,
        }
    }

    /// Checks every token at once (on this thread's `LocalSet`), each
    /// expected to come to `expect`; a failed one fails the caller.
    async fn expect_at_once(&self, tokens: Vec<String>, expect: Expect, what: &'static str) {
        let mut checks = JoinSet::new();
        for token in tokens {
            let checker = self.clone();
            checks.spawn_local(async move { checker.expect(&token, expect, what).await });
        }
        while let Some(joined) = checks.join_next().await {
            if let Err(error) = joined {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    }

    /// Anything but an allow: a deny, or a fault.
    async fn expect_no_allow(&self, token: &str, what: &str) {
        if let Ok(response) = self.check(token).await {
            assert_ne!(
                response.status.as_ref().map(|s| s.code),
                Some(0),
                "{}: {what}: a wrong allow: {response:?}",
                self.case
            );
        }
    }

    async fn expect_allow(&self, token: &str, what: &str) {
        match self.check(token).await {
            Ok(response) => {
                allowed(&response);
            }
            Err(status) => panic!("{}: {what}: expected an allow, got {status:?}", self.case),
        }
    }

    /// A 401 `invalid_token`: decided with the keys tollgate has.
    async fn expect_invalid_token(&self, token: &str, what: &str) {
        match self.check(token).await {
            Ok(response) => {
                assert_denied(
                    &response,
                    401,
                    Some(r#"Bearer realm="faults", error="invalid_token""#),
                    "invalid_token",
                    Some(token),
                );
            }
            Err(status) => panic!("{}: {what}: expected a 401, got {status:?}", self.case),
        }
    }

    /// Checks until `token` is allowed (the IdP has recovered), each check
    /// bounded, for at most [`WAIT_LIMIT`].
    async fn wait_for_allow(&self, token: &str, what: &str) {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let outcome = self.check(token).await;
            if let Ok(response) = &outcome
                && response.status.as_ref().map(|s| s.code) == Some(0)
            {
                allowed(response);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what}: not allowed within {WAIT_LIMIT:?}: {outcome:?}",
                self.case
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The highest resident memory seen while the watch runs, sampled every
/// 20 ms.
struct PeakRss {
    baseline: u64,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    fn watch(tollgate: &Arc<TollgateProcess>) -> PeakRss {
        let baseline = tollgate.rss_bytes();
        let peak = Arc::new(AtomicU64::new(baseline));
        let task = tokio::spawn({
            let tollgate = Arc::clone(tollgate);
            let peak = Arc::clone(&peak);
            async move {
                loop {
                    peak.fetch_max(tollgate.rss_bytes(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        PeakRss {
            baseline,
            peak,
            task,
        }
    }

    /// Stops sampling and asserts growth below [`RSS_BOUND`].
    fn assert_bounded(self, tollgate: &TollgateProcess, case: &str) {
        self.task.abort();
        let peak = self.peak.load(Ordering::Relaxed).max(tollgate.rss_bytes());
        let grown = peak.saturating_sub(self.baseline);
        eprintln!(
            "{case}: RSS {} KiB at the start, peak {} KiB (+{} KiB)",
            self.baseline >> 10,
            peak >> 10,
            grown >> 10
        );
        assert!(
            grown < RSS_BOUND,
            "{case}: tollgate's RSS grew by {} MiB (from {} to {} MiB), more than {} MiB",
            grown >> 20,
            self.baseline >> 20,
            peak >> 20,
            RSS_BOUND >> 20
        );
    }
}

/// Waits until tollgate's log holds `needle` at least `count` times.
async fn wait_for_log_count(tollgate: &TollgateProcess, needle: &str, count: usize, case: &str) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while tollgate.logs().matches(needle).count() < count {
        // Keys loaded from a faulty IdP would never let the count rise.
        assert!(
            needle != FAILED_WITHOUT_KEYS || !tollgate.logs().contains("JWKS fetched"),
            "{case}: keys were loaded from a faulty IdP:\n{}",
            tollgate.logs()
        );
        assert!(
            Instant::now() < deadline,
            "{case}: tollgate did not log {needle:?} {count} times within {WAIT_LIMIT:?}\n{}",
            tollgate.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Neither the secrets nor, for JWTs, their signatures are in the log.
fn assert_log_holds_no_secret(tollgate: &TollgateProcess, secrets: &[&str], case: &str) {
    let logs = tollgate.logs();
    for secret in secrets {
        let signature = secret.rsplit('.').next().unwrap_or(secret);
        assert!(
            !logs.contains(secret) && !logs.contains(signature),
            "{case}: the log holds a token or secret ({secret}):\n{logs}"
        );
    }
}

async fn assert_health(tollgate: &TollgateProcess, expected: ServingStatus, case: &str) {
    assert_eq!(tollgate.health().await, Ok(expected), "{case}: gRPC health");
}

// ---------------------------------------------------------------------------
// Tokens and configuration
// ---------------------------------------------------------------------------

/// A token for the IdP's issuer with scope `read`, signed by `key`; each
/// has its own `jti`, so none is answered from the verified-token cache.
fn mint(issuer: &str, key: Token) -> String {
    static MINTED: AtomicU64 = AtomicU64::new(0);
    let jti = MINTED.fetch_add(1, Ordering::Relaxed);
    key.issuer(issuer)
        .audience("orders")
        .subject("svc")
        .client_id("svc")
        .scopes(["read"])
        .claim("jti", format!("faulty-idp-{jti}"))
        .sign()
}

/// The key tollgate has from the start (`ec-1`).
fn known_token(issuer: &str) -> String {
    mint(issuer, Token::es256())
}

/// A key the IdP rotates in (`ec-2`): the key faults publish its material
/// wrongly, a healthy IdP publishes it properly.
fn rotated_token(issuer: &str) -> String {
    mint(issuer, Token::es256_second())
}

/// A token signed with the key `fault` publishes, where it is not `ec-2`.
fn wrong_key_token(issuer: &str, fault: Fault) -> Option<String> {
    match fault {
        Fault::RsaKeyWithEs256 => Some(mint(issuer, Token::rs256())),
        Fault::OnlyOctKeys => Some(mint(issuer, Token::hs256(OCT_SECRET).kid("hs-1"))),
        _ => None,
    }
}

/// How the provider finds its keys.
#[derive(Debug, Clone, Copy)]
enum KeySource {
    /// `jwks_uri`: the JWKS path only.
    JwksUri,
    /// `discovery: true`: discovery first, then the JWKS it names.
    Discovery,
}

/// A config of `providers` (YAML list items) and one route: every path
/// needs scope `read`.
fn config(providers: &str) -> String {
    format!(
        r#"
server:
  grpc_listen: 127.0.0.1:0
  realm: faults
providers:{providers}
routes:
  - name: read
    match: {{ path: {{ prefix: / }} }}
    require: {{ scopes: [read] }}
"#
    )
}

/// A provider verifying `issuer`'s JWTs with keys from `source` (a YAML
/// line), every JWKS interval at its 1s floor.
fn key_provider(name: &str, issuer: &str, source: &str, fetch_timeout: &str) -> String {
    format!(
        r#"
  - name: {name}
    issuer: {issuer}
    audiences: [orders]
    {source}
    jwks_cache:
      refresh_interval: 1s
      min_refresh_interval: 1s
      retry_interval: 1s
      unknown_kid_refetch_interval: 1s
      fetch_timeout: {fetch_timeout}"#
    )
}

/// An opaque-token provider for `issuer` introspecting at `endpoint`, or
/// (`None`) at the one its metadata names. The client secret comes from
/// `FAULTS_CLIENT_SECRET`.
fn introspection_provider(
    name: &str,
    issuer: &str,
    endpoint: Option<&str>,
    timeout: &str,
) -> String {
    let endpoint = endpoint.map_or(String::new(), |url| format!("endpoint: {url}"));
    format!(
        r#"
  - name: {name}
    issuer: {issuer}
    introspection:
      {endpoint}
      client_id: tollgate
      client_secret: {{ env: FAULTS_CLIENT_SECRET }}
      timeout: {timeout}"#
    )
}

/// One provider with the IdP's keys and a 500ms fetch timeout.
fn key_config(idp: &Idp, source: KeySource) -> String {
    let source = match source {
        KeySource::JwksUri => format!("jwks_uri: {}", idp.jwks_uri()),
        KeySource::Discovery => "discovery: true".to_owned(),
    };
    config(&key_provider("idp", idp.base_url(), &source, "500ms"))
}

/// One opaque-token provider introspecting at the IdP with a 500ms
/// timeout: at the configured endpoint, or (`discovered`) the one its
/// metadata names.
fn introspection_config(idp: &Idp, discovered: bool) -> String {
    let endpoint = format!("{}{INTROSPECTION_PATH}", idp.base_url());
    let endpoint = (!discovered).then_some(endpoint.as_str());
    config(&introspection_provider(
        "idp",
        idp.base_url(),
        endpoint,
        "500ms",
    ))
}

/// The config and its scratch directory (kept while tollgate runs, which
/// watches the file) and the client secret tollgate is started with.
async fn start_with_secret(config: &str, secret: &str) -> (ScratchDir, Arc<TollgateProcess>) {
    let dir = ScratchDir::new("faulty-idp");
    let path = dir.join("tollgate.yaml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let tollgate = TollgateProcess::serve_file(&path, &[("FAULTS_CLIENT_SECRET", secret)]).await;
    (dir, Arc::new(tollgate))
}

/// `fault`'s name as token characters (`Slow(10s)` -> `Slow-10s-`).
fn slug(fault: Fault) -> String {
    format!("{fault:?}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn active_answer() -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    serde_json::json!({"active": true, "scope": "read", "client_id": "svc", "sub": "svc", "exp": now + 600})
}

// ---------------------------------------------------------------------------
// Keys: discovery and JWKS
// ---------------------------------------------------------------------------

/// One key fault, start to finish on one tollgate:
/// 1. the IdP is faulty from the start: tollgate tries (twice), stays
///    NOT_SERVING, and every token is UNAVAILABLE;
/// 2. the IdP heals: SERVING, and the known key allows;
/// 3. the IdP rotates in `ec-2` but turns faulty again: the refresh fails,
///    the known key still allows, `ec-2` (and the fault's own key) is 401;
/// 4. the IdP heals: `ec-2` allows once refetched.
async fn key_fault_case(fault: Fault, source: KeySource) {
    let case = format!("{fault:?} via {source:?}");
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    idp.set_key_fault(Some(fault));
    let tollgate = Arc::new(TollgateProcess::start_listening(&key_config(&idp, source)).await);
    let memory = PeakRss::watch(&tollgate);
    let checker = Checker::new(&tollgate, &case).await;
    let issuer = idp.base_url();
    let known = known_token(issuer);
    let rotated = rotated_token(issuer);
    let wrong = wrong_key_token(issuer, fault);

    // 1. Never had keys.
    wait_for_log_count(&tollgate, FAILED_WITHOUT_KEYS, 2, &case).await;
    assert_health(&tollgate, ServingStatus::NotServing, &case).await;
    // Many at once: each waits for at most the fetch in flight.
    let mut many = vec![known.clone(); CONCURRENT_CALLS];
    many.push(rotated.clone());
    checker
        .expect_at_once(many, Expect::Unavailable, "no keys were ever loaded")
        .await;
    if let Some(wrong) = &wrong {
        // HS256 is refused before any key is needed; RS256 waits for keys.
        checker
            .expect_no_allow(wrong, "a key the faulty JWKS holds")
            .await;
    }
    assert_health(&tollgate, ServingStatus::NotServing, &case).await;

    // 2. Recovery from the start.
    idp.set_key_fault(None);
    tollgate.wait_until_serving().await;
    checker
        .expect_allow(&known, "the IdP recovered from the start")
        .await;

    // 3. A refresh fault with keys loaded.
    let failures = tollgate.logs().matches(FAILED_KEEPING_KEYS).count();
    idp.set_jwks(jwks_of(&[EC1_JWK, EC2_JWK]));
    idp.set_key_fault(Some(fault));
    wait_for_log_count(&tollgate, FAILED_KEEPING_KEYS, failures + 1, &case).await;
    // A token never seen: verified with the kept keys, not remembered.
    let known_again = known_token(issuer);
    checker
        .expect_allow(&known_again, "the last good keys keep serving")
        .await;
    // A kid only the faulty IdP named, and the key it published wrongly.
    let mut many = vec![rotated.clone(); CONCURRENT_CALLS];
    many.extend(wrong.clone());
    checker
        .expect_at_once(many, Expect::InvalidToken, "a key only a faulty IdP named")
        .await;
    let known_after_refetch = known_token(issuer);
    checker
        .expect_allow(
            &known_after_refetch,
            "the last good keys keep serving after a failed refetch",
        )
        .await;
    assert_health(&tollgate, ServingStatus::Serving, &case).await;

    // 4. Recovery with keys loaded: the rotated key arrives.
    idp.set_key_fault(None);
    checker
        .wait_for_allow(&rotated, "the IdP recovered with a rotated key")
        .await;
    checker.expect_allow(&known, "after the recovery").await;

    memory.assert_bounded(&tollgate, &case);
    let every_token = [&known, &known_again, &known_after_refetch, &rotated];
    let every_token = every_token.into_iter().map(Some).chain([wrong.as_ref()]);
    let every_token: Vec<&str> = every_token.flatten().map(String::as_str).collect();
    assert_log_holds_no_secret(&tollgate, &every_token, &case);
    assert!(
        idp.hits(JWKS_PATH) + idp.hits(DISCOVERY_PATH) >= 4,
        "{case}: the IdP was barely asked"
    );
}

async fn key_faults_via(source: KeySource) {
    run_cases(
        BODY_FAULTS
            .into_iter()
            .chain(KEY_FAULTS)
            .map(|fault| (format!("{fault:?}"), key_fault_case(fault, source))),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_faults_via_jwks_uri_never_trust_bad_keys_and_recover() {
    key_faults_via(KeySource::JwksUri).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_faults_via_discovery_never_trust_bad_keys_and_recover() {
    key_faults_via(KeySource::Discovery).await;
}

// ---------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------

/// One introspection fault on one tollgate: a token cached before the
/// fault still allows, a new token is UNAVAILABLE (twice, each a call: no
/// answer was cached), and allows as soon as the IdP heals.
async fn introspection_fault_case(fault: Fault) {
    let case = format!("introspection {fault:?}");
    let secret = format!("client-secret-{}-do-not-log", slug(fault));
    let cached = format!("opaque-cached-{}-token", slug(fault));
    let fresh = format!("opaque-fresh-{}-token", slug(fault));
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    idp.set_introspection(&cached, active_answer());
    idp.set_introspection(&fresh, active_answer());
    let (_dir, tollgate) = start_with_secret(&introspection_config(&idp, false), &secret).await;
    tollgate.wait_until_serving().await;
    let memory = PeakRss::watch(&tollgate);
    let checker = Checker::new(&tollgate, &case).await;
    checker.expect_allow(&cached, "a healthy IdP").await;

    idp.set_fault(Endpoint::Introspection, Some(fault));
    let calls = idp.hits(INTROSPECTION_PATH);
    for attempt in ["a faulty answer", "a faulty answer again"] {
        checker.expect_unavailable(&fresh, attempt).await;
    }
    assert_eq!(
        idp.hits(INTROSPECTION_PATH),
        calls + 2,
        "{case}: each check asked the IdP: a fault is never cached"
    );
    checker
        .expect_allow(&cached, "an answer cached before the fault")
        .await;
    assert_health(&tollgate, ServingStatus::Serving, &case).await;

    idp.set_fault(Endpoint::Introspection, None);
    checker.expect_allow(&fresh, "the IdP recovered").await;

    memory.assert_bounded(&tollgate, &case);
    tollgate
        .wait_for_log("introspection for provider idp failed")
        .await;
    assert_log_holds_no_secret(&tollgate, &[&cached, &fresh, &secret], &case);
    let (_, form) = idp.last_introspection().expect("an introspection call");
    assert!(form.contains("token="), "{case}: the IdP saw the calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_faults_are_unavailable_never_an_allow_and_recover() {
    run_cases(
        BODY_FAULTS
            .into_iter()
            .chain(ACTIVE_FAULTS)
            .map(|fault| (format!("{fault:?}"), introspection_fault_case(fault))),
    )
    .await;
}

/// The introspection endpoint comes from discovery, which is faulty from
/// the start: not SERVING, opaque tokens UNAVAILABLE, until discovery heals.
async fn introspection_discovery_fault_case(fault: Fault) {
    let case = format!("introspection discovery {fault:?}");
    let secret = format!("client-secret-{}-do-not-log", slug(fault));
    let token = format!("opaque-{}-token", slug(fault));
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    idp.set_introspection(&token, active_answer());
    idp.set_fault(Endpoint::Discovery, Some(fault));
    let (_dir, tollgate) = start_with_secret(&introspection_config(&idp, true), &secret).await;
    let memory = PeakRss::watch(&tollgate);
    let checker = Checker::new(&tollgate, &case).await;

    tollgate
        .wait_for_log("introspection endpoint unknown")
        .await;
    assert_health(&tollgate, ServingStatus::NotServing, &case).await;
    // Many checks at once, each with its own token: none may queue behind
    // the others' discovery attempts.
    let many = (0..CONCURRENT_CALLS)
        .map(|index| format!("{token}-{index}"))
        .collect();
    checker
        .expect_at_once(many, Expect::Unavailable, "the endpoint is unknown")
        .await;
    assert_eq!(
        idp.hits(INTROSPECTION_PATH),
        0,
        "{case}: no endpoint, no call"
    );

    idp.set_fault(Endpoint::Discovery, None);
    tollgate.wait_until_serving().await;
    checker.expect_allow(&token, "discovery recovered").await;

    memory.assert_bounded(&tollgate, &case);
    assert_log_holds_no_secret(&tollgate, &[&token, &secret], &case);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_discovery_faults_keep_the_provider_unready_and_recover() {
    run_cases(BODY_FAULTS.into_iter().map(|fault| {
        (
            format!("{fault:?}"),
            introspection_discovery_fault_case(fault),
        )
    }))
    .await;
}

// ---------------------------------------------------------------------------
// Content types
// ---------------------------------------------------------------------------

/// tollgate does not trust the content type: valid JSON labelled
/// `text/html` is used (keys load, introspection answers), while an HTML
/// page with a JSON label or none is refused by the parser (above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_labelled_text_html_is_judged_by_its_body() {
    let keys = |source: KeySource| async move {
        let case = format!("JsonAsHtml via {source:?}");
        let idp = Idp::start(jwks_of(&[EC1_JWK, EC2_JWK])).await;
        idp.set_key_fault(Some(Fault::JsonAsHtml));
        let tollgate = TollgateProcess::start(&key_config(&idp, source)).await;
        let checker = Checker::new(&tollgate, &case).await;
        checker
            .expect_allow(&known_token(idp.base_url()), "JSON labelled HTML")
            .await;
        checker
            .expect_allow(&rotated_token(idp.base_url()), "JSON labelled HTML")
            .await;
    };
    let introspection = async {
        let case = "JsonAsHtml for introspection";
        let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
        idp.set_introspection("opaque-html-labelled", active_answer());
        idp.set_fault(Endpoint::Discovery, Some(Fault::JsonAsHtml));
        idp.set_fault(Endpoint::Introspection, Some(Fault::JsonAsHtml));
        let (_dir, tollgate) = start_with_secret(&introspection_config(&idp, true), "s").await;
        tollgate.wait_until_serving().await;
        let checker = Checker::new(&tollgate, case).await;
        checker
            .expect_allow("opaque-html-labelled", "JSON labelled HTML")
            .await;
        checker
            .expect_invalid_token("opaque-never-issued", "an inactive answer labelled HTML")
            .await;
    };
    tokio::join!(
        keys(KeySource::JwksUri),
        keys(KeySource::Discovery),
        introspection
    );
}

// ---------------------------------------------------------------------------
// Memory under many concurrent endless and huge bodies
// ---------------------------------------------------------------------------

/// Providers fetching keys from one IdP at once in the memory test.
const KEY_PROVIDERS: usize = 4;
/// Introspection calls in flight at once in the memory test.
const CONCURRENT_CALLS: usize = 16;

/// Four key providers and one introspection provider on one IdP, with
/// timeouts (2s) long enough that only the body caps can stop the reads.
fn memory_config(idp: &Idp) -> String {
    let jwks_uri = format!("jwks_uri: {}", idp.jwks_uri());
    let mut providers: String = (0..KEY_PROVIDERS)
        .map(|index| {
            let issuer = format!("https://keys-{index}.test");
            key_provider(&format!("keys-{index}"), &issuer, &jwks_uri, "2s")
        })
        .collect();
    let endpoint = format!("{}{INTROSPECTION_PATH}", idp.base_url());
    providers.push_str(&introspection_provider(
        "opaque",
        idp.base_url(),
        Some(&endpoint),
        "2s",
    ));
    config(&providers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_and_huge_bodies_to_many_fetches_at_once_keep_memory_bounded() {
    run_cases([("memory".to_owned(), endless_and_huge_bodies_at_once())]).await;
}

/// Several key fetches and many introspection calls at once, all meeting
/// endless and 64 MiB bodies.
async fn endless_and_huge_bodies_at_once() {
    let case = "concurrent endless and huge bodies";
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let tokens: Vec<String> = (0..3 * 2 * CONCURRENT_CALLS)
        .map(|i| format!("opaque-memory-{i}-token"))
        .collect();
    for token in &tokens {
        idp.set_introspection(token, active_answer());
    }
    idp.set_introspection("opaque-warm-up", active_answer());
    let (_dir, tollgate) = start_with_secret(&memory_config(&idp), "memory-secret").await;
    tollgate.wait_until_serving().await;
    let checker = Checker::new(&tollgate, case).await;
    let jwt = known_token("https://keys-0.test");
    checker.expect_allow(&jwt, "healthy").await;
    checker.expect_allow("opaque-warm-up", "healthy").await;

    let memory = PeakRss::watch(&tollgate);
    let mut batches = tokens.chunks(CONCURRENT_CALLS);
    let mut failed_fetches = tollgate.logs().matches(FAILED_KEEPING_KEYS).count();
    for (keys, introspection) in [(Fault::Huge, Fault::Endless), (Fault::Endless, Fault::Huge)] {
        idp.set_fault(Endpoint::Jwks, Some(keys));
        idp.set_fault(Endpoint::Introspection, Some(introspection));
        for batch in batches.by_ref().take(3) {
            checker
                .expect_at_once(
                    batch.to_vec(),
                    Expect::Unavailable,
                    "an endless or huge answer",
                )
                .await;
        }
        // Every key provider's refresh met the fault at least twice.
        failed_fetches += 2 * KEY_PROVIDERS;
        wait_for_log_count(&tollgate, FAILED_KEEPING_KEYS, failed_fetches, case).await;
        checker
            .expect_allow(&jwt, "the last good keys keep serving")
            .await;
    }
    memory.assert_bounded(&tollgate, case);
    assert!(
        idp.hits(INTROSPECTION_PATH) >= 6 * CONCURRENT_CALLS,
        "{case}: every call reached the IdP"
    );

    idp.set_fault(Endpoint::Jwks, None);
    idp.set_fault(Endpoint::Introspection, None);
    checker.expect_allow(&tokens[0], "the IdP recovered").await;
    checker.expect_allow(&jwt, "the IdP recovered").await;
}
