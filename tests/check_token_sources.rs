//! Where `Check` reads the bearer token from: the `Authorization` header by
//! default; raw and prefixed headers, the query string and cookies only
//! when `token_sources` names them; Envoy's `header_map` as well as its
//! `headers`; and what happens when a request carries a token twice, or
//! two different ones. tollgate runs in-process on 127.0.0.1:0 with static
//! keys from `tests/fixtures/keys/`.

mod support;

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;

use support::check::*;
use support::tokens::Token;

/// `key`'s token from issuer A (see [`issued_by`]).
fn issued_by_a(key: Token) -> Token {
    issued_by(ISSUER_A, key)
}

/// Provider `a` (static keys `rsa-1`, `ec-1`, `ed-1`) on `/api`, the subject
/// sent upstream, and tokens read from `token_sources` (YAML list items);
/// none given is tollgate's default, `Authorization: Bearer`.
fn config(token_sources: &[&str]) -> String {
    let token_sources = if token_sources.is_empty() {
        String::new()
    } else {
        let items: String = token_sources
            .iter()
            .map(|source| format!("  - {source}\n"))
            .collect();
        format!("token_sources:\n{items}")
    };
    format!(
        r#"{token_sources}
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
defaults:
  upstream_headers:
    x-auth-subject: sub
routes:
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    providers: [a]
"#
    )
}

#[tokio::test]
async fn header_map_with_raw_values_is_read() {
    let tollgate = Tollgate::start_in_realm(&config(&[])).await;
    let token = issued_by_a(Token::es256()).sign();
    // `GET /api/raw` with `headers` in `header_map` only.
    let raw_request = |headers: Vec<HeaderValue>| {
        with_http(HttpRequest {
            host: "api.example.com".to_owned(),
            method: "GET".to_owned(),
            path: "/api/raw".to_owned(),
            header_map: Some(HeaderMap { headers }),
            ..Default::default()
        })
    };
    let request = raw_request(vec![HeaderValue {
        key: "authorization".to_owned(),
        raw_value: bearer(&token).into_bytes(),
        ..Default::default()
    }]);
    let response = tollgate.check(request).await;
    let headers = upstream_headers(allowed(&response));
    assert_eq!(header(&headers, "x-auth-subject"), Some("alice"));

    // The same request without the header is a missing token: the map was read.
    let empty = raw_request(vec![]);
    assert_denied(
        &tollgate.check(empty).await,
        401,
        Some(MISSING_TOKEN_CHALLENGE),
        "unauthorized",
        None,
    );
}

#[tokio::test]
async fn two_different_tokens_are_400_invalid_request() {
    let tollgate = Tollgate::start_in_realm(&config(&[
        "{ header: authorization, scheme: Bearer }",
        "header: x-octelium-auth",
        "query: access_token",
        "cookie: session",
    ]))
    .await;
    let one = issued_by_a(Token::es256()).sign();
    let two = issued_by_a(Token::rs256()).sign();
    let auth_one = bearer(&one);
    let auth_two = bearer(&two);
    let cookie = format!("session={two}");
    let query = format!("/api/x?access_token={two}");
    let cases = [
        get(
            "/api/x",
            &[("authorization", &auth_one), ("x-octelium-auth", &two)],
        ),
        // Envoy's `headers` map joins a repeated header with a comma.
        get(
            "/api/x",
            &[("authorization", &auth_one), ("authorization", &auth_two)],
        ),
        get(
            "/api/x",
            &[("authorization", &auth_one), ("cookie", &cookie)],
        ),
        get(&query, &[("authorization", &auth_one)]),
    ];
    for case in cases {
        let response = tollgate.check(case).await;
        let deny = assert_denied(
            &response,
            400,
            Some(INVALID_REQUEST_CHALLENGE),
            "invalid_request",
            Some(&one),
        );
        assert!(!deny.raw_body.contains(&two));
    }
}

#[tokio::test]
async fn the_same_token_twice_is_one_token() {
    let tollgate = Tollgate::start_in_realm(&config(&[
        "{ header: authorization, scheme: Bearer }",
        "header: x-octelium-auth",
        r#"{ header: x-api-key, prefix: "Token " }"#,
        "cookie: session",
    ]))
    .await;
    let token = issued_by_a(Token::es256()).sign();
    let auth = bearer(&token);
    let cookie = format!("theme=dark; session={token}");
    let prefixed = format!("Token {token}");
    let response = tollgate
        .check(get(
            "/api/x",
            &[
                ("authorization", &auth),
                ("authorization", &auth),
                ("x-octelium-auth", &token),
                ("x-api-key", &prefixed),
                ("cookie", &cookie),
            ],
        ))
        .await;
    allowed(&response);
}

#[tokio::test]
async fn tokens_are_read_from_every_configured_source() {
    let tollgate = Tollgate::start_in_realm(&config(&[
        "{ header: authorization, scheme: Bearer }",
        "header: x-octelium-auth",
        r#"{ header: x-api-key, prefix: "Token " }"#,
        "query: access_token",
        "cookie: session",
    ]))
    .await;
    let token = issued_by_a(Token::es256()).sign();
    let prefixed = format!("Token {token}");
    let cookie = format!("theme=dark; session={token}; lang=en");
    let query = format!("/api/x?page=2&access_token={token}");
    let cases = [
        ("raw header", get("/api/x", &[("x-octelium-auth", &token)])),
        ("prefix", get("/api/x", &[("x-api-key", &prefixed)])),
        ("query", get(&query, &[])),
        ("cookie", get("/api/x", &[("cookie", &cookie)])),
        (
            "lower-case bearer",
            get("/api/x", &[("authorization", &format!("bearer {token}"))]),
        ),
        (
            "upper-case bearer",
            get("/api/x", &[("authorization", &format!("BEARER {token}"))]),
        ),
    ];
    for (source, case) in cases {
        let response = tollgate.check(case).await;
        let ok = allowed(&response);
        assert_eq!(
            header(&upstream_headers(ok), "x-auth-subject"),
            Some("alice"),
            "{source}"
        );
    }
    // A prefix is matched exactly.
    let lower = format!("token {token}");
    let response = tollgate
        .check(get("/api/x", &[("x-api-key", &lower)]))
        .await;
    assert_denied(
        &response,
        401,
        Some(MISSING_TOKEN_CHALLENGE),
        "unauthorized",
        Some(&token),
    );
}

#[tokio::test]
async fn query_and_cookie_tokens_count_only_when_configured() {
    let tollgate = Tollgate::start_in_realm(&config(&[])).await;
    let token = issued_by_a(Token::es256()).sign();
    let query = format!("/api/x?access_token={token}");
    let cookie = format!("session={token}");
    for case in [
        get(&query, &[]),
        get("/api/x", &[("cookie", &cookie)]),
        get("/api/x", &[("x-octelium-auth", &token)]),
    ] {
        let response = tollgate.check(case).await;
        assert_denied(
            &response,
            401,
            Some(MISSING_TOKEN_CHALLENGE),
            "unauthorized",
            Some(&token),
        );
    }
    allowed(&tollgate.check_bearer("/api/x", &token).await);
}
