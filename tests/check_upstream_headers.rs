//! What an allow does to the request's headers upstream: identity headers
//! set from claims, removed when the claim is absent, and the token's own
//! headers removed where a route says `remove_token_header`. tollgate runs
//! in-process on 127.0.0.1:0 with static keys from `tests/fixtures/keys/`.
//! (Which headers other routes' allows and anonymous requests remove is in
//! `check_tokens.rs` and `check_routes.rs`.)

mod support;

use support::check::*;
use support::tokens::Token;

/// `ec-1`'s token from issuer A for [`AUDIENCE`]: `alice` through client
/// `orders-ui`, with scope `read`.
fn token_a() -> Token {
    issued_by(ISSUER_A, Token::es256())
}

#[tokio::test]
async fn token_headers_are_removed_when_the_route_says_so() {
    let tollgate = Tollgate::start_in_realm(&format!(
        r#"
token_sources:
  - header: authorization
    scheme: Bearer
  - header: x-octelium-auth
  - header: x-api-key
    prefix: "Token "
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
defaults:
  upstream_headers:
    x-auth-subject: sub
routes:
  - name: strip
    match: {{ path: {{ prefix: /strip }} }}
    providers: [a]
    remove_token_header: true
"#
    ))
    .await;
    let response = tollgate.check_bearer("/strip/x", &token_a().sign()).await;
    let ok = allowed(&response);
    for header in ["authorization", "x-octelium-auth", "x-api-key"] {
        assert!(
            ok.headers_to_remove.iter().any(|h| h == header),
            "{header} not removed: {:?}",
            ok.headers_to_remove
        );
    }
    assert_eq!(
        header(&upstream_headers(ok), "x-auth-subject"),
        Some("alice")
    );
}

#[tokio::test]
async fn a_token_without_a_mapped_claim_removes_that_header() {
    let tollgate = Tollgate::start_in_realm(&format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
defaults:
  upstream_headers:
    x-auth-subject: sub
    x-auth-scopes: scope
routes:
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    providers: [a]
"#
    ))
    .await;
    // No scopes: `scope` is absent, so a client-sent x-auth-scopes must go.
    let token = token_a().scopes([]).sign();
    let auth = bearer(&token);
    let response = tollgate
        .check(get(
            "/api/x",
            &[("authorization", &auth), ("x-auth-scopes", "admin")],
        ))
        .await;
    let ok = allowed(&response);
    assert!(!upstream_headers(ok).contains_key("x-auth-scopes"));
    assert!(
        ok.headers_to_remove.iter().any(|h| h == "x-auth-scopes"),
        "{ok:?}"
    );
}
