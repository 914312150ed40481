//! An HTTP/1.1 upstream that answers every request 200 with a JSON echo of
//! what reached it, so tests can see exactly what Envoy forwarded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The echo server; it stops (with its open connections) when dropped.
///
/// The body is `{"method": "GET", "path": "/a?b=c", "headers": {"name":
/// ["value", ...]}}`: `path` includes the query, header names are
/// lower-case and every value is kept in arrival order, so duplicated
/// headers show up as more than one value.
#[derive(Debug)]
pub struct EchoUpstream {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl EchoUpstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the echo upstream on 127.0.0.1:0");
        let addr = listener.local_addr().expect("echo upstream address");
        let requests = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn(serve(listener, Arc::clone(&requests)));
        Self {
            addr,
            requests,
            server,
        }
    }

    /// How many requests have reached this upstream.
    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, aborting connections.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, requests: Arc<AtomicUsize>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let requests = Arc::clone(&requests);
        connections.spawn(async move {
            let service = service_fn(move |request| {
                requests.fetch_add(1, Ordering::SeqCst);
                echo(request)
            });
            // A peer resetting its connection is not the test's concern.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        // Reap finished connections so a long test does not accumulate them.
        while connections.try_join_next().is_some() {}
    }
}

async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut headers = serde_json::Map::new();
    for (name, value) in request.headers() {
        let values = headers
            .entry(name.as_str())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(values) = values {
            values.push(String::from_utf8_lossy(value.as_bytes()).into());
        }
    }
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let body = serde_json::json!({
        "method": request.method().as_str(),
        "path": path,
        "headers": headers,
    });
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|e| panic!("building the echo response: {e}"));
    Ok(response)
}
