//! The JWKS cache against a test HTTP server: discovery, refresh, rotation,
//! single flight, rate limits and outages.

use super::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex as StdMutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::sleep;

// Relative to this file, so they resolve wherever the module is compiled.
const JWKS: &str = include_str!("../../../tests/fixtures/keys/jwks.json");
const EC1: &str = include_str!("../../../tests/fixtures/keys/ec-p256-1.jwk.json");
const EC2: &str = include_str!("../../../tests/fixtures/keys/ec-p256-2.jwk.json");

fn jwks_of(keys: &[&str]) -> String {
    format!("{{\"keys\":[{}]}}", keys.join(","))
}

#[derive(Clone)]
struct Reply {
    status: u16,
    body: Vec<u8>,
    cache_control: Option<String>,
    delay: Duration,
    content_length: bool,
    location: Option<String>,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            body: body.into(),
            cache_control: None,
            delay: Duration::ZERO,
            content_length: true,
            location: None,
        }
    }

    fn redirect(to: &str) -> Reply {
        Reply {
            location: Some(to.to_owned()),
            ..Reply::status(302)
        }
    }

    fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::ok("oops")
        }
    }

    fn max_age(self, cache_control: &str) -> Reply {
        Reply {
            cache_control: Some(cache_control.to_owned()),
            ..self
        }
    }

    fn delayed(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }
}

#[derive(Default)]
struct Routes {
    replies: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
}

/// A by-hand HTTP/1.1 server on 127.0.0.1:0: one request per connection,
/// configurable replies, counted hits.
struct TestServer {
    addr: SocketAddr,
    routes: Arc<StdMutex<Routes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = Arc::new(StdMutex::new(Routes::default()));
        let shared = Arc::clone(&routes);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&shared)));
            }
        });
        TestServer { addr, routes, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, path: &str, reply: Reply) {
        let mut routes = self.routes.lock().unwrap();
        routes.replies.insert(path.to_owned(), reply);
    }

    fn hits(&self, path: &str) -> usize {
        let routes = self.routes.lock().unwrap();
        routes.hits.get(path).copied().unwrap_or(0)
    }
}

async fn answer(mut stream: TcpStream, routes: Arc<StdMutex<Routes>>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let reply = {
        let mut routes = routes.lock().unwrap();
        *routes.hits.entry(path.clone()).or_default() += 1;
        routes
            .replies
            .get(&path)
            .cloned()
            .unwrap_or_else(|| Reply::status(404))
    };
    if !reply.delay.is_zero() {
        sleep(reply.delay).await;
    }
    let mut head = format!(
        "HTTP/1.1 {} Test\r\nContent-Type: application/json\r\nConnection: close\r\n",
        reply.status
    );
    if reply.content_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    if let Some(location) = &reply.location {
        head.push_str(&format!("Location: {location}\r\n"));
    }
    if let Some(cache_control) = &reply.cache_control {
        head.push_str(&format!("Cache-Control: {cache_control}\r\n"));
    }
    head.push_str("\r\n");
    // The client may hang up early (oversize bodies); that is fine.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&reply.body).await;
    let _ = stream.shutdown().await;
}

fn remote_discovery(server: &TestServer) -> Jwks {
    Jwks::start(
        "test-idp".to_owned(),
        KeySource::Discovery {
            issuer: server.url(""),
        },
        settings(),
        reqwest::Client::new(),
    )
}

fn settings() -> JwksSettings {
    JwksSettings::default()
}

fn remote(server: &TestServer, settings: JwksSettings) -> Jwks {
    Jwks::start(
        "test-idp".to_owned(),
        KeySource::JwksUri(server.url("/jwks")),
        settings,
        reqwest::Client::new(),
    )
}

async fn wait_loaded(jwks: &Jwks) {
    jwks.loaded().wait_for(|loaded| *loaded).await.unwrap();
}

/// Polls in small virtual-time steps; with paused time this also lets the
/// background task's timers fire.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn cause(error: JwksError) -> Arc<JwksError> {
    match error {
        JwksError::NoKeys {
            cause: Some(cause), ..
        } => cause,
        other => panic!("expected NoKeys with a cause, got {other:?}"),
    }
}

