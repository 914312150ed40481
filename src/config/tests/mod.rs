//! Config loading and validation: every refusal names its field.
//!
//! # Layout
//! - this file: a minimal config to vary, and refusing one;
//! - `loading`: the file, the environment, shapes and field names;
//! - `server`: listeners, limits, TLS;
//! - `providers`: key sources, HMAC, audiences, validation, JWKS timing;
//! - `routes`: routes, defaults, output settings and identity headers;
//! - `binding`: certificate sources, DPoP proofs, a route's `require.binding`;
//! - `audit`: the audit stream and per-client metric labels.

// figment::Jail closures return figment::Error by value, as its API requires.
#![allow(clippy::result_large_err)]

mod audit;
mod binding;
mod loading;
mod providers;
mod routes;
mod server;

pub(super) use std::path::Path;
pub(super) use std::time::Duration;

pub(super) use figment::Jail;
pub(super) use jsonwebtoken::Algorithm;

pub(super) use super::*;
pub(super) use crate::routes::PathParameters;
pub(super) use crate::telemetry::LogFormat;
pub(super) use crate::token::extract::TokenSource;

pub(super) const KEYS: &str = "../../tests/fixtures/keys/jwks.json";

pub(super) fn minimal(extra_provider: &str, routes: &str) -> String {
    format!(
        "providers:\n  - name: a\n    issuer: https://a.example\n    jwks_file: {keys}\n{extra_provider}\nroutes:\n{routes}",
        keys = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keys/jwks.json")
            .display(),
    )
}

pub(super) const ONE_ROUTE: &str = "  - name: r\n    match: { path: { prefix: / } }\n";

/// The minimal config with `setting` (YAML lines) added to its provider.
pub(super) fn with_provider_setting(setting: &str) -> String {
    minimal("", ONE_ROUTE).replace("jwks_file", &format!("{setting}\n    jwks_file"))
}

pub(super) fn refuse(yaml: &str) -> String {
    match Config::from_yaml(yaml, Path::new(".")) {
        Ok(_) => panic!("config should be refused:\n{yaml}"),
        Err(error) => error.to_string(),
    }
}

/// Every header the authorizer built from `config` strips unless it sets it.
pub(super) fn identity_headers(config: &Config) -> Vec<String> {
    crate::authz::grant::HeaderTables::new(&config.authz)
        .identity_headers()
        .to_vec()
}
