//! Running tollgate in production: metrics after a known sequence of
//! checks, hot reload (file edit, SIGHUP, a ConfigMap-style symlink swap)
//! under a running check loop, graceful shutdown on SIGTERM, and the
//! protection limits on the Check path.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use serde_json::Value;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use support::check::{
    GRPC_INVALID_ARGUMENT, GRPC_OK, GRPC_PERMISSION_DENIED, GRPC_UNAUTHENTICATED,
};
use support::idp::{Idp, JWKS_PATH, jwks_of};
use support::tokens::Token;
use support::{InProcess, ScratchDir, TollgateProcess};

const ISSUER: &str = "https://issuer.ops.test";
const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
const EC2_JWK: &str = include_str!("fixtures/keys/ec-p256-2.jwk.json");
/// Bound on waiting for a reload or a new route to take effect; the file is
/// polled every second.
const RELOAD_LIMIT: Duration = Duration::from_secs(10);

/// A token from [`ISSUER`] with scope `read`, signed by fixture key `ec-1`
/// or `ec-2`.
fn token(kid: &str) -> String {
    let key = match kid {
        "ec-1" => Token::es256(),
        "ec-2" => Token::es256_second(),
        other => panic!("no fixture key {other}"),
    };
    key.issuer(ISSUER)
        .subject("ops")
        .client_id("ops-client")
        .scopes(["read"])
        .lifetime(Duration::from_secs(600))
        .sign()
}

/// `provider_keys` is the provider's key source line; `routes` YAML list
/// items, each needing scope `read` unless it says otherwise.
fn config(provider_keys: &str, routes: &[&str], server: &str) -> String {
    let routes: String = routes.iter().map(|r| format!("  - {r}\n")).collect();
    format!(
        "server:\n  grpc_listen: 127.0.0.1:0\n{server}providers:\n  - name: ops\n    issuer: {ISSUER}\n    {provider_keys}\nroutes:\n{routes}"
    )
}

fn route(name: &str, prefix: &str) -> String {
    format!(
        "{{ name: {name}, match: {{ path: {{ prefix: {prefix} }} }}, require: {{ scopes: [read] }} }}"
    )
}

fn check_request(path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    support::check::get(path, headers)
}

/// A scratch directory holding `keys.json`, a JWKS with fixture key `ec-1`.
fn dir_with_keys(name: &str) -> ScratchDir {
    let dir = ScratchDir::new(name);
    write(&dir.join("keys.json"), &jwks_of(&[EC1_JWK]));
    dir
}

async fn connect(url: String) -> AuthorizationClient<Channel> {
    AuthorizationClient::connect(url.clone())
        .await
        .unwrap_or_else(|e| panic!("connecting to tollgate at {url}: {e}"))
}

/// One Check with `token` (if any); the transport result as is.
async fn check(
    client: &mut AuthorizationClient<Channel>,
    path: &str,
    token: Option<&str>,
) -> Result<CheckResponse, tonic::Status> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| ("authorization", b))
        .into_iter()
        .collect();
    client
        .check(check_request(path, &headers))
        .await
        .map(tonic::Response::into_inner)
}

fn code(response: &CheckResponse) -> Option<i32> {
    response.status.as_ref().map(|s| s.code)
}

fn is_allowed(response: &Result<CheckResponse, tonic::Status>) -> bool {
    matches!(response, Ok(r) if code(r) == Some(GRPC_OK)
        && matches!(r.http_response, Some(HttpResponse::OkResponse(_))))
}

/// Checks `path` with `token` until it is allowed, for at most [`RELOAD_LIMIT`].
async fn wait_until_allowed(client: &mut AuthorizationClient<Channel>, path: &str, token: &str) {
    let deadline = tokio::time::Instant::now() + RELOAD_LIMIT;
    loop {
        let response = check(client, path, Some(token)).await;
        if is_allowed(&response) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} was not allowed within {RELOAD_LIMIT:?}; last answer {response:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks `path` with `token` back to back until stopped; every answer must
/// be an allow. Returns how many checks ran and every one that was not.
struct CheckLoop {
    stop: Arc<AtomicBool>,
    task: JoinHandle<(usize, Vec<String>)>,
}

impl CheckLoop {
    fn start(client: AuthorizationClient<Channel>, path: &'static str, token: String) -> CheckLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut client = client;
            let (mut count, mut failures) = (0, Vec::new());
            while !stopping.load(Ordering::Relaxed) {
                let response = check(&mut client, path, Some(&token)).await;
                count += 1;
                if !is_allowed(&response) {
                    failures.push(format!("{response:?}"));
                }
            }
            (count, failures)
        });
        CheckLoop { stop, task }
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the check loop panicked")
    }
}

fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// `name{labels} value` from a Prometheus text exposition, as a number.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn metrics_count_a_known_sequence_of_checks() {
    let dir = dir_with_keys("metrics");
    let yaml = config(
        "jwks_file: keys.json",
        &[
            "{ name: metrics-open, match: { path: { prefix: /open } }, anonymous: true }",
            &route("metrics-read", "/read"),
        ],
        "",
    );
    let server = InProcess::start(&yaml, dir.path()).await;
    let mut client = AuthorizationClient::new(server.channel().clone());
    let unmatched =
        r#"tollgate_checks_total{decision="deny",reason="no_route",route="<unmatched>"}"#;
    let before = sample(&tollgate::render_metrics(), unmatched).unwrap_or(0.0);

    let token = token("ec-1");
    for (path, token) in [
        ("/open/a", None),
        ("/open/b", None),
        ("/read/x", None),
        ("/read/x", Some(token.as_str())),
        ("/read/y", Some(token.as_str())),
        ("/nowhere", Some(token.as_str())),
    ] {
        check(&mut client, path, token)
            .await
            .unwrap_or_else(|e| panic!("check of {path}: {e}"));
    }

    let text = tollgate::render_metrics();
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    };
    expect(
        r#"tollgate_checks_total{decision="allow",reason="",route="metrics-open"}"#,
        2.0,
    );
    expect(
        r#"tollgate_checks_total{decision="deny",reason="missing_token",route="metrics-read"}"#,
        1.0,
    );
    expect(
        r#"tollgate_checks_total{decision="allow",reason="",route="metrics-read"}"#,
        2.0,
    );
    // The second check with the same token skips the signature check.
    for series in [
        r#"tollgate_cache_hits_total{cache="verified_jwt"}"#,
        r#"tollgate_cache_misses_total{cache="verified_jwt"}"#,
        r#"tollgate_cache_entries{cache="verified_jwt"}"#,
    ] {
        let value = sample(&text, series).unwrap_or(0.0);
        assert!(value >= 1.0, "{series}\n{text}");
    }
    expect(unmatched, before + 1.0);
    expect(r#"tollgate_jwks_keys{provider="ops"}"#, 1.0);
    let count = sample(&text, "tollgate_check_duration_seconds_count").unwrap_or(0.0);
    assert!(count >= 6.0, "{text}");
    let version = format!(
        "tollgate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "{text}");
    server.shutdown().await.expect("serve ended cleanly");
}

// ---------------------------------------------------------------------------
// Hot reload
// ---------------------------------------------------------------------------

#[tokio::test]
async fn file_change_reloads_under_a_check_loop_and_a_broken_file_is_refused() {
    let keys = "jwks_file: keys.json";
    let old = config(keys, &[&route("old", "/old")], "");
    let dir = dir_with_keys("reload-file");
    let path = dir.join("tollgate.yaml");
    write(&path, &old);
    let tollgate = TollgateProcess::serve_file(&path, &[]).await;
    tollgate.wait_until_serving().await;
    let token = token("ec-1");
    let mut client = connect(tollgate.grpc_url()).await;
    let refused = check(&mut client, "/new/a", Some(&token)).await;
    assert_eq!(
        refused.as_ref().ok().and_then(code),
        Some(GRPC_PERMISSION_DENIED),
        "{refused:?}"
    );

    let running = CheckLoop::start(connect(tollgate.grpc_url()).await, "/old/a", token.clone());
    write(
        &path,
        &config(keys, &[&route("old", "/old"), &route("new", "/new")], ""),
    );
    wait_until_allowed(&mut client, "/new/a", &token).await;
    tollgate.wait_for_log("config reloaded").await;

    write(&path, "routes: [ { name: broken, surprise: 1 } ]\n");
    let line = tollgate.wait_for_log("config reload refused").await;
    assert!(line.contains("surprise"), "{line}");
    let still = check(&mut client, "/new/a", Some(&token)).await;
    assert!(
        is_allowed(&still),
        "the old config keeps serving: {still:?}"
    );

    let (count, failures) = running.finish().await;
    assert!(count > 0, "the check loop never ran");
    assert!(
        failures.is_empty(),
        "{} of {count} checks failed during reloads: {failures:?}\n{}",
        failures.len(),
        tollgate.describe()
    );
}

#[tokio::test]
async fn sighup_reloads_key_files_and_refuses_a_broken_one() {
    let dir = ScratchDir::new("reload-sighup");
    let keys = dir.join("keys.json");
    write(&keys, &jwks_of(&[EC1_JWK]));
    let path = dir.join("tollgate.yaml");
    write(
        &path,
        &config("jwks_file: keys.json", &[&route("api", "/")], ""),
    );
    let tollgate = TollgateProcess::serve_file(&path, &[]).await;
    tollgate.wait_until_serving().await;
    let mut client = connect(tollgate.grpc_url()).await;
    let running = CheckLoop::start(connect(tollgate.grpc_url()).await, "/a", token("ec-1"));

    // The config file is unchanged, so only SIGHUP reloads the key file.
    write(&keys, &jwks_of(&[EC1_JWK, EC2_JWK]));
    let rotated = token("ec-2");
    let before = check(&mut client, "/a", Some(&rotated)).await;
    assert_eq!(
        before.as_ref().ok().and_then(code),
        Some(GRPC_UNAUTHENTICATED),
        "{before:?}"
    );
    tollgate.signal("HUP");
    wait_until_allowed(&mut client, "/a", &rotated).await;
    let line = tollgate.wait_for_log("config reloaded").await;
    assert!(line.contains("SIGHUP"), "{line}");

    write(&keys, "not a JWKS");
    tollgate.signal("HUP");
    tollgate.wait_for_log("config reload refused").await;
    let still = check(&mut client, "/a", Some(&rotated)).await;
    assert!(is_allowed(&still), "the old keys keep serving: {still:?}");

    let (count, failures) = running.finish().await;
    assert!(count > 0, "the check loop never ran");
    assert!(failures.is_empty(), "{failures:?}\n{}", tollgate.describe());
}

/// Kubernetes mounts a ConfigMap as `tollgate.yaml -> ..data/tollgate.yaml`
/// with `..data -> ..<timestamp>/`, and updates it by renaming a new
/// `..data` symlink over the old one.
#[cfg(unix)]
#[tokio::test]
async fn a_configmap_symlink_swap_is_reloaded() {
    use std::os::unix::fs::symlink;

    let dir = dir_with_keys("reload-configmap");
    let keys = format!(
        "jwks_file: {}",
        Value::from(dir.join("keys.json").to_string_lossy().into_owned())
    );
    let version = |name: &str, routes: &[&str]| {
        std::fs::create_dir(dir.join(name)).expect("creating a ConfigMap version");
        write(
            &dir.join(name).join("tollgate.yaml"),
            &config(&keys, routes, ""),
        );
    };
    version("..2026_01", &[&route("old", "/old")]);
    symlink("..2026_01", dir.join("..data")).expect("..data symlink");
    symlink("..data/tollgate.yaml", dir.join("tollgate.yaml")).expect("file symlink");
    let tollgate = TollgateProcess::serve_file(&dir.join("tollgate.yaml"), &[]).await;
    tollgate.wait_until_serving().await;
    let token = token("ec-1");
    let running = CheckLoop::start(connect(tollgate.grpc_url()).await, "/old/a", token.clone());

    version("..2026_02", &[&route("old", "/old"), &route("new", "/new")]);
    symlink("..2026_02", dir.join("..data_tmp")).expect("..data_tmp symlink");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swapping ..data");
    std::fs::remove_dir_all(dir.join("..2026_01")).expect("removing the old version");

    let mut client = connect(tollgate.grpc_url()).await;
    wait_until_allowed(&mut client, "/new/a", &token).await;
    let (count, failures) = running.finish().await;
    assert!(count > 0, "the check loop never ran");
    assert!(failures.is_empty(), "{failures:?}\n{}", tollgate.describe());
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sigterm_finishes_in_flight_checks_and_exits_0() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let dir = ScratchDir::new("sigterm");
    let path = dir.join("tollgate.yaml");
    write(
        &path,
        &config(
            &format!("jwks_uri: {}", idp.jwks_uri()),
            &[&route("api", "/")],
            "",
        ),
    );
    let mut tollgate = TollgateProcess::serve_file(&path, &[]).await;
    tollgate.wait_until_serving().await;
    let running = CheckLoop::start(connect(tollgate.grpc_url()).await, "/a", token("ec-1"));

    // A token with a new kid makes each check wait for a slow refetch, so
    // these are in flight when SIGTERM arrives.
    let fetches = idp.hits(JWKS_PATH);
    idp.set_jwks(jwks_of(&[EC1_JWK, EC2_JWK]));
    idp.set_delay(Some(Duration::from_millis(1500)));
    let rotated = token("ec-2");
    let mut in_flight = Vec::new();
    for _ in 0..4 {
        let mut client = connect(tollgate.grpc_url()).await;
        let rotated = rotated.clone();
        in_flight.push(tokio::spawn(async move {
            check(&mut client, "/a", Some(&rotated)).await
        }));
    }
    let deadline = tokio::time::Instant::now() + RELOAD_LIMIT;
    while idp.hits(JWKS_PATH) == fetches {
        assert!(tokio::time::Instant::now() < deadline, "no refetch started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (count, failures) = running.finish().await;
    tollgate.signal("TERM");

    for check in in_flight {
        let response = check.await.expect("the check task panicked");
        assert!(
            is_allowed(&response),
            "an in-flight check did not complete: {response:?}\n{}",
            tollgate.describe()
        );
    }
    let status = tollgate.wait_for_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", tollgate.describe());
    assert!(
        tollgate.logs().contains("shutting down"),
        "{}",
        tollgate.logs()
    );
    assert!(
        count > 0 && failures.is_empty(),
        "{count} checks, failures {failures:?}"
    );
}

// ---------------------------------------------------------------------------
// Protection
// ---------------------------------------------------------------------------

#[tokio::test]
async fn too_many_headers_is_a_400() {
    let dir = dir_with_keys("max-headers");
    let yaml = config(
        "jwks_file: keys.json",
        &["{ name: open, match: { path: { prefix: / } }, anonymous: true }"],
        "  max_headers: 3\n",
    );
    let server = InProcess::start(&yaml, dir.path()).await;
    let mut client = AuthorizationClient::new(server.channel().clone());
    let few = [("a", "1"), ("b", "2"), ("c", "3")];
    let ok = client
        .check(check_request("/", &few))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(code(&ok), Some(GRPC_OK), "{ok:?}");
    let many = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
    let denied = client
        .check(check_request("/", &many))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(code(&denied), Some(GRPC_INVALID_ARGUMENT), "{denied:?}");
    let Some(HttpResponse::DeniedResponse(deny)) = &denied.http_response else {
        panic!("expected a DeniedResponse: {denied:?}");
    };
    assert_eq!(deny.status.as_ref().map(|s| s.code), Some(400), "{deny:?}");
}

/// A server allowing one check at a time for 500ms, with HTTP mode on, and
/// a gRPC check holding that one place: its unknown kid waits on a JWKS
/// refetch slower than the timeout.
struct Saturated {
    server: InProcess,
    client: AuthorizationClient<Channel>,
    slow: tokio::task::JoinHandle<Result<CheckResponse, tonic::Status>>,
    _idp: Idp,
}

async fn saturated() -> Saturated {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let yaml = config(
        &format!("jwks_uri: {}", idp.jwks_uri()),
        &[&route("api", "/")],
        "  http_enabled: true\n  http_listen: 127.0.0.1:0\n  max_concurrent_checks: 1\n  check_timeout: 500ms\n",
    );
    let server = InProcess::start(&yaml, Path::new(".")).await;
    let mut client = AuthorizationClient::new(server.channel().clone());
    wait_until_allowed(&mut client, "/a", &token("ec-1")).await;

    idp.set_delay(Some(Duration::from_secs(3)));
    let slow = {
        let mut client = client.clone();
        let rotated = token("ec-2");
        tokio::spawn(async move { check(&mut client, "/a", Some(&rotated)).await })
    };
    let fetches = idp.hits(JWKS_PATH);
    let deadline = tokio::time::Instant::now() + RELOAD_LIMIT;
    while idp.hits(JWKS_PATH) == fetches {
        assert!(tokio::time::Instant::now() < deadline, "no refetch started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Saturated {
        server,
        client,
        slow,
        _idp: idp,
    }
}

#[tokio::test]
async fn overload_and_slow_checks_get_clean_grpc_errors() {
    // Bound whole: a field left out of a pattern would be dropped here,
    // stopping the server or the IdP.
    let Saturated {
        server: _server,
        mut client,
        slow,
        _idp,
    } = saturated().await;
    let refused = check(&mut client, "/a", Some(&token("ec-1"))).await;
    let status = refused.expect_err("a second concurrent check is refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");

    let timed_out = slow.await.expect("the slow check panicked");
    let status = timed_out.expect_err("the slow check times out");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("timed out"), "{status:?}");

    let text = tollgate::render_metrics();
    for series in [
        r#"tollgate_checks_total{decision="error",reason="overloaded",route="<unmatched>"}"#,
        r#"tollgate_checks_total{decision="error",reason="timeout",route="<unmatched>"}"#,
    ] {
        assert!(
            sample(&text, series).is_some_and(|v| v >= 1.0),
            "{series}\n{text}"
        );
    }
}

#[tokio::test]
async fn http_mode_shares_the_limits() {
    let Saturated {
        server,
        client: _client,
        slow,
        _idp,
    } = saturated().await;
    let url = format!("http://{}/a", server.http_addr().expect("HTTP mode is on"));
    let bearer = format!("Bearer {}", token("ec-1"));
    let refused = support::get(&url, &[("authorization", &bearer)]).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("too many"), "{}", refused.body);
    slow.await
        .expect("the slow check panicked")
        .expect_err("times out");

    // Alone, an HTTP-mode check that outlasts the timeout is a 503 too.
    let rotated = format!("Bearer {}", token("ec-2"));
    let timed_out = support::get(&url, &[("authorization", &rotated)]).await;
    assert_eq!(timed_out.status, 503, "{}", timed_out.body);
    assert!(timed_out.body.contains("timed out"), "{}", timed_out.body);
}

#[tokio::test]
async fn a_reload_keeps_the_key_cache_of_unchanged_providers() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let dir = ScratchDir::new("reload-keep-cache");
    let path = dir.join("tollgate.yaml");
    let provider = format!("jwks_uri: {}", idp.jwks_uri());
    write(&path, &config(&provider, &[&route("old", "/old")], ""));
    let tollgate = TollgateProcess::serve_file(&path, &[]).await;
    tollgate.wait_until_serving().await;
    let fetches = idp.hits(JWKS_PATH);
    let token = token("ec-1");
    let mut client = connect(tollgate.grpc_url()).await;

    // Routes change, the provider does not: its cached keys serve on.
    write(
        &path,
        &config(
            &provider,
            &[&route("old", "/old"), &route("new", "/new")],
            "",
        ),
    );
    wait_until_allowed(&mut client, "/new/a", &token).await;
    assert_eq!(idp.hits(JWKS_PATH), fetches, "{}", tollgate.describe());

    // A changed key setting starts a new cache, which fetches.
    let changed = format!("{provider}\n    jwks_cache: {{ fetch_timeout: 4s }}");
    write(&path, &config(&changed, &[&route("new", "/new")], ""));
    let deadline = tokio::time::Instant::now() + RELOAD_LIMIT;
    while idp.hits(JWKS_PATH) == fetches {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no fetch after the provider changed\n{}",
            tollgate.describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until_allowed(&mut client, "/new/a", &token).await;
}

#[tokio::test]
async fn introspection_calls_and_cache_lookups_are_counted() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 600;
    idp.set_introspection(
        "opaque-1",
        serde_json::json!({"active": true, "scope": "read", "exp": exp}),
    );
    let dir = ScratchDir::new("introspection-metrics");
    write(&dir.join("secret.txt"), "tollgate-secret\n");
    let yaml = format!(
        "server:\n  grpc_listen: 127.0.0.1:0\nproviders:\n  - name: ops-introspect\n    issuer: {}\n    discovery: true\n    introspection:\n      client_id: tollgate\n      client_secret: {{file: secret.txt}}\nroutes:\n  - {}\n",
        idp.base_url(),
        route("api", "/"),
    );
    let server = InProcess::start(&yaml, dir.path()).await;
    let mut client = AuthorizationClient::new(server.channel().clone());
    wait_until_allowed(&mut client, "/a", "opaque-1").await;
    let again = check(&mut client, "/a", Some("opaque-1")).await;
    assert!(is_allowed(&again), "{again:?}");
    let inactive = check(&mut client, "/a", Some("never-issued")).await;
    assert_eq!(
        inactive.as_ref().ok().and_then(code),
        Some(GRPC_UNAUTHENTICATED),
        "{inactive:?}"
    );

    let text = tollgate::render_metrics();
    let value = |series: &str| sample(&text, series).unwrap_or(0.0);
    let requests = r#"tollgate_introspection_requests_total{provider="ops-introspect",outcome="#;
    assert_eq!(value(&format!(r#"{requests}"active"}}"#)), 1.0, "{text}");
    assert_eq!(value(&format!(r#"{requests}"inactive"}}"#)), 1.0, "{text}");
    let cache = r#"{cache="introspection/ops-introspect"}"#;
    assert!(
        value(&format!("tollgate_cache_hits_total{cache}")) >= 1.0,
        "{text}"
    );
    assert!(
        value(&format!("tollgate_cache_misses_total{cache}")) >= 2.0,
        "{text}"
    );
    assert!(
        text.contains(&format!("tollgate_cache_entries{cache}")),
        "{text}"
    );
    let duration = r#"tollgate_introspection_duration_seconds_count{provider="ops-introspect"}"#;
    assert!(value(duration) >= 2.0, "{text}");
}

#[tokio::test]
async fn metrics_are_scraped_from_the_admin_port() {
    let dir = dir_with_keys("metrics-scrape");
    let path = dir.join("tollgate.yaml");
    write(
        &path,
        &config(
            "jwks_file: keys.json",
            &[
                "{ name: open, match: { path: { prefix: /open } }, anonymous: true }",
                &route("orders", "/orders"),
            ],
            "",
        ),
    );
    let tollgate = TollgateProcess::serve_file(&path, &[]).await;
    tollgate.wait_until_serving().await;
    let mut client = connect(tollgate.grpc_url()).await;
    let token = token("ec-1");
    for (path, token) in [
        ("/open/a", None),
        ("/orders/1", None),
        ("/orders/1", Some(token.as_str())),
        ("/orders/2", Some(token.as_str())),
        ("/elsewhere", Some(token.as_str())),
    ] {
        check(&mut client, path, token)
            .await
            .unwrap_or_else(|e| panic!("check of {path}: {e}"));
    }
    // The config is reloaded once, successfully.
    write(
        &path,
        &config("jwks_file: keys.json", &[&route("orders", "/orders")], ""),
    );
    tollgate.wait_for_log("config reloaded").await;

    let admin = tollgate.admin_addr().await;
    let scraped = support::get(&format!("http://{admin}/metrics"), &[]).await;
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    let content_type = scraped
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    assert_eq!(
        content_type,
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = scraped.body;
    for (series, value) in [
        (
            r#"tollgate_checks_total{decision="allow",reason="",route="open"}"#,
            1.0,
        ),
        (
            r#"tollgate_checks_total{decision="deny",reason="missing_token",route="orders"}"#,
            1.0,
        ),
        (
            r#"tollgate_checks_total{decision="allow",reason="",route="orders"}"#,
            2.0,
        ),
        (
            r#"tollgate_checks_total{decision="deny",reason="no_route",route="<unmatched>"}"#,
            1.0,
        ),
        ("tollgate_check_duration_seconds_count", 5.0),
        (r#"tollgate_cache_hits_total{cache="verified_jwt"}"#, 1.0),
        (r#"tollgate_cache_misses_total{cache="verified_jwt"}"#, 1.0),
        (r#"tollgate_jwks_keys{provider="ops"}"#, 1.0),
        (r#"tollgate_config_reloads_total{outcome="success"}"#, 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
    let version = format!(
        "tollgate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "{text}");
}
