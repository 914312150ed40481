//! Which route a request takes, and what that route lets through:
//! anonymous routes, requests no route matches (`unmatched`), path prefixes
//! on whole segments after dot-segments resolve, encoded slashes, host
//! wildcards, methods, and routes limited to one provider. tollgate runs
//! in-process on 127.0.0.1:0 with static keys from `tests/fixtures/keys/`.

mod support;

use support::check::*;
use support::tokens::Token;

const EC2_JWK: &str = include_str!("fixtures/keys/ec-p256-2.jwk.json");

#[tokio::test]
async fn anonymous_route_allows_without_a_token_and_strips_identity_headers() {
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
    x-auth-client-id: client_id
    x-auth-scopes: scope
routes:
  - name: public
    match: {{ path: {{ prefix: /public }} }}
    anonymous: true
  # Two routes that set identity headers of their own.
  - name: roles
    match: {{ path: {{ prefix: /roles }} }}
    providers: [a]
    upstream_headers:
      x-auth-subject: sub
      x-auth-roles: realm_access.roles
  - name: tenants
    match: {{ path: {{ prefix: /tenant }} }}
    providers: [a]
    upstream_headers:
      x-tenant-subject: sub
"#
    ))
    .await;
    let response = tollgate
        .check(get("/public/info", &[("x-auth-subject", "admin")]))
        .await;
    let ok = allowed(&response);
    assert!(
        ok.headers.is_empty(),
        "nothing is set for an anonymous request: {ok:?}"
    );
    let mut removed = ok.headers_to_remove.clone();
    removed.sort();
    // Every header any route sets from claims, not only this route's.
    assert_eq!(
        removed,
        [
            "x-auth-client-id",
            "x-auth-roles",
            "x-auth-scopes",
            "x-auth-subject",
            "x-tenant-subject"
        ]
    );
}

#[tokio::test]
async fn no_route_is_403_without_a_challenge() {
    let tollgate = Tollgate::start_in_realm(&format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
routes:
  - name: admin
    match: {{ path: {{ prefix: /admin }} }}
    providers: [a]
  - name: write
    match: {{ methods: [POST], path: {{ prefix: /orders }} }}
    providers: [a]
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    providers: [a]
"#
    ))
    .await;
    let token = issued_by(ISSUER_A, Token::es256()).sign();
    let auth = bearer(&token);
    for path in ["/nowhere", "/administrator", "/apis"] {
        let response = tollgate.check_bearer(path, &token).await;
        let deny = assert_denied(&response, 403, None, "access_denied", Some(&auth));
        assert!(!deny.headers.contains_key("www-authenticate"), "{path}");
    }
    // The write route is POST only.
    let response = tollgate.check_bearer("/orders/1", &token).await;
    assert_denied(&response, 403, None, "access_denied", None);
}

#[tokio::test]
async fn unmatched_allow_lets_unrouted_requests_through_without_identity() {
    let tollgate = Tollgate::start_in_realm(&format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
routes:
  - name: api
    match: {{ path: {{ prefix: /api }} }}
unmatched: allow
"#
    ))
    .await;
    let response = tollgate
        .check(get("/elsewhere", &[("x-auth-subject", "admin")]))
        .await;
    let ok = allowed(&response);
    assert!(ok.headers.is_empty(), "{ok:?}");
    // The config names no upstream headers, so the default identity headers
    // apply, and an unrouted request must not carry a client-sent one.
    assert_eq!(
        ok.headers_to_remove,
        ["x-auth-client-id", "x-auth-scopes", "x-auth-subject"],
        "{ok:?}"
    );
    // Routed requests still need a token.
    let response = tollgate.check(get("/api/x", &[])).await;
    assert_denied(
        &response,
        401,
        Some(MISSING_TOKEN_CHALLENGE),
        "unauthorized",
        None,
    );
}

