//! The JWKS cache against a test HTTP server: discovery, refresh, rotation,
//! single flight, rate limits and outages.
//!
//! # Layout
//! - this file: the test server and the helpers every group uses;
//! - `discovery`: static keys, discovery, URL and redirect rules;
//! - `refresh`: the background schedule, rotation, staleness;
//! - `refetch`: unknown-kid refetches, their rate limit and single flight;
//! - `bodies`: what a response may be, and the task's lifetime.

mod bodies;
mod discovery;
mod refetch;
mod refresh;

pub(super) use super::remote::MAX_BODY_BYTES;
pub(super) use super::*;
pub(super) use crate::fetch::display_url;
pub(super) use reqwest::{StatusCode, Url};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex as StdMutex;
pub(super) use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
pub(super) use tokio::time::Instant;
use tokio::time::sleep;

// Relative to this file, so they resolve wherever the module is compiled.
pub(super) const JWKS: &str = include_str!("../../../../tests/fixtures/keys/jwks.json");
pub(super) const EC1: &str = include_str!("../../../../tests/fixtures/keys/ec-p256-1.jwk.json");
pub(super) const EC2: &str = include_str!("../../../../tests/fixtures/keys/ec-p256-2.jwk.json");

pub(super) fn jwks_of(keys: &[&str]) -> String {
    format!("{{\"keys\":[{}]}}", keys.join(","))
}

#[derive(Clone)]
pub(super) struct Reply {
    status: u16,
    body: Vec<u8>,
    cache_control: Option<String>,
    delay: Duration,
    content_length: bool,
    location: Option<String>,
}

impl Reply {
    pub(super) fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            body: body.into(),
            cache_control: None,
            delay: Duration::ZERO,
            content_length: true,
            location: None,
        }
    }

    pub(super) fn redirect(to: &str) -> Reply {
        Reply {
            location: Some(to.to_owned()),
            ..Reply::status(302)
        }
    }

    pub(super) fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::ok("oops")
        }
    }

    pub(super) fn max_age(self, cache_control: &str) -> Reply {
        Reply {
            cache_control: Some(cache_control.to_owned()),
            ..self
        }
    }

    pub(super) fn delayed(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }
}

#[derive(Default)]
pub(super) struct Routes {
    replies: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
}

/// A by-hand HTTP/1.1 server on 127.0.0.1:0: one request per connection,
/// configurable replies, counted hits.
pub(super) struct TestServer {
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
    pub(super) async fn start() -> TestServer {
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

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(super) fn set(&self, path: &str, reply: Reply) {
        let mut routes = self.routes.lock().unwrap();
        routes.replies.insert(path.to_owned(), reply);
    }

    pub(super) fn hits(&self, path: &str) -> usize {
        let routes = self.routes.lock().unwrap();
        routes.hits.get(path).copied().unwrap_or(0)
    }
}

pub(super) async fn answer(mut stream: TcpStream, routes: Arc<StdMutex<Routes>>) {
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

pub(super) fn remote_discovery(server: &TestServer) -> Jwks {
    Jwks::start(
        "test-idp".to_owned(),
        KeySource::Discovery {
            issuer: server.url(""),
        },
        settings(),
        reqwest::Client::new(),
    )
}

pub(super) fn settings() -> JwksSettings {
    JwksSettings::default()
}

pub(super) fn remote(server: &TestServer, settings: JwksSettings) -> Jwks {
    Jwks::start(
        "test-idp".to_owned(),
        KeySource::JwksUri(server.url("/jwks")),
        settings,
        reqwest::Client::new(),
    )
}

pub(super) async fn wait_loaded(jwks: &Jwks) {
    jwks.loaded().wait_for(|loaded| *loaded).await.unwrap();
}

/// Polls in small virtual-time steps; with paused time this also lets the
/// background task's timers fire.
pub(super) async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

pub(super) fn cause(error: JwksError) -> Arc<JwksError> {
    match error {
        JwksError::NoKeys {
            cause: Some(cause), ..
        } => cause,
        other => panic!("expected NoKeys with a cause, got {other:?}"),
    }
}
