//! tollgate: an external authorization service for Envoy and Istio.
//!
//! Envoy's ext_authz filter calls `envoy.service.auth.v3.Authorization/Check`
//! for every request. tollgate finds the route policy for the request, takes
//! the bearer token from where the config says to look, verifies it against
//! its issuer's keys or asks the issuer (RFC 7662 introspection), enforces
//! the route's scopes and claims, and answers allow (with headers for the
//! upstream) or deny (401/403 with an RFC 6750 `WWW-Authenticate`). When it
//! cannot decide (an IdP outage) it returns a gRPC error so Envoy's failure
//! mode decides; it never fails open itself.
//!
//! Data flows one way: edge (`grpc`, `http`) -> `authz::Checkpoint` ->
//! `authz::Authorizer` -> edge.
//!
//! # Layers
//! Each module sits in one layer and imports only from its own layer and
//! the layers below it; no file imports itself back through others.
//! `.ci/layers.py` checks both on every CI run.
//!
//! | layer | modules | may import |
//! |---|---|---|
//! | entry | `cli`, `server`, `reload` | every layer below |
//! | edges | `grpc`, `http` | authz, runtime, leaves (never config) |
//! | config | `config` | authz, runtime, leaves |
//! | authz | `authz` | runtime, leaves |
//! | runtime | `token`, `binding`, `identity`, `tls`, `telemetry`, `audit`, `limits`, `metrics`, `devtoken` | leaves |
//! | leaves | `outcome`, `headers`, `routes`, `claims`, `secret`, `error_chain`, `fetch`, `digest` | leaves |
//!
//! A settings type lives in the module that uses it; `config` only reads
//! the file and fills them in, and only the entry layer names `config`.
//!
//! # Layout
//! - `cli`: the command line (`serve`, `check-config`, `dev-token`).
//! - `server`: binds the gRPC services, health and reflection; shutdown.
//! - `reload`: a new config on SIGHUP or a file change, swapped in whole.
//! - `grpc`: Envoy protobuf types in and out; nothing else touches them.
//! - `http`: HTTP ext_authz mode and the admin endpoints.
//! - `config`: the YAML file to the typed settings of each part, once.
//! - `authz`: the authorizer, its route policies, and the check sequence
//!   both edges share.
//! - `token`: token extraction, JWT verification, JWKS parsing and cache,
//!   introspection and its cache, providers.
//! - `binding`: sender-constrained tokens: RFC 8705 certificate binding and
//!   RFC 9449 DPoP proofs.
//! - `identity`: signed identity tokens for the upstream, and their JWKS.
//! - `tls`: TLS and mutual TLS on the listeners, reloaded when the files change.
//! - `telemetry`: log output, and OpenTelemetry spans exported over OTLP.
//! - `audit`: one record per decision, over OTLP logs or to a rotated file.
//! - `limits`: the Check path's concurrency limit and timeout.
//! - `metrics`: the Prometheus registry everything records into.
//! - `devtoken`: tokens signed with the committed development key.
//! - `outcome`: decisions, denials and faults, and each deny's wire form.
//! - `headers`: claim headers for the upstream.
//! - `routes`: host, method and path matching; path normalisation.
//! - `claims`: claim paths, scopes, route requirements, time claims.
//! - `secret`: secrets read from the environment or a file.
//! - `error_chain`: errors with their sources, for log lines.
//! - `fetch`: the rules for every call to an identity provider.
//! - `digest`: SHA-256, and the token hash caches are keyed by.

// A panic on input a request or an IdP can reach is a security bug; tests
// and benches may unwrap, since there a panic is a failed assertion.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
// No function in `src/` over 80 lines (clippy.toml sets the threshold):
// each step of a check should read in one screen.
#![warn(clippy::too_many_lines)]
// What only the `internals` module re-exports is reachable only when it is
// compiled in: every test, bench, fuzz and `clippy --all-targets` build, so
// `unreachable_pub` is checked there.
#![cfg_attr(not(any(test, fuzzing, feature = "test-util")), allow(unreachable_pub))]

mod audit;
mod authz;
mod binding;
mod claims;
mod cli;
mod config;
mod devtoken;
mod digest;
mod error_chain;
mod fetch;
mod grpc;
mod headers;
mod http;
mod identity;
mod limits;
mod metrics;
mod outcome;
mod reload;
mod routes;
mod secret;
mod server;
mod telemetry;
mod tls;
mod token;

pub use cli::Cli;
pub use config::{Config, ConfigError};
pub use devtoken::{DEV_AUDIENCE, DEV_ISSUER, DevToken, SigningKey};
pub use metrics::render as render_metrics;
pub use server::{CHECK_SERVICE_NAME, Listeners, ServeError, serve, serve_with};

/// The parts benches, fuzz targets and tests drive directly, without a
/// server: compiled for `cfg(test)`, `cfg(fuzzing)` and the `test-util`
/// feature (which the crate's own dev-dependency on itself turns on).
#[cfg(any(test, fuzzing, feature = "test-util"))]
pub mod internals {
    pub use crate::authz::{Authorizer, AuthzRequest};
    pub use crate::binding::dpop::{DpopSettings, DpopVerifier, ProofRefusal, ProofRequest};
    pub use crate::config::parse_duration;
    pub use crate::grpc::{authz_request, check_response};
    pub use crate::headers::UpstreamHeaders;
    pub use crate::outcome::{
        AuthScheme, Bound, Caller, Decision, Denial, DenyReason, DenyShape, Grant, ProofProblem,
        TokenProblem,
    };
    pub use crate::routes::{
        FindingKind, MatchSpec, PathParameters, PathSpec, RequestTarget, RouteMatcher, RouteTable,
        normalize_host, normalize_path, normalize_request_path,
    };
    pub use crate::token::expectations::Expectations;
    pub use crate::token::extract::{HeaderFormat, TokenCarrier, TokenSource, extract};
    pub use crate::token::jwk::KeySet;
    pub use crate::token::jwks::{Jwks, KeySource};
    pub use crate::token::jwt::{JwtProvider, JwtSettings, is_jws_shaped, peek};
    pub use crate::token::provider::ProviderSettings;

    /// The authorizer `config` describes, with a plain client: for benches
    /// and fuzz targets that check requests without a server.
    pub fn authorizer(config: crate::Config) -> Authorizer {
        Authorizer::new(config.authz, &reqwest::Client::new(), &[])
    }

    /// The providers `config` describes, as settings.
    pub fn providers(config: crate::Config) -> Vec<ProviderSettings> {
        config.authz.providers
    }
}
