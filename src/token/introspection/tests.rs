//! Introspection against a test endpoint: client authentication, the
//! request's form, parsing, the cache's lifetimes and single flight, and
//! failures that must be faults.

use super::*;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::token::TokenProblem;

/// A request as the endpoint saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    extra: Option<String>,
    form: Vec<(String, String)>,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
    location: Option<String>,
}

fn reply(body: impl Into<String>) -> Reply {
    Reply {
        status: 200,
        body: body.into(),
        delay: Duration::ZERO,
        location: None,
    }
}

type Answer = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// An HTTP/1.1 endpoint on 127.0.0.1:0 that records requests and answers
/// with a function of them.
struct Endpoint {
    addr: std::net::SocketAddr,
    seen: Arc<StdMutex<Vec<Seen>>>,
    calls: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Endpoint {
    async fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let answer: Answer = Arc::new(answer);
        let (task_seen, task_calls) = (Arc::clone(&seen), Arc::clone(&calls));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, calls, answer) = (
                    Arc::clone(&task_seen),
                    Arc::clone(&task_calls),
                    Arc::clone(&answer),
                );
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<Incoming>| {
                        let (seen, calls, answer) =
                            (Arc::clone(&seen), Arc::clone(&calls), Arc::clone(&answer));
                        async move {
                            let header = |name: &str| {
                                request
                                    .headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned)
                            };
                            let mut request_seen = Seen {
                                path: request.uri().path().to_owned(),
                                authorization: header("authorization"),
                                content_type: header("content-type"),
                                extra: header("x-extra"),
                                form: Vec::new(),
                            };
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            request_seen.form = parse_form(&body);
                            calls.fetch_add(1, Ordering::SeqCst);
                            seen.lock().unwrap().push(request_seen.clone());
                            let reply = answer(&request_seen);
                            tokio::time::sleep(reply.delay).await;
                            let mut response = hyper::Response::builder()
                                .status(reply.status)
                                .header("content-type", "application/json");
                            if let Some(location) = &reply.location {
                                response = response.header("location", location);
                            }
                            Ok::<_, std::convert::Infallible>(
                                response.body(Full::new(Bytes::from(reply.body))).unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Endpoint {
            addr,
            seen,
            calls,
            task,
        }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let text = text.replace('+', " ");
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (decode(name), decode(value))
        })
        .collect()
}

fn secret_from_file(text: &str) -> Secret {
    let dir = std::env::temp_dir().join(format!("tollgate-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{:x}", token_key(text)[0]));
    std::fs::write(&path, text).unwrap();
    Secret::load(None, Some(&path)).unwrap()
}

fn settings(endpoint: Url, client_auth: ClientAuth) -> IntrospectionSettings {
    IntrospectionSettings {
        endpoint: super::Endpoint::Configured(endpoint),
        client_auth,
        headers: HeaderMap::new(),
        introspect_jwts: false,
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        cache: CacheSettings::default(),
    }
}

fn introspector(settings: IntrospectionSettings) -> Introspector {
    Introspector::new(
        "idp".into(),
        settings,
        Expectations::default(),
        reqwest::Client::new(),
    )
}

