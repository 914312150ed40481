//! Which bearer JWTs `Check` accepts: the signature algorithms allowed,
//! missing and malformed tokens, bad signatures, `exp`/`nbf`/`iat` and their
//! leeway, issuer and audience, unknown kids, `alg: none` and key confusion,
//! and that no deny repeats the token. tollgate runs in-process on
//! 127.0.0.1:0 with static keys from `tests/fixtures/keys/`.
//!
//! Every deny is checked for its exact HTTP status, gRPC code,
//! `WWW-Authenticate` and JSON body.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use support::check::*;
use support::tokens::{Token, unix_now};

const EC2_JWK: &str = include_str!("fixtures/keys/ec-p256-2.jwk.json");

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// Provider `a` with the static keys `rsa-1`, `ec-1` and `ed-1`, and
/// `/api` for it: what most tests here need and no more.
fn provider_a_on_api() -> String {
    format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
routes:
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    providers: [a]
"#
    )
}

// ---------------------------------------------------------------------------
// Valid tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn valid_rs256_es256_and_eddsa_tokens_are_allowed_with_identity_headers() {
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
  # Two routes that set identity headers /api does not.
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
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    providers: [a]
"#
    ))
    .await;
    for (algorithm, key) in [
        ("RS256", Token::rs256()),
        ("ES256", Token::es256()),
        ("EdDSA", Token::ed25519()),
    ] {
        let token = issued_by(ISSUER_A, key).scopes(["read", "write"]).sign();
        let auth = bearer(&token);
        // A client-sent identity header must be overwritten, not appended to.
        let response = tollgate
            .check(get(
                "/api/items",
                &[("authorization", &auth), ("x-auth-subject", "mallory")],
            ))
            .await;
        let ok = allowed(&response);
        let headers = upstream_headers(ok);
        assert_eq!(
            header(&headers, "x-auth-subject"),
            Some("alice"),
            "{algorithm}"
        );
        assert_eq!(header(&headers, "x-auth-client-id"), Some("orders-ui"));
        assert_eq!(header(&headers, "x-auth-scopes"), Some("read write"));
        // The token stays on this route; identity headers that only other
        // routes set are removed so the client cannot supply them.
        assert_eq!(
            ok.headers_to_remove,
            ["x-auth-roles", "x-tenant-subject"],
            "{ok:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Missing and malformed tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_token_is_401_with_a_bare_challenge() {
    let tollgate = Tollgate::start_in_realm(&provider_a_on_api()).await;
    let response = tollgate.check(get("/api/items", &[])).await;
    let deny = assert_denied(
        &response,
        401,
        Some(MISSING_TOKEN_CHALLENGE),
        "unauthorized",
        None,
    );
    assert_eq!(header(&deny.headers, "cache-control"), Some("no-store"));

    // Another auth scheme is not a bearer token: still "missing".
    let response = tollgate
        .check(get(
            "/api/items",
            &[("authorization", "Basic dXNlcjpwYXNz")],
        ))
        .await;
    assert_denied(
        &response,
        401,
        Some(MISSING_TOKEN_CHALLENGE),
        "unauthorized",
        None,
    );
}

#[tokio::test]
async fn malformed_tokens_are_401_invalid_token() {
    let tollgate = Tollgate::start_in_realm(&provider_a_on_api()).await;
    let header = b64(&json!({"alg": "ES256", "kid": "ec-1"}));
    let payload = b64(&json!({"iss": ISSUER_A, "aud": AUDIENCE, "exp": unix_now() + 300}));
    let jwe_header = b64(&json!({"alg": "RSA-OAEP", "enc": "A256GCM"}));
    let cases = [
        "garbage".to_owned(),
        format!("{header}.{payload}"),
        format!("{jwe_header}.ZW5jcnlwdGVka2V5.aXY.Y2lwaGVydGV4dA.dGFn"),
        format!("{header}.{payload}.c2ln.extra"),
        format!("{header}.bm90IGpzb24.c2ln"),
    ];
    for token in &cases {
        assert_invalid_token(&tollgate.check_bearer("/api/items", token).await, token);
    }
    // Not token68 at all, or an empty bearer.
    for value in ["Bearer a b", "Bearer", "Bearer {\"alg\":1}"] {
        let response = tollgate
            .check(get("/api/items", &[("authorization", value)]))
            .await;
        assert_denied(
            &response,
            401,
            Some(INVALID_TOKEN_CHALLENGE),
            "invalid_token",
            None,
        );
    }
}

// ---------------------------------------------------------------------------
// Signatures and registered claims
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bad_signatures_are_401() {
    let tollgate = Tollgate::start_in_realm(&provider_a_on_api()).await;
    // ec-2's private key under ec-1's kid.
    let wrong_key = Token::with_key("ec-p256-2.pem", Algorithm::ES256, "ec-1");
    let forged = issued_by(ISSUER_A, wrong_key).sign();

    // A valid token with its payload swapped for another subject.
    let good = issued_by(ISSUER_A, Token::es256()).sign();
    let mut parts = good.split('.');
    let (header, _, signature) = (
        parts.next().expect("header"),
        parts.next().expect("payload"),
        parts.next().expect("signature"),
    );
    let payload = b64(&json!({
        "iss": ISSUER_A, "aud": AUDIENCE, "sub": "root", "scope": "read admin", "exp": unix_now() + 300
    }));
    let tampered_payload = format!("{header}.{payload}.{signature}");

    // A valid token with a character in the middle of its signature changed.
    let mut bytes = good.clone().into_bytes();
    let middle = good.len() - signature.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).expect("ASCII token");

    for token in [&forged, &tampered_payload, &flipped] {
        assert_invalid_token(&tollgate.check_bearer("/api/items", token).await, token);
    }
    // The untouched token is fine, so the denials above are about the changes.
    allowed(&tollgate.check_bearer("/api/items", &good).await);
}

