//! Admin endpoints on `server.admin_listen`: `/healthz` (the process is
//! alive), `/readyz` (gRPC health is SERVING: every provider has keys and
//! endpoints; and not shutting down), `/metrics` (Prometheus) and
//! `/.well-known/jwks.json` (the public keys of the upstream identity tokens).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use tokio::sync::watch;

use super::{Body, response};
use crate::authz::Authorizer;

/// Answers one admin request. `serving` is `true` while gRPC health says
/// SERVING (every provider can judge tokens); `draining` turns `true` when
/// shutdown starts.
pub(crate) async fn handle(
    authorizer: Arc<Authorizer>,
    serving: watch::Receiver<bool>,
    draining: watch::Receiver<bool>,
    request: Request<Incoming>,
) -> Response<Body> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(405, "method not allowed\n");
    }
    match request.uri().path() {
        "/healthz" => text(200, "ok\n"),
        "/readyz" if *serving.borrow() && !*draining.borrow() => text(200, "ready\n"),
        "/readyz" => text(503, "not ready\n"),
        "/metrics" => response(
            200,
            [(
                "content-type".to_owned(),
                "text/plain; version=0.0.4; charset=utf-8".to_owned(),
            )],
            crate::metrics::render(),
        ),
        "/.well-known/jwks.json" => {
            let jwks = authorizer
                .identity()
                .map_or_else(|| serde_json::json!({ "keys": [] }), |minter| minter.jwks());
            response(
                200,
                [
                    ("content-type".to_owned(), "application/json".to_owned()),
                    ("cache-control".to_owned(), "max-age=300".to_owned()),
                ],
                jwks.to_string(),
            )
        }
        _ => text(404, "not found\n"),
    }
}

fn text(status: u16, body: &str) -> Response<Body> {
    response(
        status,
        [(
            "content-type".to_owned(),
            "text/plain; charset=utf-8".to_owned(),
        )],
        body.to_owned(),
    )
}