#[tokio::test]
async fn static_keys_are_always_loaded() {
    let (keys, _) = KeySet::from_json(JWKS.as_bytes()).unwrap();
    let jwks = Jwks::start(
        "static".to_owned(),
        KeySource::Static(keys),
        settings(),
        reqwest::Client::new(),
    );
    assert_eq!(jwks.current().unwrap().len(), 3);
    assert!(*jwks.loaded().borrow());
    assert_eq!(jwks.refetch_for_unknown_kid().await.unwrap().len(), 3);
}

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
async fn discovery_finds_jwks_uri_and_rediscovers_after_failure() {
    let server = TestServer::start().await;
    let issuer = server.url("");
    let discovery = |jwks_path: &str| {
        serde_json::json!({
            "issuer": issuer,
            "jwks_uri": server.url(jwks_path),
            "authorization_endpoint": server.url("/authorize"),
        })
        .to_string()
    };
    server.set(
        "/.well-known/openid-configuration",
        Reply::ok(discovery("/jwks")),
    );
    server.set("/jwks", Reply::ok(JWKS));
    let jwks = Jwks::start(
        "test-idp".to_owned(),
        // The configured issuer has a trailing slash the document lacks.
        KeySource::Discovery {
            issuer: format!("{issuer}/"),
        },
        // No background retries to muddle the counts.
        JwksSettings {
            retry_interval: Duration::from_secs(3600),
            ..settings()
        },
        reqwest::Client::new(),
    );
    wait_loaded(&jwks).await;
    assert_eq!(server.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(server.hits("/jwks"), 1);

    // The cached jwks_uri is reused while it works.
    jwks.refetch_for_unknown_kid().await.unwrap();
    assert_eq!(server.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(server.hits("/jwks"), 2);

    // The IdP moves its keys: the old URL fails, then discovery is redone.
    server.set("/jwks", Reply::status(404));
    server.set(
        "/.well-known/openid-configuration",
        Reply::ok(discovery("/keys")),
    );
    server.set("/keys", Reply::ok(jwks_of(&[EC2])));
    sleep(Duration::from_secs(31)).await;
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(keys.contains_kid("rsa-1"), "old keys keep serving");
    sleep(Duration::from_secs(31)).await;
    let keys = jwks.refetch_for_unknown_kid().await.unwrap();
    assert!(keys.contains_kid("ec-2"));
    assert_eq!(server.hits("/.well-known/openid-configuration"), 2);
    assert_eq!(server.hits("/keys"), 1);
}

#[tokio::test(start_paused = true)]
async fn discovery_refuses_another_issuer() {
    let server = TestServer::start().await;
    let document = serde_json::json!({
        "issuer": "https://evil.example",
        "jwks_uri": server.url("/jwks"),
    });
    server.set(
        "/.well-known/openid-configuration",
        Reply::ok(document.to_string()),
    );
    server.set("/jwks", Reply::ok(JWKS));
    let jwks = Jwks::start(
        "test-idp".to_owned(),
        KeySource::Discovery {
            issuer: server.url(""),
        },
        settings(),
        reqwest::Client::new(),
    );
    let error = cause(jwks.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::IssuerMismatch { found, .. } if found == "https://evil.example"),
        "{error:?}"
    );
    assert_eq!(server.hits("/jwks"), 0);
    assert!(jwks.current().is_none());
    assert!(!*jwks.loaded().borrow());
}

#[tokio::test]
async fn discovery_refuses_a_plain_http_jwks_uri() {
    let server = TestServer::start().await;
    let document = serde_json::json!({
        "issuer": server.url(""),
        "jwks_uri": "http://keys.example.com/jwks",
    });
    server.set(
        "/.well-known/openid-configuration",
        Reply::ok(document.to_string()),
    );
    let jwks = remote_discovery(&server);
    let error = cause(jwks.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::InsecureUrl { uri, .. } if uri == "http://keys.example.com/jwks"),
        "{error:?}"
    );
    assert!(jwks.current().is_none());
}