#[tokio::test]
async fn expired_token_is_401_and_says_expired_without_internals() {
    let tollgate = Tollgate::start_in_realm(&provider_a_on_api()).await;
    let exp = unix_now() - 120;
    let token = issued_by(ISSUER_A, Token::es256())
        .claims(json!({"exp": exp, "iat": unix_now() - 600}))
        .sign();
    let deny = assert_invalid_token(&tollgate.check_bearer("/api/items", &token).await, &token);
    assert_eq!(deny.body["error_description"], "the access token expired");
    let members: Vec<&String> = deny.body.as_object().expect("JSON object").keys().collect();
    assert_eq!(
        members,
        ["error", "error_description"],
        "no extra detail in the body"
    );
    let exp = exp.to_string();
    for internal in [
        exp.as_str(),
        "\"exp\"",
        "leeway",
        "ec-1",
        "jsonwebtoken",
        "ExpiredSignature",
        ISSUER_A,
    ] {
        assert!(
            !deny.raw_body.contains(internal),
            "body leaks {internal:?}: {}",
            deny.raw_body
        );
    }

    // Inside the 30 s leeway it is still accepted.
    let token = issued_by(ISSUER_A, Token::es256())
        .claim("exp", unix_now() - 5)
        .sign();
    allowed(&tollgate.check_bearer("/api/items", &token).await);
}

#[tokio::test]
async fn not_yet_valid_and_future_iat_are_401_beyond_leeway() {
    let tollgate = Tollgate::start_in_realm(&provider_a_on_api()).await;
    for claims in [
        json!({"nbf": unix_now() + 300}),
        json!({"iat": unix_now() + 300}),
    ] {
        let token = issued_by(ISSUER_A, Token::es256())
            .claims(claims.clone())
            .sign();
        let deny = assert_invalid_token(&tollgate.check_bearer("/api/items", &token).await, &token);
        assert_eq!(
            deny.body["error_description"], "the access token is not valid",
            "{claims}"
        );
    }
    // Within the leeway both are clock skew, not an attack.
    for claims in [
        json!({"nbf": unix_now() + 5}),
        json!({"iat": unix_now() + 5}),
    ] {
        let token = issued_by(ISSUER_A, Token::es256()).claims(claims).sign();
        allowed(&tollgate.check_bearer("/api/items", &token).await);
    }
}

