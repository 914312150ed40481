//! Introspection against a test endpoint: client authentication, the
//! request's form, the cache's lifetimes and single flight, discovery, and
//! failures that must be faults.
//!
//! # Layout
//! - this file: the test endpoint and the helpers every group uses;
//! - `auth`: client authentication, headers, redirects;
//! - `cache`: lifetimes, single flight, the inactive cache;
//! - `discovery`: finding the endpoint in the issuer's metadata;
//! - `faults`: answers that are no answer.

mod auth;
mod cache;
mod discovery;
mod faults;

pub(super) use super::*;
pub(super) use crate::secret::Secret;
pub(super) use crate::token::introspection::error::IntrospectionError;
pub(super) use crate::token::introspection::response::ResponseError;
pub(super) use crate::token::introspection::settings::{CacheSettings, ClientAuth};
pub(super) use base64::Engine as _;
pub(super) use base64::engine::general_purpose::STANDARD;
pub(super) use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
pub(super) use std::sync::Mutex as StdMutex;
pub(super) use std::sync::atomic::{AtomicUsize, Ordering};
pub(super) use tokio::task::JoinSet;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request as the endpoint saw it.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) path: String,
    pub(super) authorization: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) extra: Option<String>,
    pub(super) form: Vec<(String, String)>,
}

#[derive(Clone)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: String,
    pub(super) delay: Duration,
    pub(super) location: Option<String>,
}

pub(super) fn reply(body: impl Into<String>) -> Reply {
    Reply {
        status: 200,
        body: body.into(),
        delay: Duration::ZERO,
        location: None,
    }
}

pub(super) type Answer = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// An HTTP/1.1 endpoint on 127.0.0.1:0 that records requests and answers
/// with a function of them.
pub(super) struct TestEndpoint {
    pub(super) addr: std::net::SocketAddr,
    pub(super) seen: Arc<StdMutex<Vec<Seen>>>,
    pub(super) calls: Arc<AtomicUsize>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Drop for TestEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestEndpoint {
    pub(super) async fn start(
        answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> TestEndpoint {
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
        TestEndpoint {
            addr,
            seen,
            calls,
            task,
        }
    }

    pub(super) fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(super) fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

pub(super) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
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

pub(super) fn secret_from_file(text: &str) -> Secret {
    let dir = std::env::temp_dir().join(format!("tollgate-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{:x}", crate::digest::sha256(text.as_bytes())[0]));
    std::fs::write(&path, text).unwrap();
    Secret::load(None, Some(&path)).unwrap()
}

pub(super) fn settings(endpoint: Url, client_auth: ClientAuth) -> IntrospectionSettings {
    IntrospectionSettings {
        endpoint: Endpoint::Configured(endpoint),
        client_auth,
        headers: HeaderMap::new(),
        introspect_jwts: false,
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        cache: CacheSettings::default(),
    }
}

pub(super) fn introspector(settings: IntrospectionSettings) -> Introspector {
    Introspector::new(
        "idp".into(),
        settings,
        Expectations::default(),
        reqwest::Client::new(),
    )
}

pub(super) fn active(extra: &str) -> String {
    format!(r#"{{"active":true,"scope":"read write","client_id":"c1"{extra}}}"#)
}

pub(super) fn later(seconds: u64) -> u64 {
    unix_now() + seconds
}
