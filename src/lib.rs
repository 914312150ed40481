//! tollgate: an external authorization service for Envoy and Istio.
//!
//! Envoy's ext_authz filter calls `envoy.service.auth.v3.Authorization/Check`
//! for every request. tollgate finds the route policy for the request, takes
//! the bearer token from where the config says to look, verifies it against
//! its issuer's keys or asks the issuer (RFC 7662 introspection), enforces the route's scopes and claims, and answers
//! allow (with headers for the upstream) or deny (401/403 with an RFC 6750
//! `WWW-Authenticate`). When it cannot decide (an IdP outage) it returns a
//! gRPC error so Envoy's failure mode decides; it never fails open itself.
//!
//! Data flows one way: edge (`grpc`) -> [`authz::Authorizer`] -> edge.
//!
//! # Layout
//! - [`cli`]: the command line (`serve`, `check-config`, `dev-token`).
//! - [`config`]: the YAML file to typed, validated settings, once at start.
//! - [`server`]: binds the gRPC services, health and reflection; shutdown.
//! - [`grpc`]: Envoy protobuf types in and out; nothing else touches them.
//! - [`http`]: HTTP ext_authz mode and the admin endpoints.
//! - [`authz`]: the decision for one request, and how a deny maps to HTTP.
//! - [`routes`]: host, method and path matching; path normalisation.
//! - [`token`]: token extraction, JWT verification, JWKS parsing and cache,
//!   introspection and its cache.
//! - [`claims`]: claim paths, scopes and route requirements.
//! - [`headers`]: what is set and removed on the upstream request.
//! - [`identity`]: signed identity tokens for the upstream, and their JWKS.
//! - [`reply`]: what the client gets on a deny, shaped per route.
//! - [`limits`]: the Check path's concurrency limit and timeout, for both edges.
//! - [`metrics`]: the Prometheus registry everything records into.
//! - [`reload`]: the live authorizer, swapped on SIGHUP or a config file change.
//! - [`devtoken`]: tokens signed with the committed development key.
//! - [`tls`]: TLS and mutual TLS on the gRPC and HTTP-mode listeners, reloaded when the files change.
//! - [`telemetry`]: log output, and OpenTelemetry spans exported over OTLP.

// A panic on input a request or an IdP can reach is a security bug; tests
// and benches may unwrap, since there a panic is a failed assertion.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod authz;
pub mod claims;
pub mod cli;
pub mod config;
pub mod devtoken;
pub mod grpc;
pub mod headers;
pub mod http;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod reload;
pub mod reply;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod token;