#[tokio::test]
async fn wrong_issuer_audience_and_claim_types_are_401() {
    let tollgate = Tollgate::start_in_realm(&provider_a_on_api()).await;
    let from_a = || issued_by(ISSUER_A, Token::es256());
    let cases = [
        (
            "unknown issuer",
            issued_by("https://evil.test", Token::es256()).sign(),
        ),
        ("wrong audience", from_a().claim("aud", "other-api").sign()),
        ("no audience", from_a().claim("aud", Value::Null).sign()),
        ("string exp", from_a().claim("exp", "9999999999").sign()),
        ("no exp", from_a().claim("exp", Value::Null).sign()),
        ("array iss", from_a().claim("iss", json!([ISSUER_A])).sign()),
    ];
    for (case, token) in &cases {
        let response = tollgate.check_bearer("/api/items", token).await;
        let deny = denied(&response);
        assert_eq!(deny.status, 401, "{case}: {response:?}");
        assert_invalid_token(&response, token);
    }
}

#[tokio::test]
async fn unknown_kid_with_static_keys_is_401() {
    let tollgate = Tollgate::start_in_realm(&provider_a_on_api()).await;
    let token = issued_by(ISSUER_A, Token::es256().kid("no-such-kid")).sign();
    assert_invalid_token(&tollgate.check_bearer("/api/items", &token).await, &token);
}

/// Provider `a` with the static keys `rsa-1`, `ec-1` and `ed-1`; `/admin`
/// needs scope `admin`, `/api` any token of `a`'s.
fn admin_and_api_config() -> String {
    format!(
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
    require: {{ scopes: [admin] }}
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    providers: [a]
"#
    )
}

#[tokio::test]
async fn alg_none_in_any_casing_is_401() {
    let tollgate = Tollgate::start_in_realm(&admin_and_api_config()).await;
    let payload = b64(&json!({
        "iss": ISSUER_A, "aud": AUDIENCE, "sub": "alice", "scope": "read admin", "exp": unix_now() + 300
    }));
    for alg in ["none", "None", "NONE", "nOnE"] {
        for kid in [None, Some("ec-1")] {
            let mut header = json!({"alg": alg, "typ": "JWT"});
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let header = b64(&header);
            for signature in ["", "c2lnbmF0dXJl"] {
                let token = format!("{header}.{payload}.{signature}");
                assert_invalid_token(&tollgate.check_bearer("/api/items", &token).await, &token);
                assert_invalid_token(&tollgate.check_bearer("/admin", &token).await, &token);
            }
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_401() {
    let tollgate = Tollgate::start_in_realm(&admin_and_api_config()).await;
    let pem = rsa_public_pem();
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\nMIIBIjAN"),
        "an RSA 2048 SPKI: {pem}"
    );
    for (secret, kid) in [
        (pem.clone(), Some("rsa-1")),
        (pem.clone(), None),
        (pem.trim_end().to_owned(), Some("rsa-1")),
    ] {
        let mut key = Token::hs256(secret.as_bytes());
        if let Some(kid) = kid {
            key = key.kid(kid);
        }
        let token = issued_by(ISSUER_A, key).scopes(["read", "admin"]).sign();
        assert_invalid_token(&tollgate.check_bearer("/admin", &token).await, &token);
    }
}

// ---------------------------------------------------------------------------
// What a deny says
// ---------------------------------------------------------------------------

#[tokio::test]
async fn deny_bodies_never_echo_the_token() {
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
  - name: admin
    match: {{ path: {{ prefix: /admin }} }}
    providers: [a]
    require: {{ scopes: [admin] }}
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
    let valid = issued_by(ISSUER_A, Token::es256()).sign();
    let expired = issued_by(ISSUER_A, Token::es256())
        .claim("exp", unix_now() - 3600)
        .sign();
    let long = "A".repeat(20 * 1024);
    for (path, token) in [
        ("/admin", valid.as_str()),
        ("/api/x", expired.as_str()),
        ("/b-only/x", valid.as_str()),
        ("/api/x", long.as_str()),
        ("/nowhere", valid.as_str()),
    ] {
        let response = tollgate.check_bearer(path, token).await;
        let deny = denied(&response);
        assert!(matches!(deny.status, 401 | 403), "{path}: {response:?}");
        let members: Vec<&String> = deny.body.as_object().expect("JSON object").keys().collect();
        assert_eq!(members, ["error", "error_description"], "{path}");
        assert!(
            !format!("{response:?}").contains(token),
            "{path}: token echoed"
        );
    }
}