#[tokio::test]
async fn redirects_are_followed_only_where_they_keep_transport_security() {
    let server = TestServer::start().await;
    server.set("/moved", Reply::redirect(&server.url("/jwks")));
    server.set("/jwks", Reply::ok(JWKS));
    server.set("/away", Reply::redirect("http://keys.example.com/jwks"));
    let client = || {
        reqwest::Client::builder()
            .redirect(super::redirect_policy())
            .build()
            .unwrap()
    };
    let fetch = |path: &str| {
        Jwks::start(
            "test-idp".to_owned(),
            KeySource::JwksUri(server.url(path)),
            settings(),
            client(),
        )
    };
    let moved = fetch("/moved");
    wait_loaded(&moved).await;
    assert_eq!(server.hits("/jwks"), 1);

    let away = fetch("/away");
    let error = cause(away.refetch_for_unknown_kid().await.unwrap_err());
    assert!(
        matches!(error.as_ref(), JwksError::Http { .. }),
        "{error:?}"
    );
    assert!(away.current().is_none());
}

#[test]
fn key_urls_must_be_https_or_loopback_http() {
    let url = |u: &str| reqwest::Url::parse(u).unwrap();
    for ok in [
        "https://idp.example.com/jwks",
        "http://localhost:8080/jwks",
        "http://127.0.0.1/jwks",
        "http://127.0.0.2/jwks",
        "http://[::1]:9000/jwks",
    ] {
        assert_eq!(super::check_key_url(&url(ok), None), Ok(()), "{ok}");
    }
    for bad in [
        "http://idp.example.com/jwks",
        "http://10.0.0.1/jwks",
        "ftp://idp.example.com/jwks",
        "file:///etc/jwks.json",
    ] {
        assert!(super::check_key_url(&url(bad), None).is_err(), "{bad}");
    }
    // https never leads to http, not even to loopback.
    let from = url("https://idp.example.com/");
    assert!(super::check_key_url(&url("http://localhost/jwks"), Some(&from)).is_err());
    assert!(super::check_key_url(&url("https://cdn.example.com/jwks"), Some(&from)).is_ok());
}

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
fn cache_control_parsing() {
    let parse = |values: &[&str]| {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, value.parse().unwrap());
        }
        cache_max_age(&headers)
    };
    assert_eq!(parse(&[]), None);
    assert_eq!(parse(&["max-age=300"]), Some(Duration::from_secs(300)));
    assert_eq!(
        parse(&["public, Max-Age = 120 , must-revalidate"]),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse(&["public", "max-age=\"7\""]),
        Some(Duration::from_secs(7))
    );
    assert_eq!(parse(&["max-age=300", "no-store"]), None);
    assert_eq!(parse(&["no-cache"]), None);
    assert_eq!(parse(&["max-age=soon"]), None);
    assert_eq!(parse(&["s-maxage=10"]), None);
}

#[test]
fn issuer_comparison_tolerates_only_a_trailing_slash() {
    assert!(same_issuer("https://idp.example", "https://idp.example"));
    assert!(same_issuer("https://idp.example/", "https://idp.example"));
    assert!(same_issuer("https://idp.example", "https://idp.example/"));
    assert!(!same_issuer("https://idp.example//", "https://idp.example"));
    assert!(!same_issuer("https://IDP.example", "https://idp.example"));
    assert!(!same_issuer(
        "https://idp.example/tenant",
        "https://idp.example"
    ));
}

#[test]
fn urls_are_shown_without_credentials_or_query() {
    let url = Url::parse("https://user:secret@idp.example/keys?api_key=s3cret").unwrap();
    assert_eq!(display_url(&url), "https://idp.example/keys?redacted");
    let plain = Url::parse("https://idp.example/keys").unwrap();
    assert_eq!(display_url(&plain), "https://idp.example/keys");
    let error = JwksError::Status {
        uri: display_url(&url),
        status: StatusCode::BAD_GATEWAY,
    };
    assert!(!error.to_string().contains("secret"));
}
