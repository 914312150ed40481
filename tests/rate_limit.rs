//! Rate limiting by caller, the README recipe run through the real Envoy:
//! tollgate returns the caller's `client_id` as dynamic metadata, and
//! Envoy's in-process `local_ratelimit` filter, after ext_authz, keys its
//! token buckets on it, per route: client A at its own low rate, every
//! other client in a bucket of its own, and a route without limits.

mod support;

use std::time::Duration;

use support::idp::{Idp, jwks_of};
use support::tokens::Token;
use support::{EchoUpstream, Envoy, EnvoyOptions, Response, ScratchDir, TollgateProcess};

const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");

/// The local rate limit of route `/api`: `client-a` may send 2 requests a
/// minute; any other client id gets a bucket of its own of 3 a minute
/// (an entry without a value: one bucket per distinct value, at most
/// `max_dynamic_descriptors` of them); a request without the metadata
/// falls back to the route's bucket.
const LIMITED_ROUTE: &str = r#"- match: { prefix: "/api" }
  route: { cluster: upstream }
  typed_per_filter_config:
    envoy.filters.http.local_ratelimit:
      "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
      stat_prefix: per_client
      token_bucket: { max_tokens: 1000, tokens_per_fill: 1000, fill_interval: 1s }
      filter_enabled:
        default_value: { numerator: 100, denominator: HUNDRED }
      filter_enforced:
        default_value: { numerator: 100, denominator: HUNDRED }
      rate_limits:
      - actions:
        - metadata:
            descriptor_key: client_id
            metadata_key:
              key: envoy.filters.http.ext_authz
              path: [ { key: client_id } ]
            source: DYNAMIC
      descriptors:
      - entries: [ { key: client_id, value: client-a } ]
        token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }
      - entries: [ { key: client_id } ]
        token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: 60s }
      max_dynamic_descriptors: 1000
- match: { prefix: "/" }
  route: { cluster: upstream }
"#;

/// The filter itself, after ext_authz; limits come from the routes.
const LOCAL_RATELIMIT_FILTER: &str = r#"- name: envoy.filters.http.local_ratelimit
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
    stat_prefix: per_client
"#;

fn tollgate_config(idp: &Idp) -> String {
    format!(
        "server:\n  grpc_listen: 127.0.0.1:0\nproviders:\n  - name: idp\n    issuer: {issuer}\n    jwks_uri: {jwks}\nroutes:\n  - name: all\n    match: {{ path: {{ prefix: / }} }}\n    require: {{ scopes: [read] }}\n    metadata_claims: [client_id]\n",
        issuer = idp.base_url(),
        jwks = idp.jwks_uri(),
    )
}

fn bearer(idp: &Idp, client: &str) -> String {
    let token = Token::es256()
        .issuer(idp.base_url())
        .client_id(client)
        .scopes(["read"])
        .lifetime(Duration::from_secs(600))
        .sign();
    format!("Bearer {token}")
}

/// The statuses of `count` requests to `path` as `client`.
async fn statuses(envoy: &Envoy, path: &str, authorization: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let response: Response =
            support::get(&envoy.url(path), &[("authorization", authorization)]).await;
        if response.status == 429 {
            assert_eq!(response.body, "local_rate_limited");
        }
        statuses.push(response.status);
    }
    statuses
}

#[tokio::test]
async fn envoy_limits_each_caller_by_the_client_id_tollgate_returns() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let dir = ScratchDir::new("rate-limit");
    let path = dir.join("tollgate.yaml");
    std::fs::write(&path, tollgate_config(&idp)).unwrap();
    let tollgate = TollgateProcess::serve_file(&path, &[]).await;
    tollgate.wait_until_serving().await;
    let echo = EchoUpstream::start().await;
    let options = EnvoyOptions::new(echo.addr, tollgate.addr())
        .routes_yaml(LIMITED_ROUTE)
        .filters_after_authz_yaml(LOCAL_RATELIMIT_FILTER);
    let envoy = Envoy::start(options).await;
    let (a, b, c) = (
        bearer(&idp, "client-a"),
        bearer(&idp, "client-b"),
        bearer(&idp, "client-c"),
    );

    let a_limited = statuses(&envoy, "/api/orders", &a, 3).await;
    assert_eq!(a_limited, [200, 200, 429], "{}", envoy.logs());
    // B has a bucket of its own: A's exhaustion does not touch it.
    assert_eq!(
        statuses(&envoy, "/api/orders", &b, 3).await,
        [200, 200, 200]
    );
    // Neither did B's: C gets its full 3, then is limited alone.
    assert_eq!(
        statuses(&envoy, "/api/orders", &c, 4).await,
        [200, 200, 200, 429]
    );
    // Per route: A, limited on /api, still passes where no limit is set.
    assert_eq!(statuses(&envoy, "/other", &a, 2).await, [200, 200]);
    // The limit follows the identity, so a caller without a valid token
    // is refused by tollgate before any bucket is touched.
    assert_eq!(statuses(&envoy, "/api/orders", "Bearer x", 1).await, [401]);
}
