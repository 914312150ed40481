//! The HTTP side: a small HTTP/1.1 server (accept loop, one task per
//! connection, graceful stop) that serves the admin endpoints and HTTP
//! ext_authz mode.
//!
//! # Layout
//! - [`authz`]: HTTP ext_authz mode, for Envoy's `http_service`.
//! - [`admin`]: `/healthz`, `/readyz` and `/.well-known/jwks.json`.

pub(crate) mod admin;
pub(crate) mod authz;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::authz::Checkpoint;
use crate::tls::{Alpn, HANDSHAKE_TIMEOUT, ServerTls};

/// Response bodies: small and complete.
pub(crate) type Body = Full<Bytes>;

/// Answers one request.
pub(crate) type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// Most request headers accepted; Envoy forwards every client header in
/// HTTP mode, so the limit is above hyper's default of 100.
const MAX_HEADERS: usize = 256;
/// A client that has not sent its headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may finish after the stop signal.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed accept (out of file descriptors, say), so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `handler` on `listener` until `stop` turns `true` (or its sender
/// is dropped), then lets open connections finish for a bounded time.
pub(crate) async fn serve(
    listener: TcpListener,
    name: &'static str,
    handler: Handler,
    tls: Option<Arc<ServerTls>>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let stopped = async move {
        // The guard `wait_for` returns is not `Send`; only the fact matters.
        let _ = stop.wait_for(|stopped| *stopped).await.map(drop);
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(server = name, %error, "cannot accept a connection");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let handler = handler.clone();
                let service = service_fn(move |request| {
                    let response = handler(request);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_headers(MAX_HEADERS);
                let Some(tls) = &tls else {
                    let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(server = name, %error, "connection ended with an error");
                        }
                    });
                    continue;
                };
                // The handshake runs in the connection's task, so a slow
                // client delays no other.
                let acceptor = tls.acceptor(Alpn::Http1);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    let Ok(Ok(stream)) = handshake else {
                        tracing::debug!(server = name, "TLS handshake refused or timed out");
                        return;
                    };
                    let connection = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
                    if let Err(error) = connection.await {
                        tracing::debug!(server = name, %error, "connection ended with an error");
                    }
                });
            }
            () = &mut stopped => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_GRACE) => {
            tracing::warn!(server = name, grace = ?DRAIN_GRACE, "drain grace period elapsed; closing connections");
        }
    }
}

/// HTTP ext_authz mode as configured: where it listens, with which TLS,
/// and the path prefix Envoy puts before each path.
pub(crate) struct HttpMode {
    pub(crate) listener: TcpListener,
    pub(crate) tls: Option<Arc<ServerTls>>,
    pub(crate) path_prefix: Option<Arc<str>>,
}

/// Starts the HTTP-mode and admin servers on the listeners given; they stop
/// when `stop` turns `true`. `serving` mirrors gRPC health SERVING. Checks
/// in HTTP mode go through `checkpoint`, as gRPC's do, so they share its
/// limits.
pub(crate) fn spawn(
    checkpoint: &Arc<Checkpoint>,
    http: Option<HttpMode>,
    admin: Option<TcpListener>,
    stop: &tokio::sync::watch::Receiver<bool>,
    serving: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let start = |listener: TcpListener, name: &'static str, what: &str, handler, tls| {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "serving {what}");
        }
        tokio::spawn(serve(listener, name, handler, tls, stop.clone()))
    };
    let mut servers = Vec::new();
    if let Some(HttpMode {
        listener,
        tls: http_tls,
        path_prefix,
    }) = http
    {
        let checkpoint = checkpoint.clone();
        // Each check takes the authorizer current at its start, so a
        // reload never changes a check in flight.
        let handler: Handler = Arc::new(move |request| {
            Box::pin(authz::handle(
                checkpoint.clone(),
                path_prefix.clone(),
                request,
            ))
        });
        servers.push(start(
            listener,
            "http-authz",
            "HTTP ext_authz mode",
            handler,
            http_tls,
        ));
    }
    if let Some(listener) = admin {
        let live = checkpoint.live().clone();
        let draining = stop.clone();
        let handler: Handler = Arc::new(move |request| {
            Box::pin(admin::handle(
                live.current(),
                serving.clone(),
                draining.clone(),
                request,
            ))
        });
        // Plaintext: Prometheus and kubelet probes reach it.
        servers.push(start(listener, "admin", "admin endpoints", handler, None));
    }
    servers
}

/// A response with `status`, `headers` and `body`. A header that cannot be
/// sent (never the case for what config and claim rendering let through) is
/// left out with a log line rather than failing the answer.
pub(crate) fn response(
    status: u16,
    headers: impl IntoIterator<Item = (String, String)>,
    body: String,
) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let map = response.headers_mut();
    for (name, value) in headers {
        match (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            (Ok(name), Ok(value)) => {
                map.insert(name, value);
            }
            _ => tracing::warn!(header = %name, "header cannot be sent over HTTP; left out"),
        }
    }
    response
}
