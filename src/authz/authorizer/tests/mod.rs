//! The authorizer's decisions, with static keys and no network.
//!
//! # Layout
//! - this file: an authorizer from a few lines of routes, requests, tokens;
//! - `decisions`: allow, 400, 401 and 403 for what requests carry;
//! - `upstream`: the headers an allow sets and removes;
//! - `binding`: sender-constrained tokens, and JOSE headers as RFC 7515 reads them;
//! - `caches`: remembered verifications, per route and across a reload;
//! - `shapes`: dry runs and deny shapes.

mod binding;
mod caches;
mod decisions;
mod shapes;
mod upstream;

pub(super) use std::path::Path;
pub(super) use std::time::Duration;

pub(super) use jsonwebtoken::Algorithm;
pub(super) use serde_json::{Map, json};

pub(super) use super::*;
pub(super) use crate::Config;
pub(super) use crate::devtoken::{DevToken, SigningKey};
pub(super) use crate::outcome::Grant;

pub(super) const ISSUER: &str = "https://idp.test";

pub(super) fn authorizer(routes: &str) -> Authorizer {
    Authorizer::new(
        authorizer_config(routes).authz,
        &reqwest::Client::new(),
        &[],
    )
}

pub(super) fn authorizer_config(routes: &str) -> Config {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/jwks.json");
    let yaml = format!(
        "providers:\n  - {{name: idp, issuer: '{ISSUER}', audiences: [api], jwks_file: '{}'}}\n\
         token_sources: [{{header: authorization, scheme: Bearer}}, {{header: x-token}}]\n\
         defaults:\n  upstream_headers: {{x-sub: sub, x-client: client_id}}\n\
         routes:\n{routes}",
        keys.display()
    );
    Config::from_yaml(&yaml, Path::new(".")).unwrap()
}

pub(super) fn token(scopes: &[&str], claims: serde_json::Value) -> String {
    let pem = include_bytes!("../../../../tests/fixtures/keys/ec-p256-1.pem");
    let key = SigningKey::from_pem(pem, Algorithm::ES256, Some("ec-1".into())).unwrap();
    let serde_json::Value::Object(claims) = claims else {
        panic!("claims must be an object")
    };
    DevToken {
        issuer: ISSUER.into(),
        audience: vec!["api".into()],
        subject: "svc-1".into(),
        client_id: "client-1".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        lifetime: Duration::from_secs(300),
        claims,
    }
    .sign(&key)
    .unwrap()
}

pub(super) fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> AuthzRequest {
    AuthzRequest {
        authority: "api.test".into(),
        method: method.into(),
        path: path.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        ..AuthzRequest::default()
    }
}

pub(super) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub(super) async fn decide(authorizer: &Authorizer, request: &AuthzRequest) -> Decision {
    authorizer.check(request).await.unwrap()
}

pub(super) fn denied(decision: &Decision) -> DenyReason {
    match decision {
        Decision::Deny(denial) => denial.reason,
        Decision::Allow(_) => panic!("expected a deny, got {decision:?}"),
    }
}

pub(super) fn granted(decision: Decision) -> Grant {
    match decision {
        Decision::Allow(grant) => grant,
        Decision::Deny(denial) => panic!("expected an allow, got {denial:?}"),
    }
}

pub(super) const HTTPBIN: &str = concat!(
    "  - {name: post, match: {methods: [POST], path: {exact: /post}}, require: {scopes: [write]}}\n",
    "  - {name: get, match: {methods: [GET], path: {prefix: /}}, require: {scopes: [read]}}\n",
);