fn active(extra: &str) -> String {
    format!(r#"{{"active":true,"scope":"read write","client_id":"c1"{extra}}}"#)
}

fn later(seconds: u64) -> u64 {
    unix_now() + seconds
}

#[tokio::test]
async fn client_secret_basic_sends_credentials_in_the_header_only() {
    let idp = Endpoint::start(|_| reply(active(""))).await;
    let i = introspector(settings(
        idp.url("/introspect"),
        ClientAuth::ClientSecretBasic {
            client_id: "my:client".into(),
            secret: secret_from_file("p@ss word"),
        },
    ));
    let answer = i.introspect("opaque-token-1").await.unwrap();
    assert!(matches!(answer, Introspection::Active(ref c) if c["client_id"] == "c1"));
    let seen = idp.last();
    assert_eq!(seen.path, "/introspect");
    // RFC 6749 §2.3.1: form-encode id and secret, then base64 the pair.
    let expected = format!("Basic {}", STANDARD.encode("my%3Aclient:p%40ss+word"));
    assert_eq!(seen.authorization.as_deref(), Some(expected.as_str()));
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.form,
        [
            ("token".to_owned(), "opaque-token-1".to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
        ]
    );
}

#[tokio::test]
async fn client_secret_post_sends_credentials_in_the_body() {
    let idp = Endpoint::start(|_| reply(active(""))).await;
    let i = introspector(settings(
        idp.url("/introspect"),
        ClientAuth::ClientSecretPost {
            client_id: "tollgate".into(),
            secret: secret_from_file("s3cret&=+"),
        },
    ));
    i.introspect("a token/with+odd=chars").await.unwrap();
    let seen = idp.last();
    assert_eq!(seen.authorization, None);
    assert_eq!(
        seen.form,
        [
            ("token".to_owned(), "a token/with+odd=chars".to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
            ("client_id".to_owned(), "tollgate".to_owned()),
            ("client_secret".to_owned(), "s3cret&=+".to_owned()),
        ]
    );
}

#[tokio::test]
async fn configured_headers_are_sent() {
    let idp = Endpoint::start(|_| reply(active(""))).await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.headers
        .insert(AUTHORIZATION, HeaderValue::from_static("Basic a3ltYTp4"));
    s.headers
        .insert("x-extra", HeaderValue::from_static("kyma"));
    introspector(s).introspect("t").await.unwrap();
    let seen = idp.last();
    assert_eq!(seen.authorization.as_deref(), Some("Basic a3ltYTp4"));
    assert_eq!(seen.extra.as_deref(), Some("kyma"));
}

#[tokio::test]
async fn answers_are_cached_by_token() {
    let idp = Endpoint::start(|seen| {
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
            i.introspect("good").await.unwrap(),
            Introspection::Active(_)
        ));
        assert!(matches!(
            i.introspect("bad").await.unwrap(),
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
    let idp = Endpoint::start(|seen| {
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
    i.introspect("good").await.unwrap();
    for n in 0..500 {
        let answer = i.introspect(&format!("made-up-{n}")).await.unwrap();
        assert!(matches!(answer, Introspection::Inactive));
    }
    let entries = i.cached_entries().await;
    assert_eq!(entries.active, 1, "{entries:?}");
    assert!(entries.inactive <= 5, "a tenth of max_entries: {entries:?}");
    let calls = idp.calls();
    assert!(matches!(
        i.introspect("good").await.unwrap(),
        Introspection::Active(_)
    ));
    assert_eq!(idp.calls(), calls, "the active answer came from the cache");
}

#[tokio::test]
async fn concurrent_checks_of_one_token_share_one_call() {
    let idp = Endpoint::start(|_| Reply {
        delay: Duration::from_millis(300),
        ..reply(active(""))
    })
    .await;
    let i = Arc::new(introspector(settings(idp.url("/i"), ClientAuth::None)));
    let mut checks = JoinSet::new();
    for _ in 0..25 {
        let i = Arc::clone(&i);
        checks.spawn(async move { i.introspect("same-token").await.is_ok() });
    }
    while let Some(ok) = checks.join_next().await {
        assert!(ok.unwrap());
    }
    assert_eq!(idp.calls(), 1);
}

#[tokio::test]
async fn inactive_answers_expire_after_inactive_ttl() {
    let idp = Endpoint::start(|_| reply(r#"{"active":false}"#)).await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.cache.inactive_ttl = Duration::from_millis(300);
    let i = introspector(s);
    i.introspect("t").await.unwrap();
    i.introspect("t").await.unwrap();
    assert_eq!(idp.calls(), 1, "cached while fresh");
    tokio::time::sleep(Duration::from_millis(600)).await;
    i.introspect("t").await.unwrap();
    assert_eq!(idp.calls(), 2, "asked again once expired");
}

#[tokio::test]
async fn active_answers_never_outlive_exp() {
    // `exp` is whole seconds, so this entry lives between 2 and 3 s: long
    // enough that a loaded machine still makes the second call in time.
    let exp = later(3);
    let idp = Endpoint::start(move |_| reply(active(&format!(r#","exp":{exp}"#)))).await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.cache.ttl = Duration::from_secs(3600);
    let i = introspector(s);
    i.introspect("t").await.unwrap();
    i.introspect("t").await.unwrap();
    assert_eq!(idp.calls(), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    i.introspect("t").await.unwrap();
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

#[tokio::test]
async fn failures_are_errors_and_are_not_cached() {
    let idp = Endpoint::start(|seen| match seen.form[0].1.as_str() {
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
        let error = i.introspect(token).await.unwrap_err();
        let text = crate::telemetry::ErrorChain(error.as_ref()).to_string();
        assert!(!text.contains(token) || token == "500", "{text}");
        i.introspect(token).await.unwrap_err();
    }
    assert_eq!(idp.calls(), 10, "errors are retried, not cached");
    assert!(matches!(
        *i.introspect("500").await.unwrap_err(),
        IntrospectionError::Status { .. }
    ));
    assert!(matches!(
        *i.introspect("garbage").await.unwrap_err(),
        IntrospectionError::Response {
            source: ResponseError::NotJson(_),
            ..
        }
    ));
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let idp = Endpoint::start(|_| Reply {
        delay: Duration::from_secs(5),
        ..reply(active(""))
    })
    .await;
    let mut s = settings(idp.url("/i"), ClientAuth::None);
    s.timeout = Duration::from_millis(200);
    let error = introspector(s).introspect("t").await.unwrap_err();
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
        .introspect("secret-token-value")
        .await
        .unwrap_err();
    let text = crate::telemetry::ErrorChain(error.as_ref()).to_string();
    assert!(matches!(*error, IntrospectionError::Http { .. }), "{text}");
    assert!(!text.contains("secret-token-value"), "{text}");
}

fn discovered(issuer: &str) -> IntrospectionSettings {
    IntrospectionSettings {
        endpoint: super::Endpoint::Discovered {
            issuer: issuer.to_owned(),
        },
        ..settings(Url::parse("http://unused/").unwrap(), ClientAuth::None)
    }
}

#[tokio::test]
async fn the_endpoint_comes_from_openid_configuration() {
    let issuer = Arc::new(StdMutex::new(String::new()));
    let shared = Arc::clone(&issuer);
    let idp = Endpoint::start(move |seen| {
        let issuer = shared.lock().unwrap().clone();
        match seen.path.as_str() {
            "/.well-known/openid-configuration" => reply(format!(
                r#"{{"issuer":"{issuer}","introspection_endpoint":"{issuer}/token/introspection"}}"#
            )),
            "/token/introspection" => reply(active("")),
            _ => Reply {
                status: 404,
                ..reply("{}")
            },
        }
    })
    .await;
    let url = format!("http://{}", idp.addr);
    *issuer.lock().unwrap() = url.clone();
    let i = introspector(discovered(&url));
    i.ready(Duration::from_millis(50)).await;
    i.introspect("t").await.unwrap();
    assert_eq!(idp.last().path, "/token/introspection");
}

#[tokio::test]
async fn rfc8414_metadata_is_the_fallback() {
    let issuer = Arc::new(StdMutex::new(String::new()));
    let shared = Arc::clone(&issuer);
    let idp = Endpoint::start(move |seen| {
        let issuer = shared.lock().unwrap().clone();
        match seen.path.as_str() {
            "/.well-known/oauth-authorization-server/tenant" => reply(format!(
                r#"{{"issuer":"{issuer}","introspection_endpoint":"{issuer}/introspect"}}"#
            )),
            "/tenant/introspect" => reply(active("")),
            _ => Reply {
                status: 404,
                ..reply("{}")
            },
        }
    })
    .await;
    let url = format!("http://{}/tenant", idp.addr);
    *issuer.lock().unwrap() = url.clone();
    let i = introspector(discovered(&url));
    i.introspect("t").await.unwrap();
    assert_eq!(idp.last().path, "/tenant/introspect");
}

#[tokio::test]
async fn checks_queued_behind_a_failing_discovery_share_its_outcome() {
    // Every metadata URL answers 500, slowly enough that all the checks
    // below queue behind the first attempt.
    let idp = Endpoint::start(|_| Reply {
        status: 500,
        delay: Duration::from_millis(300),
        ..reply("{}")
    })
    .await;
    let i = Arc::new(introspector(discovered(&format!("http://{}", idp.addr))));
    let mut checks = JoinSet::new();
    for n in 0..10 {
        let i = Arc::clone(&i);
        checks.spawn(async move { i.introspect(&format!("token-{n}")).await });
    }
    while let Some(outcome) = checks.join_next().await {
        let error = outcome.unwrap().unwrap_err();
        assert!(
            matches!(*error, IntrospectionError::Discovery { ref reason, .. } if reason.contains("HTTP 500")),
            "{error:?}"
        );
    }
    // One attempt: OIDC Discovery, then RFC 8414. Each check retrying in
    // turn would have made 20 requests, the last check waiting for all.
    assert_eq!(idp.calls(), 2);
    // A later check tries again.
    i.introspect("later").await.unwrap_err();
    assert_eq!(idp.calls(), 4);
}

#[tokio::test]
async fn metadata_of_another_issuer_is_refused() {
    let idp = Endpoint::start(|_| {
        reply(r#"{"issuer":"https://evil.example","introspection_endpoint":"https://evil.example/i"}"#)
    })
    .await;
    let i = introspector(discovered(&format!("http://{}", idp.addr)));
    let error = i.introspect("t").await.unwrap_err();
    assert!(
        matches!(*error, IntrospectionError::Discovery { ref reason, .. } if reason.contains("evil")),
        "{error:?}"
    );
}

#[test]
fn responses_parse_strictly() {
    assert!(matches!(
        Introspection::parse(br#"{"active":false}"#),
        Ok(Introspection::Inactive)
    ));
    let Ok(Introspection::Active(claims)) =
        Introspection::parse(br#"{"active":true,"scope":"read","ext":{"tenant":"a"}}"#)
    else {
        panic!("active answer not parsed");
    };
    assert_eq!(claims.get("active"), None, "`active` is not a claim");
    assert_eq!(claims["ext"]["tenant"], "a", "other members are kept");
    for body in [
        &b"not json"[..],
        b"[]",
        b"{}",
        br#"{"active":1}"#,
        br#"{"active":null}"#,
    ] {
        assert!(Introspection::parse(body).is_err(), "{body:?}");
    }
}

fn expect(issuer: Option<&str>, audiences: &[&str]) -> Expectations {
    Expectations {
        issuer: issuer.map(str::to_owned),
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        leeway: Duration::from_secs(30),
    }
}

fn claims(json: serde_json::Value) -> Map<String, Value> {
    json.as_object().unwrap().clone()
}

#[test]
fn active_answers_are_held_to_the_provider() {
    use serde_json::json;
    let now = 1_000_000;
    let check = |c: Value, e: &Expectations| response::validate(&claims(c), e, now);
    let open = expect(None, &[]);
    assert_eq!(check(json!({"scope": "read"}), &open), Ok(()));
    assert_eq!(
        check(json!({"exp": now - 31}), &open),
        Err(TokenProblem::Expired)
    );
    assert_eq!(check(json!({"exp": now - 10}), &open), Ok(()), "leeway");
    assert_eq!(
        check(json!({"nbf": now + 60}), &open),
        Err(TokenProblem::NotYetValid)
    );
    assert_eq!(
        check(json!({"iat": now + 60}), &open),
        Err(TokenProblem::NotYetValid)
    );
    assert_eq!(
        check(json!({"exp": "tomorrow"}), &open),
        Err(TokenProblem::InvalidClaims)
    );

    let issuer = expect(Some("https://idp.example"), &[]);
    assert_eq!(check(json!({}), &issuer), Ok(()), "iss is optional");
    assert_eq!(
        check(json!({"iss": "https://idp.example/"}), &issuer),
        Ok(())
    );
    assert_eq!(
        check(json!({"iss": "https://other.example"}), &issuer),
        Err(TokenProblem::UnknownIssuer)
    );

    let audience = expect(None, &["api"]);
    assert_eq!(check(json!({"aud": "api"}), &audience), Ok(()));
    assert_eq!(check(json!({"aud": ["x", "api"]}), &audience), Ok(()));
    assert_eq!(
        check(json!({"aud": "other"}), &audience),
        Err(TokenProblem::WrongAudience)
    );
    assert_eq!(
        check(json!({}), &audience),
        Err(TokenProblem::WrongAudience)
    );

    for not_access in [
        json!({"token_type": "refresh_token"}),
        json!({"token_use": "refresh_token"}),
        json!({"typ": "ID"}),
        json!({"typ": "Refresh"}),
    ] {
        assert_eq!(
            check(not_access.clone(), &open),
            Err(TokenProblem::NotAccessToken),
            "{not_access}"
        );
    }
    assert_eq!(check(json!({"token_type": "Bearer"}), &open), Ok(()));
}

#[test]
fn form_components_are_encoded() {
    assert_eq!(form_component(b"abc-._*XYZ019"), "abc-._*XYZ019");
    assert_eq!(form_component(b"a b&c=d+e/f"), "a+b%26c%3Dd%2Be%2Ff");
    assert_eq!(
        encode_form(&[("token", b"x y"), ("token_type_hint", b"access_token")]),
        "token=x+y&token_type_hint=access_token"
    );
}

#[tokio::test]
async fn redirects_are_never_followed_with_a_token_and_credentials() {
    let thief = Endpoint::start(|_| reply(active(""))).await;
    let to = thief.url("/steal").to_string();
    let idp = Endpoint::start(move |_| Reply {
        status: 307,
        location: Some(to.clone()),
        ..reply("")
    })
    .await;
    let dir = std::env::temp_dir().join(format!("tollgate-redirect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), "s3cret").unwrap();
    let yaml = format!(
        "providers:\n  - {{name: p, introspection: {{endpoint: '{}', client_id: c, auth_method: client_secret_post, client_secret: {{file: secret}}}}}}\nroutes: [{{name: r}}]\n",
        idp.url("/i")
    );
    let mut config = crate::config::Config::from_yaml(&yaml, &dir).unwrap();
    let provider = crate::token::provider::Provider::start(
        config.providers.remove(0),
        &reqwest::Client::new(),
    );
    let error = provider
        .introspection()
        .unwrap()
        .introspect("t")
        .await
        .unwrap_err();
    assert!(
        matches!(*error, IntrospectionError::Status { status, .. } if status == 307),
        "{error:?}"
    );
    assert_eq!(idp.calls(), 1);
    assert_eq!(thief.calls(), 0, "the redirect target saw the token");
}