#[tokio::test]
async fn path_tricks_are_normalised_or_refused() {
    let tollgate = Tollgate::start_in_realm(&format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
routes:
  - name: public
    match: {{ path: {{ prefix: /public }} }}
    anonymous: true
  - name: admin
    match: {{ path: {{ prefix: /admin }} }}
    providers: [a]
    require: {{ scopes: [admin] }}
"#
    ))
    .await;
    // Dot-segments resolve before matching: this is the admin route.
    for path in [
        "/public/../admin",
        "/public/./../admin/",
        "//public/..//admin",
    ] {
        let response = tollgate.check(get(path, &[])).await;
        assert_denied(
            &response,
            401,
            Some(MISSING_TOKEN_CHALLENGE),
            "unauthorized",
            None,
        );
    }
    let admin = issued_by(ISSUER_A, Token::es256()).scopes(["admin"]).sign();
    allowed(&tollgate.check_bearer("/public/../admin?x=1", &admin).await);

    // Encoded slashes and backslashes are refused outright.
    for path in [
        "/public%2F..%2Fadmin",
        "/public%2f..%2fadmin",
        "/public%5C..%5Cadmin",
        "/public/%zz",
    ] {
        let response = tollgate.check(get(path, &[])).await;
        assert_denied(
            &response,
            400,
            Some(INVALID_REQUEST_CHALLENGE),
            "invalid_request",
            None,
        );
    }
    // The anonymous route itself is still anonymous.
    allowed(&tollgate.check(get("/public/a/../b", &[])).await);
}

#[tokio::test]
async fn host_wildcards_route_by_host() {
    let tollgate = Tollgate::start_in_realm(&format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
routes:
  - name: tenants
    match: {{ hosts: ["*.tenants.example"], path: {{ prefix: /tenant }} }}
    providers: [a]
    upstream_headers:
      x-tenant-subject: sub
"#
    ))
    .await;
    let auth = bearer(&issued_by(ISSUER_A, Token::es256()).sign());
    for host in [
        "acme.tenants.example",
        "ACME.Tenants.Example:8443",
        "a.b.tenants.example",
    ] {
        let response = tollgate
            .check(request(
                "GET",
                host,
                "/tenant/1",
                &[("authorization", &auth)],
            ))
            .await;
        let headers = upstream_headers(allowed(&response));
        assert_eq!(
            header(&headers, "x-tenant-subject"),
            Some("alice"),
            "{host}"
        );
    }
    for host in [
        "tenants.example",
        "eviltenants.example",
        "acme.tenants.example.evil",
    ] {
        let response = tollgate
            .check(request(
                "GET",
                host,
                "/tenant/1",
                &[("authorization", &auth)],
            ))
            .await;
        assert_denied(&response, 403, None, "access_denied", None);
    }
}

#[tokio::test]
async fn a_route_for_provider_b_refuses_provider_a() {
    let tollgate = Tollgate::start_in_realm(&format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
  - name: b
    issuer: {ISSUER_B}
    audiences: [{AUDIENCE}]
    jwks: {{"keys": [{ec2}]}}
routes:
  - name: b-only
    match: {{ path: {{ prefix: /b-only }} }}
    providers: [b]
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    providers: [a]
"#,
        ec2 = EC2_JWK.trim()
    ))
    .await;
    let token_b = issued_by(ISSUER_B, Token::es256_second()).sign();
    let token_a = issued_by(ISSUER_A, Token::es256()).sign();
    assert_invalid_token(
        &tollgate.check_bearer("/b-only/x", &token_a).await,
        &token_a,
    );
    allowed(&tollgate.check_bearer("/b-only/x", &token_b).await);
    // And the other way round.
    assert_invalid_token(&tollgate.check_bearer("/api/x", &token_b).await, &token_b);
    // B's key under A's issuer is a bad signature, not a pass.
    let forged = issued_by(ISSUER_A, Token::es256_second()).sign();
    assert_invalid_token(&tollgate.check_bearer("/api/x", &forged).await, &forged);
}
